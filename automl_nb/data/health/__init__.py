"""The data-health report of a job: what in its data will make training worse, and the YAML to fix it.

:func:`data_health` reads a job's training and validation records (or the split a trial would
hold out), fingerprints every image on a thread pool (:mod:`automl_nb.data.phash`) and checks:

- classes: counts per split, imbalance (largest / smallest), rare classes, validation classes
  never seen in training, training classes absent from validation;
- the validation set's size;
- image sizes against what the model sees (classification crops, detector ``min_size``);
- exact and near duplicates within a split and across training and validation (leakage);
- images in the data folders that no label line names;
- detection and segmentation: :mod:`automl_nb.data.health.objects`.

Each :class:`~automl_nb.data.health.findings.Finding` has a severity and a recommendation,
with the YAML to paste where a parameter fixes it. :func:`check` is the public entry
(``automl_nb.check``, ``automl-nb check``, ``%automl check``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Mapping, Sequence

from automl_nb.data.health.classes import class_counts, class_findings, validation_size_findings
from automl_nb.data.health.duplicates import DuplicateGroup, duplicate_health
from automl_nb.data.health.findings import (
    ERROR, INFO, SEVERITIES, TRAINING_PARAMETERS, WARNING, Finding, listed, parameter_yaml, plural,
)
from automl_nb.data.health.objects import ObjectStats, object_health
from automl_nb.data.health.text import health_text
from automl_nb.data.mltable import load_records
from automl_nb.data.phash import Fingerprint, fingerprints
from automl_nb.data.records import is_url
from automl_nb.data.split import split_records
from automl_nb.errors import DataError, SpecError
from automl_nb.spec import MODEL_NAME, ImageJob, is_classification, load_job, resolve_parameters

UPSCALED_CROP = 2.0  # classification images this much smaller than the crop are noted
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# Parameters that decide what the model sees, shown in the report.
SIZE_KEYS = (MODEL_NAME, "use_pretrained_model", "weighted_loss", "training_crop_size", "validation_resize_size",
             "validation_crop_size", "min_size", "max_size", "image_size", "tile_grid_size", "tile_overlap_ratio")


@dataclass(frozen=True)
class DataHealth:
    """The data-health report of a job (plain data; ``DataHealthPanel`` draws it).

    Attributes:
        task: the job's task.
        training_source, validation_source: where the records came from (the validation one
            says so when it is a held-out share of training).
        parameters: the resolved parameters that decide what the model sees.
        images: label lines per split, ``{"training": n, "validation": m}``.
        class_counts: ``{"training": {class: count}, "validation": {...}}``, counting images
            (classification) or objects (detection, segmentation); see ``count_unit``.
        count_unit: ``"images"`` or ``"objects"``.
        imbalance: largest / smallest training class count (None with fewer than 2 classes).
        image_sizes: ``(width, height)`` of every readable image.
        objects: object statistics (detection and segmentation), else None.
        duplicates: groups of images that are the same picture.
        unlabelled: images in the data folders that no label line names.
        findings: what to look at, errors first.
        notes: how the report was made where it matters (e.g. a swept model_name).
    """

    task: str
    training_source: str
    validation_source: str
    parameters: Mapping[str, Any]
    images: Mapping[str, int]
    class_counts: Mapping[str, Mapping[str, int]]
    count_unit: str
    imbalance: float | None
    image_sizes: tuple[tuple[int, int], ...]
    objects: ObjectStats | None
    duplicates: tuple[DuplicateGroup, ...]
    unlabelled: tuple[str, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = field(default=())

    def by_severity(self, severity: str) -> list[Finding]:
        """The findings of one severity (``"error"``, ``"warning"`` or ``"info"``)."""
        return [f for f in self.findings if f.severity == severity]

    @property
    def has_errors(self) -> bool:
        """Whether a finding is an error (leakage, unreadable images, unseen classes...)."""
        return any(f.severity == ERROR for f in self.findings)

    def text(self) -> str:
        """The report as plain text: a summary, then each finding with its YAML lines."""
        return health_text(self)

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # IPython shows the text report
        printer.text(self.text())


def check(job: ImageJob | str | os.PathLike, *, progress: bool | None = None) -> DataHealth:
    """Report the health of a job's data before training: what will hurt, and the YAML to fix it.

    Args:
        job: a job, or the path of its YAML file (or YAML text).
        progress: show a progress bar while images are hashed; None: from 500 images.

    Returns:
        The :class:`DataHealth` report (``print`` it, or draw it with
        ``automl_nb.widgets.data_health.DataHealthPanel``).

    Raises:
        SpecError: the YAML is invalid, or the job has no training_data.
        DataError: a label file cannot be read (names ``file:line``).

    Example:
        >>> health = automl_nb.check("job.yml")
        >>> [f.yaml for f in health.findings if f.yaml]
        ['tile_grid_size: 3x2']
    """
    if not isinstance(job, ImageJob):
        job = load_job(job)
    return data_health(job, progress=progress)


def data_health(job: ImageJob, *, progress: bool | None = None) -> DataHealth:
    """The :class:`DataHealth` of a loaded job; see :func:`check`."""
    if job.training_data is None:
        raise SpecError("training_data: missing; allowed: an Input, e.g. {path: data/training-mltable-folder, "
                        "type: mltable}")
    params, notes = _parameters(job)
    training_path = job.resolve_data_path(job.training_data)
    train = load_records(training_path, job.task, job.target_column_name, check_images=False)
    if job.validation_data is not None:
        validation_source = job.resolve_data_path(job.validation_data)
        valid = load_records(validation_source, job.task, job.target_column_name, check_images=False)
    else:
        size, seed = job.effective_validation_data_size(), job.training_parameters.get("random_seed")
        train, valid = split_records(train, job.task, size, 0 if seed is None else int(seed))
        validation_source = f"{size:.0%} of training_data held out, seed {seed or 0}"
        if seed is None:
            notes.append("without random_seed each trial holds out its own share; this report shows seed 0's")
    urls = list(dict.fromkeys(r.image_url for r in [*train, *valid]))
    prints = dict(zip(urls, fingerprints(urls, progress=progress)))
    readable = {url: p for url, p in prints.items() if isinstance(p, Fingerprint)}
    sizes = {url: (p.width, p.height) for url, p in readable.items()}

    findings = [*_unreadable(train, valid, prints)]
    counts, unit = class_counts(job.task, train, valid)
    findings += class_findings(job, params, train, valid, counts, unit)
    findings += validation_size_findings(job, len(train), len(valid))
    findings += _crop_findings(job, params, [sizes[u] for u in urls if u in sizes])
    stats = None
    if not is_classification(job.task):
        lines = list(dict.fromkeys([*train, *valid]))  # a line read as training and validation counts once
        stats, found = object_health(lines, sizes, job.task, params, job.training_parameters)
        findings += found
    groups, found, duplicate_notes = duplicate_health(train, valid, readable, job.validation_data is not None)
    findings += found
    notes += duplicate_notes
    unlabelled = _unlabelled(job, urls)
    if unlabelled:
        findings.append(Finding("unlabelled_images", WARNING,
                                f"{plural(len(unlabelled), 'image')} in the data folders named by no label line: "
                                f"{listed(unlabelled)}",
                                "label them (they are data you have) or move them out of the data folders, so "
                                "that what was left out is a choice", examples=tuple(unlabelled)))
    training_counts = list(counts["training"].values())
    return DataHealth(
        task=job.task, training_source=training_path, validation_source=validation_source,
        parameters={k: params[k] for k in SIZE_KEYS if k in params},
        images={"training": len(train), "validation": len(valid)}, class_counts=counts, count_unit=unit,
        imbalance=max(training_counts) / min(training_counts) if len(training_counts) > 1 else None,
        image_sizes=tuple(sizes[u] for u in urls if u in sizes), objects=stats, duplicates=tuple(groups),
        unlabelled=tuple(unlabelled), findings=tuple(sorted(findings, key=lambda f: SEVERITIES.index(f.severity))),
        notes=tuple(notes))


def _parameters(job: ImageJob) -> tuple[dict, list[str]]:
    """The resolved parameters of a single trial, or a sweep's fixed ones with defaults (and a note)."""
    fixed = dict(job.training_parameters)
    swept = sorted({key for subspace in job.search_space for key in subspace} & set(SIZE_KEYS))
    models = [fixed[MODEL_NAME]] if fixed.get(MODEL_NAME) else []
    for subspace in job.search_space:  # a Choice of models, or one fixed model
        drawn = subspace.get(MODEL_NAME)
        models += list(getattr(drawn, "values", [drawn])) if drawn is not None else []
    models.append(None)  # the task's default model
    error = None
    for model in dict.fromkeys(models):
        try:
            params = resolve_parameters(job.task, {**fixed, MODEL_NAME: model} if model else fixed)
            break
        except SpecError as exc:  # e.g. a fixed crop that fits the swept ViT but not the default model
            error = exc
    else:
        raise error
    notes = [f"{', '.join(swept)} swept: sizes are judged at {params[MODEL_NAME]} with the fixed values or "
             "defaults"] if swept else []
    return params, notes


def _unreadable(train, valid, prints) -> list[Finding]:
    bad = [f"{r.source}: {prints[r.image_url]}" for r in [*train, *valid] if isinstance(prints[r.image_url], DataError)]
    if not bad:
        return []
    return [Finding("unreadable_images", ERROR, f"{plural(len(bad), 'image')} cannot be read: {listed(bad, 3)}",
                    "a trial fails on its first unreadable image; fix or remove these label lines",
                    examples=tuple(bad))]


def _crop_findings(job: ImageJob, params, sizes: Sequence[tuple[int, int]]) -> list[Finding]:
    """Classification images far smaller than the crop are upscaled; without pretrained weights that buys nothing."""
    if not is_classification(job.task) or not sizes or params["use_pretrained_model"]:
        return []
    short = median(min(size) for size in sizes)
    crop = params["training_crop_size"]
    if short * UPSCALED_CROP > crop:
        return []
    new_crop = max(32, 8 * round(short / 8))
    resize = round(new_crop * params["validation_resize_size"] / params["validation_crop_size"])
    values = {"training_crop_size": new_crop, "validation_crop_size": new_crop, "validation_resize_size": resize}
    yaml = parameter_yaml(job.task, job.training_parameters, values)
    if yaml is None:  # e.g. seresnext takes 224 only
        return []
    return [Finding("images_upscaled", INFO,
                    f"images are typically {short:.0f} px on their short side and are upscaled {crop / short:.1f}x to "
                    f"the {crop} px crop", f"without pretrained weights the upscaling adds no detail, only cost: a "
                    f"{new_crop} px crop trains about {(crop / new_crop) ** 2:.0f}x faster", yaml, TRAINING_PARAMETERS)]


def _unlabelled(job: ImageJob, urls: Sequence[str]) -> list[str]:
    """Images beside the labelled ones, or anywhere under an MLTable folder, that no record names (local data only)."""
    named = {os.path.abspath(u) for u in urls if not is_url(u)}
    folders = {os.path.dirname(u) for u in named}
    found = set()
    for data in (job.training_data, job.validation_data):
        path = job.resolve_data_path(data) if data is not None else None
        if path is None or is_url(path):
            continue
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found.update(os.path.join(root, f) for f in files)
        else:
            folders.add(os.path.dirname(os.path.abspath(path)))
    for folder in folders:
        if os.path.isdir(folder):
            found.update(os.path.join(folder, f) for f in os.listdir(folder))
    images = {os.path.abspath(f) for f in found if f.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(f)}
    return sorted(images - named)

