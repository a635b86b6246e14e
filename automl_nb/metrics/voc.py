"""VOC mean average precision: all-point interpolated AP at one IoU threshold, our own."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from automl_nb.metrics.detection_types import (
    ImageDetections, ImageTargets, check_inputs, encode_masks, rle_iou, box_iou,
)
from automl_nb.spec.table import PARAMETERS

# The IoU a detection needs to match an object when none is given: validation_iou_threshold's default.
DEFAULT_IOU_THRESHOLD = PARAMETERS["validation_iou_threshold"].default


def _match_image(iou: np.ndarray, scores: np.ndarray, is_crowd: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy matching of one image's detections of one class, highest score first.

    Each detection takes the unmatched, non-crowd ground truth it overlaps most with
    IoU >= threshold (a true positive). Failing that, if it overlaps a crowd object at
    the threshold it is ignored; otherwise it is a false positive (duplicates included).

    Returns:
        Per detection, in the given order: 1 true positive, 0 false positive, -1 ignored.
    """
    # As COCOeval: IoU exactly at the threshold matches, and a threshold of 1 still can.
    threshold = min(threshold, 1 - 1e-10)
    outcome = np.zeros(len(scores), np.int8)
    matched = np.zeros(len(is_crowd), bool)
    for d in np.argsort(-scores, kind="mergesort"):
        if iou.shape[1] == 0:
            continue
        candidates = np.where(is_crowd | matched, -1.0, iou[d])
        best = int(np.argmax(candidates))
        if candidates[best] >= threshold:
            outcome[d] = 1
            matched[best] = True
        elif (iou[d][is_crowd] >= threshold).any():
            outcome[d] = -1
    return outcome


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (VOC2010 onwards): area under the precision envelope.

    Precision at recall r is taken as the highest precision at any recall >= r, and the
    resulting step function is integrated over recall from 0 to 1.

    Example:
        >>> round(average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])), 4)
        0.8333
    """
    recall_points = np.concatenate([[0.0], recall, [1.0]])
    precision_points = np.concatenate([[0.0], precision, [0.0]])
    envelope = np.maximum.accumulate(precision_points[::-1])[::-1]
    steps = np.where(recall_points[1:] != recall_points[:-1])[0]
    return float(np.sum((recall_points[steps + 1] - recall_points[steps]) * envelope[steps + 1]))


def voc_map(
    predictions: Sequence[ImageDetections],
    targets: Sequence[ImageTargets],
    num_classes: int,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    iou_type: str = "bbox",
) -> dict:
    """VOC mean average precision at one IoU threshold, with precision and recall.

    Per class, detections are matched greedily by score (see :func:`_match_image`: a
    match needs IoU >= ``iou_threshold``; a second detection of a matched object is a
    false positive; one on a crowd/difficult object is ignored), then pooled over all
    images, sorted by score and turned into a precision/recall curve whose all-point
    interpolated area is the class's AP. Crowd objects do not count towards recall. IoU
    is the plain IoU for crowd objects too (not COCO's intersection over detection).

    Args:
        predictions: one :class:`ImageDetections` per image.
        targets: one :class:`ImageTargets` per image, in the same order.
        num_classes: number of classes.
        iou_threshold: IoU a detection needs to match an object, in (0, 1].
        iou_type: ``"bbox"`` or ``"segm"`` (mask IoU; masks needed).

    Returns:
        ``map``: mean AP over the classes with (non-crowd) ground truth, ``nan`` if none;
        ``precision``, ``recall``: means over the same classes of each class's precision
        and recall with all its detections kept; ``per_class``, ``per_class_precision``,
        ``per_class_recall``: lists over classes, ``nan`` where a class has no ground
        truth; ``num_ground_truth``: non-crowd objects per class.

    Raises:
        ValueError: on mismatched lengths, a threshold out of range, labels out of range
            or missing masks.
    """
    check_inputs(predictions, targets, num_classes, iou_type)
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    scores_by_class = [[] for _ in range(num_classes)]
    outcomes_by_class = [[] for _ in range(num_classes)]
    num_ground_truth = np.zeros(num_classes, np.int64)
    for prediction, target in zip(predictions, targets):
        if iou_type == "segm":
            iou = rle_iou(encode_masks(prediction.masks), encode_masks(target.masks))
        else:
            iou = box_iou(prediction.boxes, target.boxes)
        for k in np.union1d(prediction.labels, target.labels).astype(int):
            is_det = prediction.labels == k
            is_gt = target.labels == k
            num_ground_truth[k] += int((~target.is_crowd[is_gt]).sum())
            if not is_det.any():
                continue
            scores = prediction.scores[is_det]
            outcome = _match_image(iou[np.ix_(is_det, is_gt)], scores, target.is_crowd[is_gt], iou_threshold)
            scores_by_class[k].append(scores)
            outcomes_by_class[k].append(outcome)

    nan = float("nan")
    per_class, per_class_precision, per_class_recall = [], [], []
    for k in range(num_classes):
        if num_ground_truth[k] == 0:
            per_class.append(nan)
            per_class_precision.append(nan)
            per_class_recall.append(nan)
            continue
        if not scores_by_class[k]:
            per_class.append(0.0)
            per_class_precision.append(0.0)
            per_class_recall.append(0.0)
            continue
        scores = np.concatenate(scores_by_class[k])
        outcome = np.concatenate(outcomes_by_class[k])[np.argsort(-scores, kind="mergesort")]
        outcome = outcome[outcome >= 0]
        true_positives = np.cumsum(outcome == 1)
        false_positives = np.cumsum(outcome == 0)
        recall = true_positives / num_ground_truth[k]
        precision = true_positives / np.maximum(true_positives + false_positives, 1)
        per_class.append(average_precision(recall, precision) if outcome.size else 0.0)
        per_class_precision.append(float(precision[-1]) if outcome.size else 0.0)
        per_class_recall.append(float(recall[-1]) if outcome.size else 0.0)

    def mean(values: list[float]) -> float:
        present = [v for v in values if not np.isnan(v)]
        return float(np.mean(present)) if present else nan

    return {
        "map": mean(per_class),
        "precision": mean(per_class_precision),
        "recall": mean(per_class_recall),
        "per_class": per_class,
        "per_class_precision": per_class_precision,
        "per_class_recall": per_class_recall,
        "num_ground_truth": num_ground_truth.tolist(),
    }
