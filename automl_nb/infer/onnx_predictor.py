"""A Predictor whose model is an exported ONNX file under ONNX Runtime: numpy, pillow, no torch.

The Predictor's own steps (images in, thresholds, polygons, Azure outputs) run unchanged; only
running the model differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from automl_nb.errors import SpecError
from automl_nb.infer.outputs import classification_output
from automl_nb.infer.predictor import Predictor
from automl_nb.spec.inference import DESCRIPTION_KEYS, check_settings
from automl_nb.spec.tasks import is_classification

# Settings the graph applies inside: they can be tightened after export, not loosened.
_RAISE_ONLY = ("box_score_threshold",)
_LOWER_ONLY = ("box_detections_per_image",)


class OnnxPredictor(Predictor):
    """:class:`Predictor` over an :class:`~automl_nb.infer.onnx_model.OnnxModel` (build it with
    :meth:`Predictor.from_onnx`)."""

    def _classify(self, images: Sequence[Image.Image]) -> list[dict]:
        return [classification_output(row, self.labels) for row in self.model.classify(images).tolist()]

    def _detect(self, images: Sequence[Image.Image]) -> list[dict[str, np.ndarray]]:
        size = self.settings.get("image_size")  # yolov5's letterbox size; None for the other detectors
        pixels = [self.model.detection_input(image) for image in images]
        if self.settings.get("tile_grid_size"):
            return [self._keep(self._detect_tiled(one, size)) for one in pixels]
        return [self._keep(found) for found in self.model.detect_batch(pixels, size)]  # runs of the graph's batch

    def _detect_tiled(self, pixels: np.ndarray, size: int | None) -> dict[str, np.ndarray]:
        """:func:`~automl_nb.data.tiling.predict_tiled` without torch: the model on the whole image and
        on each tile (one run each), tile boxes moved to image pixels, duplicates removed by class-aware NMS."""
        from automl_nb.data.tiling import tile_boxes

        settings = self.settings
        height, width = pixels.shape[-2:]
        tiles = [None, *tile_boxes(width, height, settings["tile_grid_size"], settings["tile_overlap_ratio"])]
        boxes, scores, labels = [], [], []
        for tile in tiles:
            x1, y1, x2, y2 = tile or (0, 0, width, height)
            found = self.model.detect(np.ascontiguousarray(pixels[:, y1:y2, x1:x2]), size)
            boxes.append(found["boxes"].astype(np.float32) + np.array([x1, y1, x1, y1], np.float32))
            scores.append(found["scores"].astype(np.float32))
            labels.append(found["labels"].astype(np.int64))
        boxes, scores, labels = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
        keep = class_aware_nms(boxes, scores, labels, settings["tile_predictions_nms_threshold"])
        keep = keep[:settings["box_detections_per_image"]]
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS per class, best score first (``torchvision.ops.batched_nms``).

    A box is dropped when a better-scoring box of its class overlaps it by more than ``iou_threshold``.
    """
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for position, best in enumerate(order):
        if suppressed[best]:
            continue
        keep.append(best)
        rest = order[position + 1:]
        corner = np.maximum(boxes[best, :2], boxes[rest, :2])
        far = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(far - corner, 0, None), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            overlap = inter / (areas[best] + areas[rest] - inter)
        suppressed[rest[(overlap > iou_threshold) & (labels[rest] == labels[best])]] = True
    return np.asarray(keep, dtype=np.int64)


def onnx_predictor(path: str | os.PathLike, *, batch_size: int = 8, threads: int | None = None,
                   **settings: Any) -> OnnxPredictor:
    """The Predictor of an ONNX file written by ``automl-nb export`` (``settings.json`` beside it).

    Args:
        path: the ``.onnx`` file.
        batch_size: images per run of a classifier (a detector runs its exported batch, and
            :meth:`~Predictor.predict` hands it that many images at a time).
        threads: ONNX Runtime's threads (default: its own choice).
        **settings: inference settings as for :meth:`Predictor.from_trial`; those the graph
            applies (``min_size``, ``nms_iou_threshold``, the crop size...) are fixed at export, and
            the score threshold can only be raised, the detection cap only lowered. Tiling
            (``tile_grid_size``...) runs around the graph, as with :meth:`Predictor.from_trial`.

    Raises:
        AutoMLError: no such file, files missing beside it, or onnxruntime is not installed.
        SpecError: a bad setting, or one that the graph fixed.
    """
    from automl_nb.infer.onnx_model import SETTINGS_FILE, OnnxModel

    model = OnnxModel(path, threads=threads)
    saved = json.loads(Path(path).with_name(SETTINGS_FILE).read_text(encoding="utf-8"))
    task, model_name, labels = (saved[key] for key in DESCRIPTION_KEYS)
    exported = check_settings(task, model_name, {k: v for k, v in saved.items() if k not in DESCRIPTION_KEYS},
                              where="settings.json key")
    given = check_settings(task, model_name, settings)
    fixed = set(model.preprocessing["fixed_in_graph"]) - {"tile_grid_size"}  # tiling runs outside the graph
    for key, value in given.items():
        before = exported.get(key)
        if key in fixed and value != before:
            raise SpecError(f"{key}: {value!r} cannot apply to an ONNX model: its graph was exported with "
                            f"{before!r}; export the trial again with that setting")
        if (key in _RAISE_ONLY and value < before) or (key in _LOWER_ONLY and value > before):
            bound = "at least" if key in _RAISE_ONLY else "at most"
            raise SpecError(f"{key}: {value!r}: the ONNX graph applies {before!r} already; allowed: {bound} {before!r}")
    if "max_detections" in model.preprocessing:  # yolov5: no box_detections_per_image key, the graph's cap
        exported.setdefault("box_detections_per_image", model.preprocessing["max_detections"])
    return OnnxPredictor(model, task, labels, {**exported, **given}, device=None,
                         batch_size=batch_size if is_classification(task) else model.batch_size)
