"""``tile_grid_size`` values, ``"MxN"`` (M tiles across, N down): the one parser of them."""

from __future__ import annotations

import re
from typing import Any

from automl_nb.spec._checks import fail, show

GRID_FORMAT = "'MxN' with positive ints, e.g. '3x2'"
_GRID = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_grid(value: Any, key: str = "tile_grid_size") -> tuple[int, int]:
    """Parse a grid string ``"MxN"`` into ``(cols, rows)``.

    Args:
        value: ``"MxN"``: ``M`` tiles across the width, ``N`` down the height (positive ints;
            ``X`` and spaces around the numbers are accepted).
        key: the key the value belongs to, for the message.

    Returns:
        ``(cols, rows)``.

    Raises:
        SpecError: not a string of two positive ints joined by ``x``.

    Example:
        >>> parse_grid(" 3 X 2")
        (3, 2)
    """
    match = _GRID.match(value) if isinstance(value, str) else None
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        fail(key, f"{show(value)} is not a grid size; allowed: {GRID_FORMAT}")
    return int(match[1]), int(match[2])
