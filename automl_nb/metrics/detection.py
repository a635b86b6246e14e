"""Detection and instance-segmentation metrics: mean average precision, COCO and VOC style.

``validation_metric_type`` picks what :func:`detection_metrics` computes:

- ``"voc"`` (default): our own all-point interpolated AP (VOC2010 onwards) at
  ``validation_iou_threshold``; ``mean_average_precision`` is that AP averaged over the
  classes that have ground truth.
- ``"coco"``: pycocotools' ``COCOeval``; ``mean_average_precision`` is COCO's AP averaged
  over IoU 0.50:0.05:0.95, and COCO's other numbers come as ``coco_*`` keys.
- ``"coco_voc"``: both; ``mean_average_precision`` is the VOC number (so
  ``validation_iou_threshold`` still decides the primary metric) and COCO's come as
  ``coco_*`` keys.
- ``"none"``: nothing is computed (an empty row).

Boxes are ``x1, y1, x2, y2`` in pixels of the original image, areas are ``w * h`` (no
"+1" pixel convention). Crowd ground truth (``is_crowd``, also VOC "difficult") is never
required: a detection that overlaps one is neither a true nor a false positive. Numbers
that are undefined (a class with no ground truth, COCO's ``-1``) are ``nan``.

Labels are 0-based class indices. torchvision's detectors (and
:mod:`automl_nb.data.detection`) count the background as 0, so subtract 1 from theirs.
Inputs may be numpy arrays or torch tensors (any device); torch is never imported here.
The inputs live in :mod:`~automl_nb.metrics.detection_types`, COCO in
:mod:`~automl_nb.metrics.coco`, VOC in :mod:`~automl_nb.metrics.voc`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from automl_nb.metrics.coco import COCO_STATS, coco_map
from automl_nb.metrics.detection_types import ImageDetections, ImageTargets, box_iou, mask_iou
from automl_nb.metrics.voc import DEFAULT_IOU_THRESHOLD, average_precision, voc_map
from automl_nb.spec.table import PARAMETERS

__all__ = ["METRIC_TYPES", "ImageDetections", "ImageTargets", "average_precision", "box_iou", "coco_map",
           "detection_metrics", "mask_iou", "validation_metrics", "voc_map"]

# validation_metric_type's choices and default: the table's.
METRIC_TYPES = PARAMETERS["validation_metric_type"].choices
DEFAULT_METRIC_TYPE = PARAMETERS["validation_metric_type"].default


def detection_metrics(
    predictions: Sequence[ImageDetections],
    targets: Sequence[ImageTargets],
    num_classes: int,
    metric_type: str = DEFAULT_METRIC_TYPE,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    segmentation: bool = False,
) -> dict:
    """The validation row a detection or segmentation trial logs.

    ``mean_average_precision`` is the primary metric: VOC AP at ``iou_threshold`` for
    ``"voc"`` and ``"coco_voc"``, COCO's AP@[.5:.95] for ``"coco"``. Every type but
    ``"none"`` also gives ``precision`` and ``recall`` (VOC matching at ``iou_threshold``,
    macro over classes with ground truth, all detections kept) and per-class lists
    ``per_class_average_precision`` (from the primary metric's method),
    ``per_class_precision``, ``per_class_recall``. ``"coco"`` and ``"coco_voc"`` add
    COCO's numbers as ``coco_map``, ``coco_map_50``, ``coco_map_75``,
    ``coco_map_small/medium/large``, ``coco_mar_1/10/100``, ``coco_mar_small/medium/large``
    and ``coco_per_class_average_precision``. With ``segmentation`` every key is repeated
    with a ``mask_`` prefix, computed on masks (``mask_mean_average_precision``...).

    Args:
        predictions: one :class:`ImageDetections` per image.
        targets: one :class:`ImageTargets` per image, in the same order.
        num_classes: number of classes.
        metric_type: ``validation_metric_type``: ``"none"``, ``"coco"``, ``"voc"`` or
            ``"coco_voc"``.
        iou_threshold: ``validation_iou_threshold``, in (0, 1].
        segmentation: also score masks.

    Returns:
        A flat dict of floats and per-class lists (``nan`` where undefined); ``{}`` for
        ``"none"``.

    Raises:
        ValueError: on an unknown ``metric_type``, a threshold out of range or bad inputs.

    Example:
        >>> prediction = ImageDetections(boxes=[[0, 0, 10, 10]], scores=[0.9], labels=[0])
        >>> target = ImageTargets(boxes=[[0, 0, 10, 10]], labels=[0], width=20, height=20)
        >>> detection_metrics([prediction], [target], num_classes=1)["mean_average_precision"]
        1.0
    """
    if metric_type not in METRIC_TYPES:
        raise ValueError(f"validation_metric_type must be one of {METRIC_TYPES}, got {metric_type!r}")
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"validation_iou_threshold must be in (0, 1], got {iou_threshold}")
    if metric_type == "none":
        return {}
    row: dict = {}
    for iou_type, prefix in (("bbox", ""), ("segm", "mask_")) if segmentation else (("bbox", ""),):
        voc = voc_map(predictions, targets, num_classes, iou_threshold, iou_type=iou_type)
        primary = {"map": voc["map"], "per_class": voc["per_class"]}
        part = {}
        if metric_type in ("coco", "coco_voc"):
            coco = coco_map(predictions, targets, num_classes, iou_type=iou_type)
            part.update({f"coco_{name}": coco[name] for name in COCO_STATS})
            part["coco_per_class_average_precision"] = coco["per_class"]
            if metric_type == "coco":
                primary = coco
        part["mean_average_precision"] = primary["map"]
        part["precision"] = voc["precision"]
        part["recall"] = voc["recall"]
        part["per_class_average_precision"] = primary["per_class"]
        part["per_class_precision"] = voc["per_class_precision"]
        part["per_class_recall"] = voc["per_class_recall"]
        row.update({prefix + key: value for key, value in part.items()})
    return row


def validation_metrics(
    predictions: Sequence[ImageDetections],
    targets: Sequence[ImageTargets],
    num_classes: int,
    params: Mapping[str, Any],
    segmentation: bool = False,
) -> dict:
    """The validation row of a detection trial: :func:`detection_metrics` as its parameters say.

    The trainer's validation (every detection adapter) and the DetectionViewer both score
    through this one function, so the viewer's mAP of a trial's validation images is the
    number on the leaderboard: one place reads which keys decide the metric.

    Args:
        predictions: one :class:`ImageDetections` per image, the boxes the model returns with
            the trial's ``box_score_threshold`` (the detector applies it).
        targets: one :class:`ImageTargets` per image, in the same order.
        num_classes: number of classes.
        params: the trial's resolved parameters; ``validation_metric_type`` and
            ``validation_iou_threshold`` are read.
        segmentation: also score masks (``mask_`` keys).

    Returns:
        The row of :func:`detection_metrics`; ``mean_average_precision`` is the primary metric.

    Example:
        >>> params = {"validation_metric_type": "voc", "validation_iou_threshold": 0.5}
        >>> prediction = ImageDetections(boxes=[[0, 0, 10, 10]], scores=[0.9], labels=[0])
        >>> target = ImageTargets(boxes=[[0, 0, 10, 10]], labels=[0], width=20, height=20)
        >>> validation_metrics([prediction], [target], 1, params)["mean_average_precision"]
        1.0
    """
    return detection_metrics(predictions, targets, num_classes, params["validation_metric_type"],
                             params["validation_iou_threshold"], segmentation=segmentation)
