"""SearchSpaceBuilder: a job's task, data, models, hyperparameters and sweep, clicked together.

The widgets only collect choices (a :class:`BuilderChoices`); :func:`build_job` turns them
into a job through the spec's own Python API, so the builder's job and the YAML it shows
are exactly what ``%%automl`` would run, validated by the same code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from html import escape
from typing import Any

import ipywidgets as widgets

from automl_nb.errors import AutoMLError, SpecError
from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME
from automl_nb.spec.limits import Limits
from automl_nb.spec.sweep_settings import Sweep
from automl_nb.widgets.editors import FIXED, ParameterChoice, ParameterEditor, parse_value

# Editors shown when the builder opens (more are one click away in "add parameter").
FEATURED = ("learning_rate", "number_of_epochs", "optimizer")
NO_POLICY = "none"
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


def build_job(choices: BuilderChoices):
    """The job the choices describe, validated.

    One model and only fixed values make a single trial (``training_parameters``). Several
    models or any distribution make a sweep: one subspace with ``model_name`` as a choice when
    every edited hyperparameter applies to every model, else one subspace per model with the
    hyperparameters that apply to it.

    Raises:
        SpecError: naming the key, the value and what is allowed (from the spec's checks).

    Example:
        >>> build_job(BuilderChoices("image_classification", "data/shapes", models=("resnet18",))).run_mode
        'single'
    """
    from automl_nb.spec import JOB_CLASSES, PARAMETERS, Choice, Distribution, check_task

    task = check_task(choices.task)
    if not str(choices.training_data).strip():
        raise SpecError("training_data: missing; type the path of a JSONL file or MLTable folder")
    values = {}
    for choice in choices.parameters:
        value = choice.resolve(task)
        if value is not None:
            values[choice.name] = value
    job = JOB_CLASSES[task](training_data=str(choices.training_data).strip(),
                            validation_data=str(choices.validation_data).strip() or None,
                            target_column_name=choices.target_column_name, name=choices.name.strip() or None)
    job.set_limits(max_trials=parse_value(choices.max_trials), max_concurrent_trials=parse_value(choices.max_concurrent_trials),
                   timeout_minutes=parse_value(choices.timeout_minutes))
    models = list(choices.models)
    sweeping = len(models) > 1 or any(isinstance(v, Distribution) for v in values.values())
    if not sweeping:
        job.set_training_parameters(**values, **({"model_name": models[0]} if models else {}))
        if job.run_mode == "automode" and choices.early_termination:
            job.set_sweep(sampling_algorithm=choices.sampling_algorithm, early_termination=choices.early_termination)
        job.validate()
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
    job.validate()
    return job


class SearchSpaceBuilder(widgets.VBox):
    """Build a job with widgets: task, data, models, hyperparameter editors, limits and sweep.

    The equivalent YAML is shown live (or the spec's error, naming the key); *Submit* starts
    the sweep and shows its dashboard below, and :meth:`to_cell` puts the job into a new
    ``%%automl`` cell.

    Args:
        task: the task to start with.
        training_data: a path to start with.
        job: a job to start from instead (its task, data, models, values and sweep).

    Attributes:
        run: the Run started by *Submit* (None before).

    Example:
        >>> builder = SearchSpaceBuilder("image_classification", training_data="data/shapes")
        >>> builder                      # edit, then Submit, or:
        >>> run = builder.job().submit()
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
        self.models = widgets.SelectMultiple(description="models", style=style, rows=6, layout=wide)
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
            SpecError: the spec's message for the first invalid choice.
        """
        return build_job(self.choices())

    def refresh(self) -> None:
        """Re-check the job and show its YAML (or what is wrong)."""
        if self._quiet or not hasattr(self, "yaml"):
            return
        try:
            text = self.job().dump()
        except AutoMLError as error:
            self.status.value = f'<span style="color:#b3261e">✗ {escape(str(error))}</span>'
            self.submit_button.disabled = True
            return
        self.status.value = '<span style="color:#2a7d46">✓ the job is valid</span>'
        self.submit_button.disabled = False
        self.yaml.value = text

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
                policy = job.sweep.early_termination
                self.policy.value = policy.type if policy else NO_POLICY
                self._policy_changed()
                for key, value in (policy.to_dict() if policy else {}).items():
                    if key != "type":
                        self._policy_inputs[key].value = str(value)
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


__all__ = ["SearchSpaceBuilder", "BuilderChoices", "build_job", "ParameterChoice", "FIXED"]
