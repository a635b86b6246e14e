"""scikit-image's LFW subset: face or not a face."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from automl_nb.data.real._common import check_split, stratified_split, write_dataset

FACES_TRAIN = 140  # of 200; the other 60 are valid


def make_faces(out_dir: str | os.PathLike, split: str = "train", seed: int = 0) -> Path:
    """Write scikit-image's ``lfw_subset()`` as a multiclass (``face`` / ``not_face``) MLTable folder.

    200 grey 25x25 crops from Labeled Faces in the Wild: the first 100 are faces, the last
    100 background patches of the same photos (as scikit-image documents; checked by eye).
    Upscaled bilinearly to 32x32 RGB PNGs. Split: 140 train / 60 valid, stratified over a
    permutation seeded by ``seed`` (train and valid with the same seed never share a crop).

    Args:
        out_dir: folder to write (created if missing).
        split: ``"train"`` or ``"valid"``.
        seed: picks the split; the same arguments give the same bytes.

    Returns:
        Path of the JSONL file.

    Raises:
        DataError: bad split.
    """
    from skimage import data

    check_split(split)
    crops = np.asarray(data.lfw_subset())
    if crops.dtype != np.uint8:  # float in [0, 1] in recent scikit-image, whatever its docs say
        crops = np.round(crops * 255).astype(np.uint8)
    labels = np.array(["face"] * 100 + ["not_face"] * 100)
    parts = dict(zip(("train", "valid"), stratified_split(labels, FACES_TRAIN, seed)))
    upscaled = (np.asarray(Image.fromarray(crops[i]).resize((32, 32), Image.BILINEAR)) for i in parts[split])
    return write_dataset(out_dir, zip(upscaled, (str(labels[i]) for i in parts[split])))
