"""Inputs of the detection metrics: one image's detections and targets, validated, and IoU.

Boxes are ``x1, y1, x2, y2`` in pixels; labels are 0-based class indices; masks are boolean
``[N, H, W]``. Inputs may be numpy arrays or torch tensors (any device); torch is never imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_TYPES = ("bbox", "segm")


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


def encode_masks(masks: np.ndarray) -> list[dict]:
    """COCO run-length encodings of ``[N, H, W]`` binary masks."""
    from pycocotools import mask as mask_utils

    if len(masks) == 0:
        return []
    return mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))


def rle_iou(rles_a: list[dict], rles_b: list[dict]) -> np.ndarray:
    """IoU matrix ``[len(a), len(b)]`` of two lists of COCO run-length encodings."""
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
    return rle_iou(encode_masks(a), encode_masks(b))


def check_inputs(predictions, targets, num_classes: int, iou_type: str) -> None:
    """ValueError unless there is one prediction per target, labels fit and masks match the images."""
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
