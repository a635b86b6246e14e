"""Resolving a job's training parameters against the table: look-ups, defaults, checks and cross-field rules."""

from __future__ import annotations

from typing import Any, Mapping

from automl_nb.spec._checks import fail, show, unknown_key
from automl_nb.spec.parameter import MODEL_NAME, Parameter
from automl_nb.spec.table import FREEZE_LAYER_ORDER, PARAMETERS
from automl_nb.spec.tasks import DEFAULT_MODEL, check_model, check_task, model_family


def get_parameter(name: Any, value: Any = None) -> Parameter:
    """Return the Parameter of a key.

    Args:
        name: a training parameter name (ours or a SageMaker one).
        value: the value given with it, named in the message of an unknown key.

    Raises:
        SpecError: for an unknown key, with the nearest known key suggested.
    """
    if isinstance(name, str) and name in PARAMETERS:
        return PARAMETERS[name]
    unknown_key(name, "training parameter", PARAMETERS, value)


def parameters_for(task: str, model_name: str | None = None, *, include_aliases: bool = False) -> list[Parameter]:
    """Return the parameters that apply to a task (and model), in table order.

    Args:
        task: one of ``TASKS``.
        model_name: a model of the task; None lists what applies to any model of the task.
        include_aliases: also list SageMaker spellings of our keys (``epochs``...).

    Returns:
        A list of Parameter.

    Raises:
        SpecError: for an unknown task or a model that does not fit it.

    Example:
        >>> [p.name for p in parameters_for("image_object_detection", "yolov5")][:2]
        ['model_name', 'number_of_epochs']
    """
    task = check_task(task)
    if model_name is not None:
        model_name = check_model(task, model_name)
    return [p for p in PARAMETERS.values()
            if p.applies_to(task, model_name) and (include_aliases or p.maps_to is None)]


def default_value(name: str, task: str, model_name: str | None = None, *, sagemaker_mode: bool = False) -> Any:
    """Return the default of a parameter for a task and model.

    Args:
        name: the parameter (a SageMaker alias gives the default of our key).
        task: one of ``TASKS``.
        model_name: a model of the task; None means the task's default model.
        sagemaker_mode: the default of a job that trains SageMaker's SSD (seed 001's), see
            :func:`is_sagemaker_mode`.

    Returns:
        The default (None means "not set / automatic").

    Raises:
        SpecError: for an unknown name, task or model, or a parameter that does not apply.

    Example:
        >>> default_value("learning_rate", "image_classification", "vitb16r224")
        0.0125
        >>> default_value("learning_rate", "image_object_detection", sagemaker_mode=True)
        0.001
    """
    param = get_parameter(name)
    task = check_task(task)
    model_name = check_model(task, model_name if model_name is not None else DEFAULT_MODEL[task])
    if param.maps_to:
        param = PARAMETERS[param.maps_to]
    check_applies(param, ..., task, model_name)
    return in_mode(param, sagemaker_mode).default_for(task, model_name)


def is_sagemaker_mode(given: Mapping[str, Any]) -> bool:
    """Whether parameters describe a job that trains SageMaker's SSD: a SageMaker key and no model_name.

    Such a job takes seed 001's defaults and ranges (each parameter's ``sagemaker_mode``).

    Args:
        given: the parameters a user set (None values count as not set).

    Example:
        >>> is_sagemaker_mode({"epochs": 30}), is_sagemaker_mode({"epochs": 30, "model_name": "yolov5"})
        (True, False)
    """
    if not isinstance(given, Mapping) or given.get(MODEL_NAME) is not None:
        return False
    return any(value is not None and key in PARAMETERS and PARAMETERS[key].sagemaker for key, value in given.items())


def in_mode(param: Parameter, sagemaker_mode: bool) -> Parameter:
    """The parameter as a job in that mode sees it (:meth:`Parameter.in_sagemaker_mode` when true)."""
    return param.in_sagemaker_mode() if sagemaker_mode else param


def check_applies(param: Parameter, value: Any, task: str, model_name: str | None) -> None:
    """Raise unless the parameter applies to the task (and the model, when given).

    Args:
        param: the parameter.
        value: the value given, for the message (``...`` when there is none).
        task: the job's task.
        model_name: the model, or None to check the task only.

    Raises:
        SpecError: ``key: value does not apply to ...; it applies only to ...``.
    """
    shown = "" if value is ... else f"{show(value)} "
    if task not in param.tasks:
        message = f"{shown}does not apply to {task}; it applies only to {param.applicability_text()}"
        if param.maps_to:
            message += f"; for {task} use {param.maps_to}"
        fail(param.name, message)
    if model_name is not None and not param.applies_to(task, model_name):
        fail(param.name, f"{shown}does not apply to model {model_name}; it applies only to "
             f"{param.applicability_text()}")


def coerce_value(name: str, value: Any, task: str, model_name: str | None = None) -> Any:
    """Check one key and value for a task (and model) and return the canonical value.

    Raises:
        SpecError: unknown key, key not for this task/model, wrong type or out of range.
    """
    param = get_parameter(name, value)
    check_applies(param, value, task, None)
    value = param.coerce(value, task)
    if model_name is not None:
        check_applies(param, value, task, model_name)
    return value


def check_parameters(task: str, given: Mapping[str, Any], model_name: str | None = None) -> dict[str, Any]:
    """Validate the keys and values a user set and return them coerced, keys as given.

    Model applicability is checked against ``given["model_name"]``, else ``model_name``; when
    both are None (a sweep will choose the model) only the task is checked. SageMaker aliases
    are kept as spelt but must not contradict our key, and must fit its range too. Values are
    checked against SageMaker's ranges when ``given`` is in SageMaker mode
    (:func:`is_sagemaker_mode`).

    Args:
        task: one of ``TASKS``.
        given: the parameters; a None value means "not set" and is dropped.
        model_name: the model to check against when ``given`` names none.

    Returns:
        A new dict of the given keys with canonical values.

    Raises:
        SpecError: naming the key, the value and what is allowed.
    """
    task = check_task(task)
    if not isinstance(given, Mapping):
        fail("training_parameters", f"{show(given)} is not a mapping of parameter names to values")
    sagemaker_mode = is_sagemaker_mode(given)
    values = {}
    for key, value in given.items():
        if value is None:
            continue
        param = get_parameter(key, value)
        check_applies(param, value, task, None)
        values[key] = coerce_in_mode(param, value, task, sagemaker_mode)
    model = values.get(MODEL_NAME, model_name)
    if model is not None:
        model = check_model(task, model)
        for key in values:
            check_applies(PARAMETERS[key], given[key], task, model)
    _check_aliases(values)
    return values


def coerce_in_mode(param: Parameter, value: Any, task: str, sagemaker_mode: bool) -> Any:
    """Coerce a value with the parameter's range in the job's mode; an alias must fit our key's range too.

    Args:
        param: the parameter (ours or a SageMaker alias).
        value: the value given.
        task: the job's task.
        sagemaker_mode: whether the job trains SageMaker's SSD (:func:`is_sagemaker_mode`).

    Returns:
        The canonical value.

    Raises:
        SpecError: ``key: value is out of range; allowed: ...`` (and the other coercion errors).

    Example:
        >>> coerce_in_mode(PARAMETERS["overlap_threshold"], 0.05, "image_object_detection", True)
        Traceback (most recent call last):
        SpecError: overlap_threshold: 0.05 is out of range; allowed: float in [0.1, 1] (overlap_threshold sets ...
    """
    param = in_mode(param, sagemaker_mode)
    value = param.coerce(value, task)
    if param.maps_to and param.kind in ("int", "float"):
        ours = in_mode(PARAMETERS[param.maps_to], sagemaker_mode)
        if not ours.in_range(value):
            fail(param.name, f"{show(value)} is out of range; allowed: {ours.allowed_text(task)} "
                 f"({param.name} sets {ours.name}, whose range this is)")
    return value


def check_required(task: str, given: Mapping[str, Any]) -> None:
    """Raise unless every parameter required in the job's mode has a value.

    Only SageMaker mode requires keys so far: seed 001 makes ``num_classes`` and
    ``num_training_samples`` required for its detector.

    Args:
        task: the job's task.
        given: what the job sets (fixed values, and a subspace's distributions).

    Raises:
        SpecError: ``key: missing; ...`` naming what the key is and how to proceed.
    """
    sagemaker_mode = is_sagemaker_mode(given)
    for param in PARAMETERS.values():
        if task not in param.tasks or not in_mode(param, sagemaker_mode).required or given.get(param.name) is not None:
            continue
        if sagemaker_mode:
            fail(param.name, f"missing; a job with SageMaker keys and no model_name trains SageMaker's SSD, "
                 f"which requires {param.name} ({param.allowed_text(task)}); add it, or set model_name to "
                 "train another detector")
        fail(param.name, f"missing; allowed: {param.allowed_text(task)}")


def _check_aliases(values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        ours = PARAMETERS[key].maps_to
        if ours and ours in values and values[ours] != value:
            fail(key, f"{show(value)} contradicts {ours}: {show(values[ours])}; {key} is SageMaker's "
                 f"name for {ours}, give one of them")


# SageMaker keys that configure its SSD detector. A job with SageMaker keys and no model_name
# trains that SSD; its resolved parameters then hold these keys (see :func:`uses_sagemaker_ssd`).
SSD_KEYS = ("base_network", "image_shape")


def uses_sagemaker_ssd(params: Mapping[str, Any]) -> bool:
    """Whether resolved parameters describe SageMaker's SSD rather than ``model_name``."""
    return "base_network" in params


def resolve_parameters(task: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Validate training parameters and return every parameter of the task and model.

    Args:
        task: one of ``TASKS``.
        given: what the user set or a sweep sampled; without ``model_name`` the task's default
            model is used. SageMaker aliases are mapped onto our keys.

    Returns:
        A new dict, in table order, with the given values coerced and every other parameter
        that applies to the task and model set to its default.

    Raises:
        SpecError: unknown key (with a suggestion), wrong type, out of range, not in the
            choices, a key that does not apply to the task or model, a SageMaker key that
            contradicts ours, or a cross-field rule (ViT crops, seresnext sizes,
            layers_to_freeze).

    Example:
        >>> resolve_parameters("image_object_detection", {"model_name": "yolov5"})["number_of_epochs"]
        30
    """
    return resolve_with_sampled(task, given, sampled=())


def resolve_with_sampled(task: str, given: Mapping[str, Any], sampled: tuple | frozenset = ()) -> dict[str, Any]:
    """Like :func:`resolve_parameters`, but skip cross-field rules that involve ``sampled`` keys.

    Used to check the fixed part of a search space before its distributions are sampled.
    """
    task = check_task(task)
    model = check_model(task, given.get(MODEL_NAME) or DEFAULT_MODEL[task]) if isinstance(given, Mapping) else None
    values = check_parameters(task, given, model)
    any_sagemaker_key = any(PARAMETERS[key].sagemaker for key in values)
    named_model = isinstance(given, Mapping) and given.get(MODEL_NAME) is not None
    sagemaker_mode = is_sagemaker_mode(given)
    if any_sagemaker_key and named_model:
        for key in SSD_KEYS:
            if key in values:
                fail(key, f"{show(given[key])} sets up SageMaker's SSD detector, but model_name "
                     f"{show(model)} was given; drop one of them")
    for key in list(values):
        ours = PARAMETERS[key].maps_to
        if ours:
            values.setdefault(ours, values.pop(key))
    resolved = {}
    for param in PARAMETERS.values():
        if param.maps_to or not param.applies_to(task, model):
            continue
        if param.sagemaker and (not any_sagemaker_key or (named_model and param.name in SSD_KEYS)):
            continue
        value = in_mode(param, sagemaker_mode).default_for(task, model)
        if param.name in values:
            value = {**value, **values[param.name]} if param.kind == "json" else values[param.name]
        resolved[param.name] = value
    resolved[MODEL_NAME] = model
    _check_rules(task, model, resolved, frozenset(sampled))
    return resolved


def _check_rules(task: str, model: str, params: Mapping[str, Any], sampled: frozenset) -> None:
    """Cross-field rules; a rule is skipped when a sweep will sample one of its keys."""
    family = model_family(model)
    crops = ("training_crop_size", "validation_crop_size")
    if family == "vit" and not sampled.intersection(crops):
        if params[crops[0]] != params[crops[1]]:
            fail(crops[0], f"{show(params[crops[0]])} differs from validation_crop_size "
                 f"{show(params[crops[1]])}; ViT models ({model}) need equal training and validation crop sizes")
    if family == "seresnext":
        for key in crops:
            required = PARAMETERS[key].default_for(task, model)
            if key not in sampled and params[key] != required:
                fail(key, f"{show(params[key])} is not allowed for seresnext, which takes no arbitrary size; "
                     f"allowed: {required}")
    freeze = params.get("layers_to_freeze")
    groups = FREEZE_LAYER_ORDER.get(family, ())
    if freeze is not None and "layers_to_freeze" not in sampled and groups and freeze > len(groups):
        fail("layers_to_freeze", f"{show(freeze)} is out of range for {model}, which has {len(groups)} "
             f"layer groups; allowed: int in [1, {len(groups)}]")
