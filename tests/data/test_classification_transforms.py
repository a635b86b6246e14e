"""The strengths of the classification training augmentation (``augmentation``: default, light, none)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from automl_nb.data.transforms import classification_train_transform, classification_valid_transform


def half_white() -> Image.Image:
    """48x48: the left half white, the right half black (a flip swaps them)."""
    pixels = np.zeros((48, 48, 3), dtype=np.uint8)
    pixels[:, :24] = 255
    return Image.fromarray(pixels)


def left_minus_right(tensor: torch.Tensor) -> float:
    width = tensor.shape[-1]
    return float(tensor[..., : width // 2].mean() - tensor[..., width // 2:].mean())


def draws(augmentation: str, count: int = 60) -> list[torch.Tensor]:
    torch.manual_seed(0)
    transform = classification_train_transform(32, augmentation, resize_size=32)
    return [transform(half_white()) for _ in range(count)]


def test_default_flips_some_images_and_light_never_does():
    assert any(left_minus_right(t) < 0 for t in draws("default"))
    assert all(left_minus_right(t) > 0 for t in draws("light"))


def test_light_crops_vary_but_keep_most_of_the_image():
    outputs = draws("light")
    assert len({round(left_minus_right(t), 4) for t in outputs}) > 5  # random crops, not one fixed view
    # At least half the area is kept near its aspect: both halves stay in every crop.
    assert all(t[..., : 16].max() > 0 and t[..., 16:].min() < 0 for t in outputs)


def test_none_is_the_validation_transform():
    image = half_white()
    for output in draws("none", count=3):
        assert torch.equal(output, classification_valid_transform(32, 32)(image))


def test_an_unknown_strength_is_refused():
    with pytest.raises(ValueError, match="augmentation: 'heavy' is not allowed; allowed: default, light, none"):
        classification_train_transform(32, "heavy")
