"""ONNX Runtime against PyTorch on a trial's validation images: outputs, primary metric, latency."""

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
        8, the number of ``images`` and the tolerances.
    """
    from automl_nb.export.graphs import YoloGraph

    compare = (_classification if is_classification(adapter.task) else
               _yolo if isinstance(graph, YoloGraph) else _detection)
    report = compare(graph, onnx_model, adapter, normalised_in_graph, mean, std)
    metric = adapter.primary_metric
    points = abs(report["pytorch"][metric] - report["onnxruntime"][metric]) * 100
    diff = report["max_abs_diff"]
    passed = bool(points <= METRIC_TOLERANCE_POINTS and diff <= OUTPUT_TOLERANCE)
    return {"passed": passed, "images": report["images"], "max_abs_diff": diff,
            "metric": {"name": metric, "pytorch": report["pytorch"][metric],
                       "onnxruntime": report["onnxruntime"][metric], "difference_points": points},
            "latency_ms": _latency(graph, onnx_model, report["example"], adapter.task, latency_batches, repeats),
            "tolerance": {"max_abs_diff": OUTPUT_TOLERANCE, "metric_points": METRIC_TOLERANCE_POINTS}}


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
    diff = max((_score_difference(a, b) for a, b in zip(eager.outputs, runtime.outputs)), default=0.0)
    example = next(iter(loader))[0][0][None]
    return {"images": len(eager.outputs), "max_abs_diff": diff, "pytorch": eager_scores,
            "onnxruntime": runtime_scores, "example": example}


@torch.inference_mode()
def _yolo(graph, onnx_model, adapter, *_) -> dict:
    """YOLOv5: both graphs on the adapter's letterboxed images (ONNX Runtime in runs of its fixed batch),
    boxes mapped back and scored as in training."""
    from automl_nb.metrics.detection import ImageDetections, ImageTargets, validation_metrics

    loader = torch.utils.data.DataLoader(adapter.valid_dataset, batch_size=onnx_model.batch_size,
                                         collate_fn=adapter.collate)
    found = {"pytorch": [], "onnxruntime": []}
    truths, diff, example = [], 0.0, None
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
            diff = max(diff, _score_difference(*({"scores": scores} for _, _, scores in outputs.values())))
            height, width = target["orig_size"]
            truths.append(ImageTargets(boxes=target["orig_boxes"].numpy(), labels=target["labels"].numpy(),
                                       is_crowd=target["is_crowd"].numpy(), width=width, height=height))
    scores = {name: validation_metrics(found[name], truths, len(adapter.classes), adapter.params) for name in found}
    return {"images": len(truths), "max_abs_diff": diff, **scores, "example": example}


def _score_difference(a: dict, b: dict) -> float:
    """Largest difference of two detection lists' scores, best first (ties may swap boxes, not scores)."""
    first, second = np.sort(a["scores"].float().numpy())[::-1], np.sort(b["scores"].float().numpy())[::-1]
    if len(first) != len(second):
        return math.inf
    return float(np.abs(first - second).max()) if len(first) else 0.0


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
