"""Hold out a validation set, count labels, and check there is enough data."""

from __future__ import annotations

import math
import random
import warnings
from collections import Counter
from typing import Sequence

from automl_nb.data.records import ImageRecord
from automl_nb.spec.inputs import DEFAULT_VALIDATION_DATA_SIZE
from automl_nb.spec.tasks import MULTICLASS
from automl_nb.errors import DataError


def split_records(
    records: Sequence[ImageRecord],
    task: str,
    validation_size: float = DEFAULT_VALIDATION_DATA_SIZE,
    seed: int = 0,
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Split records into training and validation sets, deterministically for a seed.

    The validation set has ``round(len(records) * validation_size)`` images (at least one,
    and at least one image stays in training). For multiclass the split is stratified:
    each class gets its share of the validation images by largest remainder, and every
    class keeps at least one image in training, even when that makes the validation set
    smaller (if every class has a single image, one of them is held out). Other tasks get a
    seeded shuffle. Both sides keep the input order.

    Args:
        records: the labelled images.
        task: image task name (multiclass is stratified).
        validation_size: fraction held out, strictly between 0 and 1.
        seed: seed of the shuffle.

    Returns:
        ``(train, validation)`` lists.

    Raises:
        DataError: ``validation_size`` outside (0, 1) or fewer than two records.
    """
    if isinstance(validation_size, bool) or not 0 < validation_size < 1:
        raise DataError(f"validation_data_size must be between 0 and 1 (exclusive), got {validation_size!r}")
    total = len(records)
    if total < 2:
        raise DataError(f"cannot hold out a validation set from {total} image(s); need at least 2")
    target = min(max(math.floor(total * validation_size + 0.5), 1), total - 1)
    rng = random.Random(seed)
    if task == MULTICLASS:
        chosen = _stratified(records, target, validation_size, rng)
    else:
        order = list(range(total))
        rng.shuffle(order)
        chosen = set(order[:target])
    train = [r for i, r in enumerate(records) if i not in chosen]
    validation = [r for i, r in enumerate(records) if i in chosen]
    return train, validation


def _stratified(records: Sequence[ImageRecord], target: int, validation_size: float, rng: random.Random) -> set[int]:
    """Pick ``target`` validation indices, each class getting its largest-remainder share."""
    by_class: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_class.setdefault(str(record.label), []).append(index)
    names = sorted(by_class)
    for name in names:
        rng.shuffle(by_class[name])
    # Each class keeps one image in training, even if the validation set ends up smaller;
    # only when every class is a singleton may one of them go to validation.
    sizes = {name: len(by_class[name]) for name in names}
    caps = {name: sizes[name] - 1 for name in names}
    if sum(caps.values()) == 0:
        caps = {name: 1 for name in names}
    target = min(target, sum(caps.values()))
    quota = {name: sizes[name] * validation_size for name in names}
    counts = {name: min(math.floor(quota[name]), caps[name]) for name in names}
    # Remaining places go by largest remainder; ties to the larger class, then a seeded draw.
    draw = {name: rng.random() for name in names}
    while sum(counts.values()) < target:
        open_names = [n for n in names if counts[n] < caps[n]]
        best = max(open_names, key=lambda n: (quota[n] - counts[n], sizes[n], draw[n]))
        counts[best] += 1
    return {i for name in names for i in by_class[name][: counts[name]]}


def label_counts(records: Sequence[ImageRecord]) -> dict[str, int]:
    """Return how many images carry each label (an image counts once per label), sorted by name."""
    counts: Counter[str] = Counter()
    for record in records:
        counts.update(set(record.label_names()))
    return dict(sorted(counts.items()))


def check_minimum_images(records: Sequence[ImageRecord], source: str, minimum: int = 10) -> None:
    """Raise DataError when there are fewer than ``minimum`` training images.

    Args:
        records: the training records.
        source: where they came from (a path), named in the message.
        minimum: the least number of images accepted.

    Raises:
        DataError: e.g. "needs at least 10 training images, found 7 (data/train.jsonl);
            10-15 per label are recommended".
    """
    if len(records) < minimum:
        raise DataError(
            f"needs at least {minimum} training images, found {len(records)} ({source}); "
            f"10-15 per label are recommended"
        )


def unknown_validation_labels(training: Sequence[ImageRecord], validation: Sequence[ImageRecord]) -> list[str]:
    """Name each validation class that no training image carries: a model cannot learn it.

    Args:
        training: the training records.
        validation: the validation records (given as validation_data, not split off).

    Returns:
        One problem line per unknown class, in the order they first occur, each naming where
        (``"file:line"``), the class, how many validation images carry it and the training
        classes, e.g. ``"val.jsonl:3: validation label 'zebra' is in no training image (2
        validation images carry it); training classes: cat, dog"``. Empty when all are known.
    """
    known = set(label_counts(training))
    first: dict[str, ImageRecord] = {}
    for record in validation:
        for name in record.label_names():
            if name not in known:
                first.setdefault(name, record)
    if not first:
        return []
    counts = label_counts(validation)
    names = sorted(known)
    listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return [
        f"{record.source or record.image_url}: validation label {name!r} is in no training image "
        f"({counts[name]} validation image{'s carry' if counts[name] != 1 else ' carries'} it); "
        f"training classes: {listed or 'none'}"
        for name, record in first.items()
    ]


def warn_small_labels(records: Sequence[ImageRecord], source: str, recommended: int = 10) -> list[str]:
    """Warn (``warnings.warn``) about labels with fewer than ``recommended`` images.

    Returns:
        The labels warned about, sorted.
    """
    small = [name for name, count in label_counts(records).items() if count < recommended]
    if small:
        counts = label_counts(records)
        listed = ", ".join(f"{name} ({counts[name]})" for name in small[:10])
        more = f" and {len(small) - 10} more" if len(small) > 10 else ""
        warnings.warn(
            f"{source}: labels with fewer than {recommended} images: {listed}{more}; "
            f"10-15 images per label are recommended",
            stacklevel=2,
        )
    return small
