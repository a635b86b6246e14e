"""Transforms for object detection and instance segmentation (SPEC section 8), torchvision
detectors (not yolov5), built with ``torchvision.transforms.v2``.

A transform is called as ``transform(image, target)`` on a
:class:`~automl_nb.data.detection.DetectionDataset` item: v2 draws each random parameter
once per call and applies it to the image, its ``BoundingBoxes`` and its ``Mask`` alike, so
boxes and masks stay aligned with the pixels.

Training: random crop around the boxes (``RandomIoUCrop``), expand (``RandomZoomOut``, the
new border filled with the ImageNet mean colour), horizontal flip, then conversion to float.
``advanced_settings.apply_automl_train_augmentations: false`` switches off the crop, expand
and flip. Boxes that a crop leaves outside or thinner than 1 px are removed with their
labels, ``is_crowd`` flags and masks (``SanitizeBoundingBoxes``).

Validation: conversion to float only; the ground truth is never changed.

**Resizing and normalisation are the model's job** (SPEC section 8 lists both): torchvision's
detectors resize each image so its short side is ``min_size`` and its long side at most
``max_size`` (and scale the boxes back), and normalise it with their ``image_mean`` /
``image_std`` (ImageNet's for the detectors of :mod:`automl_nb.models.detection`). So by
default these transforms keep the image size and return floats in [0, 1].
``normalize=True`` applies ImageNet mean/std here instead, for a detector built with
``image_mean=(0.0, 0.0, 0.0), image_std=(1.0, 1.0, 1.0)``; never both.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from automl_nb.data.transforms import IMAGENET_MEAN, IMAGENET_STD

# Largest expand factor of RandomZoomOut. SSD uses 4; the detector then resizes the image to
# min_size, so at 4x a small object would end a quarter of its size. 2x keeps them visible.
_MAX_EXPAND = 2.0
_EXPAND_FILL = {tv_tensors.Image: tuple(round(255 * m) for m in IMAGENET_MEAN), "others": 0}


def _per_object_tensors(inputs: Any) -> tuple[torch.Tensor, ...]:
    """The target tensors with one entry per box, filtered with the boxes when boxes are removed."""
    target = inputs[1]
    return tuple(target[key] for key in ("labels", "is_crowd") if key in target)


def _to_float(normalize: bool) -> list:
    steps = [v2.ToDtype(torch.float32, scale=True)]
    if normalize:
        steps.append(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return steps


def detection_train_transform(params: Mapping[str, Any], *, normalize: bool = False) -> v2.Compose:
    """Random crop around boxes, expand, horizontal flip, conversion to float (no resize).

    Args:
        params: resolved training parameters (``resolve_parameters``); reads
            ``advanced_settings["apply_automl_train_augmentations"]``.
        normalize: apply ImageNet mean/std here (only for a detector that does not
            normalise itself); False (default) returns floats in [0, 1].

    Returns:
        A v2 transform of ``(image, target)``; images become float ``[3, H', W']``.

    Raises:
        KeyError: ``params`` is not resolved (has no ``advanced_settings`` entry for the key).

    Example:
        >>> params = resolve_parameters("image_object_detection", {})
        >>> image, target = detection_train_transform(params)(image, target)
    """
    steps: list = [v2.ToImage()]  # PIL -> uint8 tensor; the geometric ops run on uint8
    if params["advanced_settings"]["apply_automl_train_augmentations"]:
        steps += [
            v2.RandomIoUCrop(),
            v2.RandomZoomOut(fill=dict(_EXPAND_FILL), side_range=(1.0, _MAX_EXPAND)),
            v2.RandomHorizontalFlip(),
        ]
    steps += [
        v2.ClampBoundingBoxes(),
        v2.SanitizeBoundingBoxes(labels_getter=_per_object_tensors),
        *_to_float(normalize),
    ]
    return v2.Compose(steps)


def detection_valid_transform(params: Mapping[str, Any], *, normalize: bool = False) -> v2.Compose:
    """Conversion to float only (the detector resizes and normalises); boxes and masks are unchanged.

    Args:
        params: resolved training parameters; none is read today, taken so both builders are
            called alike.
        normalize: apply ImageNet mean/std here (only for a detector that does not
            normalise itself); False (default) returns floats in [0, 1].

    Example:
        >>> image, target = detection_valid_transform(params)(image, target)
    """
    return v2.Compose([v2.ToImage(), *_to_float(normalize)])
