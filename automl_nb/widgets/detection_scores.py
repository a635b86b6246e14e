"""What DetectionViewer scores, put the way the trial's validation scores it.

A Predictor's boxes are Azure-shaped (normalised by the image size); the validation scores a
detector's output in pixels against targets rasterised by the dataset. This module turns the
first into the second, keeps the boxes the detector itself would return at a score threshold,
and leaves the scoring to :func:`automl_nb.metrics.detection.validation_metrics`, the function
the validation calls, so the viewer's mAP cannot drift from the leaderboard's.
"""

from __future__ import annotations

from typing import Any, Collection, Mapping, Sequence

import numpy as np

from automl_nb.metrics.detection import ImageDetections, ImageTargets

# What decides a trial's metric; the viewer scores with exactly these.
SCORING_KEYS = ("validation_metric_type", "validation_iou_threshold")


def scoring_parameters(params: Mapping[str, Any]) -> dict:
    """The trial parameters :func:`~automl_nb.metrics.detection.validation_metrics` reads.

    ``validation_metric_type: none`` logs no metric at all; the viewer then scores with
    ``voc`` (at the trial's ``validation_iou_threshold``) so it still has per-image AP.
    """
    chosen = {key: params[key] for key in SCORING_KEYS}
    if chosen["validation_metric_type"] == "none":
        chosen["validation_metric_type"] = "voc"
    return chosen


def kept_boxes(prediction: Mapping, threshold: float, classes: Collection[str]) -> list[dict]:
    """The boxes of one Azure-shaped prediction scoring above ``threshold``, of ``classes``.

    Strictly above, as torchvision's detectors, YOLOv5's NMS and the Predictor cut at
    ``box_score_threshold``: at the trial's threshold this is the set its validation scored.
    """
    return [box for box in prediction["boxes"] if box["score"] > threshold and box["label"] in classes]


def image_detections(boxes: Sequence[Mapping], labels: Sequence[str], width: int, height: int,
                     masks: bool = False) -> ImageDetections:
    """Azure boxes (normalised) as the validation's :class:`ImageDetections`, in pixels.

    With ``masks`` each box's polygon is rasterised as the dataset rasterises the truth; the
    model's own masks are gone by then, so mask AP here approximates the validation's.
    """
    labels = list(labels)
    return ImageDetections(
        boxes=np.array([_pixels(box["box"]["topX"], box["box"]["topY"], box["box"]["bottomX"],
                                box["box"]["bottomY"], width, height) for box in boxes]).reshape(-1, 4),
        scores=[box["score"] for box in boxes], labels=[labels.index(box["label"]) for box in boxes],
        masks=_masks([box.get("polygon") or [] for box in boxes], width, height) if masks else None)


def image_targets(objects: Sequence, labels: Sequence[str], width: int, height: int,
                  masks: bool = False) -> ImageTargets:
    """A record's objects (ObjectLabels) as the validation's :class:`ImageTargets`, in pixels."""
    labels = list(labels)
    return ImageTargets(
        boxes=np.array([_pixels(o.top_x, o.top_y, o.bottom_x, o.bottom_y, width, height)
                        for o in objects]).reshape(-1, 4),
        labels=[labels.index(o.label) for o in objects], is_crowd=[o.is_crowd for o in objects],
        masks=_masks([list(o.polygon or []) for o in objects], width, height) if masks else None,
        width=width, height=height)


def _pixels(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> list[float]:
    return [x1 * width, y1 * height, x2 * width, y2 * height]


def _masks(polygons: list, width: int, height: int) -> np.ndarray:
    """``[N, height, width]`` bool masks from each object's rings, rasterised as the dataset does."""
    from automl_nb.data.detection import polygon_to_mask

    masks = np.zeros((len(polygons), height, width), bool)
    for k, rings in enumerate(polygons):
        masks[k] = polygon_to_mask(rings, width, height).numpy().astype(bool)
    return masks
