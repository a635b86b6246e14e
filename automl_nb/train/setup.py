"""From a trial record to what the loop needs: resolved parameters and a task adapter."""

from __future__ import annotations

from pathlib import Path

from automl_nb.spec.tasks import CLASSIFICATION_TASKS
from automl_nb.train.trial import Trial


def resolve_trial_parameters(trial: Trial) -> dict:
    """The trial's parameters validated, with every default filled in (raises SpecError)."""
    from automl_nb.spec import resolve_parameters

    return dict(resolve_parameters(trial.task, trial.parameters))


def load_split(trial: Trial, seed: int) -> tuple[list, list]:
    """Training and validation records: the given validation set, or a seeded split."""
    from automl_nb.data.mltable import load_records
    from automl_nb.data.split import check_minimum_images, split_records, unknown_validation_labels
    from automl_nb.errors import DataError
    from automl_nb.spec import DEFAULT_VALIDATION_DATA_SIZE

    train = load_records(trial.training_data, trial.task, trial.target_column_name)
    check_minimum_images(train, trial.training_data)
    if trial.validation_data:
        valid = load_records(trial.validation_data, trial.task, trial.target_column_name)
        unknown = unknown_validation_labels(train, valid)  # the data check refuses it too; submit may skip that
        if unknown:
            raise DataError("; ".join(unknown))
        return train, valid
    return split_records(train, trial.task, trial.validation_data_size or DEFAULT_VALIDATION_DATA_SIZE, seed)


def make_adapter(trial: Trial, params: dict, seed: int):
    """The task adapter of ``trial.task`` with its data loaded and split."""
    from automl_nb.data.cache import image_reader
    from automl_nb.data.records import class_names

    train, valid = load_split(trial, seed)
    classes = class_names(list(train) + list(valid))
    check_declared_counts(params, len(classes), len(train) + (0 if trial.validation_data else len(valid)))
    # advanced_settings.stream_image_files: the datasets read through the image cache.
    reader = image_reader(trial.task, params, list(train) + list(valid), shared_default=trial.image_cache_url)
    return adapter_for(trial.task, params, train, valid, classes, reader=reader)


def adapter_for(task: str, params: dict, train: list, valid: list, classes, **options):
    """The task adapter of ``task`` (and of ``params["model_name"]`` for detectors) over these records;
    ``options`` go to it (e.g. ``reader``)."""
    if task in CLASSIFICATION_TASKS:
        from automl_nb.train.classification import ClassificationAdapter

        return ClassificationAdapter(task, params, train, valid, classes, **options)
    if params["model_name"] == "yolov5":
        from automl_nb.train.yolo import YoloAdapter

        return YoloAdapter(task, params, train, valid, classes, **options)
    from automl_nb.train.detection import DetectionAdapter

    return DetectionAdapter(task, params, train, valid, classes, **options)


def freeze_layers(model, params: dict) -> tuple[str, ...]:
    """Freeze the layers ``layers_to_freeze`` and ``freeze_layer_pattern`` name; return the frozen prefixes."""
    from automl_nb.models.detection import freeze_by_pattern
    from automl_nb.models.registry import freeze_prefixes

    frozen = freeze_prefixes(params["model_name"], params["layers_to_freeze"])
    for name, parameter in model.named_parameters():
        if name.startswith(frozen):
            parameter.requires_grad_(False)
    if params.get("freeze_layer_pattern"):
        freeze_by_pattern(model, params["freeze_layer_pattern"])
    return frozen


def check_declared_counts(params: dict, num_classes: int, num_training_images: int) -> None:
    """SageMaker's ``num_classes`` and ``num_training_samples``, when given, must match the data.

    ``num_training_images`` counts the images of ``training_data`` (before any split).
    """
    from automl_nb.errors import SpecError

    declared = {"num_classes": (params.get("num_classes"), num_classes, "classes"),
                "num_training_samples": (params.get("num_training_samples"), num_training_images, "images")}
    for key, (given, found, what) in declared.items():
        if given is not None and given != found:
            raise SpecError(f"{key}: {given!r} does not match the training data, which has {found} {what}; "
                            f"set {key}: {found} or leave it out")


def trial_from_job(job, output_dir: str | Path, trial_id: str = "0", parameters: dict | None = None,
                   resume: bool = False) -> Trial:
    """The single trial a job describes (its training parameters, or ``parameters`` if given).

    Data paths are resolved against the job's folder, so a YAML file's relative paths work
    from any working directory.
    """
    validation = job.resolve_data_path(job.validation_data) if job.validation_data else None
    return Trial(
        trial_id=trial_id, task=job.task,
        parameters=dict(job.training_parameters if parameters is None else parameters),
        training_data=job.resolve_data_path(job.training_data), validation_data=validation,
        validation_data_size=job.effective_validation_data_size(), target_column_name=job.target_column_name,
        output_dir=str(output_dir), resume=resume)
