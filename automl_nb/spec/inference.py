"""Inference settings (SPEC section 9): which keys a task has, their Azure spellings, and checks.

They live with the parameter table: settings.json, the trainer and the predictor all read them here.

A setting defaults to the value the model was trained with (the checkpoint's resolved
parameters). Azure's settings.json spells some keys differently from the training
parameters (``box_score_thresh`` for ``box_score_threshold``...); both spellings are accepted
and mean the same, and values are checked against the hyperparameter table of
:mod:`automl_nb.spec`, which also says which key applies to which task and model.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from automl_nb.spec import PARAMETERS, coerce_value, default_value
from automl_nb.spec._checks import fail, show, unknown_key
from automl_nb.spec.tasks import DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION

# Training parameter names of the inference settings, in SPEC section 9's order.
INFERENCE_KEYS = (
    "validation_resize_size", "validation_crop_size",
    "min_size", "max_size", "image_size", "model_size",
    "box_score_threshold", "nms_iou_threshold", "box_detections_per_image",
    "mask_pixel_score_threshold", "max_number_of_polygon_points", "export_as_image", "image_type",
    "tile_grid_size", "tile_overlap_ratio", "tile_predictions_nms_threshold",
)
# Azure's settings.json spelling -> ours, where they differ.
AZURE_NAMES = MappingProxyType({
    "valid_resize_size": "validation_resize_size",
    "valid_crop_size": "validation_crop_size",
    "img_size": "image_size",
    "box_score_thresh": "box_score_threshold",
    "nms_iou_thresh": "nms_iou_threshold",
    "box_detections_per_img": "box_detections_per_image",
    "tile_predictions_nms_thresh": "tile_predictions_nms_threshold",
})
_AZURE_NAME_OF = MappingProxyType({ours: azure for azure, ours in AZURE_NAMES.items()})
# Keys of a settings.json that describe the model rather than set anything.
DESCRIPTION_KEYS = ("task", "model_name", "labels")
# The settings a prediction reads after the model has run, per task (the others, min_size,
# nms_iou_threshold..., are built into the model); a tile grid adds TILING_KEYS.
_DETECTION_KEYS = ("box_score_threshold", "box_detections_per_image")
PREDICTION_KEYS = MappingProxyType({
    MULTICLASS: ("validation_resize_size", "validation_crop_size"),
    MULTILABEL: ("validation_resize_size", "validation_crop_size"),
    DETECTION: _DETECTION_KEYS,
    SEGMENTATION: _DETECTION_KEYS + ("mask_pixel_score_threshold", "max_number_of_polygon_points",
                                     "export_as_image", "image_type"),
})
TILING_KEYS = ("tile_overlap_ratio", "tile_predictions_nms_threshold")


def inference_keys(task: str, model_name: str) -> list[str]:
    """The inference settings of a task and model, as training parameter names."""
    return [key for key in INFERENCE_KEYS if PARAMETERS[key].applies_to(task, model_name)]


def settings_json(task: str, params: Mapping[str, Any], labels: list[str]) -> dict[str, Any]:
    """The whole settings.json a trial writes: task, model and labels, then :func:`inference_settings`."""
    return {"task": task, "model_name": params["model_name"], "labels": list(labels),
            **inference_settings(task, params)}


def inference_settings(task: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings.json content of SPEC section 9 for a trained model, Azure's spellings.

    Args:
        task: the model's task.
        params: its resolved training parameters (they hold ``model_name``).

    Returns:
        ``{"valid_resize_size": 256, "valid_crop_size": 224}`` for a classifier,
        ``{"min_size": ..., "box_score_thresh": ...}`` for a detector, and so on.

    Example:
        >>> from automl_nb.spec import resolve_parameters
        >>> inference_settings("image_classification", resolve_parameters("image_classification", {}))
        {'valid_resize_size': 256, 'valid_crop_size': 224}
    """
    return {_AZURE_NAME_OF.get(key, key): params.get(key) for key in inference_keys(task, params["model_name"])}


def check_settings(task: str, model_name: str, given: Mapping[str, Any], where: str = "inference setting"
                   ) -> dict[str, Any]:
    """Validate inference settings and return them with our names and canonical values.

    A None value means "not set" and leaves a setting as trained (settings.json holds None for
    keys of other tasks), except for a setting whose default is None (``tile_grid_size``),
    where None switches it off.

    Args:
        task: the model's task.
        model_name: the model.
        given: settings in either spelling (``box_score_thresh`` or ``box_score_threshold``).
        where: what the keys are, for messages.

    Returns:
        ``{training parameter name: value}``.

    Raises:
        SpecError: an unknown key (with the nearest one suggested), a training parameter that
            is not an inference setting, a setting that does not apply to the task or model,
            a value of the wrong type or out of range, or both spellings of one key.

    Example:
        >>> check_settings("image_object_detection", "fasterrcnn_resnet50_fpn", {"box_score_thresh": "0.5"})
        {'box_score_threshold': 0.5}
    """
    allowed = inference_keys(task, model_name)
    spellings = allowed + [azure for azure, ours in AZURE_NAMES.items() if ours in allowed]
    checked: dict[str, Any] = {}
    for key, value in given.items():
        name = AZURE_NAMES.get(key, key)
        if name not in INFERENCE_KEYS:
            if name in PARAMETERS:
                fail(key, f"{show(value)} is a training parameter, not an inference setting; "
                     f"allowed for {model_name}: {', '.join(allowed)}")
            unknown_key(key, where, spellings, value)
        if name in checked:
            fail(key, f"{show(value)} sets {name} a second time; give one spelling of it")
        if value is None:
            if name in allowed and default_value(name, task, model_name) is None:
                checked[name] = None
        else:
            checked[name] = coerce_value(name, value, task, model_name)
    return checked
