"""scikit-image's immunohistochemistry slide: tiles with an outline around every nucleus."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from automl_nb.data.real._common import check_int, check_split, window_corners, write_dataset
from automl_nb.data.synthetic import object_label

NUCLEI = {"train": 100, "valid": 30}
CUT_ROW = 341  # train tiles lie above this row (top 2/3), valid tiles below it
MIN_AREA = 15  # pixels; smaller instances (specks, slivers at a tile's edge) are dropped
MIN_DISTANCE = 7  # pixels between watershed seeds: lower splits elongated nuclei in two


def make_nuclei(
    out_dir: str | os.PathLike, split: str = "train", seed: int = 0, n: int | None = None, size: int = 96
) -> Path:
    """Write tiles of scikit-image's ``immunohistochemistry()`` slide as an instance segmentation MLTable folder.

    The 512x512 RGB slide (colon tissue, DAB immunostain, hematoxylin counterstain) shows
    a few hundred nuclei. Their outlines come from a classical segmentation, a silver
    standard checked by eye, not human annotation: hematoxylin channel (``rgb2hed``) minus
    its local mean, Otsu threshold, opening and hole filling, then a watershed on the
    distance transform to split touching nuclei. Tiles of ``size`` x ``size`` are taken at
    random above row 341 for train and below it for valid (nuclei on the cut show up
    partly in both). In a tile, each nucleus keeps its largest visible piece if that has at
    least 15 pixels; its polygon is its pixel outline (corners cut at the pixel edges' midpoints).

    Args:
        out_dir: folder to write (created if missing).
        split: ``"train"`` or ``"valid"``.
        seed: picks the tiles; the same arguments give the same bytes.
        n: number of tiles (default 100 train, 30 valid).
        size: tile width and height in pixels (48..160).

    Returns:
        Path of the JSONL file.

    Raises:
        DataError: bad split, ``n`` or ``size``.
    """
    check_split(split)
    n = NUCLEI[split] if n is None else n
    check_int("n", n, 1)
    check_int("size", size, 48, 160)
    slide, instances = nucleus_labels()
    top = np.zeros(instances.shape, bool)
    top[:CUT_ROW] = True
    corners = window_corners(top if split == "train" else ~top, size)
    rng = np.random.default_rng([seed, len(split)])
    items = []
    for row, column in corners[rng.choice(len(corners), size=n, replace=n > len(corners))]:
        tile = instances[row:row + size, column:column + size]
        found = [_nucleus(tile, k, where) for k, where in enumerate(ndimage.find_objects(tile), start=1) if where]
        if any(found):  # the tissue is dense: every tile has nuclei, but make sure
            items.append((slide[row:row + size, column:column + size], tuple(obj for obj in found if obj)))
    return write_dataset(out_dir, items)


@lru_cache(maxsize=1)  # both splits in one session segment once
def nucleus_labels() -> tuple[np.ndarray, np.ndarray]:
    """The slide (uint8 RGB) and its nucleus instances as an int label image (0 = background), read-only."""
    from skimage import color, data, feature, filters, segmentation

    slide = data.immunohistochemistry()
    hematoxylin = color.rgb2hed(slide)[..., 0]
    # Minus the local mean: the brown (DAB) cells lift the hematoxylin channel around their nuclei.
    contrast = filters.gaussian(hematoxylin, sigma=1) - filters.gaussian(hematoxylin, sigma=8)
    nuclei = contrast > filters.threshold_otsu(contrast)
    nuclei = ndimage.binary_fill_holes(ndimage.binary_opening(nuclei, ndimage.generate_binary_structure(2, 1)))
    blobs, _ = ndimage.label(nuclei)
    distance = filters.gaussian(ndimage.distance_transform_edt(nuclei), sigma=1)
    peaks = feature.peak_local_max(distance, min_distance=MIN_DISTANCE, labels=blobs, exclude_border=False)
    seeds = np.zeros(nuclei.shape, np.int32)
    seeds[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    instances = segmentation.watershed(-distance, seeds, mask=nuclei)
    areas = np.bincount(instances.ravel())
    instances[areas[instances] < MIN_AREA] = 0
    slide.setflags(write=False)
    instances.setflags(write=False)
    return slide, instances


def _nucleus(tile: np.ndarray, k: int, where: tuple[slice, slice]):
    """Label nucleus ``k``'s largest piece in a square ``tile`` (inside ``where``); None if too small."""
    from skimage import measure

    piece = tile[where] == k
    pieces, count = ndimage.label(piece)
    if count > 1:
        piece = pieces == np.argmax(np.bincount(pieces.ravel())[1:]) + 1
    if piece.sum() < MIN_AREA:
        return None
    # On the padded mask, find_contours walks the midpoints of the pixel edges (pixel centres are
    # integers); keeping only the points where it turns loses nothing.
    contour = max(measure.find_contours(np.pad(piece, 1).astype(float), 0.5), key=len)[:-1]
    turns = np.diff(contour, axis=0, prepend=contour[-1:]) != np.diff(contour, axis=0, append=contour[:1])
    contour = contour[turns.any(axis=1)] - 1 + (where[0].start, where[1].start)
    inside = np.zeros(tile.shape, bool)
    inside[where] = piece
    return object_label("nucleus", inside, [(x, y) for y, x in contour], tile.shape[0])
