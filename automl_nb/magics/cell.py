"""From a ``%%automl`` cell to a validated job, every error pointing at the cell's line.

The cell's first line is ``%%automl [options]``; the YAML starts on line 2, so YAML line N is
cell line N + 1, which is what the notebook shows next to the cell when line numbers are on.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from automl_nb.errors import SpecError
from automl_nb.magics.interpolate import interpolate

# load_job's messages for YAML text: "<yaml>:LINE: key: ..." or "<yaml>:LINE:COLUMN: YAML syntax error: ..."
_LOCATED = re.compile(r"^<yaml>:(\d+)(?::(\d+))?: (.*)$", re.DOTALL)
_INTERPOLATION_LINE = re.compile(r"^line (\d+): (.*)$", re.DOTALL)
CELL_FIRST_YAML_LINE = 2


class CellError(SpecError):
    """A ``%%automl`` cell is invalid; the message names the cell line and quotes it.

    Attributes:
        cell_line: the line of the cell (1 is the ``%%automl`` line), or None.
    """

    def __init__(self, message: str, cell_line: int | None = None) -> None:
        super().__init__(message)
        self.cell_line = cell_line


def job_from_cell(body: str, namespace: Mapping[str, Any], *, name: str | None = None, base_dir: Any = None):
    """Interpolate the cell's YAML from ``namespace``, then load and validate the job.

    Args:
        body: the cell without its ``%%automl`` line.
        namespace: the notebook's variables, for ``$var`` and ``{expr}``.
        name: the job's name (``--name``), overriding the YAML's ``name:``.
        base_dir: the folder relative data paths resolve against (default: the working directory).

    Returns:
        The validated job.

    Raises:
        CellError: ``cell line N: key: message`` followed by the quoted line.

    Example:
        >>> job = job_from_cell("task: image_classification\\ntraining_data: {path: $data}", {"data": "shapes"})
    """
    from automl_nb.spec import load_job

    if not body.strip():
        raise CellError("the cell is empty: write the job's YAML below %%automl, e.g.\n"
                        "%%automl\ntask: image_classification\ntraining_data: {path: ./data, type: mltable}\n"
                        "training_parameters: {model_name: resnet18}")
    try:
        text = interpolate(body, namespace)
    except SpecError as error:
        match = _INTERPOLATION_LINE.match(str(error))
        if match is None:
            raise CellError(str(error)) from None
        raise _located(int(match.group(1)), match.group(2), body, body) from None
    try:
        job = load_job(text)
    except SpecError as error:
        match = _LOCATED.match(str(error))
        if match is None:
            raise CellError(f"%%automl cell: {error}") from None
        raise _located(int(match.group(1)), match.group(3), body, text) from None
    if base_dir is not None:
        from pathlib import Path

        job.base_dir = Path(base_dir)
    if name is not None:
        if not name.strip():
            raise CellError("--name: '' is not allowed; allowed: a non-empty job name")
        job.name = name
    return job


def _located(yaml_line: int, message: str, body: str, interpolated: str) -> CellError:
    """The error at a YAML line: ``cell line N: message`` and the line as written (and as read)."""
    cell_line = yaml_line + CELL_FIRST_YAML_LINE - 1
    written = _line(body, yaml_line)
    text = f"cell line {cell_line}: {message}"
    if written is not None:
        text += f"\n  {cell_line} | {written}"
        read = _line(interpolated, yaml_line)
        if read is not None and read != written:
            text += f"\n  {' ' * len(str(cell_line))} | {read}    (after $var / {{expr}} interpolation)"
    return CellError(text, cell_line)


def _line(text: str, number: int) -> str | None:
    lines = text.splitlines()
    return lines[number - 1].rstrip() if 1 <= number <= len(lines) else None
