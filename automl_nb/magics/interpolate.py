"""``$var`` and ``{expr}`` in a ``%%automl`` cell, filled in from the notebook's namespace.

As in IPython's own ``!cmd $var {expr}``, with the YAML of a job in mind:

- ``$name`` (or ``$name.attr``) is the value of a notebook variable; ``$$`` is a literal ``$``.
  One written as a mapping key stays (``$schema:`` is Azure's schema key).
- ``{expr}`` is any Python expression, with an optional format spec (``{lr:.2e}``).
  Braces whose content is not a Python expression are YAML's own flow mappings
  (``{type: choice, values: [a, b]}``) and stay; one of bare keys reads as Python (``{a, b}``),
  so write it ``{a: null, b: null}``.
- A ``$name`` that is not defined, or an ``{expr}`` that raises, is an error naming it and its
  line (a typo must not become the literal path ``$nodata``), except in a YAML comment
  (after ``#`` at the start of a line or after a blank), where it stays as written.
- Values go in as YAML: strings as they are (so a path or a YAML snippet can be inserted),
  numbers, bools and None as YAML scalars (``1e-05`` becomes ``1.0e-05``, which YAML reads as
  a number), lists and dicts as flow collections, distributions and Inputs by their
  ``to_dict()``; a string with a line break is quoted, so line numbers never shift.

Example:
    >>> interpolate("learning_rate: $lr\\nmodel_name: {models[0]}", {"lr": 1e-5, "models": ["resnet18"]})
    'learning_rate: 1.0e-05\\nmodel_name: resnet18'
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

from automl_nb.errors import SpecError

_DOLLAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_KEY_AFTER = re.compile(r"[ \t]*:(?:[ \t]|$)")
# A format spec as str.format reads it; it may not start with a space (``{a: 1}`` is YAML).
_FORMAT_SPEC = re.compile(r"^(?:.?[<>=^])?[+\-]?#?0?\d*[,_]?(?:\.\d+)?[bcdeEfFgGnosxX%]?$")


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Fill ``$var`` and ``{expr}`` in ``text`` from ``namespace`` (see the module docstring).

    Args:
        text: the cell's YAML.
        namespace: the notebook's variables (``shell.user_ns``).

    Returns:
        The text with every reference replaced by its YAML form.

    Raises:
        SpecError: ``line N: $name: NameError: ...`` or ``line N: {expr}: ZeroDivisionError: ...``
            when a reference outside a comment cannot be filled in.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "$":
            i = _dollar(text, i, namespace, out)
        elif char == "{":
            i = _braces(text, i, namespace, out)
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _dollar(text: str, i: int, namespace: Mapping[str, Any], out: list[str]) -> int:
    if text.startswith("$$", i):
        out.append("$")
        return i + 2
    match = _DOLLAR_NAME.match(text, i + 1)
    if match is None or _KEY_AFTER.match(text, match.end()):
        out.append("$")
        return i + 1
    try:
        value = _lookup(match.group(0), namespace)
    except Exception as error:
        if _in_comment(text, i):
            out.append(text[i:match.end()])
            return match.end()
        hint = "; a literal $ is written $$" if isinstance(error, NameError) else ""
        raise _failed(text, i, f"${match.group(0)}", error, hint) from None
    out.append(to_yaml(value))
    return match.end()


def _lookup(dotted: str, namespace: Mapping[str, Any]) -> Any:
    first, *rest = dotted.split(".")
    if first not in namespace:
        raise NameError(f"name {first!r} is not defined")
    value = namespace[first]
    for name in rest:
        value = getattr(value, name)
    return value


def _in_comment(text: str, i: int) -> bool:
    """True when ``text[i]`` follows a YAML ``#`` comment mark on its line (quotes are not parsed)."""
    start = text.rfind("\n", 0, i) + 1
    return re.search(r"(?:^|\s)#", text[start:i]) is not None


def _failed(text: str, i: int, reference: str, error: Exception, hint: str = "") -> SpecError:
    line = text.count("\n", 0, i) + 1
    return SpecError(f"line {line}: {reference}: {type(error).__name__}: {error}{hint}")


def _braces(text: str, i: int, namespace: Mapping[str, Any], out: list[str]) -> int:
    end = _matching_brace(text, i)
    if end is None:
        out.append("{")
        return i + 1
    content = text[i + 1:end]
    expression, spec = _expression_and_spec(content)
    if expression is None:
        out.append("{")  # YAML's flow mapping: keep it, but look inside it for references
        return i + 1
    try:
        # A copy, so an expression cannot rebind the notebook's variables (walrus, del...).
        value = eval(compile(expression, "<%%automl cell>", "eval"), dict(namespace))  # noqa: S307
        filled = format(value, spec) if spec else to_yaml(value)
    except Exception as error:
        if _in_comment(text, i):
            out.append(text[i:end + 1])
            return end + 1
        raise _failed(text, i, f"{{{content}}}", error) from None
    out.append(filled)
    return end + 1


def _matching_brace(text: str, start: int) -> int | None:
    """The index of the ``}`` closing the ``{`` at ``start`` on the same line, or None."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "\n":
            return None
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return None


def _expression_and_spec(content: str) -> tuple[str | None, str]:
    """``(expression, format spec)`` when ``content`` is a Python expression, else ``(None, "")``."""
    if not content.strip():
        return None, ""
    if _compiles(content):
        return content, ""
    head, colon, spec = content.rpartition(":")
    if colon and spec and not spec[0].isspace() and _FORMAT_SPEC.match(spec) and _compiles(head):
        return head, spec
    return None, ""


def _compiles(expression: str) -> bool:
    try:
        compile(expression, "<%%automl cell>", "eval")
    except SyntaxError:
        return False
    return True


def to_yaml(value: Any) -> str:
    """A value as YAML text on one line (strings as they are, unless they hold a line break)."""
    import yaml

    if isinstance(value, str):
        return json.dumps(value) if "\n" in value or "\r" in value else value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    value = _plain(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), allow_unicode=True, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _plain(value: Any) -> Any:
    """Python containers and numpy scalars as the plain types YAML's safe dumper writes."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
