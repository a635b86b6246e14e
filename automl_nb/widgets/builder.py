"""SearchSpaceBuilder: a job's task, data, models, hyperparameters and sweep, clicked together.

The widgets only collect choices (a :class:`BuilderChoices`); :mod:`automl_nb.widgets.builder_job`
checks them with the spec's own checks (every invalid field at once) and turns them into a job
through the spec's Python API, so the builder's job and the YAML it shows are exactly what
``%%automl`` would run. The public methods (:meth:`~SearchSpaceBuilder.set`, ``values``,
``errors``, :meth:`~SearchSpaceBuilder.to_yaml`) do from code what a user does with the mouse.
"""

from __future__ import annotations

import dataclasses
import difflib
from html import escape
from typing import Any, Mapping

import ipywidgets as widgets

from automl_nb.errors import AutoMLError, SpecError
from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME
from automl_nb.spec.limits import Limits
from automl_nb.spec.sweep_settings import Sweep
from automl_nb.widgets.builder_job import (
    LIMIT_KEYS, BuilderChoices, CheckedChoices, FieldError, build_job, check_choices,
)
from automl_nb.widgets.checkboxes import ChoiceCheckboxes
from automl_nb.widgets.editors import FIXED, ParameterChoice, ParameterEditor, parse_value, to_text

# Editors shown when the builder opens (more are one click away in "add parameter").
FEATURED = ("learning_rate", "number_of_epochs", "optimizer")
NO_POLICY = "none"
# The form's own keys for set() and values; every other key is a hyperparameter.
FORM_KEYS = ("task", "training_data", "validation_data", "target_column_name", "name", "models", *LIMIT_KEYS,
             "sampling_algorithm", "early_termination")
VALID = "✓ the job is valid"
_TEXT_KEYS = ("training_data", "validation_data", "target_column_name", "name", *LIMIT_KEYS)
# What a new builder shows: the spec's defaults.
_LIMITS, _SWEEP = Limits(), Sweep()


class SearchSpaceBuilder(widgets.VBox):
    """Build a job with widgets: task, data, models, hyperparameter editors, limits and sweep.

    Every field is checked by the spec as you type and every problem is listed at once; the
    equivalent YAML is shown live, an invalid field left out of it with a comment saying why.
    *Submit* starts the sweep and shows its dashboard below; :meth:`to_cell` puts the job into
    a new ``%%automl`` cell. From code, :meth:`set` / :meth:`update` fill fields as a user
    would, and :attr:`values`, :attr:`errors`, :meth:`summary` and :meth:`to_yaml` read the form.

    Args:
        task: the task to start with.
        training_data: a path to start with.
        job: a job to start from instead (its task, data, models, values and sweep).

    Attributes:
        run: the Run started by *Submit* (None before).

    Example:
        >>> builder = SearchSpaceBuilder("image_classification", training_data="data/shapes")
        >>> builder                      # edit, then Submit, or from code:
        >>> builder.update({"models": ["resnet18"], "learning_rate": 1.5, "max_trials": 0})
        >>> print(builder.summary())     # both problems, each with what is allowed
        >>> builder.update({"learning_rate": 0.01, "max_trials": 2})
        >>> run = builder.submit()
    """

    def __init__(self, task: str = "image_classification", training_data: str = "", *, job: Any = None) -> None:
        from automl_nb.spec import POLICIES, SAMPLING_ALGORITHMS, TASKS, check_task
        task = check_task(job.task if job is not None else task)
        self.run = None
        self._editors: dict[str, ParameterEditor] = {}
        self._quiet = False
        wide = widgets.Layout(width="460px")
        style = {"description_width": "150px"}
        self.task = widgets.Dropdown(options=list(TASKS), value=task, description="task", style=style, layout=wide)
        self.training_data = widgets.Text(value=training_data, description="training data", style=style, layout=wide,
                                          placeholder="JSONL file or MLTable folder")
        self.validation_data = widgets.Text(description="validation data", style=style, layout=wide,
                                            placeholder="(optional) else 20% of the training data")
        self.target_column_name = widgets.Text(value=DEFAULT_TARGET_COLUMN_NAME, description="label column", style=style, layout=wide)
        self.models = ChoiceCheckboxes(description="models", layout=widgets.Layout(width="95%", flex_flow="row wrap"))
        self.max_trials = widgets.Text(value=str(_LIMITS.max_trials), description="max trials", style=style)
        self.max_concurrent_trials = widgets.Text(value=str(_LIMITS.max_concurrent_trials), description="trials at once",
                                                  style=style)
        self.timeout_minutes = widgets.Text(value=str(_LIMITS.timeout_minutes), description="timeout (min)", style=style)
        self.sampling_algorithm = widgets.Dropdown(options=list(SAMPLING_ALGORITHMS), value=_SWEEP.sampling_algorithm,
                                                   description="sampling", style=style)
        self.policy = widgets.Dropdown(options=[NO_POLICY, *POLICIES], description="early termination", style=style)
        self.policy_fields = widgets.HBox()
        self._policy_inputs: dict[str, widgets.Text] = {}
        self.add_parameter = widgets.Dropdown(description="add parameter", style=style, layout=wide)
        self.editors_box = widgets.VBox()
        self.name = widgets.Text(description="job name", style=style, placeholder="(optional) names the run folder")
        self.status = widgets.HTML()
        self.yaml = widgets.Textarea(layout=widgets.Layout(width="95%", height="260px"), disabled=True)
        self.yaml.add_class("automl-yaml")
        self.submit_button = widgets.Button(description="Submit", icon="play", button_style="success",
                                            tooltip="start the sweep and show its dashboard below")
        self.cell_button = widgets.Button(description="As %%automl cell", icon="copy",
                                          tooltip="show the job as a %%automl cell to copy (builder.to_cell() inserts it)")
        self.cell_text = widgets.Textarea(layout=widgets.Layout(width="95%", height="0px", display="none"))
        self.output = widgets.Output()
        super().__init__([
            widgets.HTML("<b>Job</b>"), self.task, self.training_data, self.validation_data, self.target_column_name,
            self.name, widgets.HTML("<b>Models</b> (several: a sweep over them; none: the default or AutoMode)"),
            self.models, widgets.HTML("<b>Hyperparameters</b> (fixed value or a distribution to sweep)"),
            self.editors_box, self.add_parameter,
            widgets.HTML("<b>Limits and sweep</b>"), widgets.HBox([self.max_trials, self.max_concurrent_trials]),
            self.timeout_minutes, widgets.HBox([self.sampling_algorithm, self.policy]), self.policy_fields,
            self.status, self.yaml, widgets.HBox([self.submit_button, self.cell_button]), self.cell_text, self.output])
        self.add_class("automl-builder")

        for widget in (self.training_data, self.validation_data, self.target_column_name, self.models,
                       self.max_trials, self.max_concurrent_trials, self.timeout_minutes, self.sampling_algorithm,
                       self.name):
            widget.observe(lambda change: self.refresh(), names="value")
        self.task.observe(lambda change: self._task_changed(), names="value")
        self.policy.observe(lambda change: self._policy_changed(), names="value")
        self.add_parameter.observe(self._add_chosen, names="value")
        self.submit_button.on_click(lambda _: self._submit())
        self.cell_button.on_click(lambda _: self._show_cell())
        self._task_changed()
        if job is not None:
            self.load(job)

    # -- task, models, editors -------------------------------------------------------------
    def _task_changed(self) -> None:
        from automl_nb.spec import MODELS

        quiet, self._quiet = self._quiet, True  # one check at the end, not one per widget change
        try:
            self.models.options = list(MODELS[self.task.value])
            self.models.value = ()
            for name in list(self._editors):
                self.remove_editor(name)
            for name in FEATURED:
                self.add_editor(name)
            self._refresh_parameter_list()
        finally:
            self._quiet = quiet
        self.refresh()

    def _refresh_parameter_list(self) -> None:
        from automl_nb.spec import MODEL_NAME, parameters_for

        # Keys validated but not acted on yet (distributed...) are not offered: they would change nothing.
        names = [p.name for p in parameters_for(self.task.value)
                 if p.name != MODEL_NAME and p.name not in self._editors and not p.not_acted_on]
        quiet, self._quiet = self._quiet, True
        try:
            self.add_parameter.options = ["", *names]
            self.add_parameter.value = ""
        finally:
            self._quiet = quiet

    def _add_chosen(self, change) -> None:
        if change["new"] and change["new"] not in self._editors:
            self.add_editor(change["new"])
            self._refresh_parameter_list()

    def add_editor(self, name: str) -> ParameterEditor:
        """Add (or return) the editor of a hyperparameter."""
        if name not in self._editors:
            models = self.models.value
            editor = ParameterEditor(name, self.task.value, models[0] if models else None,
                                     on_change=lambda _: self.refresh(), on_remove=lambda e: self.remove_editor(e.param.name))
            self._editors[name] = editor
            self.editors_box.children = tuple(self._editors.values())
            self.refresh()
        return self._editors[name]

    def remove_editor(self, name: str) -> None:
        editor = self._editors.pop(name, None)
        if editor is not None:
            self.editors_box.children = tuple(self._editors.values())
            editor.close()
            self._refresh_parameter_list()
            self.refresh()

    def editor(self, name: str) -> ParameterEditor:
        """The editor of ``name`` (added if missing)."""
        return self.add_editor(name)

    def _policy_changed(self) -> None:
        from automl_nb.spec import POLICIES

        name = self.policy.value
        self._policy_inputs = {}
        if name != NO_POLICY:
            for item in dataclasses.fields(POLICIES[name]):
                self._policy_inputs[item.name] = widgets.Text(
                    description=item.name, style={"description_width": "150px"},
                    placeholder="" if item.default is dataclasses.MISSING else f"default {item.default}")
                self._policy_inputs[item.name].observe(lambda change: self.refresh(), names="value")
        self.policy_fields.children = tuple(self._policy_inputs.values())
        self.refresh()

    # -- the job ---------------------------------------------------------------------------
    def choices(self) -> BuilderChoices:
        """The widgets' values, as plain choices."""
        policy = None
        if self.policy.value != NO_POLICY:
            policy = {"type": self.policy.value}
            for name, widget in self._policy_inputs.items():
                value = parse_value(widget.value)
                if value is not None:
                    policy[name] = value
        return BuilderChoices(
            task=self.task.value, training_data=self.training_data.value, validation_data=self.validation_data.value,
            target_column_name=self.target_column_name.value, models=tuple(self.models.value),
            parameters=[editor.choice() for editor in self._editors.values()], max_trials=self.max_trials.value,
            max_concurrent_trials=self.max_concurrent_trials.value, timeout_minutes=self.timeout_minutes.value,
            sampling_algorithm=self.sampling_algorithm.value, early_termination=policy, name=self.name.value)

    def job(self):
        """The job the widgets describe.

        Raises:
            SpecError: one line per problem (see :attr:`errors`).
        """
        return build_job(self.choices())

    def check(self) -> CheckedChoices:
        """Every problem of the form and its YAML preview (what :attr:`errors` and :meth:`to_yaml` give)."""
        return check_choices(self.choices())

    @property
    def errors(self) -> list[FieldError]:
        """Every problem at once, each naming its key, the value held and what is allowed; [] when valid.

        Example:
            >>> builder.update({"learning_rate": 1.5, "max_trials": 0})
            >>> [error.key for error in builder.errors]
            ['learning_rate', 'max_trials']
        """
        return list(self.check().errors)

    def to_yaml(self) -> str:
        """The YAML the form shows: the job's, or while invalid a comment per problem above what is valid.

        An invalid field is left out, never shown clamped or as its last valid value.
        """
        return self.check().yaml

    def summary(self) -> str:
        """The form's state as plain text: ``✓ the job is valid``, or ``✗ problem`` lines."""
        errors = self.check().errors
        return "\n".join(_summary_lines(errors)) if errors else VALID

    @property
    def values(self) -> dict[str, Any]:
        """What every field holds, by key, read as YAML reads typed text but not checked.

        A hyperparameter holds a fixed value (None: the default) or a distribution's mapping;
        ``early_termination`` a policy's mapping or None. ``set(key, values[key])`` changes nothing.
        """
        choices = self.choices()
        held = {key: getattr(choices, key) for key in FORM_KEYS}
        held.update({key: parse_value(held[key]) for key in LIMIT_KEYS})
        held.update({choice.name: choice.held() for choice in choices.parameters})
        return held

    def set(self, key: str, value: Any) -> None:
        """Set one field as a user would type or click it; an invalid value stays, shown with its error.

        Args:
            key: one of ``FORM_KEYS`` (``models`` also as ``model_name``) or a hyperparameter of the
                task (its editor is added).
            value: for a hyperparameter a fixed value (None: the default) or a distribution or its
                mapping; for ``early_termination`` a policy, its mapping or None; for ``models`` a
                name or a list.

        Raises:
            SpecError: an unknown key (with the nearest one), or a value that a list of allowed
                values cannot hold (a task, model, choice, sampling algorithm or policy not offered).

        Example:
            >>> builder.set("learning_rate", {"type": "loguniform", "min_value": -6, "max_value": -3.5})
            >>> builder.set("optimizer", {"type": "choice", "values": ["sgd", "adam"]})
        """
        self.update({key: value})

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several fields (see :meth:`set`) and check the job once at the end.

        ``task`` is set first, as changing it resets the models and hyperparameters.

        Example:
            >>> builder.update({"models": ["resnet18", "mobilenetv2"], "number_of_epochs": 2, "max_trials": 4})
        """
        quiet, self._quiet = self._quiet, True
        try:
            for key, value in sorted(values.items(), key=lambda item: item[0] != "task"):
                self._set(key, value)
        finally:  # also after a refused value: the form shows what was set before it
            self._quiet = quiet
            self.refresh()

    def _set(self, key: str, value: Any) -> None:
        from automl_nb.spec import MODEL_NAME, PARAMETERS, check_model, check_task, parameters_for
        from automl_nb.spec.sweep_settings import check_sampling_algorithm

        if key == "task":
            self.task.value = check_task(value)
        elif key in ("models", MODEL_NAME):
            names = [value] if isinstance(value, str) else list(value or ())
            self.models.value = tuple(check_model(self.task.value, name) for name in names)
        elif key in _TEXT_KEYS:
            getattr(self, key).value = to_text(value)
        elif key == "sampling_algorithm":
            self.sampling_algorithm.value = check_sampling_algorithm(value)
        elif key == "early_termination":
            self._set_policy(value)
        else:
            names = [p.name for p in parameters_for(self.task.value) if p.name != MODEL_NAME]
            if key in PARAMETERS and key not in names:
                raise SpecError(f"{key}: {value!r} does not apply to {self.task.value}; it applies to "
                                f"{PARAMETERS[key].applicability_text()}")
            if key not in names:
                close = difflib.get_close_matches(str(key), [*FORM_KEYS, *names], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(FORM_KEYS)} or a " \
                    f"hyperparameter of {self.task.value}"
                raise SpecError(f"{key}: {value!r}: not a field of the builder for {self.task.value}{hint}")
            self.add_editor(key).set(value)

    def _set_policy(self, value: Any) -> None:
        from automl_nb.spec import POLICIES

        if value is None or value == NO_POLICY:
            self.policy.value = NO_POLICY
            return
        value = value.to_dict() if hasattr(value, "to_dict") else dict(value)
        name = str(value.get("type", "")).strip().lower()
        if name not in POLICIES:
            raise SpecError(f"early_termination.type: {value.get('type')!r} is not an early-termination policy; "
                            f"allowed: one of {', '.join(POLICIES)}")
        if self.policy.value == name:
            self._policy_changed()  # empty fields: the mapping gives all of them
        else:
            self.policy.value = name
        for field_name, item in value.items():
            if field_name == "type":
                continue
            if field_name not in self._policy_inputs:
                raise SpecError(f"early_termination.{field_name}: unknown field of {name}; allowed: "
                                f"{', '.join(self._policy_inputs)}")
            self._policy_inputs[field_name].value = to_text(item)

    def refresh(self) -> None:
        """Re-check the job; show every problem and the YAML of what is valid."""
        if self._quiet or not hasattr(self, "yaml"):
            return
        checked = self.check()
        if checked.errors:
            lines = "<br>".join(escape(line) for line in _summary_lines(checked.errors))
            self.status.value = f'<span style="color:#b3261e">{lines}</span>'
        else:
            self.status.value = f'<span style="color:#2a7d46">{VALID}</span>'
        self.submit_button.disabled = bool(checked.errors)
        self.yaml.value = checked.yaml

    def cell(self) -> str:
        """The job as a ``%%automl`` cell."""
        return "%%automl -o run\n" + self.job().dump()

    def to_cell(self) -> None:
        """Insert the job as a new ``%%automl`` cell below the running one (call it from a cell)."""
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise AutoMLError("to_cell() needs IPython: call it from a notebook cell")
        shell.set_next_input(self.cell(), replace=False)

    def _show_cell(self) -> None:
        try:
            self.cell_text.value = self.cell()
        except AutoMLError as error:
            self.cell_text.value = f"# the job is not valid yet: {error}"
        self.cell_text.layout.display, self.cell_text.layout.height = None, "260px"

    def _submit(self):
        """Start the sweep and show its dashboard in the builder's output area."""
        from automl_nb.widgets.dashboard import SweepDashboard

        self.output.clear_output()
        with self.output:
            try:
                self.run = self.job().submit()
            except AutoMLError as error:
                print(f"not submitted: {error}")
                return None
            SweepDashboard(self.run).show()
        return self.run

    def submit(self):
        """Press *Submit*: start the sweep (its dashboard shows below the builder); return the Run."""
        return self._submit()

    # -- from a job ------------------------------------------------------------------------
    def load(self, job) -> None:
        """Set every widget from a job: a single trial, or a search space whose subspaces give each
        hyperparameter one value or distribution (as the builder makes them).

        Raises:
            AutoMLError: two subspaces set the same hyperparameter differently.
        """
        from automl_nb.spec import MODEL_NAME, Choice

        values = {k: v for k, v in job.training_parameters.items() if k != MODEL_NAME}
        for index, subspace in enumerate(job.search_space):
            for key, value in subspace.items():
                if key != MODEL_NAME and values.setdefault(key, value) != value:
                    raise AutoMLError(f"search_space[{index}].{key}: differs from another subspace; the builder "
                                      "edits one value per hyperparameter, edit this job's YAML instead")
        self._quiet = True
        try:
            self.task.value = job.task
            self._task_changed_quietly()
            self.training_data.value = job.training_data.path if job.training_data else ""
            self.validation_data.value = job.validation_data.path if job.validation_data else ""
            self.target_column_name.value = job.target_column_name
            self.name.value = job.name or ""
            limits = job.limits
            self.max_trials.value, self.max_concurrent_trials.value = str(limits.max_trials), str(limits.max_concurrent_trials)
            self.timeout_minutes.value = str(limits.timeout_minutes)
            models = [m for s in job.search_space if isinstance(s.get(MODEL_NAME), Choice) for m in s[MODEL_NAME].values]
            if job.training_parameters.get(MODEL_NAME):
                models.append(job.training_parameters[MODEL_NAME])
            self.models.value = tuple(dict.fromkeys(models))
            for name in list(self._editors):
                if name not in values:
                    self.remove_editor(name)
            for name, value in values.items():
                self.add_editor(name).set(value)
            if job.sweep is not None:
                self.sampling_algorithm.value = job.sweep.sampling_algorithm
                self._set_policy(job.sweep.early_termination)
        finally:
            self._quiet = False
        self.refresh()

    def _task_changed_quietly(self) -> None:
        from automl_nb.spec import MODELS

        self.models.options = list(MODELS[self.task.value])
        for name in list(self._editors):
            self._editors.pop(name).close()
        self.editors_box.children = ()
        self._refresh_parameter_list()

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = (f"<div><p>{self.status.value}</p><pre>{escape(self.yaml.value)}</pre></div>")
        return bundle


def _summary_lines(errors: list[FieldError]) -> list[str]:
    return [f"✗ {line}" for error in errors for line in error.message.splitlines()]


__all__ = ["SearchSpaceBuilder", "BuilderChoices", "FieldError", "build_job", "check_choices", "ParameterChoice",
           "FIXED", "FORM_KEYS"]
