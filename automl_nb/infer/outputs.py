"""Predictions in Azure's output shapes (SPEC section 9), and masks written as images.

- classification: ``{"probs": [...], "labels": [...]}`` over all classes;
- detection: ``{"boxes": [{"box": {"topX", "topY", "bottomX", "bottomY"}, "label", "score"}]}``,
  coordinates normalised to [0, 1] by the original image's width and height;
- segmentation: the same, each box with ``"polygon": [[x1, y1, x2, y2, ...]]`` (normalised).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

# image_type -> PIL format name
MASK_FORMATS = {"jpg": "JPEG", "png": "PNG", "bmp": "BMP"}


def classification_output(probs: Sequence[float], labels: Sequence[str]) -> dict:
    """``{"probs": [...], "labels": [...]}``, one probability per class in the model's order."""
    return {"probs": [float(p) for p in probs], "labels": list(labels)}


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def box_output(box: Sequence[float], label: str, score: float, width: int, height: int) -> dict:
    """One Azure box from an XYXY box in pixels of a ``width`` x ``height`` image.

    Example:
        >>> box_output([10, 20, 30, 40], "cat", 0.9, 100, 50)["box"]
        {'topX': 0.1, 'topY': 0.4, 'bottomX': 0.3, 'bottomY': 0.8}
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    return {"box": {"topX": _unit(x1 / width), "topY": _unit(y1 / height),
                    "bottomX": _unit(x2 / width), "bottomY": _unit(y2 / height)},
            "label": label, "score": float(score)}


def normalise_polygon(rings: Sequence[Sequence[float]], width: int, height: int) -> list[list[float]]:
    """Flat rings in pixels -> the same rings normalised to [0, 1]."""
    return [[_unit(float(v) / (width if i % 2 == 0 else height)) for i, v in enumerate(ring)] for ring in rings]


def write_mask_images(masks: np.ndarray, folder: str | Path, stem: str, image_type: str) -> list[Path]:
    """Write each object's mask as a black and white image ``{stem}_{k}.{image_type}``.

    Args:
        masks: ``[N, H, W]`` bool masks, in the order of the image's boxes (file k is box k).
        folder: where to write (created if missing).
        stem: file name start, e.g. the image's file name without its extension.
        image_type: ``jpg``, ``png`` or ``bmp``.

    Returns:
        The paths written, one per mask.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, mask in enumerate(masks):
        path = folder / f"{stem}_{k}.{image_type}"
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path, format=MASK_FORMATS[image_type])
        paths.append(path)
    return paths
