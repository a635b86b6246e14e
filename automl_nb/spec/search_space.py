"""Search spaces: parse them and check every key and distribution against the parameter table.

A search space is a list of subspaces (a single mapping is a list of one). Each subspace maps
hyperparameter names to a distribution or a fixed value; a subspace with ``model_name`` (always
a ``choice``) is a conditional space for those models, one without it is for the model fixed in
``training_parameters`` or else the task's default model.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from automl_nb.errors import SpecError
from automl_nb.spec._checks import fail, show
from automl_nb.spec.distributions import Choice, Distribution, as_distribution, check_distribution
from automl_nb.spec.parameter import MODEL_NAME
from automl_nb.spec.resolve import (
    check_applies, coerce_in_mode, get_parameter, in_mode, is_sagemaker_mode, resolve_with_sampled,
)
from automl_nb.spec.table import PARAMETERS
from automl_nb.spec.tasks import DEFAULT_MODEL, check_task


@contextmanager
def in_subspace(index: int) -> Iterator[None]:
    """Prefix the key of any SpecError raised inside with ``search_space[index].``."""
    try:
        yield
    except SpecError as error:
        raise SpecError(f"search_space[{index}].{error}") from None


def parse_search_space(value: Any, first_index: int = 0) -> list[dict[str, Any]]:
    """Turn a mapping, a list of mappings, or objects into a list of subspaces.

    Values that are distributions (our classes, ``{type: ...}`` mappings, or objects with a
    distribution ``type`` such as azure-ai-ml's) become Distribution objects; the rest stay
    fixed values. Objects (e.g. azure-ai-ml ``ImageClassificationSearchSpace``) contribute their
    public attributes that are not None.

    Args:
        value: one subspace or a list of them.
        first_index: the index of the first subspace in the job, for messages.

    Returns:
        A new list of new dicts.

    Raises:
        SpecError: for a value that is not a subspace, or a malformed distribution.
    """
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    subspaces = []
    for index, item in enumerate(items, start=first_index):
        if not isinstance(item, Mapping):
            if isinstance(item, (str, bytes, int, float)) or not hasattr(item, "__dict__"):
                fail(f"search_space[{index}]", f"{show(item)} is not a mapping of parameter names to distributions")
            item = {key: val for key, val in vars(item).items() if not key.startswith("_") and val is not None}
        if not item:
            fail(f"search_space[{index}]", "empty subspace; give at least one parameter (e.g. model_name)")
        with in_subspace(index):
            subspace = {}
            for key, val in item.items():
                dist = as_distribution(val, str(key))
                subspace[str(key)] = dist if dist is not None else val
            subspaces.append(subspace)
    return subspaces


def subspace_models(task: str, subspace: Mapping[str, Any], training_parameters: Mapping[str, Any]) -> tuple[str, ...]:
    """The models a subspace's trials may use: its model_name choice, else the fixed or default model."""
    model = subspace.get(MODEL_NAME)
    if isinstance(model, Choice):
        return tuple(model.values)
    fixed = training_parameters.get(MODEL_NAME)
    return (fixed if fixed is not None else DEFAULT_MODEL[check_task(task)],)


def check_search_space(task: str, subspaces: list[Mapping[str, Any]],
                       training_parameters: Mapping[str, Any], first_index: int = 0) -> list[dict[str, Any]]:
    """Check each subspace against the table, its models and the fixed training parameters.

    Args:
        task: the job's task.
        subspaces: as returned by :func:`parse_search_space`.
        training_parameters: the job's fixed (already checked) training parameters.
        first_index: the index of the first subspace in the job, for messages.

    Returns:
        New subspaces with canonical fixed values and choice values.

    Raises:
        SpecError: ``search_space[i].key: ...`` for an unknown key, a key that does not apply to
            the task or to one of the subspace's models, a key also fixed in
            training_parameters, a model_name that is not a choice, a distribution that can
            give values the parameter does not allow, or a broken cross-field rule among
            fixed values.
    """
    task = check_task(task)
    checked = []
    for index, subspace in enumerate(subspaces, start=first_index):
        with in_subspace(index):
            checked.append(_check_subspace(task, subspace, training_parameters))
    return checked


def own_name(key: str) -> str:
    """A parameter's own name: a SageMaker alias's (``epochs`` -> ``number_of_epochs``), else ``key``."""
    parameter = PARAMETERS.get(key)
    return (parameter.maps_to if parameter is not None else None) or key


def _check_subspace(task: str, subspace: Mapping[str, Any], training_parameters: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if MODEL_NAME in subspace:
        model = subspace[MODEL_NAME]
        if not isinstance(model, Choice):
            fail(MODEL_NAME, f"{show(model)} is not a choice; write model_name as "
                 f"{{type: choice, values: [{model if isinstance(model, str) else '...'}]}}")
        if training_parameters.get(MODEL_NAME) is not None:
            fail(MODEL_NAME, f"{show(model.values)} is also fixed in training_parameters "
                 f"({training_parameters[MODEL_NAME]!r}); set it in one place")
        result[MODEL_NAME] = check_distribution(PARAMETERS[MODEL_NAME], model, task)
    models = subspace_models(task, result, training_parameters)
    sagemaker_mode = is_sagemaker_mode({**training_parameters, **subspace})
    fixed_names = {own_name(key) for key in training_parameters}
    seen: dict[str, str] = {}
    for key, value in subspace.items():
        if key == MODEL_NAME:
            continue
        param = get_parameter(key, value)
        ours = own_name(key)
        if ours in fixed_names:
            fail(key, f"{show(_plain(value))} is also set in training_parameters; set it in one place")
        if ours in seen:
            fail(key, f"{show(_plain(value))} repeats {seen[ours]} ({key} is SageMaker's name for {ours}); give one of them")
        seen[ours] = key
        check_applies(param, _plain(value), task, None)
        for model in models:
            check_applies(param, _plain(value), task, model)
        if isinstance(value, Distribution):
            result[key] = check_distribution(in_mode(param, sagemaker_mode), value, task, key)
            if param.maps_to:  # an alias's values must also suit the key it sets
                check_distribution(in_mode(PARAMETERS[ours], sagemaker_mode), result[key], task, key)
        else:
            result[key] = coerce_in_mode(param, value, task, sagemaker_mode)
    _check_fixed_part(task, result, training_parameters, models)
    return result


def _check_fixed_part(task: str, subspace: Mapping[str, Any], training_parameters: Mapping[str, Any],
                      models: tuple[str, ...]) -> None:
    """Resolve the fixed values for each model so cross-field rules among them are checked now."""
    fixed = {**training_parameters}
    sampled = set()
    for key, value in subspace.items():
        if key == MODEL_NAME:
            continue
        if isinstance(value, Distribution):
            sampled.add(own_name(key))
        else:
            fixed[key] = value
    # A subspace that names no model leaves it unnamed, as its trials will (SageMaker's SSD may train).
    named = MODEL_NAME in subspace or training_parameters.get(MODEL_NAME) is not None
    for model in models:
        resolve_with_sampled(task, {**fixed, MODEL_NAME: model} if named else fixed, sampled=frozenset(sampled))


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Distribution) else value


def check_grid(subspaces: list[Mapping[str, Any]]) -> None:
    """Grid sampling enumerates values: every distribution must be a choice.

    Raises:
        SpecError: ``search_space[i].key: grid sampling needs choice ...``.
    """
    for index, subspace in enumerate(subspaces):
        for key, value in subspace.items():
            if isinstance(value, Distribution) and not isinstance(value, Choice):
                fail(f"search_space[{index}].{key}", f"{show(_plain(value))} is a {value.type} distribution; grid "
                     "sampling needs choice distributions (e.g. {type: choice, values: [...]}); "
                     "use random or bayesian sampling for continuous ones")


def search_space_to_list(subspaces: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the YAML form: distributions as ``{type: ...}`` mappings, fixed values as they are."""
    return [{key: _plain(value) for key, value in subspace.items()} for subspace in subspaces]
