"""Training throughput: our trainer (``run_trial``) against a plain hand-written PyTorch loop.

Same model (resnet18, random init), data (synthetic shapes), transforms, batch size and
epochs; each path trains then validates once. Runs both paths ``--repeats`` times,
alternating, and compares the best time of each. Prints images/s and the ratio
ours / plain (goal: >= 0.95 on CPU).

    python bench/train_throughput.py [--images 512] [--size 64] [--epochs 3] [--batch 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.data import DataLoader

from automl_nb.data.datasets import ClassificationDataset
from automl_nb.data.mltable import load_records
from automl_nb.data.records import class_names
from automl_nb.data.synthetic import make_dataset
from automl_nb.data.transforms import classification_train_transform, classification_valid_transform
from automl_nb.train import Trial, run_trial

LEARNING_RATE, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 1e-4


def plain_loop(jsonl: Path, args) -> tuple[float, float]:
    """The baseline: what one would write by hand. Returns (seconds for train + validate, accuracy)."""
    started = time.perf_counter()
    records = load_records(str(jsonl), "image_classification")
    classes = class_names(records)
    split = int(len(records) * 0.8)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train = ClassificationDataset(records[:split], classes, classification_train_transform(args.crop))
    valid = ClassificationDataset(records[split:], classes, classification_valid_transform(args.size, args.crop))
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=len(classes)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY, nesterov=True)
    criterion = torch.nn.CrossEntropyLoss()
    for _ in range(args.epochs):
        model.train()
        for images, targets in DataLoader(train, batch_size=args.batch, shuffle=True):
            images, targets = images.to(device), targets.to(device)
            loss = criterion(model(images), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(x.to(device)).argmax(1).cpu() == y).sum().item()
                      for x, y in DataLoader(valid, batch_size=args.batch))
    return time.perf_counter() - started, correct / len(valid)


def our_trainer(jsonl: Path, args, output: Path) -> tuple[float, float]:
    """Our path: ``run_trial`` with evaluation only at the end. Returns (seconds, accuracy)."""
    trial = Trial(
        trial_id="bench", task="image_classification", training_data=str(jsonl), output_dir=str(output),
        validation_data_size=0.2,
        parameters={
            "model_name": "resnet18", "use_pretrained_model": False, "number_of_epochs": args.epochs,
            "training_batch_size": args.batch, "validation_batch_size": args.batch,
            "learning_rate": LEARNING_RATE, "learning_rate_scheduler": "step",
            "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
            "training_crop_size": args.crop, "validation_resize_size": args.size,
            "validation_crop_size": args.crop, "evaluation_frequency": args.epochs,
            "early_stopping": False, "random_seed": 0, "number_of_workers": 0,
        },
    )
    started = time.perf_counter()
    result = run_trial(trial)
    return time.perf_counter() - started, result.best_metric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--crop", type=int, default=56)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = make_dataset("image_classification", args.images, args.size, Path(tmp) / "data", seed=0)
        plain_loop(jsonl, argparse.Namespace(**{**vars(args), "epochs": 1}))  # warm-up, untimed
        plain, ours = [], []
        for repeat in range(args.repeats):
            plain.append(plain_loop(jsonl, args))
            ours.append(our_trainer(jsonl, args, Path(tmp) / f"run{repeat}"))
    trained = int(args.images * 0.8) * args.epochs
    device = "cuda:" + torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {device}; resnet18, {args.images} images of {args.size}px, crop {args.crop}, "
          f"batch {args.batch}, {args.epochs} epochs + 1 validation, best of {args.repeats}")
    (plain_s, plain_acc), (ours_s, ours_acc) = min(plain), min(ours)
    print(f"plain loop : {trained / plain_s:8.1f} img/s  ({plain_s:.2f} s, accuracy {plain_acc:.3f})")
    print(f"run_trial  : {trained / ours_s:8.1f} img/s  ({ours_s:.2f} s, accuracy {ours_acc:.3f})")
    print(f"ratio ours/plain: {plain_s / ours_s:.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
