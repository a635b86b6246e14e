"""scikit-image's coins photo: crops with a box around every coin."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from automl_nb.data.real._common import check_int, check_split, mask_box, window_corners, window_sums, write_dataset
from automl_nb.errors import DataError

COINS = {"train": 120, "valid": 40}
KEEP = 0.6  # a coin is labelled when this much of its area is in the crop
AMBIGUOUS = 0.2  # a crop showing between this and KEEP of a coin is not used: its label would be unclear
# The cut between train (left) and valid (right) runs through the gaps between coins: x = 243
# above y = 226 (the first three rows of coins), x = 210 below it (the bottom row): 15 coins / 9.
CUT_ROW, CUT_UPPER, CUT_LOWER = 226, 243, 210


def make_coins(
    out_dir: str | os.PathLike, split: str = "train", seed: int = 0, n: int | None = None, size: int = 128
) -> Path:
    """Write crops of scikit-image's ``coins()`` photo as an object detection MLTable folder (class ``coin``).

    The 303x384 grey photo shows 24 Greek coins. Their boxes come from a classical
    segmentation (Sobel elevation map, watershed from dark/bright markers, holes filled; the
    scikit-image coins tutorial), a silver standard checked by eye, not human boxes. Square
    crops of ``size - 40`` to ``size`` pixels (steps of 8) are taken at random from the left
    part for train and the right part for valid (see ``CUT_*``; no coin appears in both). A
    coin is labelled when at least 60 % of it is in the crop (its box clipped to the crop);
    crops showing 20-60 % of a coin are skipped, as are crops without a coin.

    Args:
        out_dir: folder to write (created if missing).
        split: ``"train"`` or ``"valid"``.
        seed: picks the crops; the same arguments give the same bytes.
        n: number of crops (default 120 train, 40 valid).
        size: largest crop side in pixels (80..200).

    Returns:
        Path of the JSONL file.

    Raises:
        DataError: bad split, ``n`` or ``size``.
    """
    check_split(split)
    n = COINS[split] if n is None else n
    check_int("n", n, 1)
    check_int("size", size, 80, 200)
    photo, coins = coin_masks()
    left = np.zeros(photo.shape, bool)
    left[:CUT_ROW, :CUT_UPPER] = left[CUT_ROW:, :CUT_LOWER] = True
    region = left if split == "train" else ~left
    # Coins lie on a grid, so one crop size would show the same 4 coins again and again: vary it.
    sides = range(size - 40, size + 1, 8)
    usable = {side: _usable_corners(region, coins, side) for side in sides}
    rng = np.random.default_rng([seed, len(split)])
    chosen: list[tuple[int, int, int]] = []
    while len(chosen) < n:
        side = int(rng.choice(sides))
        row, column = usable[side][int(rng.integers(len(usable[side])))]
        crop = (side, int(row), int(column))
        if crop not in chosen or len(chosen) >= sum(map(len, usable.values())):  # repeats only once all are used
            chosen.append(crop)
    items = []
    for side, row, column in chosen:
        window = (slice(row, row + side), slice(column, column + side))
        boxes = tuple(mask_box("coin", mask[window]) for mask in coins if mask[window].sum() >= KEEP * mask.sum())
        items.append((photo[window], boxes))
    return write_dataset(out_dir, items)


def _usable_corners(region: np.ndarray, coins: tuple[np.ndarray, ...], side: int) -> np.ndarray:
    """Corners of ``side`` windows inside ``region`` that show a coin and no ambiguous part of one."""
    corners = window_corners(region, side)
    inside = np.stack([window_sums(mask, side)[tuple(corners.T)] / mask.sum() for mask in coins], axis=1)
    usable = ((inside >= KEEP) | (inside < AMBIGUOUS)).all(axis=1) & (inside >= KEEP).any(axis=1)
    return corners[usable]


@lru_cache(maxsize=1)  # both splits in one session segment once
def coin_masks() -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The coins photo (uint8) and one boolean mask per coin found, in scan order (all read-only).

    Raises:
        DataError: a coin crosses the train/valid cut (the segmentation is not the one checked).
    """
    from scipy import ndimage
    from skimage import data, filters, segmentation

    photo = data.coins()
    markers = np.zeros(photo.shape, np.uint8)
    markers[photo < 30] = 1  # surely background
    markers[photo > 150] = 2  # surely coin
    coin = ndimage.binary_fill_holes(segmentation.watershed(filters.sobel(photo), markers) == 2)
    labels, count = ndimage.label(coin)
    masks = [labels == k for k in range(1, count + 1)]
    masks = [m for m in masks if m.sum() >= 200]  # specks; every coin is over 1000 px
    for mask in masks:
        rows, columns = np.nonzero(mask)
        cut = np.where(rows < CUT_ROW, CUT_UPPER, CUT_LOWER)
        if (columns < cut).any() and (columns >= cut).any():
            raise DataError(f"a coin at rows {rows.min()}-{rows.max()}, columns {columns.min()}-{columns.max()} "
                            "crosses the train/valid cut; the coins segmentation changed")
    for array in (photo, *masks):
        array.setflags(write=False)
    return photo, tuple(masks)

