"""Data health of labels and splits: class counts, imbalance, rare and unseen classes, and
the validation set's size."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from automl_nb.data.health.findings import (
    ERROR, INFO, TRAINING_PARAMETERS, WARNING, Finding, listed, parameter_yaml, plural,
)
from automl_nb.data.records import ImageRecord
from automl_nb.data.split import label_counts
from automl_nb.spec import ImageJob, is_classification

IMBALANCE_WARNING = 5.0  # largest / smallest class count from which weighted_loss: 1 is advised
IMBALANCE_STRONG = 20.0  # ... and from which weighted_loss: 2
RECOMMENDED_PER_CLASS = 10  # images per class (the split module's advice: 10-15)
MIN_VALIDATION_IMAGES = 10  # fewer, and the metric moves in steps of more than 10%
VALIDATION_SIZES = (0.2, 0.25, 0.3)


def class_counts(task: str, train: Sequence[ImageRecord], valid: Sequence[ImageRecord]) -> tuple[dict, str]:
    """Counts per class and split: images for classification, objects for detection and segmentation.

    Returns:
        ``({"training": {class: n}, "validation": {...}}, "images" or "objects")``, classes sorted.
    """
    if is_classification(task):
        return {"training": label_counts(train), "validation": label_counts(valid)}, "images"
    return {"training": _object_counts(train), "validation": _object_counts(valid)}, "objects"


def _object_counts(records: Sequence[ImageRecord]) -> dict[str, int]:
    return dict(sorted(Counter(name for record in records for name in record.label_names()).items()))


def class_findings(job: ImageJob, params: dict, train: Sequence[ImageRecord], valid: Sequence[ImageRecord],
                   counts: dict, unit: str) -> list[Finding]:
    """Unseen validation classes (error), classes missing from validation, rare classes and
    imbalance (with ``weighted_loss`` where the task has it).

    Args:
        job: the job (its task and fixed parameters).
        params: the resolved training parameters.
        train, valid: the records of each split.
        counts, unit: what :func:`class_counts` returned.
    """
    findings = []
    training, validation = counts["training"], counts["validation"]
    unseen = sorted(set(validation) - set(training))
    if unseen:
        where = [r.source for r in valid if set(r.label_names()) & set(unseen)]
        findings.append(Finding("unseen_validation_classes", ERROR,
                                f"validation has classes training never shows: {listed(unseen)} ({listed(where, 3)})",
                                "the model cannot predict a class it never trained on; add training images of them "
                                "or fix the label spelling", examples=tuple(where)))
    missing = sorted(set(training) - set(validation))
    if missing and valid:
        findings.append(Finding("classes_missing_from_validation", WARNING,
                                f"{plural(len(missing), 'training class')} without validation {unit}: "
                                f"{listed(missing)}",
                                "their accuracy is never measured, so the sweep cannot pick a model for them; "
                                "add validation images of them"))
    per_class_images = label_counts(train)
    rare = [name for name, n in per_class_images.items() if n < RECOMMENDED_PER_CLASS]
    if rare:
        findings.append(Finding("rare_classes", WARNING,
                                f"{plural(len(rare), 'class')} with fewer than {RECOMMENDED_PER_CLASS} training "
                                f"images: "
                                f"{listed([f'{n} ({per_class_images[n]})' for n in rare])}",
                                "10-15 images per class are the least a model learns a class from; label more"))
    if len(training) > 1:
        ratio = max(training.values()) / min(training.values())
        largest, smallest = max(training, key=training.get), min(training, key=training.get)
        if ratio >= IMBALANCE_WARNING:
            findings.append(_imbalance(job, params, ratio, f"{largest} ({training[largest]}) / {smallest} "
                                       f"({training[smallest]}) {unit}"))
    return findings


def _imbalance(job: ImageJob, params, ratio: float, which: str) -> Finding:
    message = f"classes are imbalanced {ratio:.1f}:1 in training: {which}"
    if "weighted_loss" not in params:
        return Finding("class_imbalance", WARNING, message,
                       f"{job.task} has no class weighting (weighted_loss is for classification); label more "
                       "images of the rare classes")
    wanted = 2 if ratio >= IMBALANCE_STRONG else 1
    if params["weighted_loss"] >= wanted:
        return Finding("class_imbalance", INFO, message,
                       f"weighted_loss {params['weighted_loss']} already weighs rare classes up")
    yaml = parameter_yaml(job.task, job.training_parameters, {"weighted_loss": wanted})
    how = "sqrt(class_weights)" if wanted == 1 else "class_weights (the ratio is large)"
    return Finding("class_imbalance", WARNING, message,
                   f"weigh the loss by {how}, so rare classes are not ignored for the common ones",
                   yaml, TRAINING_PARAMETERS if yaml else None)


def validation_size_findings(job: ImageJob, n_train: int, n_valid: int) -> list[Finding]:
    """A validation set under :data:`MIN_VALIDATION_IMAGES` images, with the ``validation_data_size`` that fixes it."""
    if n_valid >= MIN_VALIDATION_IMAGES:
        return []
    message = (f"validation has {plural(n_valid, 'image')}: its metric moves in steps of {100 / max(n_valid, 1):.0f}%, "
               "so the sweep compares trials on noise")
    total = n_train + (n_valid if job.validation_data is None else 0) or 1
    fraction = next((f for f in VALIDATION_SIZES if total * f >= MIN_VALIDATION_IMAGES), None)
    if fraction is None:
        return [Finding("small_validation_set", WARNING, message,
                        f"label more images: {MIN_VALIDATION_IMAGES} validation images need about "
                        f"{int(MIN_VALIDATION_IMAGES / VALIDATION_SIZES[-1])} in all")]
    if job.validation_data is not None:
        reason = (f"drop validation_data (move its images into training_data) and hold out {fraction:.0%} of "
                  f"training instead: about {round((n_train + n_valid) * fraction)} images")
    elif fraction > (job.effective_validation_data_size() or 0):
        reason = f"hold out {fraction:.0%}: about {round(total * fraction)} images"
    else:
        return []
    return [Finding("small_validation_set", WARNING, message, reason, f"validation_data_size: {fraction}")]
