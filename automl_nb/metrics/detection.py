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
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np

METRIC_TYPES = ("none", "coco", "voc", "coco_voc")
IOU_TYPES = ("bbox", "segm")

# COCOeval.stats, in the order summarize() fills them.
_COCO_STATS = (
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)


def _as_array(value, dtype=None) -> np.ndarray:
    """A numpy array from a numpy array, a list or a torch tensor on any device."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _as_boxes(value, what: str) -> np.ndarray:
    boxes = _as_array(value, np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{what} must have shape [N, 4] (x1, y1, x2, y2), got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{what} must be finite, got {boxes[~np.isfinite(boxes).all(1)][:3].tolist()}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        raise ValueError(f"{what} need x2 >= x1 and y2 >= y1, got {boxes[bad][:3].tolist()}")
    return boxes


def _as_vector(value, length: int, dtype, what: str) -> np.ndarray:
    vector = _as_array(value, dtype)
    if vector.size == 0:
        vector = vector.reshape(0)
    if vector.shape != (length,):
        raise ValueError(f"{what} must have shape [{length}] (one per box), got {vector.shape}")
    return vector


def _as_labels(value, length: int, what: str) -> np.ndarray:
    labels = _as_array(value)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and (labels == np.round(labels)).all()):
            raise ValueError(f"{what} must be integer class indices, got dtype {labels.dtype}")
    labels = _as_vector(labels, length, np.int64, what)
    if labels.size and labels.min() < 0:
        raise ValueError(f"{what} must be class indices >= 0, got {int(labels.min())}")
    return labels


def _as_masks(value, length: int, what: str) -> np.ndarray | None:
    if value is None:
        return None
    masks = _as_array(value)
    if masks.ndim != 3 or masks.shape[0] != length:
        raise ValueError(f"{what} must have shape [{length}, H, W] (one per box), got {masks.shape}")
    if masks.dtype == bool:
        return masks
    if np.issubdtype(masks.dtype, np.floating) and not ((masks == 0) | (masks == 1)).all():
        raise ValueError(
            f"{what} must be binary (bool or 0/1); threshold soft masks first "
            "(mask_pixel_score_threshold)"
        )
    return masks != 0


@dataclass(frozen=True)
class ImageDetections:
    """What a model predicted for one image, in pixels of that image.

    Args:
        boxes: ``[N, 4]`` boxes ``x1, y1, x2, y2``.
        scores: ``[N]`` confidence scores.
        labels: ``[N]`` class indices (0-based, into the class list).
        masks: ``[N, H, W]`` binary masks (bool, or 0/1), for instance segmentation.

    Raises:
        ValueError: on a bad shape, mismatched lengths, negative labels or soft masks.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None

    def __post_init__(self):
        boxes = _as_boxes(self.boxes, "ImageDetections.boxes")
        n = len(boxes)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", _as_vector(self.scores, n, np.float64, "ImageDetections.scores"))
        object.__setattr__(self, "labels", _as_labels(self.labels, n, "ImageDetections.labels"))
        object.__setattr__(self, "masks", _as_masks(self.masks, n, "ImageDetections.masks"))


@dataclass(frozen=True, kw_only=True)
class ImageTargets:
    """Ground truth of one image, in pixels of that image.

    Args:
        boxes: ``[M, 4]`` boxes ``x1, y1, x2, y2``.
        labels: ``[M]`` class indices (0-based).
        is_crowd: ``[M]`` bools; crowd (or VOC "difficult") objects are never required.
            ``None`` means no crowds.
        masks: ``[M, height, width]`` binary masks, for instance segmentation.
        width, height: image size in pixels.

    Raises:
        ValueError: on a bad shape, mismatched lengths or a non-positive size.

    Example:
        >>> t = ImageTargets(boxes=[[0, 0, 10, 10]], labels=[1], width=20, height=20)
        >>> t.is_crowd.tolist()
        [False]
    """

    boxes: np.ndarray
    labels: np.ndarray
    is_crowd: np.ndarray | None = None
    masks: np.ndarray | None = None
    width: int
    height: int

    def __post_init__(self):
        boxes = _as_boxes(self.boxes, "ImageTargets.boxes")
        m = len(boxes)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", _as_labels(self.labels, m, "ImageTargets.labels"))
        if self.is_crowd is None:
            object.__setattr__(self, "is_crowd", np.zeros(m, bool))
        else:
            object.__setattr__(self, "is_crowd", _as_vector(self.is_crowd, m, bool, "ImageTargets.is_crowd"))
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"ImageTargets width and height must be > 0, got {self.width} x {self.height}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        masks = _as_masks(self.masks, m, "ImageTargets.masks")
        if masks is not None and masks.shape[1:] != (self.height, self.width):
            raise ValueError(
                f"ImageTargets.masks must be [M, height, width] = [{m}, {self.height}, {self.width}], "
                f"got {masks.shape}"
            )
        object.__setattr__(self, "masks", masks)


def box_iou(boxes_a, boxes_b) -> np.ndarray:
    """Intersection over union of every pair of ``x1, y1, x2, y2`` boxes.

    Args:
        boxes_a: ``[N, 4]``.
        boxes_b: ``[M, 4]``.

    Returns:
        ``[N, M]`` IoUs; a pair of empty boxes scores 0.

    Example:
        >>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2]]).round(4).tolist()
        [[0.3333]]
    """
    a = _as_boxes(boxes_a, "boxes_a")
    b = _as_boxes(boxes_b, "boxes_b")
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    union = area_a[:, None] + area_b[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / union, 0.0)


def _encode_masks(masks: np.ndarray) -> list[dict]:
    """COCO run-length encodings of ``[N, H, W]`` binary masks."""
    from pycocotools import mask as mask_utils

    if len(masks) == 0:
        return []
    return mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))


def _rle_iou(rles_a: list[dict], rles_b: list[dict]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if not rles_a or not rles_b:
        return np.zeros((len(rles_a), len(rles_b)))
    return np.asarray(mask_utils.iou(rles_a, rles_b, [0] * len(rles_b)), np.float64)


def mask_iou(masks_a, masks_b) -> np.ndarray:
    """Intersection over union of every pair of binary masks (through COCO's RLE).

    Args:
        masks_a: ``[N, H, W]``.
        masks_b: ``[M, H, W]``, the same ``H, W``.

    Returns:
        ``[N, M]`` IoUs; a pair of empty masks scores 0.
    """
    a = _as_masks(masks_a, len(masks_a), "masks_a")
    b = _as_masks(masks_b, len(masks_b), "masks_b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"masks must have the same height and width, got {a.shape[1:]} and {b.shape[1:]}")
    return _rle_iou(_encode_masks(a), _encode_masks(b))


def _check_inputs(predictions, targets, num_classes: int, iou_type: str) -> None:
    if len(predictions) != len(targets):
        raise ValueError(f"got {len(predictions)} predictions for {len(targets)} images; need one per image")
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    for number, (prediction, target) in enumerate(zip(predictions, targets)):
        if not isinstance(prediction, ImageDetections) or not isinstance(target, ImageTargets):
            raise ValueError(
                f"image {number}: need ImageDetections and ImageTargets, got "
                f"{type(prediction).__name__} and {type(target).__name__}"
            )
        for what, labels in (("predicted", prediction.labels), ("target", target.labels)):
            if labels.size and labels.max() >= num_classes:
                raise ValueError(
                    f"image {number}: {what} label {int(labels.max())} >= num_classes {num_classes}"
                )
        if iou_type == "segm":
            if target.masks is None or prediction.masks is None:
                raise ValueError(f"image {number}: iou_type 'segm' needs masks in predictions and targets")
            if prediction.masks.shape[1:] != (target.height, target.width):
                raise ValueError(
                    f"image {number}: predicted masks are {prediction.masks.shape[1:]}, "
                    f"the image is {(target.height, target.width)} (height, width)"
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

    _check_inputs(predictions, targets, num_classes, iou_type)
    categories = [{"id": k + 1, "name": str(k)} for k in range(num_classes)]
    images = [{"id": i + 1, "width": t.width, "height": t.height} for i, t in enumerate(targets)]
    ground_truth, detections = [], []
    for i, (prediction, target) in enumerate(zip(predictions, targets)):
        gt_rles = _encode_masks(target.masks) if iou_type == "segm" else None
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
        dt_rles = _encode_masks(prediction.masks) if iou_type == "segm" else None
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
    scores = {name: _nan_if_negative(value) for name, value in zip(_COCO_STATS, evaluator.stats)}
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
    iou_threshold: float = 0.5,
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
    _check_inputs(predictions, targets, num_classes, iou_type)
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    scores_by_class = [[] for _ in range(num_classes)]
    outcomes_by_class = [[] for _ in range(num_classes)]
    num_ground_truth = np.zeros(num_classes, np.int64)
    for prediction, target in zip(predictions, targets):
        if iou_type == "segm":
            iou = _rle_iou(_encode_masks(prediction.masks), _encode_masks(target.masks))
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


def detection_metrics(
    predictions: Sequence[ImageDetections],
    targets: Sequence[ImageTargets],
    num_classes: int,
    metric_type: str = "voc",
    iou_threshold: float = 0.5,
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
            part.update({f"coco_{name}": coco[name] for name in _COCO_STATS})
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
