"""AutoMode: the sweep a job gets with ``max_trials > 1`` and no search space (SPEC section 5).

The system picks the region to sweep from a curated portfolio per task (see docs/automode.md):

- models that suit the hardware and the data: on ``cpu`` small, fast ones; on ``cuda`` stronger
  ones; with few images (``FEW_IMAGES``) smaller ones, which overfit less and train faster;
- per model, the learning rate on a log scale around that model's spec default
  (``LEARNING_RATE_FACTORS``), and for yolov5 its ``model_size``;
- classifiers trained from random weights take AdamW (``ADAPTIVE_OPTIMIZER``) around
  ``ADAPTIVE_LEARNING_RATE``: Azure's defaults are SGD rates for fine-tuning.

Trial 0 is the first model at its defaults, trial 1 the second model at its defaults (a
different family where the tier allows it); from then on a bayesian sampler over one subspace
per model, which has learnt from the baselines like from any other trial.

Keys the user fixed in ``training_parameters`` stay out of the portfolio (the spec forbids a key
both fixed and swept); a fixed ``model_name`` narrows the portfolio to that model. Only models
for which the fixed keys resolve are kept.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, Mapping

from automl_nb.errors import SpecError
from automl_nb.spec import (
    CLASSIFICATION_TASKS, DETECTION, MODEL_NAME, MODELS, MULTICLASS, MULTILABEL, Choice, LogUniform,
    check_parameters, check_search_space, check_task, default_value, get_parameter, resolve_parameters,
)
from automl_nb.sweep.automode_plan import fitted_batch, fitted_sizes
from automl_nb.sweep.bayesian import BayesianSampler
from automl_nb.sweep.samplers import Sampler, check_int, startup_trials

# Fewer training images than this count as "very small data": a smaller model set.
FEW_IMAGES = 500
# The learning rate is swept over [default * low, default * high] on a log scale. Azure's defaults
# sit near the top of what SGD fine-tuning tolerates, so the range reaches further below than above:
# too high a rate diverges and wastes a trial, too low a one only learns slower.
LEARNING_RATE_FACTORS = (0.25, 2.0)
# Classification trials sweep the augmentation strength over the table's choices. Multiclass
# baselines take the light one, which neither flips (digits, text) nor crops away most of a small image, yet still regularises;
# multilabel ones take none, as any crop can cut out one of the labelled objects and so make the
# label wrong (bench/quality's digit pairs: resnet18 with light reached IoU 0.23 in 10 epochs,
# resnet34 with none 0.68 in 8).
BASELINE_AUGMENTATION = MappingProxyType({MULTICLASS: "light", MULTILABEL: "none"})
# Classifiers trained from random weights (use_pretrained_model: false, optimizer and learning
# rate not fixed) take AdamW at 1e-3, the usual from-scratch recipe; adam/adamw fixed by the user
# also centre their range there, as the spec's defaults are SGD rates ten times higher.
# bench/quality, resnet18, 10 epochs: digit pairs IoU 0.87 with AdamW 1e-3, 0.57 with SGD at
# the default 0.035; digits accuracy 0.993 and 0.99.
ADAPTIVE_OPTIMIZER = "adamw"
ADAPTIVE_OPTIMIZERS = ("adam", "adamw")
ADAPTIVE_LEARNING_RATE = 1e-3
DEVICE_TIERS = MappingProxyType({"cpu": "cpu", "mps": "cpu", "cuda": "cuda"})

# Models per (task group, device tier, few images?), first two are the baselines, in order.
_CLASSIFICATION = MappingProxyType({
    ("cuda", False): ("seresnext", "vitb16r224", "resnet50"),
    ("cuda", True): ("seresnext", "resnet34", "resnet50"),
    ("cpu", False): ("resnet18", "mobilenetv2", "resnet34"),
    ("cpu", True): ("resnet18", "mobilenetv2"),
})
_DETECTION = MappingProxyType({
    ("cuda", False): ("fasterrcnn_resnet50_fpn", "yolov5", "retinanet_resnet50_fpn"),
    ("cuda", True): ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet34_fpn"),
    ("cpu", False): ("fasterrcnn_resnet18_fpn", "fasterrcnn_resnet34_fpn"),
    ("cpu", True): ("fasterrcnn_resnet18_fpn", "fasterrcnn_resnet34_fpn"),
})
_SEGMENTATION = MappingProxyType({
    ("cuda", False): ("maskrcnn_resnet50_fpn", "maskrcnn_resnet101_fpn", "maskrcnn_resnet34_fpn"),
    ("cuda", True): ("maskrcnn_resnet50_fpn", "maskrcnn_resnet34_fpn"),
    ("cpu", False): ("maskrcnn_resnet18_fpn", "maskrcnn_resnet34_fpn"),
    ("cpu", True): ("maskrcnn_resnet18_fpn", "maskrcnn_resnet34_fpn"),
})
# yolov5 sizes worth trying per tier; "extra_large" rarely pays off in 10-20 trials.
_YOLO_SIZES = MappingProxyType({"cuda": ("small", "medium", "large"), "cpu": ("small", "medium")})


def device_tier(device: str) -> str:
    """``cpu`` or ``cuda`` for a torch device string (``cuda:1`` -> ``cuda``; ``mps`` counts as ``cpu``).

    Raises:
        ValueError: for anything else.
    """
    kind = device.split(":", 1)[0].strip().lower() if isinstance(device, str) else None
    if kind not in DEVICE_TIERS:
        raise ValueError(f"device: {device!r} is not allowed; allowed: cpu, cuda, cuda:N or mps")
    return DEVICE_TIERS[kind]


def portfolio_models(task: str, *, n_images: int, device: str) -> tuple[str, ...]:
    """The curated models of a task for the data size and hardware, baselines first.

    Args:
        task: the job's task.
        n_images: the number of training images (fewer than ``FEW_IMAGES``: the small-data set).
        device: where trials train (``cpu``, ``cuda``, ``cuda:N``, ``mps``).

    Returns:
        Model names of the task, strongest first (see docs/automode.md).

    Raises:
        SpecError: unknown task.
        ValueError: invalid n_images or device.

    Example:
        >>> portfolio_models("image_classification", n_images=5000, device="cuda")
        ('seresnext', 'vitb16r224', 'resnet50')
    """
    task = check_task(task)
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 0:
        raise ValueError(f"n_images: {n_images!r} is not allowed; allowed: int >= 0")
    table = _CLASSIFICATION if task in CLASSIFICATION_TASKS else _DETECTION if task == DETECTION else _SEGMENTATION
    return table[(device_tier(device), n_images < FEW_IMAGES)]


def automode_portfolio(task: str, training_parameters: Mapping[str, Any], *, n_images: int,
                       device: str, side: int | None = None, object_side: float | None = None,
                       epochs: Mapping[str, int] | None = None) -> tuple[list[dict], list[dict]]:
    """The baselines (tried first, in order) and the search space AutoMode sweeps for the rest.

    Args:
        task: the job's task.
        training_parameters: the job's fixed training parameters; their keys stay out.
        n_images: the number of training images.
        device: where trials train (``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        side: the images' median shorter side in pixels (None: unknown); small images get sizes
            fitted to them (:func:`automl_nb.sweep.automode_plan.fitted_sizes`).
        object_side: the objects' median side in pixels (detection; None: unknown).
        epochs: planned epochs per model (:func:`automl_nb.sweep.automode_plan.planned_epochs`);
            a model not in it keeps the spec default.

    Returns:
        ``(baselines, subspaces)``: baselines are suggestions (each model at its defaults, written
        out for the swept keys); subspaces map keys to Distributions, one subspace per model,
        checked with :func:`automl_nb.spec.check_search_space`. Empty when nothing is left to sweep.

    Raises:
        SpecError: invalid training parameters, or none of the task's models fits them.
        ValueError: invalid n_images or device.

    Example:
        >>> baselines, space = automode_portfolio("image_object_detection", {}, n_images=2000, device="cuda")
        >>> baselines[0]["model_name"], len(space)
        ('fasterrcnn_resnet50_fpn', 3)
    """
    task = check_task(task)
    fixed = check_parameters(task, training_parameters)
    tier = device_tier(device)
    models = _models(task, fixed, portfolio_models(task, n_images=n_images, device=device))
    fixed_names = {get_parameter(key).maps_to or key for key in fixed}
    data = {"n_images": n_images, "side": side, "object_side": object_side, "epochs": epochs or {}}
    subspaces = [_subspace(task, model, tier, fixed, fixed_names, data) for model in models]
    baselines = [_baseline_of(task, model, subspace, fixed) for model, subspace in zip(models, subspaces)][:2]
    subspaces = [subspace for subspace in subspaces if subspace]
    return baselines, check_search_space(task, subspaces, fixed)


def _models(task: str, fixed: Mapping[str, Any], portfolio: tuple[str, ...]) -> tuple[str, ...]:
    """The portfolio's models the fixed keys resolve for (a fixed model_name is the only one)."""
    if fixed.get(MODEL_NAME) is not None:
        return (fixed[MODEL_NAME],)
    # When a fixed key rules out the whole tier (e.g. yolov5's model_size), fall back to any model
    # of the task it fits, so AutoMode still runs.
    for candidates in (portfolio, MODELS[task]):
        models = tuple(model for model in candidates if _fits(task, fixed, model))
        if models:
            return models
    raise SpecError(f"training_parameters: no model of {task} fits {dict(fixed)!r}; "
                    "set model_name or remove the keys that rule the models out")


def _fits(task: str, fixed: Mapping[str, Any], model: str) -> bool:
    try:
        resolve_parameters(task, {**fixed, MODEL_NAME: model})
    except SpecError:
        return False
    return True


def _subspace(task: str, model: str, tier: str, fixed: Mapping[str, Any], fixed_names: set[str],
              data: Mapping[str, Any]) -> dict[str, Any]:
    """One model's subspace, without the keys the user fixed.

    Besides what is swept, it pins (as one-value choices) what AutoMode fits to the data and the
    budget: sizes for small images, the batch for few images, the planned epochs.
    """
    subspace: dict[str, Any] = {}
    if MODEL_NAME not in fixed_names:
        subspace[MODEL_NAME] = Choice([model])
    if _adaptive_from_scratch(task, model, fixed, fixed_names):
        subspace["optimizer"] = Choice([ADAPTIVE_OPTIMIZER])
    if "learning_rate" not in fixed_names:
        subspace["learning_rate"] = _learning_rate_range(_learning_rate_centre(task, model, fixed, subspace))
    if get_parameter("model_size").applies_to(task, model) and "model_size" not in fixed_names:
        subspace["model_size"] = Choice(_YOLO_SIZES[tier])
    if get_parameter("augmentation").applies_to(task, model) and "augmentation" not in fixed_names:
        subspace["augmentation"] = Choice(list(get_parameter("augmentation").choices))
    fitted = {**fitted_sizes(task, model, data["side"], data["object_side"]),
              **fitted_batch(task, model, data["n_images"])}
    if model in data["epochs"]:
        fitted["number_of_epochs"] = data["epochs"][model]
    fitted = {key: value for key, value in fitted.items() if key not in fixed_names}
    if fitted and _fits(task, {**fixed, **fitted}, model):  # e.g. seresnext takes no crop but 224
        subspace.update({key: Choice([value]) for key, value in fitted.items()})
    return subspace


def _adaptive_from_scratch(task: str, model: str, fixed: Mapping[str, Any], fixed_names: set[str]) -> bool:
    """Whether AutoMode picks ``ADAPTIVE_OPTIMIZER`` for this model: a classifier from random
    weights whose optimizer and learning rate the user left open."""
    return (task in CLASSIFICATION_TASKS and not {"optimizer", "learning_rate"} & fixed_names
            and get_parameter("optimizer").applies_to(task, model)
            and not resolve_parameters(task, {**fixed, MODEL_NAME: model})["use_pretrained_model"])


def _learning_rate_centre(task: str, model: str, fixed: Mapping[str, Any], subspace: Mapping[str, Any]) -> float:
    """The baseline learning rate: ``ADAPTIVE_LEARNING_RATE`` for adam/adamw, else the spec default."""
    chosen = subspace.get("optimizer")
    optimizer = chosen.values[0] if chosen is not None else resolve_parameters(
        task, {**fixed, MODEL_NAME: model})["optimizer"]
    return ADAPTIVE_LEARNING_RATE if optimizer in ADAPTIVE_OPTIMIZERS else default_value("learning_rate", task, model)


def _learning_rate_range(centre: float) -> LogUniform:
    """Log-uniform around ``centre``, capped at the parameter's maximum."""
    low, high = (centre * factor for factor in LEARNING_RATE_FACTORS)
    maximum = get_parameter("learning_rate").maximum
    if maximum is not None:
        high = min(high, maximum)
    # LogUniform's bounds are natural-log exponents (Azure's definition).
    return LogUniform(math.log(low), math.log(high))


def _baseline_of(task: str, model: str, subspace: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """A baseline: the model with what AutoMode pinned, ``BASELINE_AUGMENTATION``, the centre of
    the learning rate range, else spec defaults."""
    baseline = {}
    for key, value in subspace.items():
        if isinstance(value, Choice) and len(value.values) == 1:
            baseline[key] = value.values[0]
        elif key == "augmentation":
            baseline[key] = BASELINE_AUGMENTATION[task]
        elif key == "learning_rate":
            baseline[key] = _learning_rate_centre(task, model, fixed, subspace)
        else:
            baseline[key] = default_value(key, task, model)
    return baseline


class _ListSampler:
    """Suggests a fixed list of points, then nothing (AutoMode with every key fixed)."""

    def __init__(self, points: list[dict]) -> None:
        self._points = points
        self.capacity: int | None = len(points)

    def suggest(self, index: int) -> dict[str, Any] | None:
        return dict(self._points[index]) if index < len(self._points) else None

    def state(self, index: int) -> dict:
        return {"algorithm": "automode_baselines", "point": index}

    def restore(self, index: int, state: dict, value: float | None, finished: bool) -> None:
        pass

    def tell(self, index: int, value: float | None) -> None:
        pass


def automode_sampler(task: str, training_parameters: Mapping[str, Any], *, n_images: int, device: str,
                     seed: int, max_trials: int, side: int | None = None, object_side: float | None = None,
                     epochs: Mapping[str, int] | None = None) -> Sampler:
    """The sampler of an AutoMode sweep: the baselines, then TPE over the portfolio.

    Args:
        task: the job's task.
        training_parameters: the job's fixed training parameters (never in suggestions).
        n_images: the number of training images.
        device: where trials train (``cpu``, ``cuda``...).
        seed: the sweep's seed.
        max_trials: the sweep's trial budget (sizes TPE's random start).
        side, object_side, epochs: as :func:`automode_portfolio`.

    Returns:
        A Sampler; ``capacity`` is the number of baselines when nothing is left to sweep.

    Raises:
        SpecError, ValueError: as :func:`automode_portfolio`, and for a non-int seed or max_trials.

    Example:
        >>> sampler = automode_sampler("image_classification", {}, n_images=5000, device="cuda",
        ...                            seed=0, max_trials=10)
        >>> sampler.suggest(0)["model_name"]
        'seresnext'
    """
    baselines, subspaces = automode_portfolio(task, training_parameters, n_images=n_images, device=device, side=side,
                                              object_side=object_side, epochs=epochs)
    check_int("seed", seed, None)
    check_int("max_trials", max_trials, 1)
    if not subspaces:
        return _ListSampler(baselines)
    return BayesianSampler(check_task(task), subspaces, seed, startup_trials(max_trials), first_points=baselines)
