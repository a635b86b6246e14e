"""Small coercion and message helpers shared by the spec modules.

Every user-facing message has the shape ``key: <value> is ...; allowed: ...``; ``fail`` builds
it so the YAML loader can find the key at the start of the message and point at its line.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, Iterable, Mapping, NoReturn

from automl_nb.errors import SpecError

_INT_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_TRUE_WORDS = ("true", "1")
_FALSE_WORDS = ("false", "0")


def fail(key: str, message: str) -> NoReturn:
    """Raise a SpecError whose message starts with the key it is about.

    Args:
        key: the key (or dotted path such as ``search_space[1].min_size``).
        message: what is wrong and what is allowed.

    Raises:
        SpecError: always.
    """
    raise SpecError(f"{key}: {message}")


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the nearest candidate, or ``""`` when none is close.

    Args:
        name: the misspelt name.
        candidates: the valid names.

    Returns:
        A message suffix (possibly empty).
    """
    matches = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def unknown_key(key: Any, what: str, candidates: Iterable[str], value: Any = None) -> NoReturn:
    """Raise a SpecError for an unknown key: the nearest valid key, else the valid keys.

    Args:
        key: the unknown key.
        what: what kind of key, e.g. "training parameter".
        candidates: the valid keys.
        value: the value given with it; a short scalar is shown.

    Raises:
        SpecError: always.
    """
    candidates = [str(c) for c in candidates]
    shown = f"{show(value)}: " if isinstance(value, (str, int, float, bool)) else ""
    suffix = did_you_mean(str(key).rsplit(".", 1)[-1], candidates)
    if not suffix and len(candidates) <= 25:
        suffix = "; allowed: " + ", ".join(candidates)
    fail(str(key), f"{shown}unknown {what}{suffix}")


def check_nested_key(where: str, key: str, value: Any, table: Mapping[str, Any], task: str, what: str) -> None:
    """SpecError unless ``key`` of the object at ``where`` is in ``table`` and applies to ``task``.

    Table entries have ``tasks``; the message names ``where.key``, the value, and the nearest
    valid key or the tasks the key applies to.
    """
    if key not in table:
        unknown_key(f"{where}.{key}", what, table, value)
    if task not in table[key].tasks:
        fail(f"{where}.{key}", f"{show(value)} does not apply to {task}; it applies only to "
             f"{', '.join(table[key].tasks)}")


def snake_case(text: str) -> str:
    """Turn Azure SDK enum spellings (``WarmupCosine``, ``MeanAveragePrecision``) into ``snake_case``.

    Args:
        text: a name in camelCase, PascalCase, snake_case or UPPER case.

    Returns:
        The lower-case snake_case spelling (``IOU`` -> ``iou``).
    """
    return _CAMEL_BOUNDARY.sub("_", text.strip()).lower()


def show(value: Any) -> str:
    """Render a value for a message: strings quoted, everything else as Python shows it."""
    return repr(value)


def is_number(value: Any) -> bool:
    """True for int and float values that are not bools."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_int(value: Any) -> int:
    """Coerce ``3``, ``3.0`` or ``"3"`` to ``3``.

    Raises:
        ValueError: for bools, non-integral floats, other strings and other types.
    """
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.match(value):
        return int(value)
    raise ValueError(value)


def to_float(value: Any) -> float:
    """Coerce numbers and numeric strings (YAML reads ``1e-4`` as a string) to a finite float.

    Raises:
        ValueError: for bools, non-numeric strings, NaN, infinities and other types.
    """
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise ValueError(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def to_bool(value: Any, true_words: tuple[str, ...] = (), false_words: tuple[str, ...] = ()) -> bool:
    """Coerce ``True``/``False``, ``0``/``1`` and ``"true"``/``"false"``/``"1"``/``"0"`` to bool.

    Args:
        value: the value to coerce.
        true_words: extra lower-case words meaning True (e.g. ``("enable",)``).
        false_words: extra lower-case words meaning False.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS + tuple(true_words):
            return True
        if word in _FALSE_WORDS + tuple(false_words):
            return False
    raise ValueError(value)
