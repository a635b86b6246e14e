"""Shared helpers of the real datasets: split checks, a stratified split, crop windows, writing."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from automl_nb.data.jsonl import write_jsonl
from automl_nb.data.mltable import write_mltable
from automl_nb.data.records import ImageRecord, Label, ObjectLabel
from automl_nb.data.synthetic import JSONL_NAME
from automl_nb.errors import DataError

SPLITS = ("train", "valid")


def check_split(split: str) -> str:
    """Return ``split`` if it is ``"train"`` or ``"valid"``, else raise DataError."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return split


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int in ``[low, high]``, else raise DataError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
        raise DataError(f"{name} must be {allowed}, got {value!r}")
    return value


def require(module: str, package: str):
    """Import ``module`` or raise DataError telling which package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DataError(
            f"this dataset needs {package}: pip install {package} (or pip install automl_nb[dev])"
        ) from exc


def stratified_split(labels: np.ndarray, n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into ``n_train`` train and the rest valid, each class in proportion.

    Each index gets its rank within its class in a seeded permutation, as a fraction of the
    class size; the ``n_train`` lowest fractions go to train. Both parts keep the permuted order.
    """
    order = np.random.default_rng(seed).permutation(len(labels))
    fraction = np.empty(len(labels))
    for value in np.unique(labels):
        members = order[labels[order] == value]
        fraction[members] = (np.arange(len(members)) + 0.5) / len(members)
    ranked = order[np.argsort(fraction[order], kind="stable")]
    train = set(ranked[:n_train].tolist())
    return np.array([i for i in order if i in train]), np.array([i for i in order if i not in train])


def window_sums(mask: np.ndarray, size: int) -> np.ndarray:
    """Count of True pixels in every ``size`` x ``size`` window of ``mask``, indexed by its top-left corner."""
    sums = np.pad(mask.astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return sums[size:, size:] - sums[:-size, size:] - sums[size:, :-size] + sums[:-size, :-size]


def window_corners(region: np.ndarray, size: int) -> np.ndarray:
    """Top-left ``(row, column)`` of every ``size`` x ``size`` window lying wholly inside ``region``."""
    return np.argwhere(window_sums(region, size) == size * size)


def mask_box(label: str, mask: np.ndarray) -> ObjectLabel:
    """The box enclosing the True pixels of ``mask`` (pixel ``i`` covers ``[i, i + 1)``), normalised."""
    rows, columns = np.nonzero(mask)
    height, width = mask.shape
    return ObjectLabel(
        label, columns.min() / width, rows.min() / height, (columns.max() + 1) / width, (rows.max() + 1) / height
    )


def write_dataset(out_dir: str | os.PathLike, items: Iterable[tuple[np.ndarray, Label]]) -> Path:
    """Write ``(pixels, label)`` pairs as ``images/NNNNN.png`` (RGB), ``labels.jsonl`` and ``MLTable``.

    ``pixels`` is a uint8 array, grey ``(H, W)`` or ``(H, W, 3)``. Returns the JSONL path.
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for index, (pixels, label) in enumerate(items):
        path = out_dir / "images" / f"{index:05d}.png"
        Image.fromarray(pixels).convert("RGB").save(path, format="PNG")
        height, width = pixels.shape[:2]
        records.append(ImageRecord(str(path.resolve()), label, width, height, "png", f"{path}"))
    jsonl = write_jsonl(records, out_dir / JSONL_NAME)
    write_mltable(out_dir, JSONL_NAME)
    return jsonl
