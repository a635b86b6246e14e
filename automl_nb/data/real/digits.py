"""scikit-learn's handwritten digits: one digit an image, and 2-3 digits on a square canvas."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from automl_nb.data.real._common import check_int, check_split, require, stratified_split, write_dataset

DIGITS_TRAIN = 1200  # of 1797; the other 597 are valid
PAIRS = {"train": 800, "valid": 300}


def make_digits(out_dir: str | os.PathLike, split: str = "train", seed: int = 0) -> Path:
    """Write scikit-learn's digits (``load_digits``) as a multiclass MLTable folder.

    The 1797 8x8 grey digits (labels by the people who wrote them, UCI optdigits) are
    upscaled bilinearly to 32x32, white ink on black, as RGB PNGs; classes ``"0"``..``"9"``.
    Split: 1200 train / 597 valid, stratified over a permutation seeded by ``seed``, so
    train and valid written with the same seed never share a digit.

    Args:
        out_dir: folder to write (created if missing).
        split: ``"train"`` or ``"valid"``.
        seed: picks the split; the same arguments give the same bytes.

    Returns:
        Path of the JSONL file.

    Raises:
        DataError: bad split, or scikit-learn is not installed.
    """
    images, targets, parts = _digits(split, seed)
    return write_dataset(out_dir, ((images[i], str(targets[i])) for i in parts[split]))


def make_digit_pairs(
    out_dir: str | os.PathLike, split: str = "train", seed: int = 0, n: int | None = None
) -> Path:
    """Write 64x64 canvases of 2 or 3 different digits as a multilabel MLTable folder.

    Each canvas holds 2 digits (70 %) or 3 (30 %) of different classes, each in its own cell
    of a 2x2 grid with a small random size and offset; the label is the set of classes drawn.
    Square, because classification crops are square: a wide canvas would lose a digit to
    the centre crop. Train canvases use only the train digits of :func:`make_digits` with the same
    ``seed``, valid ones only its valid digits, so no digit crosses the split.

    Args:
        out_dir: folder to write (created if missing).
        split: ``"train"`` or ``"valid"``.
        seed: picks the digit split and the canvases.
        n: number of canvases (default 800 train, 300 valid).

    Returns:
        Path of the JSONL file.

    Raises:
        DataError: bad split or ``n``, or scikit-learn is not installed.
    """
    images, targets, parts = _digits(split, seed)
    n = PAIRS[split] if n is None else n
    check_int("n", n, 1)
    pool = {digit: [i for i in parts[split] if targets[i] == digit] for digit in range(10)}
    # Its own stream per split, so train and valid canvases differ even when their digits do not.
    rng = np.random.default_rng([seed, len(split)])
    return write_dataset(out_dir, (_canvas(images, pool, rng) for _ in range(n)))


def _digits(split: str, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """All digits as 32x32 uint8, their classes, and the train/valid indices for ``seed``."""
    check_split(split)
    images, targets = _upscaled_digits()
    train, valid = stratified_split(targets, DIGITS_TRAIN, seed)
    return images, targets, {"train": train, "valid": valid}


@lru_cache(maxsize=1)  # both splits (and digit_pairs) in one session load and upscale once
def _upscaled_digits() -> tuple[np.ndarray, np.ndarray]:
    datasets = require("sklearn.datasets", "scikit-learn")
    digits = datasets.load_digits()
    grey = np.round(digits.images * (255 / 16)).astype(np.uint8)  # 0..16 ink counts
    images = np.stack([np.asarray(Image.fromarray(g).resize((32, 32), Image.BILINEAR)) for g in grey])
    images.setflags(write=False)
    digits.target.setflags(write=False)
    return images, digits.target


def _canvas(images: np.ndarray, pool: dict[int, list[int]], rng: np.random.Generator):
    """One 64x64 canvas of 2-3 distinct digits in cells of a 2x2 grid, and its sorted label set."""
    count = 3 if rng.random() < 0.3 else 2
    classes = sorted(int(c) for c in rng.choice(10, size=count, replace=False))
    canvas = np.zeros((64, 64), np.uint8)
    # Each digit keeps to its own 32 px cell, so digits never overlap.
    for cell, digit in zip(rng.choice(4, size=count, replace=False), rng.permutation(classes)):
        size = int(rng.integers(24, 33))
        glyph = images[pool[digit][int(rng.integers(len(pool[digit])))]]
        top = 32 * (cell // 2) + int(rng.integers(0, 32 - size + 1))
        left = 32 * (cell % 2) + int(rng.integers(0, 32 - size + 1))
        canvas[top:top + size, left:left + size] = Image.fromarray(glyph).resize((size, size), Image.BILINEAR)
    return canvas, tuple(str(c) for c in classes)
