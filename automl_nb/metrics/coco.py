"""COCO mean average precision through pycocotools' ``COCOeval`` (see :mod:`automl_nb.metrics.detection`)."""

from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np

from automl_nb.metrics.detection_types import ImageDetections, ImageTargets, check_inputs, encode_masks

# COCOeval.stats, in the order summarize() fills them.
COCO_STATS = (
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)


def _nan_if_negative(value: float) -> float:
    return float("nan") if value < 0 else float(value)


def coco_map(
    predictions: Sequence[ImageDetections],
    targets: Sequence[ImageTargets],
    num_classes: int,
    iou_type: str = "bbox",
) -> dict:
    """COCO mean average precision through pycocotools' ``COCOeval``.

    Class ``k`` is COCO category ``k + 1`` and image ``i`` is image id ``i + 1``; every
    image and every class takes part, so images with no ground truth make their
    detections false positives. Ground-truth area (for the small/medium/large ranges) is
    the box area for ``"bbox"`` and the mask area for ``"segm"``.

    Args:
        predictions: one :class:`ImageDetections` per image.
        targets: one :class:`ImageTargets` per image, in the same order.
        num_classes: number of classes.
        iou_type: ``"bbox"`` or ``"segm"`` (masks needed).

    Returns:
        ``map`` (AP@[.5:.95]), ``map_50``, ``map_75``, ``map_small/medium/large``,
        ``mar_1/10/100``, ``mar_small/medium/large`` (COCO's ``stats``, ``nan`` where COCO
        says -1) and ``per_class``: AP@[.5:.95] per class, ``nan`` for a class with no
        ground truth.

    Raises:
        ValueError: on mismatched lengths, labels out of range or missing masks.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    check_inputs(predictions, targets, num_classes, iou_type)
    categories = [{"id": k + 1, "name": str(k)} for k in range(num_classes)]
    images = [{"id": i + 1, "width": t.width, "height": t.height} for i, t in enumerate(targets)]
    ground_truth, detections = [], []
    for i, (prediction, target) in enumerate(zip(predictions, targets)):
        gt_rles = encode_masks(target.masks) if iou_type == "segm" else None
        for j, (box, label, crowd) in enumerate(zip(target.boxes, target.labels, target.is_crowd)):
            annotation = {
                "id": len(ground_truth) + 1,  # COCOeval treats id 0 as "unmatched"
                "image_id": i + 1,
                "category_id": int(label) + 1,
                "bbox": _xywh(box),
                "area": _box_area(box),
                "iscrowd": int(crowd),
            }
            if gt_rles is not None:
                annotation["segmentation"] = gt_rles[j]
                annotation["area"] = float(_rle_area(gt_rles[j]))
            ground_truth.append(annotation)
        dt_rles = encode_masks(prediction.masks) if iou_type == "segm" else None
        for j, (box, score, label) in enumerate(zip(prediction.boxes, prediction.scores, prediction.labels)):
            # The fields COCO.loadRes would add (it refuses an empty result list).
            annotation = {
                "id": len(detections) + 1,
                "image_id": i + 1,
                "category_id": int(label) + 1,
                "bbox": _xywh(box),
                "area": _box_area(box),
                "score": float(score),
                "iscrowd": 0,
            }
            if dt_rles is not None:
                annotation["segmentation"] = dt_rles[j]
                annotation["area"] = float(_rle_area(dt_rles[j]))
            detections.append(annotation)

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = _coco_index(COCO(), images, categories, ground_truth)
        coco_dt = _coco_index(COCO(), images, categories, detections)
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    scores = {name: _nan_if_negative(value) for name, value in zip(COCO_STATS, evaluator.stats)}
    # precision: [iou thresholds, recall points, classes, area ranges, max detections];
    # area range 0 is "all", the last max-detections is 100, as for COCO's AP.
    precision = evaluator.eval["precision"]
    per_class = []
    for k in range(num_classes):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_class.append(float(values.mean()) if values.size else float("nan"))
    scores["per_class"] = per_class
    return scores


def _coco_index(coco, images, categories, annotations):
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    coco.createIndex()
    return coco


def _xywh(box: np.ndarray) -> list[float]:
    return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]


def _box_area(box: np.ndarray) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def _rle_area(rle: dict) -> int:
    from pycocotools import mask as mask_utils

    return int(mask_utils.area(rle))
