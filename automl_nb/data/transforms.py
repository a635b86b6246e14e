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


def classification_train_transform(crop_size: int, augmentation: str = "default", resize_size: int | None = None,
                                   ) -> v2.Compose:
    """The classification training transform of an ``augmentation`` strength, ending in normalisation.

    Args:
        crop_size: the training crop fed to the network.
        augmentation: ``default`` (Azure's: random resized crop, horizontal flip, colour jitter),
            ``light`` (a crop keeping at least half the image near its aspect ratio and a mild
            jitter, no flip: flips change the meaning of digits and text) or ``none`` (the
            validation resize and centre crop).
        resize_size: the short side before the centre crop of ``none`` (default: ``crop_size``).
    """
    if augmentation == "none":
        return classification_valid_transform(resize_size or crop_size, crop_size)
    if augmentation == "light":
        steps = [v2.RandomResizedCrop(crop_size, scale=(0.5, 1.0), ratio=(0.85, 1.18), antialias=True),
                 v2.ColorJitter(**{key: value / 2 for key, value in _JITTER.items()})]
    elif augmentation == "default":
        steps = [v2.RandomResizedCrop(crop_size, antialias=True), v2.RandomHorizontalFlip(), v2.ColorJitter(**_JITTER)]
    else:
        raise ValueError(f"augmentation: {augmentation!r} is not allowed; allowed: default, light, none")
    # PIL -> uint8 tensor first: the geometric ops run on uint8.
    return v2.Compose([v2.ToImage(), *steps, *_to_normalised_tensor()])


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

