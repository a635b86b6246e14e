"""The quality benchmark's hand-written baseline: a plain torchvision training loop per task.

What a competent PyTorch user would write for each task family, independent of
automl_nb's training code (models, transforms, optimiser, loop are all here). Only the
reading of the data (``read_jsonl``, ``polygon_to_mask``) and the scoring (automl_nb's
metric functions) are the product's, so the numbers compare with a trial's.

    python bench/quality/baseline.py TASK TRAIN_JSONL VALID_JSONL --seconds 60
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import Counter

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.transforms import v2

from automl_nb.data.detection import polygon_to_mask
from automl_nb.data.images import open_image
from automl_nb.data.jsonl import read_jsonl
from automl_nb.data.records import class_names
from automl_nb.metrics.classification import multiclass_metrics, multilabel_metrics
from automl_nb.metrics.detection import ImageDetections, ImageTargets, detection_metrics
from automl_nb.spec.tasks import MULTICLASS, MULTILABEL, PRIMARY_METRICS, SEGMENTATION, check_task

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
SMALL_IMAGE = 64  # at most this many pixels on the short side: 3x3 stride-1 stem
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_baseline(task: str, train_jsonl, valid_jsonl, *, seconds_budget: float, seed: int = 0,
                   threads: int | None = None) -> dict:
    """Train the task's plain recipe on ``train_jsonl`` within ``seconds_budget``, score ``valid_jsonl``.

    The epochs are planned after the first one (its time, with room for the final
    validation), capped at 30 (classification) or 20 (detection); the cosine schedule spans
    the planned epochs. Epoch 1 always runs in full, so a budget shorter than one epoch is
    overrun. The metric is the final epoch's (no best-epoch selection).

    Args:
        task: one of the four image task names.
        train_jsonl, valid_jsonl: Azure image JSONL files.
        seconds_budget: wall-clock seconds for everything (reading, training, validation).
        seed: seeds torch, numpy and random.
        threads: torch CPU threads for the run (restored after).

    Returns:
        ``{"metric_name", "metric", "epochs", "seconds", "recipe"}``, the metric being the
        product's primary one (``PRIMARY_METRICS``: for segmentation that is the box
        ``mean_average_precision``); segmentation adds ``mask_mean_average_precision``.
    """
    task = check_task(task)
    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        train, valid = read_jsonl(train_jsonl, task), read_jsonl(valid_jsonl, task)
        fit = _classification if task in (MULTICLASS, MULTILABEL) else _detection
        result = fit(task, train, valid, seconds_budget, started)
    finally:
        torch.set_num_threads(previous_threads)
    return {"metric_name": PRIMARY_METRICS[task], **result, "seconds": round(time.perf_counter() - started, 2)}


# -- the loop shared by both families ----------------------------------------------------------

def _fit(step, batches, optimizer, budget: float, started: float, cap: int, eval_share: float,
         warmup: int = 0) -> int:
    """Run epochs of ``step(batch)`` over ``batches``; return how many epochs ran.

    Epoch 1 runs at the base rate (after ``warmup`` linear steps). Then the epochs that fit
    in what is left of ``budget`` (less ``eval_share`` of an epoch for the final validation)
    are planned, and the rate follows a cosine over all planned steps. An epoch that the
    latest epoch's time says would end over budget is not started (a shared machine slows).
    """
    base = [group["lr"] for group in optimizer.param_groups]
    total, done, epochs = math.inf, 0, 0
    while epochs < cap:
        epoch_start = time.perf_counter()
        for batch in batches:
            factor = (done + 1) / warmup if done < warmup else 0.5 * (1 + math.cos(math.pi * done / total))
            for group, lr in zip(optimizer.param_groups, base):
                group["lr"] = lr * factor
            step(batch)
            done += 1
        epochs += 1
        now = time.perf_counter()
        epoch_seconds = now - epoch_start
        left = budget - (now - started) - eval_share * epoch_seconds
        if epochs == 1:
            cap = min(cap, 1 + max(0, int(left // epoch_seconds)))
            total = cap * len(batches)
        elif left < epoch_seconds:
            break
    return epochs


# -- classification -----------------------------------------------------------------------------

def _classification(task: str, train, valid, budget: float, started: float) -> dict:
    classes = class_names(train + valid)
    multilabel = task == MULTILABEL
    # Native size: the most common one in the training set; others are resized to it.
    width, height = Counter((r.width, r.height) for r in train).most_common(1)[0][0]
    small = min(width, height) <= SMALL_IMAGE

    def load(records):
        pictures = [open_image(r.image_url).convert("RGB").resize((width, height)) for r in records]
        images = torch.stack([v2.functional.pil_to_tensor(picture) for picture in pictures])
        if multilabel:
            labels = torch.zeros(len(records), len(classes))
            for i, r in enumerate(records):
                labels[i, [classes.index(c) for c in r.label]] = 1
        else:
            labels = torch.tensor([classes.index(r.label) for r in records])
        return images, labels

    (x_train, y_train), (x_valid, y_valid) = load(train), load(valid)
    model = torchvision.models.resnet18(weights=None, num_classes=len(classes))
    if small:  # CIFAR-style stem; the maxpool is kept: dropping it costs ~4x the compute, too much for a CPU
        model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.to(DEVICE)
    # Adam beat SGD (lr 0.05, momentum 0.9) at equal epochs on synthetic shapes and sklearn digits.
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    crop = v2.RandomCrop((height, width), padding=min(width, height) // 8)
    loss_fn = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()

    def normalise(images):
        return (images.to(DEVICE).float() / 255 - IMAGENET_MEAN.to(DEVICE)) / IMAGENET_STD.to(DEVICE)

    def step(indices):
        images = normalise(torch.stack([crop(x_train[i]) for i in indices]))
        loss = loss_fn(model(images), y_train[indices].to(DEVICE))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    class Shuffled:  # a fresh permutation per epoch, in batches of 64
        def __len__(self):
            return math.ceil(len(x_train) / 64)

        def __iter__(self):
            return iter(torch.randperm(len(x_train)).split(64))

    model.train()
    eval_share = len(x_valid) / len(x_train) / 3  # a forward pass is about a third of a training step
    epochs = _fit(step, Shuffled(), optimizer, budget, started, cap=30, eval_share=eval_share)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(normalise(batch)).cpu() for batch in x_valid.split(256)])
    if multilabel:
        metric = multilabel_metrics(y_valid.numpy(), torch.sigmoid(logits).numpy())["iou"]
    else:
        metric = multiclass_metrics(y_valid.numpy(), logits.argmax(1).numpy(), len(classes))["accuracy"]
    stem = "3x3 stride-1 conv1, maxpool kept" if small else "standard stem"
    recipe = (f"resnet18 random init ({stem}) at {width}x{height}, ImageNet normalisation, "
              f"RandomCrop(pad {min(width, height) // 8}), no flips, "
              f"{'BCEWithLogits' if multilabel else 'cross-entropy'}, Adam lr 1e-3 wd 5e-4, "
              f"batch 64, cosine over planned epochs, final-epoch metric")
    return {"metric": float(metric), "epochs": epochs, "recipe": recipe}


# -- detection and instance segmentation -------------------------------------------------------

def _detection(task: str, train, valid, budget: float, started: float) -> dict:
    classes = class_names(train + valid)
    segmentation = task == SEGMENTATION

    def load(record):
        image = v2.functional.pil_to_tensor(open_image(record.image_url).convert("RGB"))
        height, width = image.shape[-2:]
        objects = record.objects
        target = {
            "boxes": torch.tensor([[o.top_x * width, o.top_y * height, o.bottom_x * width, o.bottom_y * height]
                                   for o in objects], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([classes.index(o.label) + 1 for o in objects], dtype=torch.int64),  # 0: background
            "is_crowd": torch.tensor([o.is_crowd for o in objects], dtype=torch.bool),
        }
        if segmentation:
            masks = [polygon_to_mask(o.polygon, width, height) for o in objects]
            target["masks"] = torch.stack(masks) if masks else torch.zeros((0, height, width), dtype=torch.uint8)
        return image, target

    train_items, valid_items = [load(r) for r in train], [load(r) for r in valid]
    # No rescaling: min_size / max_size are the largest short and long sides in the data.
    sides = [sorted(image.shape[-2:]) for image, _ in train_items + valid_items]
    min_size, max_size = max(s[0] for s in sides), max(s[1] for s in sides)
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5,
                                   norm_layer=nn.BatchNorm2d)  # frozen BN at random init would normalise nothing
    detector = MaskRCNN if segmentation else FasterRCNN
    model = detector(backbone, num_classes=len(classes) + 1, min_size=min_size, max_size=max_size)
    model.to(DEVICE)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.005, momentum=0.9, weight_decay=5e-4)

    def flip(image, target):
        if random.random() >= 0.5:
            return image, target
        boxes = target["boxes"].clone()
        boxes[:, [0, 2]] = image.shape[-1] - target["boxes"][:, [2, 0]]  # x1' = W - x2, x2' = W - x1
        target = dict(target, boxes=boxes)
        if segmentation:
            target["masks"] = target["masks"].flip(-1)
        return image.flip(-1), target

    def step(indices):
        batch = [flip(*train_items[i]) for i in indices]
        images = [image.to(DEVICE).float() / 255 for image, _ in batch]
        targets = [{k: v.to(DEVICE) for k, v in t.items() if k != "is_crowd"} for _, t in batch]
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    class Shuffled:  # batches of 4, reshuffled each epoch
        def __len__(self):
            return math.ceil(len(train_items) / 4)

        def __iter__(self):
            return iter(torch.randperm(len(train_items)).split(4))

    model.train()
    warmup = min(1000, len(Shuffled()) - 1)  # the detection tutorial's linear warm-up in epoch 1
    epochs = _fit(step, Shuffled(), optimizer, budget, started, cap=20,
                  eval_share=len(valid_items) / len(train_items) / 3, warmup=warmup)
    model.eval()
    predictions, targets = [], []
    with torch.no_grad():
        for start in range(0, len(valid_items), 8):
            chunk = valid_items[start:start + 8]
            outputs = model([image.to(DEVICE).float() / 255 for image, _ in chunk])
            for (image, target), output in zip(chunk, outputs):
                output = {key: value.cpu() for key, value in output.items()}
                masks = (output["masks"][:, 0] >= 0.5).numpy() if segmentation else None  # the product's 0.5
                predictions.append(ImageDetections(boxes=output["boxes"].numpy(), scores=output["scores"].numpy(),
                                                   labels=output["labels"].numpy() - 1, masks=masks))
                targets.append(ImageTargets(boxes=target["boxes"].numpy(), labels=target["labels"].numpy() - 1,
                                            is_crowd=target["is_crowd"].numpy(),
                                            masks=target["masks"].numpy().astype(bool) if segmentation else None,
                                            width=image.shape[-1], height=image.shape[-2]))
    # The product's validation row: VOC mAP at IoU 0.5 (validation_metric_type's default).
    scores = detection_metrics(predictions, targets, len(classes), "voc", 0.5, segmentation=segmentation)
    recipe = (f"{detector.__name__} on resnet18-FPN random init (BatchNorm, all layers trainable), "
              f"min_size {min_size} max_size {max_size}, torchvision defaults otherwise (box score 0.05), "
              f"horizontal flip, SGD lr 0.005 momentum 0.9 wd 5e-4, batch 4, linear warm-up {warmup} steps then "
              f"cosine over planned epochs, final-epoch metric, VOC mAP@0.5")
    result = {"metric": float(scores["mean_average_precision"]), "epochs": epochs, "recipe": recipe}
    if segmentation:
        result["mask_mean_average_precision"] = float(scores["mask_mean_average_precision"])
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("train_jsonl")
    parser.add_argument("valid_jsonl")
    parser.add_argument("--seconds", type=float, default=60.0, help="wall-clock budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    result = train_baseline(args.task, args.train_jsonl, args.valid_jsonl, seconds_budget=args.seconds,
                            seed=args.seed, threads=args.threads)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
