"""Explanation settings (SPEC section 10): the ``xai_parameters`` of a scoring request.

The one table of their names, defaults and allowed values; the predictor, ``automl_nb.explain``
and the widgets read it here. Values are checked with the same :class:`Parameter` rules as the
training hyperparameters, so messages read alike: ``xai_parameters.n_steps: 1 is out of range;
allowed: int >= 2``.

Decisions where the seeds are silent:

- A key that does not apply to the chosen algorithm (``xrai_fast`` with ``integrated_gradients``)
  or to the task (``confidence_score_threshold_multilabel`` for a multiclass model) is an error,
  as it is for training parameters; :func:`xai_keys` lists what applies.
- ``n_steps`` has no upper bound (the seed gives ``[2, inf)``); more steps cost time linearly.
- Defaults of the request-level keys follow Azure's scoring schema: algorithm ``xrai``,
  visualizations on, attributions off, multilabel threshold 0.5.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from automl_nb.errors import SpecError
from automl_nb.spec._checks import check_nested_key, fail, show, unknown_key
from automl_nb.spec.parameter import Parameter
from automl_nb.spec.tasks import CLASSIFICATION_TASKS, MULTILABEL, check_task

XAI_ALGORITHMS = ("xrai", "integrated_gradients", "guided_gradcam", "guided_backprop")
APPROXIMATION_METHODS = ("riemann_middle", "gausslegendre")
_CLASSIFICATION = {"tasks": CLASSIFICATION_TASKS}

# The request key that switches explanations on (beside ``xai_parameters``).
MODEL_EXPLAINABILITY = Parameter("model_explainability", "bool",
                                 "Return explanations with the predictions.", default=False, **_CLASSIFICATION)

_TABLE = (
    # --- every algorithm
    Parameter("xai_algorithm", "choice", "Attribution method.",
              default="xrai", choices=XAI_ALGORITHMS, **_CLASSIFICATION),
    Parameter("visualizations", "bool", "Return the 2x2 explanation figure as a base64 PNG.",
              default=True, **_CLASSIFICATION),
    Parameter("attributions", "bool", "Return the attribution maps, [3, valid_crop_size, valid_crop_size] each.",
              default=False, **_CLASSIFICATION),
    Parameter("confidence_score_threshold_multilabel", "float",
              "Multilabel: explain each label whose probability reaches this.",
              default=0.5, minimum=0, maximum=1, tasks=(MULTILABEL,)),
    # --- algorithm-specific (see ALGORITHM_KEYS)
    Parameter("n_steps", "int", "Integration steps of integrated gradients (also inside xrai); "
              "attributions converge after about 50.", default=50, minimum=2, **_CLASSIFICATION),
    Parameter("xrai_fast", "bool", "The fast variant of XRAI: rank segments once instead of greedily "
              "(faster, less precise).", default=True, **_CLASSIFICATION),
    Parameter("approximation_method", "choice", "How integrated gradients approximates the integral.",
              default="riemann_middle", choices=APPROXIMATION_METHODS, **_CLASSIFICATION),
)
XAI_PARAMETERS: Mapping[str, Parameter] = MappingProxyType({p.name: p for p in _TABLE})

# The settings of each algorithm (guided backprop and guided Grad-CAM take none).
ALGORITHM_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "xrai": ("n_steps", "xrai_fast"),
    "integrated_gradients": ("n_steps", "approximation_method"),
    "guided_gradcam": (),
    "guided_backprop": (),
})
_REQUEST_KEYS = ("xai_algorithm", "visualizations", "attributions", "confidence_score_threshold_multilabel")
_WHERE = "xai_parameters"


def xai_keys(algorithm: str, task: str) -> list[str]:
    """The ``xai_parameters`` keys that apply to an algorithm and task, in table order.

    Example:
        >>> xai_keys("integrated_gradients", "image_classification")
        ['xai_algorithm', 'visualizations', 'attributions', 'n_steps', 'approximation_method']
    """
    applicable = set(_REQUEST_KEYS) | set(ALGORITHM_KEYS[algorithm])
    return [name for name, param in XAI_PARAMETERS.items() if name in applicable and task in param.tasks]


def check_method_parameters(algorithm: Any, given: Mapping[str, Any], task: str = CLASSIFICATION_TASKS[0],
                            where: str = _WHERE) -> tuple[str, dict[str, Any]]:
    """Validate an algorithm and its own settings; fill in the defaults of the ones not given.

    This is what the Python API (``automl_nb.explain.explain``) checks: the algorithm and its
    settings only, without the request keys.

    Args:
        algorithm: one of :data:`XAI_ALGORITHMS` (any case: ``IntegratedGradients`` works).
        given: settings of that algorithm, e.g. ``{"n_steps": 20}``; None values mean "default".
        task: the model's task (choices do not depend on it; kept for messages).
        where: what the keys belong to, the start of their path in messages (``""``: the bare key).

    Returns:
        ``(algorithm, {setting: value})`` in canonical form, every setting of the algorithm present.

    Raises:
        SpecError: an unknown algorithm or key, a key of another algorithm, or a bad value,
            naming the key, the value and what is allowed.

    Example:
        >>> check_method_parameters("xrai", {"n_steps": "20"})
        ('xrai', {'n_steps': 20, 'xrai_fast': True})
    """
    algorithm = _coerce("xai_algorithm", algorithm, task, where)
    own = ALGORITHM_KEYS[algorithm]
    checked: dict[str, Any] = {}
    for key, value in given.items():
        if key not in own:
            _not_applicable(key, value, algorithm, own, where)
        if value is not None:
            checked[key] = _coerce(key, value, task, where)
    return algorithm, {key: checked.get(key, XAI_PARAMETERS[key].default) for key in own}


def check_xai_parameters(xai_parameters: Mapping[str, Any] | None, task: str) -> dict[str, Any]:
    """Validate the ``xai_parameters`` of a scoring request and fill in the defaults.

    Args:
        xai_parameters: the request's mapping (None or missing: every default).
        task: the model's task, ``image_classification`` or ``image_classification_multilabel``.

    Returns:
        Every key of :func:`xai_keys` for the chosen algorithm and task, with its value.

    Raises:
        SpecError: a task other than classification, a value that is not a mapping, an unknown
            key (the nearest one suggested), a key that does not apply to the algorithm or
            the task, or a bad value; the message names the key, the value and what is allowed.

    Example:
        >>> check_xai_parameters({"xai_algorithm": "integrated_gradients", "n_steps": 20}, "image_classification")
        {'xai_algorithm': 'integrated_gradients', 'visualizations': True, 'attributions': False, 'n_steps': 20, 'approximation_method': 'riemann_middle'}
    """
    task = check_task(task)
    if task not in CLASSIFICATION_TASKS:
        fail(_WHERE, f"explanations are for classification only; {task!r} is not one of "
             f"{', '.join(CLASSIFICATION_TASKS)}")
    if xai_parameters is None:
        xai_parameters = {}
    if not isinstance(xai_parameters, Mapping):
        fail(_WHERE, f"{show(xai_parameters)} is not a mapping; allowed: an object with keys "
             f"{', '.join(XAI_PARAMETERS)}")
    for key, value in xai_parameters.items():
        check_nested_key(_WHERE, key, value, XAI_PARAMETERS, task, "explanation setting")
    request = {key: xai_parameters[key] for key in _REQUEST_KEYS if key in xai_parameters}
    algorithm = request.pop("xai_algorithm", None)
    own = {key: value for key, value in xai_parameters.items() if key not in _REQUEST_KEYS}
    algorithm, settings = check_method_parameters(XAI_PARAMETERS["xai_algorithm"].default if algorithm is None
                                                  else algorithm, own, task)
    resolved: dict[str, Any] = {"xai_algorithm": algorithm}
    for key in xai_keys(algorithm, task):
        if key in settings:
            resolved[key] = settings[key]
        elif key != "xai_algorithm":
            value = request.get(key)
            resolved[key] = XAI_PARAMETERS[key].default if value is None else _coerce(key, value, task, _WHERE)
    return resolved


def _path(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _coerce(key: str, value: Any, task: str, where: str) -> Any:
    try:
        return XAI_PARAMETERS[key].coerce(value, task)
    except SpecError as error:
        if not where:
            raise
        raise SpecError(f"{where}.{error}") from None


def _not_applicable(key: Any, value: Any, algorithm: str, own: tuple[str, ...], where: str) -> None:
    if key not in XAI_PARAMETERS:
        unknown_key(_path(where, key), f"setting of {algorithm}", own or XAI_PARAMETERS, value)
    users = [name for name, keys in ALGORITHM_KEYS.items() if key in keys]
    takes = f"{algorithm} takes " + (", ".join(own) if own else "no settings")
    if users:
        fail(_path(where, key), f"{show(value)} does not apply to {algorithm}; it is a setting of "
             f"{', '.join(users)} ({takes})")
    fail(_path(where, key), f"{show(value)} is not a setting of {algorithm} ({takes})")
