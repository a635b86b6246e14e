"""Tab completion inside a ``%%automl`` cell: job keys, task and model names, hyperparameters.

Every name comes from ``automl_nb.spec``: top-level keys at column 0, hyperparameter names
under ``training_parameters:`` and in ``search_space`` items (those of the cell's task once
``task:`` is written), values of ``task``, ``model_name``, ``sampling_algorithm`` and any
choice or bool hyperparameter, distribution, input and policy types after ``type:``, and the
options on the ``%%automl`` line.
"""

from __future__ import annotations

import re
from typing import Any

_WORD_BEFORE = re.compile(r"[\w$\-]*$")
_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)?([\w$\-]*)$")
_VALUE_LINE = re.compile(r"^\s*(?:-\s+)?([\w$]+):\s+(?:.*[{,]\s*)?(?:(type):\s*)?([\w\-.]*)$")
_SECTION_LINE = re.compile(r"^(\s*)(?:-\s+)?([\w$]+):\s*(?:#.*)?$")
_TASK_LINE = re.compile(r"^task:\s*([\w]+)", re.MULTILINE)


def yaml_completions(full_text: str, cursor_line: int, cursor_position: int) -> tuple[str, list[str]] | None:
    """Completions at a cursor in a ``%%automl`` cell.

    Args:
        full_text: the cell, its first line ``%%automl ...``.
        cursor_line: the cursor's line (0-based) in ``full_text``.
        cursor_position: the cursor's column in that line.

    Returns:
        ``(prefix, candidates)``: the fragment before the cursor being completed and the texts
        that may replace it; None outside a ``%%automl`` cell.

    Example:
        >>> yaml_completions("%%automl\\ntask: image_cl", 1, 14)
        ('image_cl', ['image_classification', 'image_classification_multilabel'])
    """
    lines = full_text.split("\n")
    if not lines or not lines[0].lstrip().startswith("%%automl") or cursor_line >= len(lines):
        return None
    before = lines[cursor_line][:cursor_position]
    prefix = _WORD_BEFORE.search(before).group(0)
    if cursor_line == 0:
        return prefix, [o for o in _cell_options() if o.startswith(prefix)] if prefix.startswith("-") else []
    task = cell_task(full_text)
    value = _VALUE_LINE.match(before)
    if value is not None:
        key = "type" if value.group(2) else value.group(1)
        section = section_at(lines, cursor_line, key_column(before))
        candidates = _values(key, task, value.group(1) if value.group(2) else section)
    else:
        key_match = _KEY_LINE.match(before)
        if key_match is None:
            return prefix, []
        section = section_at(lines, cursor_line, len(before) - len(prefix))
        candidates = _keys(section, task)
    return prefix, sorted(c for c in candidates if c.startswith(prefix))


def _cell_options() -> list[str]:
    """The options of the ``%%automl`` line, from its parser (the one place they are written)."""
    from automl_nb.magics.parsers import cell_parser

    return [option for action in cell_parser()._actions for option in action.option_strings]


def cell_task(text: str) -> str | None:
    """The cell's ``task:`` when it names a task, else None."""
    from automl_nb.spec import TASKS

    match = _TASK_LINE.search(text)
    return match.group(1) if match and match.group(1) in TASKS else None


def section_at(lines: list[str], line: int, column: int) -> str | None:
    """The block a key at ``column`` of ``line`` belongs to: the nearest line above whose key
    starts further left, when it opens a block (``key:`` and nothing after)."""
    if column == 0:
        return None
    for k in range(line - 1, 0, -1):
        text = lines[k]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if key_column(text) < column:
            match = _SECTION_LINE.match(text)
            return match.group(2) if match else None
    return None


def key_column(text: str) -> int:
    """Where a line's key starts: after its indentation and any list dash."""
    stripped = text.lstrip()
    column = len(text) - len(stripped)
    if stripped.startswith("- "):
        column += len(stripped) - len(stripped[1:].lstrip())
    return column


def _parameter_names(task: str | None) -> list[str]:
    from automl_nb.spec import PARAMETERS, parameters_for

    if task is None:
        return list(PARAMETERS)
    return [p.name for p in parameters_for(task, include_aliases=True)]


def _keys(section: str | None, task: str | None) -> list[str]:
    from dataclasses import fields

    from automl_nb.spec import Limits
    from automl_nb.spec.job import JOB_KEYS

    if section is None:
        return list(JOB_KEYS)
    if section in ("training_parameters", "search_space"):
        return _parameter_names(task)
    if section == "limits":
        return [item.name for item in fields(Limits)]
    if section == "sweep":
        return ["sampling_algorithm", "early_termination"]
    if section in ("training_data", "validation_data"):
        return ["path", "type"]
    return []


def _values(key: str, task: str | None, section: str | None) -> list[str]:
    from automl_nb.spec import (
        DISTRIBUTIONS, INPUT_TYPES, MODELS, PARAMETERS, POLICIES, SAMPLING_ALGORITHMS, TASKS,
    )

    if key == "task":
        return list(TASKS)
    if key == "model_name":
        return list(MODELS[task]) if task else sorted({m for models in MODELS.values() for m in models})
    if key == "sampling_algorithm":
        return list(SAMPLING_ALGORITHMS)
    if key == "type":
        if section in ("training_data", "validation_data"):
            return list(INPUT_TYPES)
        if section == "early_termination":
            return list(POLICIES)
        return list(DISTRIBUTIONS)
    param = PARAMETERS.get(key)
    if param is None:
        return []
    if param.kind == "choice":
        return [str(value) for value in (param.allowed_choices(task) if task else param.choices)]
    if param.kind == "bool":
        return ["true", "false"]
    return []


def _matcher(context: Any) -> dict:
    """IPython's matcher (API v2) around :func:`yaml_completions`."""
    from IPython.core.completer import SimpleCompletion

    found = yaml_completions(context.full_text, context.cursor_line, context.cursor_position)
    if found is None:
        return {"completions": [], "suppress": False}
    prefix, candidates = found
    return {"completions": [SimpleCompletion(text, type="automl") for text in candidates],
            "matched_fragment": prefix, "suppress": bool(candidates)}


_matcher.matcher_api_version = 2
_matcher.matcher_identifier = "automl_nb.yaml"
_matcher.matcher_priority = 10


def register_completion(ipython: Any) -> None:
    """Add the ``%%automl`` matcher to the shell's completer (once)."""
    completer = getattr(ipython, "Completer", None)
    if completer is not None and _matcher not in completer.custom_matchers:
        completer.custom_matchers.append(_matcher)


def unregister_completion(ipython: Any) -> None:
    completer = getattr(ipython, "Completer", None)
    if completer is not None and _matcher in completer.custom_matchers:
        completer.custom_matchers.remove(_matcher)
