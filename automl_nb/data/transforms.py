"""Image transforms per task (SPEC section 8), built with ``torchvision.transforms.v2``."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Colour jitter strengths of the classification training augmentation. Fixed, not
# hyperparameters: the spec names the augmentation, not its strengths.
_JITTER = {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05}


def _to_normalised_tensor() -> list:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def classification_train_transform(crop_size: int) -> v2.Compose:
    """Random resized crop, horizontal flip, colour jitter, ImageNet normalisation."""
    return v2.Compose(
        [
            v2.ToImage(),  # PIL -> uint8 tensor: the geometric ops below run on uint8
            v2.RandomResizedCrop(crop_size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(**_JITTER),
            *_to_normalised_tensor(),
        ]
    )


def classification_valid_transform(resize_size: int, crop_size: int) -> v2.Compose:
    """Resize the short side to ``resize_size``, centre crop ``crop_size``, normalise."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(resize_size, antialias=True),
            v2.CenterCrop(crop_size),
            *_to_normalised_tensor(),
        ]
    )

