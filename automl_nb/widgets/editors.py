"""One hyperparameter's editor: a fixed value, or a distribution with its fields, checked as you type.

Everything the editor offers comes from ``automl_nb.spec``: the parameter's kind, allowed
values, default and description from the parameter table, the distributions and their fields
from the distribution classes, and every check from the spec's own validation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from html import escape
from typing import Any, Callable, Mapping

import ipywidgets as widgets
import yaml

from automl_nb.errors import SpecError
from automl_nb.widgets.checkboxes import ChoiceCheckboxes

FIXED = "fixed"
# Distribution types an int parameter can take (a float one takes all of them).
_INT_TYPES = ("choice", "randint", "quniform", "qloguniform", "qnormal", "qlognormal")


@dataclass
class ParameterChoice:
    """What the user chose for one hyperparameter: a fixed value or a distribution.

    Attributes:
        name: the hyperparameter.
        mode: ``fixed`` or a distribution type (``choice``, ``uniform``, ``loguniform``...).
        value: the fixed value ("" or None: not set, the default applies).
        fields: the distribution's fields as typed (``min_value``, ``values``...).
    """

    name: str
    mode: str = FIXED
    value: Any = None
    fields: dict = field(default_factory=dict)

    def resolve(self, task: str) -> Any:
        """The fixed value in canonical form, a checked Distribution, or None when not set.

        Raises:
            SpecError: naming the key, the value and what is allowed.
        """
        from automl_nb.spec import DISTRIBUTIONS, PARAMETERS, check_distribution

        param = PARAMETERS[self.name]
        if self.mode == FIXED:
            value = parse_value(self.value)
            return None if value is None else param.coerce(value, task)
        cls = DISTRIBUTIONS[self.mode]
        arguments = {}
        for item in dataclasses.fields(cls):
            raw = self.fields.get(item.name)
            arguments[item.name] = parse_list(raw) if item.name == "values" else parse_value(raw)
            if arguments[item.name] is None or arguments[item.name] == []:
                raise SpecError(f"{self.name}: {self.mode} needs {item.name}")
        try:
            distribution = cls(**arguments)
        except SpecError as error:
            raise SpecError(f"{self.name}: {error}") from None
        return check_distribution(param, distribution, task)

    def held(self) -> Any:
        """What the editor holds, read as YAML reads typed text but not checked (1.5 stays 1.5).

        Returns:
            The fixed value (None: not set), or a distribution's mapping ``{"type": ..., field: value}``.
        """
        if self.mode == FIXED:
            return parse_value(self.value)
        return {"type": self.mode, **{name: parse_list(raw) if name == "values" else parse_value(raw)
                                      for name, raw in self.fields.items()}}


def parse_value(raw: Any) -> Any:
    """A value typed in a text box, read as YAML would (``1e-4`` and ``0.01`` are numbers); "" is None."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if not text:
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") and value[0] not in "xX" else value
        except ValueError:
            return value
    return value


def parse_list(raw: Any) -> list:
    """Comma-separated values (or a list from a multi-select), each read by :func:`parse_value`."""
    if isinstance(raw, (list, tuple)):
        return [parse_value(item) for item in raw]
    if raw is None or not str(raw).strip():
        return []
    text = str(raw).strip()
    if text.startswith("["):
        text = text[1:-1] if text.endswith("]") else text[1:]
    return [parse_value(item) for item in text.split(",") if item.strip()]


def modes_for(kind: str) -> list[str]:
    """``fixed`` and the distribution types that can drive a parameter of this kind."""
    from automl_nb.spec import DISTRIBUTIONS

    if kind == "float":
        return [FIXED, *DISTRIBUTIONS]
    if kind == "int":
        return [FIXED, *[name for name in DISTRIBUTIONS if name in _INT_TYPES]]
    return [FIXED, "choice"]


class ParameterEditor(widgets.VBox):
    """The editor of one hyperparameter for a task: mode, its value widgets, and a check line.

    Args:
        name: a parameter of the spec table.
        task: the job's task (allowed values depend on it).
        model_name: the model whose default is shown first (None: the task's default model).
        on_change: called with the editor after every edit.
        on_remove: called with the editor when its remove button is pressed (None: no button).
    """

    def __init__(self, name: str, task: str, model_name: str | None = None,
                 on_change: Callable[["ParameterEditor"], None] | None = None,
                 on_remove: Callable[["ParameterEditor"], None] | None = None) -> None:
        from automl_nb.spec import PARAMETERS, default_value

        self.param = PARAMETERS[name]
        self.task = task
        self._on_change = on_change
        try:
            self.default = default_value(name, task, model_name)
        except SpecError:  # the parameter does not apply to that model
            self.default = None
        label = widgets.HTML(f"<b title='{escape(self.param.description)}'>{escape(name)}</b>",
                             layout=widgets.Layout(width="230px"))
        self.mode = widgets.Dropdown(options=modes_for(self.param.kind), value=FIXED,
                                     layout=widgets.Layout(width="120px"))
        self.fields_box = widgets.HBox()
        self.status = widgets.HTML()
        self._inputs: dict[str, widgets.Widget] = {}
        row = [label, self.mode, self.fields_box]
        if on_remove is not None:
            remove = widgets.Button(icon="times", tooltip=f"remove {name}", layout=widgets.Layout(width="36px"))
            remove.on_click(lambda _: on_remove(self))
            row.append(remove)
        super().__init__([widgets.HBox(row), self.status])
        self.add_class("automl-parameter-editor")
        self.mode.observe(lambda change: self._rebuild(), names="value")
        self._rebuild()

    # -- the value widgets -----------------------------------------------------------------
    def _rebuild(self) -> None:
        self._inputs = self._make_inputs(self.mode.value)
        for widget in self._inputs.values():
            widget.observe(lambda change: self._changed(), names="value")
        self.fields_box.children = tuple(self._inputs.values())
        self._changed()

    def _make_inputs(self, mode: str) -> dict[str, widgets.Widget]:
        from automl_nb.spec import DISTRIBUTIONS

        param, default = self.param, self.default
        if mode == FIXED:
            return {"value": self._value_widget(default)}
        if mode == "choice" and param.kind in ("choice", "bool"):
            options = self._options()
            chosen = tuple(v for v in options if v == default) or options[:1]
            return {"values": ChoiceCheckboxes(options, value=chosen, description="values")}
        inputs = {}
        for item in dataclasses.fields(DISTRIBUTIONS[mode]):
            start = _starting_value(item.name, mode, default)
            inputs[item.name] = widgets.Text(value=start, description=item.name,
                                             layout=widgets.Layout(width="200px"),
                                             style={"description_width": "70px"},
                                             placeholder="a, b, c" if item.name == "values" else "")
        return inputs

    def _options(self) -> list:
        if self.param.kind == "bool":
            return [True, False]
        return list(self.param.allowed_choices(self.task))

    def _value_widget(self, default: Any) -> widgets.Widget:
        """A fixed value, empty at first: the default (shown greyed) applies until one is typed, so a
        model-specific default (e.g. a ViT's learning rate) is never overridden unasked."""
        shown = "automatic" if default is None else (default if isinstance(default, str) else _yaml_text(default))
        if self.param.kind in ("choice", "bool"):
            options = [(f"(default: {shown})", None)] + [(str(option), option) for option in self._options()]
            return widgets.Dropdown(options=options, value=None, layout=widgets.Layout(width="200px"))
        return widgets.Text(value="", placeholder=f"default: {shown}", layout=widgets.Layout(width="200px"))

    # -- checking --------------------------------------------------------------------------
    def choice(self) -> ParameterChoice:
        """What the editor holds now."""
        if self.mode.value == FIXED:
            return ParameterChoice(self.param.name, FIXED, self._inputs["value"].value)
        return ParameterChoice(self.param.name, self.mode.value,
                               fields={name: widget.value for name, widget in self._inputs.items()})

    def check(self) -> str | None:
        """The spec's error for the current input, or None when it is valid."""
        try:
            self.choice().resolve(self.task)
        except SpecError as error:
            return str(error)
        return None

    def _changed(self) -> None:
        error = self.check()
        if error:
            self.status.value = f'<span style="color:#b3261e">✗ {escape(error)}</span>'
        else:
            self.status.value = ""
        self.add_class("automl-invalid") if error else self.remove_class("automl-invalid")
        if self._on_change is not None:
            self._on_change(self)

    def set(self, value: Any) -> None:
        """Set the editor as a user would: a fixed value (None: empty, the default applies) or a distribution.

        A distribution is a Distribution or its mapping (``{"type": "uniform", "min_value": ...}``).
        Typed fields take the value as it is, so an invalid one stays and shows its error.

        Raises:
            SpecError: a distribution the parameter cannot take, an unknown field, or a value a
                list of allowed values cannot hold (a choice not offered).
        """
        from automl_nb.spec import Distribution

        if isinstance(value, Distribution):
            value = value.to_dict()
        if isinstance(value, Mapping) and "type" in value and self.param.kind != "json":
            self._set_distribution(value)
            return
        self.mode.value = FIXED
        widget = self._inputs["value"]
        if isinstance(widget, widgets.Dropdown):
            widget.value = None if value is None else self.param.coerce(value, self.task)
        else:
            widget.value = to_text(value)

    def _set_distribution(self, value: Mapping) -> None:
        name = self.param.name
        mode = str(value["type"]).strip().lower()
        if mode not in self.mode.options:
            raise SpecError(f"{name}: {mode!r} cannot drive a {self.param.kind} parameter; allowed: "
                            f"{', '.join(self.mode.options)}")
        self.mode.value = mode
        for field_name, item in value.items():
            if field_name == "type":
                continue
            if field_name not in self._inputs:
                raise SpecError(f"{name}.{field_name}: unknown field of {mode}; allowed: {', '.join(self._inputs)}")
            widget = self._inputs[field_name]
            if isinstance(widget, ChoiceCheckboxes):  # canonical spelling ("Adam" -> adam), else the spec's message
                items = parse_list(item) if isinstance(item, str) else item
                widget.value = tuple(self.param.coerce(v, self.task) for v in items)
            elif field_name == "values" and not isinstance(item, str):
                widget.value = ", ".join(to_text(v) for v in item)
            else:
                widget.value = to_text(item)


def to_text(value: Any) -> str:
    """A value as a user would type it in a text box: "" for None, a string as it is, else YAML."""
    if value is None:
        return ""
    return value if isinstance(value, str) else _yaml_text(value)


def _yaml_text(value: Any) -> str:
    if isinstance(value, dict):
        import json

        return json.dumps(value)
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _starting_value(field_name: str, mode: str, default: Any) -> str:
    """A sensible first value for a distribution field, around the parameter's default."""
    import math

    if not isinstance(default, (int, float)) or isinstance(default, bool):
        return ""
    if field_name == "values":
        return _yaml_text(default)
    if field_name == "upper":
        return str(max(2, int(default) * 2))
    if field_name == "q":
        return "1"
    log = mode.startswith(("log", "qlog"))
    centre = math.log(default) if log and default > 0 else default
    spread = 1.0 if log else (abs(default) or 1.0) / 2
    if field_name == "min_value":
        return _yaml_text(round(centre - spread, 6))
    if field_name == "max_value":
        return _yaml_text(round(centre + spread, 6))
    if field_name == "mu":
        return _yaml_text(round(centre, 6))
    if field_name == "sigma":
        return _yaml_text(round(spread / 2 if not log else 0.5, 6))
    return ""
