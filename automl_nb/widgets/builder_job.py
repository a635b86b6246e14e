"""The builder's plain state: what the form holds, every problem at once, and the job it makes.

No ipywidgets here. :class:`BuilderChoices` is what the form holds; :func:`check_choices` checks
each field on its own with the spec's own checks (so every invalid field is listed, not only
the first), then the job as a whole, and writes the YAML preview, which leaves out what is
invalid instead of showing a value the field does not hold; :func:`build_job` is the job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from automl_nb.errors import AutoMLError, SpecError
from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME
from automl_nb.spec.limits import LIMIT_KEYS, Limits
from automl_nb.spec.sweep_settings import Sweep
from automl_nb.widgets.editors import parse_value

MISSING_TRAINING_DATA = "training_data: missing; type the path of a JSONL file or MLTable folder"
INVALID_HEADER = "not valid yet (an invalid field is left out of the YAML below):"
# What a new builder shows: the spec's defaults.
_LIMITS, _SWEEP = Limits(), Sweep()


@dataclass
class BuilderChoices:
    """Everything the builder's widgets hold, as plain values.

    Attributes:
        task: one of the four tasks.
        training_data, validation_data: paths or URLs (validation optional: "" for none).
        target_column_name: the label key.
        models: the chosen models (empty: the task's default model, or AutoMode's choice).
        parameters: one ParameterChoice per edited hyperparameter.
        max_trials, max_concurrent_trials, timeout_minutes: the limits.
        sampling_algorithm: random, grid or bayesian.
        early_termination: ``{"type": ..., field: value}`` or None.
        name: the job's name ("" for none).
    """

    task: str
    training_data: str = ""
    target_column_name: str = DEFAULT_TARGET_COLUMN_NAME
    validation_data: str = ""
    models: tuple = ()
    parameters: list = field(default_factory=list)
    max_trials: Any = _LIMITS.max_trials
    max_concurrent_trials: Any = _LIMITS.max_concurrent_trials
    timeout_minutes: Any = None
    sampling_algorithm: str = _SWEEP.sampling_algorithm
    early_termination: dict | None = None
    name: str = ""


@dataclass(frozen=True)
class FieldError:
    """One problem of the form, in the spec's words.

    Attributes:
        key: the field (``learning_rate``, ``max_trials``, ``early_termination.slack_factor``...).
        value: what the field holds (None for a problem of the job as a whole).
        message: the spec's message: ``key: value is ...; allowed: ...``.
    """

    key: str
    value: Any
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CheckedChoices:
    """The choices after :func:`check_choices`.

    Attributes:
        errors: every problem, fields first in the form's order, then the job's own.
        yaml: the preview: the job's YAML; when invalid, what is valid of it, with a comment
            line per problem and the invalid fields left out.
        job: the validated job, or None while there are errors.
    """

    errors: tuple[FieldError, ...]
    yaml: str
    job: Any


def check_choices(choices: BuilderChoices) -> CheckedChoices:
    """Check every field on its own, then the job they make; write the preview.

    Example:
        >>> checked = check_choices(BuilderChoices("image_classification", "data/shapes", max_trials="0"))
        >>> [error.key for error in checked.errors]
        ['max_trials']
    """
    errors = _field_errors(choices)
    invalid = {error.key for error in errors}
    job = None
    try:
        job = _assemble(_without(choices, invalid))
        if not errors:  # whole-job checks only once each field is valid: a left-out field changes the job
            job.validate()
    except AutoMLError as error:
        message = str(error)
        errors.append(FieldError(message.split(":", 1)[0], None, message))
    if errors:
        comments = [INVALID_HEADER, *(error.message for error in errors)]
        return CheckedChoices(tuple(errors), _preview(job, comments, invalid), None)
    return CheckedChoices((), _preview(job, _notes(choices, job), invalid), job)


def build_job(choices: BuilderChoices):
    """The job the choices describe, validated.

    One model and only fixed values make a single trial (``training_parameters``). Several
    models or any distribution make a sweep: one subspace with ``model_name`` as a choice when
    every edited hyperparameter applies to every model, else one subspace per model with the
    hyperparameters that apply to it.

    Raises:
        SpecError: one line per problem, each naming the key, the value and what is allowed.

    Example:
        >>> build_job(BuilderChoices("image_classification", "data/shapes", models=("resnet18",))).run_mode
        'single'
    """
    checked = check_choices(choices)
    if checked.errors:
        raise SpecError("\n".join(error.message for error in checked.errors))
    return checked.job


def _field_errors(choices: BuilderChoices) -> list[FieldError]:
    """Each field checked alone by the spec, in the form's order."""
    from automl_nb.spec import JOB_CLASSES, check_task
    from automl_nb.spec.inputs import as_input

    job_class = JOB_CLASSES[check_task(choices.task)]
    errors: list[FieldError] = []

    def check(key: str, value: Any, spec_check) -> None:
        try:
            spec_check()
        except SpecError as error:
            errors.append(FieldError(key, value, str(error)))

    training_data = str(choices.training_data).strip()
    if not training_data:
        errors.append(FieldError("training_data", choices.training_data, MISSING_TRAINING_DATA))
    check("training_data", training_data, lambda: as_input(training_data or None, "training_data"))
    validation_data = str(choices.validation_data).strip()
    check("validation_data", validation_data, lambda: as_input(validation_data or None, "validation_data"))
    check("target_column_name", choices.target_column_name,
          lambda: job_class(target_column_name=choices.target_column_name))
    check("name", choices.name, lambda: job_class(name=choices.name.strip() or None))
    for choice in choices.parameters:
        check(choice.name, choice.held(), lambda: choice.resolve(job_class.task))
    for key in LIMIT_KEYS:
        value = parse_value(getattr(choices, key))
        check(key, value, lambda: Limits(**({} if value is None else {key: value})))
    errors += _policy_errors(choices.early_termination)
    return errors


def _policy_errors(policy: dict | None) -> list[FieldError]:
    """Each invalid field of the early-termination policy (the spec stops at the first: drop it, retry)."""
    from automl_nb.spec import policy_from_dict

    errors: list[FieldError] = []
    remaining = dict(policy or {})
    while remaining:
        try:
            policy_from_dict(remaining)
            return errors
        except SpecError as error:
            key, message = str(error).split(":", 1)[0], str(error)
            if key in remaining and key != "type":
                value = remaining.pop(key)
                errors.append(FieldError(f"early_termination.{key}", value, f"early_termination.{message}"))
                continue
            # The policy as a whole (its type, a missing field, no slack), unless a field's error explains it.
            if not errors:
                prefixed = message if key == "early_termination" else f"early_termination.{message}"
                errors.append(FieldError("early_termination", policy, prefixed))
            return errors
    return errors


def _without(choices: BuilderChoices, invalid: set[str]) -> BuilderChoices:
    """The choices with each invalid field left empty (its default), for the preview."""
    from automl_nb.spec import policy_from_dict

    changes: dict[str, Any] = {key: "" for key in ("training_data", "validation_data", "name") if key in invalid}
    changes.update({key: None for key in LIMIT_KEYS if key in invalid})
    if "target_column_name" in invalid:
        changes["target_column_name"] = DEFAULT_TARGET_COLUMN_NAME  # left out of the preview by _preview
    changes["parameters"] = [choice for choice in choices.parameters if choice.name not in invalid]
    policy = choices.early_termination
    if policy is not None:
        policy = {k: v for k, v in policy.items() if f"early_termination.{k}" not in invalid}
        try:
            policy_from_dict(policy)
        except SpecError:
            policy = None
    changes["early_termination"] = policy
    return dataclasses.replace(choices, **changes)


def _assemble(choices: BuilderChoices):
    """The job of (valid) choices, before the whole-job checks of ``validate()``."""
    from automl_nb.spec import JOB_CLASSES, PARAMETERS, Choice, Distribution, check_task

    task = check_task(choices.task)
    values = {}
    for choice in choices.parameters:
        value = choice.resolve(task)
        if value is not None:
            values[choice.name] = value
    job = JOB_CLASSES[task](training_data=str(choices.training_data).strip() or None,
                            validation_data=str(choices.validation_data).strip() or None,
                            target_column_name=choices.target_column_name, name=choices.name.strip() or None)
    job.set_limits(**{key: parse_value(getattr(choices, key)) for key in LIMIT_KEYS})
    models = list(choices.models)
    sweeping = len(models) > 1 or any(isinstance(v, Distribution) for v in values.values())
    if not sweeping:
        job.set_training_parameters(**values, **({"model_name": models[0]} if models else {}))
        if job.run_mode == "automode" and choices.early_termination:
            job.set_sweep(sampling_algorithm=choices.sampling_algorithm, early_termination=choices.early_termination)
        return job
    everywhere = all(all(PARAMETERS[name].applies_to(task, model) for model in models) for name in values) \
        if models else True
    if everywhere:
        fixed = {k: v for k, v in values.items() if not isinstance(v, Distribution)}
        swept = {k: v for k, v in values.items() if isinstance(v, Distribution)}
        job.set_training_parameters(**fixed)
        job.extend_search_space([{**({"model_name": Choice(tuple(models))} if models else {}), **swept}])
    else:
        job.extend_search_space([{"model_name": Choice((model,)),
                                  **{k: v for k, v in values.items() if PARAMETERS[k].applies_to(task, model)}}
                                 for model in models])
    job.set_sweep(sampling_algorithm=choices.sampling_algorithm, early_termination=choices.early_termination)
    return job


def _notes(choices: BuilderChoices, job) -> list[str]:
    """Where the valid job holds another value than its field: the spec caps concurrent trials."""
    typed = parse_value(choices.max_concurrent_trials)
    if typed is not None and typed != job.limits.max_concurrent_trials:
        return [f"max_concurrent_trials: {typed} is capped to max_trials ({job.limits.max_trials})"]
    return []


def _preview(job, comments: list[str], invalid: set[str]) -> str:
    """The job's YAML under one comment line per line of ``comments``, the invalid fields left out."""
    from automl_nb.spec.yaml_io import dump_job_dict

    lines = [f"# {line}" for comment in comments for line in comment.splitlines()]
    if job is None:  # the job could not be put together: only what is wrong
        return "\n".join(lines) + "\n"
    data = job.to_dict()
    for key in LIMIT_KEYS:
        if key in invalid:
            data["limits"].pop(key)
    if "max_trials" in invalid:  # shown, it would be capped to the default max_trials, not the field's
        data["limits"].pop("max_concurrent_trials", None)
    if "target_column_name" in invalid:
        data.pop("target_column_name")
    return "\n".join([*lines, dump_job_dict(data)])
