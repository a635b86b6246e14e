"""The data check before a run: every label line, every image file, the class sets and counts.

``job.submit()``, ``Run.resume()``, ``automl-nb run`` and ``%%automl`` call
:func:`check_job_data` before any run folder, cluster or trial exists, so a data mistake is
reported at once, all of it, instead of inside trial 0 (and again in every trial of a sweep).

What it checks, collecting every problem rather than stopping at the first:

- the data paths, MLTable files and every JSONL line (the reader's own messages, each
  naming ``file:line``);
- every image file, on a pool of threads, local or any fsspec URL (http, s3, memory...):
  its header (format and size), a PNG's chunks, a JPEG's end marker and PIL's
  decompression-bomb limit, without decoding pixels (see
  :func:`automl_nb.data.images.check_image_file`);
- that every validation class occurs in training, that there are enough training images,
  and that a multiclass task has at least two classes.

Problems are raised together as one :class:`~automl_nb.errors.DataCheckError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from automl_nb.data.images import check_image_files
from automl_nb.data.mltable import load_records
from automl_nb.data.records import ImageRecord, class_names
from automl_nb.data.split import check_minimum_images, unknown_validation_labels
from automl_nb.errors import DataCheckError, DataError
from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME
from automl_nb.spec.tasks import MULTICLASS, check_task

# check_minimum_images' own default: fewer training images than this cannot be split and trained.
MINIMUM_TRAINING_IMAGES = 10


@dataclass(frozen=True)
class CheckedData:
    """What a data check read, when it found no problem.

    Attributes:
        task: the image task.
        training: the training records, width, height and format read from the files.
        validation: the records of the given validation data (empty when validation is held
            out of the training data).
        images_checked: distinct image files checked.
        seconds: how long the check took.
    """

    task: str
    training: tuple[ImageRecord, ...]
    validation: tuple[ImageRecord, ...]
    images_checked: int
    seconds: float


def check_job_data(job, *, progress: bool | None = None, threads: int | None = None) -> CheckedData:
    """Check a job's training and validation data before anything runs (see the module doc).

    Args:
        job: an image job (its ``task``, ``training_data``, ``validation_data``,
            ``target_column_name`` and validation size are used; paths are resolved against
            its folder).
        progress: show a progress bar over the images (default: for more than 1000).
        threads: image files checked at a time (default: 4 local, 32 remote).

    Returns:
        The :class:`CheckedData`.

    Raises:
        DataCheckError: every problem found, one ``file:line: ...`` line each; its message
            shows the first 20 and the total.

    Example:
        >>> job = load_job("job.yml")
        >>> checked = check_job_data(job)
        >>> len(checked.training)
        120
    """
    validation = job.resolve_data_path(job.validation_data) if job.validation_data is not None else None
    return check_data(job.resolve_data_path(job.training_data), job.task, job.target_column_name,
                      validation=validation, progress=progress, threads=threads)


def check_data(
    training: str,
    task: str,
    target_column_name: str | None = DEFAULT_TARGET_COLUMN_NAME,
    *,
    validation: str | None = None,
    progress: bool | None = None,
    threads: int | None = None,
) -> CheckedData:
    """Check training data (and validation data, when given) without a job.

    Args:
        training: a JSONL file, an MLTable folder or a folder with one JSONL; local or a URL.
        task: image task name.
        target_column_name: the key holding the label (None: ``"label"``).
        validation: the validation data in the same forms, or None when it is held out of
            the training data.
        progress: show a progress bar over the images (default: for more than 1000).
        threads: image files checked at a time (default: 4 local, 32 remote).

    Returns:
        The :class:`CheckedData`.

    Raises:
        SpecError: unknown task.
        DataCheckError: every problem found (see :func:`check_job_data`).

    Example:
        >>> check_data("data/train", "image_object_detection", validation="data/valid")
    """
    started = time.perf_counter()
    task = check_task(task)
    target_column_name = target_column_name or DEFAULT_TARGET_COLUMN_NAME
    problems: list[str] = []
    train = load_records(training, task, target_column_name, check_images=False, problems=problems)
    valid = []
    if validation is not None:
        valid = load_records(validation, task, target_column_name, check_images=False, problems=problems)
    results = check_image_files([r.image_url for r in train + valid], threads=threads, progress=progress)
    train = _with_image_sizes(train, results, problems)
    valid = _with_image_sizes(valid, results, problems)
    problems += _count_problems(train, valid, task, training)
    if problems:
        raise DataCheckError(problems)
    return CheckedData(task, tuple(train), tuple(valid), len(results), time.perf_counter() - started)


def _with_image_sizes(records: Sequence[ImageRecord], results: dict, problems: list[str]) -> list[ImageRecord]:
    """The records with width, height and format read from their files; a bad image is a
    problem (its record is kept as it was, so the counts below still see it)."""
    checked = []
    for record in records:
        result = results[record.image_url]
        if isinstance(result, DataError):
            problems.append(f"{record.source}: {result}")
            checked.append(record)
            continue
        width, height, image_format = result
        checked.append(ImageRecord(record.image_url, record.label, width, height,
                                   record.image_format or image_format or None, record.source))
    return checked


def _count_problems(train: Sequence[ImageRecord], valid: Sequence[ImageRecord], task: str,
                    training: str) -> list[str]:
    """Too few training images, a single multiclass class, validation classes unseen in training.

    Skipped when no training record could be read: the problems found already say why.
    """
    if not train:
        return []
    problems = []
    try:
        check_minimum_images(train, training, MINIMUM_TRAINING_IMAGES)
    except DataError as error:
        problems.append(str(error))
    classes = class_names(train)
    if task == MULTICLASS and len(classes) < 2:
        problems.append(f"{training}: the training data has a single class, {classes[0]!r}; "
                        f"{MULTICLASS} needs at least 2 (images of each class to tell apart)")
    problems += unknown_validation_labels(train, valid)
    return problems
