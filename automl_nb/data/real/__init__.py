"""Small real image datasets that ship inside installed packages, written as MLTable folders.

No network: the images come with scikit-learn (``load_digits``) and scikit-image
(``skimage.data``). Each maker writes ``out_dir/images/*.png``, ``out_dir/labels.jsonl``
(Azure JSONL) and ``out_dir/MLTable`` like :func:`automl_nb.data.synthetic.make_dataset`, for
a fixed ``"train"`` or ``"valid"`` split; the same arguments give the same bytes.

Where the labels come from, honestly:

- ``digits``, ``digit_pairs``, ``faces``: human labels shipped with the dataset (the writer of
  each digit; LFW faces versus background patches). ``digit_pairs`` only composes them.
- ``coins``, ``nuclei``: real photos, but the boxes and outlines come from a classical
  segmentation (watershed), checked by eye: a silver standard, not human annotation. Expect
  a few merged or split objects, and scores that measure agreement with that segmentation.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

from automl_nb.data.real.coins import make_coins
from automl_nb.data.real.digits import make_digit_pairs, make_digits
from automl_nb.data.real.faces import make_faces
from automl_nb.data.real.nuclei import make_nuclei
from automl_nb.errors import DataError
from automl_nb.spec.tasks import DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION

REAL_DATASETS = MappingProxyType({
    "digits": (MULTICLASS, make_digits,
               "scikit-learn load_digits: 1797 handwritten digits 0-9, 8x8 grey upscaled to 32x32; "
               "human labels; 1200 train / 597 valid"),
    "faces": (MULTICLASS, make_faces,
              "scikit-image lfw_subset: 200 25x25 grey LFW crops upscaled to 32x32, face / not_face; "
              "labels from the dataset; 140 train / 60 valid"),
    "digit_pairs": (MULTILABEL, make_digit_pairs,
                    "2-3 different scikit-learn digits in a 2x2 grid on 64x64 canvases; label = the digits "
                    "present (human digit labels); 800 train / 300 valid"),
    "coins": (DETECTION, make_coins,
              "scikit-image coins photo (24 coins): 88-128 px crops, class coin; boxes from a watershed "
              "segmentation (silver standard); 120 train (left) / 40 valid (right)"),
    "nuclei": (SEGMENTATION, make_nuclei,
               "scikit-image immunohistochemistry slide: 96 px tiles, class nucleus; outlines from a "
               "hematoxylin threshold + watershed (silver standard); 100 train (top) / 30 valid (bottom)"),
})


def make_real_dataset(name: str, out_dir: str | os.PathLike, split: str = "train", seed: int = 0) -> Path:
    """Write the real dataset ``name`` (a key of :data:`REAL_DATASETS`) for ``split``.

    Args:
        name: ``"digits"``, ``"faces"``, ``"digit_pairs"``, ``"coins"`` or ``"nuclei"``.
        out_dir: folder to write (created if missing).
        split: ``"train"`` or ``"valid"``.
        seed: passed to the maker; write both splits with the same seed.

    Returns:
        Path of the JSONL file.

    Raises:
        DataError: unknown name or split, or a package the dataset needs is missing.

    Example:
        >>> task, _, about = REAL_DATASETS["coins"]
        >>> train = make_real_dataset("coins", "data/coins/train", "train")
    """
    if name not in REAL_DATASETS:
        raise DataError(f"unknown real dataset {name!r}; choose one of {sorted(REAL_DATASETS)}")
    return REAL_DATASETS[name][1](out_dir, split, seed)


__all__ = [
    "REAL_DATASETS",
    "make_coins",
    "make_digit_pairs",
    "make_digits",
    "make_faces",
    "make_nuclei",
    "make_real_dataset",
]
