"""ONNX Runtime against PyTorch on a trial's validation images: outputs, primary metric, latency.

A classifier's outputs are compared as probabilities. A detector's are compared per image, detection by
detection: the same number of detections, paired within a label by their boxes, then the largest score
difference and the largest box-coordinate difference (pixels) over the pairs, each with its tolerance.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from automl_nb.infer.onnx_model import OnnxModel
from automl_nb.spec.tasks import MULTILABEL, is_classification

# Largest difference of probabilities (classifiers) or of detection scores that still passes.
OUTPUT_TOLERANCE = 1e-3
# Largest difference of a detection's box coordinate between paired detections that still passes, in pixels of the
# graph's input image (YOLOv5's: its letterboxed canvas). Float32 holds a coordinate near N px to N * 6e-8; the two
# runtimes' kernels add up in other orders through tens of layers, which moved boxes by up to 1.3e-5 of the image's
# side in our exports (random weights: YOLOv5 on a 64 px canvas 8e-4 px, Faster R-CNN on 640 px images run at 800 px
# 8e-4 px, the 40 px test images 1e-5 to 3e-5 px). On a 4000 px photo (boxes mapped back from torchvision's 1333 px)
# that is about 0.05 px: a quarter pixel leaves 5x beyond it and is no visible change, while a box off by a pixel
# (another anchor, scale or offset) fails.
BOX_TOLERANCE_PX = 0.25
# Largest difference of the primary metric, in points (metric x 100).
METRIC_TOLERANCE_POINTS = 0.5
LATENCY_BATCHES = (1, 8)


def check_parity(graph: nn.Module, onnx_model: OnnxModel, adapter, normalised_in_graph: bool,
                 mean: Sequence[float], std: Sequence[float], *, latency_batches: Sequence[int] = LATENCY_BATCHES,
                 repeats: int = 3) -> dict[str, Any]:
    """Compare the exported graph under ONNX Runtime with the same graph in PyTorch.

    Args:
        graph: the exported module (:mod:`automl_nb.export.graphs`), in eval mode.
        onnx_model: its ONNX file under ONNX Runtime.
        adapter: the trial's task adapter; its ``valid_dataset`` gives the images and targets, its
            ``score``/``evaluate`` the primary metric.
        normalised_in_graph: a classifier's graph takes pixels in [0, 1] (the dataset gives normalised ones).
        mean, std: the dataset's normalisation, undone for such a graph.
        latency_batches: the batch sizes timed.
        repeats: timed runs per batch size (the median is kept).

    Returns:
        A JSON-able report: ``passed``, ``max_abs_diff``, ``metric`` with the ``pytorch`` and
        ``onnxruntime`` values and their difference in points, ``latency_ms`` of both at batch 1 and
        8, the number of ``images`` and the ``tolerance`` of each figure. A detector's report also has
        ``max_box_diff_px``, the largest box-coordinate difference of paired detections, and
        ``unpaired_images``, the images whose detections could not be paired one to one (another
        number of detections, or other labels); then ``max_abs_diff`` (its scores' largest difference)
        and ``max_box_diff_px`` are inf, and the check fails.
    """
    from automl_nb.export.graphs import YoloGraph

    compare = (_classification if is_classification(adapter.task) else
               _yolo if isinstance(graph, YoloGraph) else _detection)
    report = compare(graph, onnx_model, adapter, normalised_in_graph, mean, std)
    metric = adapter.primary_metric
    points = abs(report["pytorch"][metric] - report["onnxruntime"][metric]) * 100
    diff, boxes = report["max_abs_diff"], report.get("max_box_diff_px")  # boxes: detectors only
    passed = bool(points <= METRIC_TOLERANCE_POINTS and diff <= OUTPUT_TOLERANCE
                  and (boxes is None or boxes <= BOX_TOLERANCE_PX))
    result = {"passed": passed, "images": report["images"], "max_abs_diff": diff,
              "metric": {"name": metric, "pytorch": report["pytorch"][metric],
                         "onnxruntime": report["onnxruntime"][metric], "difference_points": points},
              "latency_ms": _latency(graph, onnx_model, report["example"], adapter.task, latency_batches, repeats),
              "tolerance": {"max_abs_diff": OUTPUT_TOLERANCE, "metric_points": METRIC_TOLERANCE_POINTS}}
    if boxes is not None:
        result.update(max_box_diff_px=boxes, unpaired_images=report["unpaired_images"])
        result["tolerance"]["max_box_diff_px"] = BOX_TOLERANCE_PX
    return result


@torch.inference_mode()
def _classification(graph, onnx_model, adapter, normalised_in_graph, mean, std) -> dict:
    mean_t, std_t = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    loader = torch.utils.data.DataLoader(adapter.valid_dataset, batch_size=8, collate_fn=adapter.collate)
    torch_probs, ort_probs, targets, example = [], [], [], None
    for images, target in loader:
        pixels = images * std_t + mean_t if normalised_in_graph else images
        torch_probs.append(graph(pixels).float())
        ort_probs.append(torch.from_numpy(onnx_model.run(pixels.numpy())[0]))
        targets.append(target)
        example = pixels[:1] if example is None else example
    torch_probs, ort_probs, targets = torch.cat(torch_probs), torch.cat(ort_probs), torch.cat(targets)
    # adapter.score takes logits: log-probabilities keep the argmax, logits of sigmoid outputs invert it.
    as_logits = torch.logit if adapter.task == MULTILABEL else torch.log
    return {"images": len(targets), "max_abs_diff": float((torch_probs - ort_probs).abs().max()),
            "pytorch": adapter.score(as_logits(torch_probs), targets),
            "onnxruntime": adapter.score(as_logits(ort_probs), targets), "example": example}


class _Recorded(nn.Module):
    """A detector for ``adapter.evaluate`` that runs ``detect(images) -> [dict]`` and keeps the outputs."""

    def __init__(self, detect: Callable[[list], list[dict]]) -> None:
        super().__init__()
        self.detect = detect
        self.outputs: list[dict] = []

    def forward(self, images):
        outputs = self.detect(images)
        self.outputs += outputs
        return outputs


def _detection(graph, onnx_model, adapter, *_) -> dict:
    """Torchvision detectors: eager one image at a time, ONNX Runtime in runs of its fixed batch."""
    keys = graph.keys
    eager = _Recorded(lambda images: [dict(zip(keys, graph(image[None]))) for image in images])
    runtime = _Recorded(lambda images: [{key: torch.from_numpy(value) for key, value in found.items()}
                                        for found in onnx_model.detect_batch([image.numpy() for image in images])])
    loader = torch.utils.data.DataLoader(adapter.valid_dataset, batch_size=onnx_model.batch_size,
                                         collate_fn=adapter.collate)
    device = torch.device("cpu")
    _, eager_scores = adapter.evaluate(eager, loader, device)
    _, runtime_scores = adapter.evaluate(runtime, loader, device)
    example = next(iter(loader))[0][0][None]
    return {"images": len(eager.outputs), **_worst([_paired_differences(a, b) for a, b in zip(eager.outputs,
                                                                                             runtime.outputs)]),
            "pytorch": eager_scores, "onnxruntime": runtime_scores, "example": example}


@torch.inference_mode()
def _yolo(graph, onnx_model, adapter, *_) -> dict:
    """YOLOv5: both graphs on the adapter's letterboxed images (ONNX Runtime in runs of its fixed batch),
    boxes mapped back and scored as in training."""
    from automl_nb.metrics.detection import ImageDetections, ImageTargets, validation_metrics

    loader = torch.utils.data.DataLoader(adapter.valid_dataset, batch_size=onnx_model.batch_size,
                                         collate_fn=adapter.collate)
    found = {"pytorch": [], "onnxruntime": []}
    truths, pairs, example = [], [], None
    for canvases, targets in loader:
        example = canvases[:1] if example is None else example
        eager = graph(canvases)
        runtime = onnx_model.run_detector(list(canvases.numpy()))
        for index, target in enumerate(targets):
            outputs = {"pytorch": eager[3 * index:3 * index + 3],
                       "onnxruntime": [torch.from_numpy(runtime[index][key]) for key in graph.keys]}
            for name, (boxes, labels, scores) in outputs.items():
                boxes = target["letterbox"].to_image(boxes.float())
                kept = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
                found[name].append(ImageDetections(boxes=boxes[kept].numpy(), scores=scores[kept].float().numpy(),
                                                   labels=(labels[kept] - 1).numpy()))  # the adapter's 0-based labels
            # Compared as the graphs give them, in canvas pixels (mapping them back is the same code for both).
            pairs.append(_paired_differences(*(dict(zip(graph.keys, values)) for values in outputs.values())))
            height, width = target["orig_size"]
            truths.append(ImageTargets(boxes=target["orig_boxes"].numpy(), labels=target["labels"].numpy(),
                                       is_crowd=target["is_crowd"].numpy(), width=width, height=height))
    scores = {name: validation_metrics(found[name], truths, len(adapter.classes), adapter.params) for name in found}
    return {"images": len(truths), **_worst(pairs), **scores, "example": example}


def _paired_differences(a: dict, b: dict) -> tuple[float, float] | None:
    """The largest score and box-coordinate differences of one image's detections by two runtimes, paired one
    to one; None when they cannot be paired (another number of detections, or labels that differ).

    A detection pairs with the other's detection of its label whose box is nearest (the largest coordinate
    difference; the score difference breaks a tie), nearest pairs first. Pairing by rank of score would pair
    the wrong boxes wherever near-equal scores swap ranks between runtimes (or pass any boxes when scores
    tie); paired by box, a score that moved to another box shows as a score difference.
    """
    boxes_a, boxes_b = _array(a["boxes"]).reshape(-1, 4), _array(b["boxes"]).reshape(-1, 4)
    if len(boxes_a) != len(boxes_b):
        return None
    if not len(boxes_a):
        return 0.0, 0.0
    box = _far_if_nan(np.abs(boxes_a[:, None, :] - boxes_b[None, :, :]).max(axis=2))
    score = _far_if_nan(np.abs(_array(a["scores"])[:, None] - _array(b["scores"])[None, :]))
    same_label = (_array(a["labels"])[:, None] == _array(b["labels"])[None, :]).ravel()
    order = np.lexsort((score.ravel(), box.ravel()))  # nearest boxes first, then nearest scores
    free_a, free_b = np.ones(len(boxes_a), bool), np.ones(len(boxes_b), bool)
    worst_score = worst_box = 0.0
    for flat in order[same_label[order]]:
        i, j = divmod(int(flat), len(boxes_b))
        if free_a[i] and free_b[j]:
            free_a[i] = free_b[j] = False
            worst_score, worst_box = max(worst_score, score[i, j]), max(worst_box, box[i, j])
    return None if free_a.any() else (float(worst_score), float(worst_box))


def _far_if_nan(differences: np.ndarray) -> np.ndarray:
    """Differences with a nan (from a nan in either output) as inf: max() would pass a nan over."""
    return np.where(np.isnan(differences), math.inf, differences)


def _worst(pairs: list[tuple[float, float] | None]) -> dict:
    """The report's detection figures from each image's :func:`_paired_differences`: inf when one is None."""
    unpaired = sum(pair is None for pair in pairs)
    if unpaired:
        return {"max_abs_diff": math.inf, "max_box_diff_px": math.inf, "unpaired_images": unpaired}
    return {"max_abs_diff": max((score for score, _ in pairs), default=0.0),
            "max_box_diff_px": max((box for _, box in pairs), default=0.0), "unpaired_images": 0}


def _array(values) -> np.ndarray:
    """A tensor or array of one image's detections as float64 numbers (labels too: compared for equality)."""
    return torch.as_tensor(values).detach().double().numpy()


@torch.inference_mode()
def _latency(graph, onnx_model, example: torch.Tensor, task: str, batches: Sequence[int], repeats: int) -> dict:
    """Median milliseconds per batch of both at each batch size: one call of the eager module on the batch;
    ONNX Runtime in runs of its fixed batch (a detector exported at batch 1 runs a batch of 8 as 8 runs)."""
    latency = {"pytorch": {}, "onnxruntime": {}}
    for batch in batches:
        pixels = example.expand(batch, *example.shape[1:]).contiguous()
        if is_classification(task):
            runtime = lambda: onnx_model.run(pixels.numpy())  # noqa: E731
        else:
            runtime = lambda: onnx_model.run_detector(list(pixels.numpy()))  # noqa: E731
        for name, call in {"pytorch": lambda: graph(pixels), "onnxruntime": runtime}.items():
            call()  # warm-up: first calls allocate
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                times.append((time.perf_counter() - start) * 1000)
            latency[name][str(batch)] = statistics.median(times)
    return latency
