"""The four vision tasks, their primary metrics and their model architectures (SPEC sections 2, 6)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from automl_nb.spec._checks import did_you_mean, fail, show, snake_case

MULTICLASS = "image_classification"
MULTILABEL = "image_classification_multilabel"
DETECTION = "image_object_detection"
SEGMENTATION = "image_instance_segmentation"
TASKS = (MULTICLASS, MULTILABEL, DETECTION, SEGMENTATION)
CLASSIFICATION_TASKS = (MULTICLASS, MULTILABEL)
DETECTION_TASKS = (DETECTION, SEGMENTATION)

PRIMARY_METRICS = MappingProxyType({
    MULTICLASS: "accuracy",
    MULTILABEL: "iou",
    DETECTION: "mean_average_precision",
    SEGMENTATION: "mean_average_precision",
})

CLASSIFICATION_MODELS = (
    "mobilenetv2", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnest50", "resnest101", "seresnext", "vits16r224", "vitb16r224", "vitl16r224",
)
DETECTION_MODELS = (
    "yolov5", "fasterrcnn_resnet18_fpn", "fasterrcnn_resnet34_fpn", "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet101_fpn", "fasterrcnn_resnet152_fpn", "retinanet_resnet50_fpn",
)
SEGMENTATION_MODELS = (
    "maskrcnn_resnet18_fpn", "maskrcnn_resnet34_fpn", "maskrcnn_resnet50_fpn",
    "maskrcnn_resnet101_fpn", "maskrcnn_resnet152_fpn",
)
MODELS = MappingProxyType({
    MULTICLASS: CLASSIFICATION_MODELS,
    MULTILABEL: CLASSIFICATION_MODELS,
    DETECTION: DETECTION_MODELS,
    SEGMENTATION: SEGMENTATION_MODELS,
})
# The hyperparameter page's defaults (SPEC section 6 decision), not the how-to page's stars.
DEFAULT_MODEL = MappingProxyType({
    MULTICLASS: "seresnext",
    MULTILABEL: "seresnext",
    DETECTION: "fasterrcnn_resnet50_fpn",
    SEGMENTATION: "maskrcnn_resnet50_fpn",
})

# Checked in order, so "resnest" is tried before "resnet" and "seresnext" before both.
_FAMILY_PREFIXES = (
    ("vit", "vit"),
    ("seresnext", "seresnext"),
    ("resnest", "resnest"),
    ("resnet", "resnet"),
    ("mobilenetv2", "mobilenetv2"),
    ("yolov5", "yolov5"),
    ("fasterrcnn_", "fasterrcnn"),
    ("retinanet_", "retinanet"),
    ("maskrcnn_", "maskrcnn"),
)
FAMILIES = tuple(sorted({family for _, family in _FAMILY_PREFIXES}))


def check_task(task: Any) -> str:
    """Return the canonical task name.

    Args:
        task: a task name such as ``image_object_detection`` (``ImageObjectDetection`` also works).

    Returns:
        One of ``TASKS``.

    Raises:
        SpecError: for anything else, with the nearest task suggested.
    """
    if isinstance(task, str):
        name = snake_case(task)
        if name in TASKS:
            return name
    allowed = ", ".join(TASKS)
    suffix = did_you_mean(task, TASKS) if isinstance(task, str) else ""
    fail("task", f"{show(task)} is not a task; allowed: one of {allowed}{suffix}")


def is_classification(task: str) -> bool:
    """True for the multiclass and multilabel classification tasks."""
    return check_task(task) in CLASSIFICATION_TASKS


def model_family(model_name: str) -> str:
    """Return the architecture family of a model name, e.g. ``vitb16r224`` -> ``vit``.

    Args:
        model_name: one of the names in ``MODELS``.

    Returns:
        One of ``FAMILIES`` (vit, seresnext, resnest, resnet, mobilenetv2, yolov5, fasterrcnn,
        retinanet, maskrcnn).

    Raises:
        SpecError: for a name of no known family.
    """
    if isinstance(model_name, str):
        for prefix, family in _FAMILY_PREFIXES:
            if model_name.lower().startswith(prefix):
                return family
    fail("model_name", f"{show(model_name)} is not a known model")


def check_model(task: str, model_name: Any) -> str:
    """Return the canonical (lower-case) model name after checking it fits the task.

    Raises:
        SpecError: naming the models the task allows.
    """
    task = check_task(task)
    if isinstance(model_name, str) and model_name.strip().lower() in MODELS[task]:
        return model_name.strip().lower()
    allowed = ", ".join(MODELS[task])
    suffix = did_you_mean(model_name, MODELS[task]) if isinstance(model_name, str) else ""
    fail("model_name", f"{show(model_name)} is not a model for {task}; allowed: one of {allowed}{suffix}")


def normalize_primary_metric(task: str, metric: Any) -> str:
    """Return our spelling of the primary metric, accepting Azure's (``Accuracy``, ``IOU``...).

    Args:
        task: the job's task.
        metric: the metric as written by the user, or None for the task's own metric.

    Returns:
        ``PRIMARY_METRICS[task]``: each task has exactly one primary metric.

    Raises:
        SpecError: when the metric is not the one of the task.
    """
    task = check_task(task)
    if metric is None:
        return PRIMARY_METRICS[task]
    if isinstance(metric, str) and snake_case(metric) == PRIMARY_METRICS[task]:
        return PRIMARY_METRICS[task]
    fail("primary_metric", f"{show(metric)} is not a primary metric of {task}; allowed: {PRIMARY_METRICS[task]}")
