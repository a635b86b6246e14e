"""Shift+Tab inside a ``%%automl`` cell: a hyperparameter's description, type, range and default.

Jupyter asks the kernel with an ``inspect_request`` carrying the whole cell and the cursor;
ipykernel's ``do_inspect`` keeps only the Python token under the cursor before it asks the
shell, so the shell never learns it is in a ``%%automl`` cell. The extension therefore wraps
the kernel's ``do_inspect`` (when there is a kernel): a hyperparameter of a ``%%automl`` cell
is answered from the spec table, anything else goes to ipykernel as before.
"""

from __future__ import annotations

import re
from typing import Any

from automl_nb.magics.completion import cell_task, key_column, section_at  # the cell as Tab reads it

_WORD_BEFORE = re.compile(r"[\w\-]*$")
_WORD_AFTER = re.compile(r"[\w\-]*")
_LINE_KEY = re.compile(r"^\s*(?:-\s+)?([\w$]+):(?:\s|$)")
_PARAMETER_SECTIONS = ("training_parameters", "search_space")


def key_help(full_text: str, cursor_line: int, cursor_position: int) -> str | None:
    """The help of the hyperparameter at a cursor in a ``%%automl`` cell.

    The word under the cursor when it is a hyperparameter, else the key of the cursor's line,
    provided the line is under ``training_parameters`` or ``search_space``.

    Args:
        full_text: the cell, its first line ``%%automl ...``.
        cursor_line: the cursor's line (0-based) in ``full_text``.
        cursor_position: the cursor's column in that line.

    Returns:
        ``name (kind): description``, then the allowed values, the default and where it applies;
        None when the cursor is on no hyperparameter of a ``%%automl`` cell.

    Example:
        >>> key_help("%%automl\\ntraining_parameters:\\n  number_of_epochs: 3", 2, 5).splitlines()[0]
        'number_of_epochs (int): Number of training epochs.'
    """
    from automl_nb.spec import PARAMETERS

    lines = full_text.split("\n")
    if not lines[0].lstrip().startswith("%%automl") or not 0 < cursor_line < len(lines):
        return None
    line = lines[cursor_line]
    word = _WORD_BEFORE.search(line[:cursor_position]).group(0) + _WORD_AFTER.match(line, cursor_position).group(0)
    key = _LINE_KEY.match(line)
    name = word if word in PARAMETERS else key.group(1) if key else None
    sections = {section_at(lines, cursor_line, key_column(line)), key.group(1) if key else None}
    if name not in PARAMETERS or not sections & set(_PARAMETER_SECTIONS):
        return None
    return _parameter_help(PARAMETERS[name], cell_task(full_text))


def _parameter_help(param, task: str | None) -> str:
    text = [f"{param.name} ({param.kind}): {param.description}"]
    if task is not None and not param.applies_to(task):
        text.append(f"does not apply to {task}")
    tasks = [task] if task and param.applies_to(task) else [t for t in param.tasks if param.applies_to(t)]
    text += _per_task("allowed", {t: param.allowed_text(t) for t in tasks})
    text += _per_task("default", {t: _default_text(param, t) for t in tasks})
    text.append(f"applies to: {param.applicability_text()}")
    return "\n".join(text)


def _per_task(label: str, by_task: dict[str, str]) -> list[str]:
    """One line when every task has the same text, else a line per task."""
    if len(set(by_task.values())) == 1:
        return [f"{label}: {next(iter(by_task.values()))}"]
    return [f"{label}:"] + [f"  {task}: {text}" for task, text in by_task.items()]


def _default_text(param, task: str) -> str:
    """The default with the task's default model, then the models whose default differs."""
    from automl_nb.spec import DEFAULT_MODEL, MODELS, default_value

    models = [m for m in MODELS[task] if param.applies_to(task, m)]
    first = DEFAULT_MODEL[task] if DEFAULT_MODEL[task] in models else models[0]
    shown = {m: _shown(default_value(param.name, task, m)) for m in models}
    others = ", ".join(f"{m}: {value}" for m, value in shown.items() if value != shown[first])
    return shown[first] + (f" ({others})" if others else "")


def _shown(value: Any) -> str:
    from automl_nb.magics.interpolate import to_yaml

    return "automatic (see the description)" if value is None else to_yaml(value)


def _inspect_reply(text: str) -> dict:
    return {"status": "ok", "found": True, "data": {"text/plain": text}, "metadata": {}}


def register_inspection(ipython: Any) -> None:
    """Wrap the kernel's ``do_inspect`` (once) so Shift+Tab in a ``%%automl`` cell is answered here.

    A shell without a kernel (terminal IPython) has no Shift+Tab; nothing is changed then.
    """
    kernel = getattr(ipython, "kernel", None)
    if kernel is None or hasattr(kernel.do_inspect, "automl_original"):
        return
    original = kernel.do_inspect

    def do_inspect(code: str, cursor_pos: int, *args: Any, **kwargs: Any):
        before = code[:cursor_pos]
        try:
            text = key_help(code, before.count("\n"), len(before) - before.rfind("\n") - 1)
        except Exception:  # a bug of ours must not cost the user ipykernel's own answer
            text = None
        return _inspect_reply(text) if text is not None else original(code, cursor_pos, *args, **kwargs)

    do_inspect.automl_original = original
    kernel.do_inspect = do_inspect


def unregister_inspection(ipython: Any) -> None:
    """Put the kernel's own ``do_inspect`` back."""
    kernel = getattr(ipython, "kernel", None)
    original = getattr(getattr(kernel, "do_inspect", None), "automl_original", None)
    if original is not None:
        del kernel.do_inspect  # the class's own method shows through again
        if kernel.do_inspect != original:  # someone else's, set on the instance before us
            kernel.do_inspect = original
