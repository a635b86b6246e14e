"""``Parameter``: the record of one hyperparameter (type, range, default, where it applies) and its checks.

The records themselves are in :mod:`automl_nb.spec.table`; resolving a job's parameters against
them is :mod:`automl_nb.spec.resolve`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from automl_nb.spec._checks import did_you_mean, fail, show, snake_case, to_bool, to_float, to_int
from automl_nb.spec.tasks import MODELS, TASKS, model_family

MODEL_NAME = "model_name"
KINDS = ("int", "float", "bool", "choice", "str", "json")
_ENABLE_WORDS = ("enable", "enabled")
_DISABLE_WORDS = ("disable", "disabled")
# What a parameter's ``sagemaker_mode`` may override: its default, its bounds, and whether it is required.
SAGEMAKER_MODE_FIELDS = ("default", "minimum", "maximum", "minimum_open", "maximum_open", "required")


@dataclass(frozen=True)
class Parameter:
    """One hyperparameter: its type, range, default and where it applies.

    Attributes:
        name: the key in ``training_parameters`` / ``search_space``.
        kind: "int" | "float" | "bool" | "choice" | "str" | "json".
        description: one line for widgets and error messages.
        default: the default value (None means "not set / automatic", see the description).
        task_defaults: per-task defaults, overriding ``default``.
        model_defaults: per-model defaults (keyed by model name or family), overriding the above.
        task_model_defaults: per (task, model or family) defaults, the most specific of all.
        minimum, maximum: numeric bounds (None: unbounded); ``*_open`` makes a bound exclusive.
        choices: allowed values of a "choice" parameter; ``task_choices`` overrides them per task.
        tasks: the tasks it applies to.
        families: the model families it applies to (None: every model of those tasks).
        excluded_families: model families it does not apply to.
        sagemaker: an Amazon SageMaker object-detection key.
        maps_to: for a SageMaker spelling of one of our keys, our key.
        enable_disable: a bool also spelt "Enable"/"Disable" (Azure's log_* keys).
        format: what a "str"/"json" value looks like, for messages.
        normalise: for "str"/"json" kinds, ``f(parameter, value, task) -> value`` that checks
            and canonicalises the value.
        required: a job must give a value (so far only in SageMaker mode, see ``sagemaker_mode``).
        sagemaker_mode: what changes when a job trains SageMaker's SSD (SageMaker keys and no
            ``model_name``): a mapping of ``SAGEMAKER_MODE_FIELDS`` to SageMaker's values; a
            ``default`` there replaces every Azure default (task, model...).
        not_acted_on: for a key that is validated but not acted on yet, what happens instead; a
            job that sets it (a bool: to true) gets a warning saying so.
    """

    name: str
    kind: str
    description: str
    default: Any = field(default=None, hash=False)
    task_defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    model_defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    task_model_defaults: Mapping[tuple[str, str], Any] = field(default_factory=dict, hash=False)
    minimum: float | None = None
    maximum: float | None = None
    minimum_open: bool = False
    maximum_open: bool = False
    choices: tuple = ()
    task_choices: Mapping[str, tuple] = field(default_factory=dict, hash=False)
    tasks: tuple[str, ...] = TASKS
    families: tuple[str, ...] | None = None
    excluded_families: tuple[str, ...] = ()
    sagemaker: bool = False
    maps_to: str | None = None
    enable_disable: bool = False
    format: str | None = None
    normalise: Callable[["Parameter", Any, str], Any] | None = field(default=None, compare=False)
    required: bool = False
    sagemaker_mode: Mapping[str, Any] = field(default_factory=dict, hash=False)
    not_acted_on: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")
        unknown = sorted(set(self.sagemaker_mode) - set(SAGEMAKER_MODE_FIELDS))
        if unknown:
            raise ValueError(f"{self.name}: sagemaker_mode cannot override {unknown}; allowed: {SAGEMAKER_MODE_FIELDS}")
        # Read-only views: a Parameter is shared by every job and must not be edited.
        for name in ("task_defaults", "model_defaults", "task_model_defaults", "task_choices", "sagemaker_mode"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def in_sagemaker_mode(self) -> "Parameter":
        """This parameter as a job that trains SageMaker's SSD sees it (its ``sagemaker_mode`` applied).

        Example:
            >>> PARAMETERS["learning_rate"].in_sagemaker_mode().default_for("image_object_detection", "yolov5")
            0.001
        """
        if not self.sagemaker_mode:
            return self
        changes: dict[str, Any] = {**self.sagemaker_mode, "sagemaker_mode": {}}
        if "default" in changes:  # SageMaker's one default, whatever Azure's would be for the model
            changes.update(task_defaults={}, model_defaults={}, task_model_defaults={})
        return dataclasses.replace(self, **changes)

    # ----- where it applies
    def applies_to(self, task: str, model_name: str | None = None) -> bool:
        """True when the parameter applies to the task and (if given) the model."""
        if task not in self.tasks:
            return False
        if model_name is None:
            return any(self.applies_to(task, model) for model in MODELS[task])
        family = model_family(model_name)
        if self.families is not None and family not in self.families:
            return False
        return family not in self.excluded_families

    def applicability_text(self) -> str:
        """Where the parameter applies, e.g. ``image_object_detection with model yolov5``."""
        text = ", ".join(self.tasks)
        if self.families is not None:
            models = [m for task in self.tasks for m in MODELS[task] if model_family(m) in self.families]
            text += " with model " + ", ".join(dict.fromkeys(models))
        if self.excluded_families:
            text += " (not with " + ", ".join(self.excluded_families) + " models)"
        if self.sagemaker:
            text += " (an Amazon SageMaker object-detection key)"
        return text

    # ----- values
    def allowed_choices(self, task: str) -> tuple:
        """The allowed values of a "choice" parameter for a task."""
        return tuple(self.task_choices.get(task, self.choices))

    def default_for(self, task: str, model_name: str) -> Any:
        """The default for a task and model (most specific override wins); a fresh copy."""
        family = model_family(model_name)
        for key in ((task, model_name), (task, family)):
            if key in self.task_model_defaults:
                return copy.deepcopy(self.task_model_defaults[key])
        for key in (model_name, family):
            if key in self.model_defaults:
                return copy.deepcopy(self.model_defaults[key])
        if task in self.task_defaults:
            return copy.deepcopy(self.task_defaults[task])
        return copy.deepcopy(self.default)

    def in_range(self, number: float) -> bool:
        """True when a number lies within the bounds (open or closed)."""
        if self.minimum is not None:
            if number < self.minimum or (self.minimum_open and number == self.minimum):
                return False
        if self.maximum is not None:
            if number > self.maximum or (self.maximum_open and number == self.maximum):
                return False
        return True

    def clip(self, number: float) -> float:
        """Move a number to the nearest value within the bounds (for unbounded distributions)."""
        low, high = self.minimum, self.maximum
        if low is not None and number <= low:
            number = low
            if self.minimum_open:
                number = low + 1 if self.kind == "int" else math.nextafter(low, math.inf)
        if high is not None and number >= high:
            number = high
            if self.maximum_open:
                number = high - 1 if self.kind == "int" else math.nextafter(high, -math.inf)
        return number

    def allowed_text(self, task: str | None = None) -> str:
        """What values are allowed, for messages: ``float in [0, 1]``, ``one of sgd, adam``..."""
        if self.kind in ("int", "float"):
            return _bounds_text(self.kind, self.minimum, self.maximum, self.minimum_open, self.maximum_open)
        if self.kind == "bool":
            if self.enable_disable:
                return "'Enable' or 'Disable' (or a bool)"
            return "bool (true/false or 1/0)"
        if self.kind == "choice":
            values = self.allowed_choices(task) if task else self.choices
            return "one of " + ", ".join(str(v) for v in values)
        return self.format or "string"

    def coerce(self, value: Any, task: str) -> Any:
        """Check one value and return it in canonical form (int, float, bool, lower-case choice...).

        Args:
            value: the value as the user, YAML or a sampler gave it.
            task: the job's task (choices may depend on it).

        Returns:
            The canonical value.

        Raises:
            SpecError: ``key: value is ...; allowed: ...``.
        """
        allowed = self.allowed_text(task)
        if self.kind in ("int", "float"):
            try:
                number = to_int(value) if self.kind == "int" else to_float(value)
            except ValueError:
                fail(self.name, f"{show(value)} is not a{'n' if self.kind == 'int' else ''} {self.kind}; allowed: {allowed}")
            if not self.in_range(number):
                fail(self.name, f"{show(value)} is out of range; allowed: {allowed}")
            return number
        if self.kind == "bool":
            extra = (_ENABLE_WORDS, _DISABLE_WORDS) if self.enable_disable else ((), ())
            try:
                return to_bool(value, *extra)
            except ValueError:
                fail(self.name, f"{show(value)} is not a bool; allowed: {allowed}")
        if self.kind == "choice":
            return self._coerce_choice(value, task)
        if self.kind == "str":
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                fail(self.name, f"{show(value)} is not a string; allowed: {allowed}")
            value = value.strip()
        return self.normalise(self, value, task) if self.normalise else value

    def _coerce_choice(self, value: Any, task: str) -> Any:
        allowed_values = self.allowed_choices(task)
        if all(isinstance(v, int) for v in allowed_values):
            try:
                candidates = [to_int(value)]
            except ValueError:
                candidates = []
        elif isinstance(value, str):
            candidates = [value.strip().lower(), snake_case(value)]
        else:
            candidates = []
        for candidate in candidates:
            if candidate in allowed_values:
                return candidate
        message = f"{show(value)} is not allowed; allowed: {self.allowed_text(task)}"
        other_tasks = [t for t in self.task_choices if t != task and any(c in self.task_choices[t] for c in candidates)]
        if other_tasks and self.name != MODEL_NAME:
            message += f" ({show(value)} is allowed only for {', '.join(other_tasks)})"
        if self.name == MODEL_NAME:
            message = f"{show(value)} is not a model for {task}; allowed: {self.allowed_text(task)}"
        if isinstance(value, str):
            message += did_you_mean(value, [str(v) for v in allowed_values])
        fail(self.name, message)


def _bounds_text(kind: str, low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high:g}"
    return kind
