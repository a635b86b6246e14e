"""Atomic file writes: a crash never leaves a half-written file in a run folder."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from automl_nb.errors import RunFolderError


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` only when the ``with`` block ends without error.

    It writes a temporary file in the same folder, syncs it and renames it over ``path``,
    so readers see the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one JSON line; a single ``write`` of a whole line, flushed and synced.

    Readers skip a final line without its newline, so a crash mid-append loses at most
    the row being written and never corrupts earlier rows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file of a run folder.

    Raises:
        RunFolderError: the file is truncated, corrupt or not UTF-8 (the message names it).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise RunFolderError(f"{path}: damaged, not readable as JSON ({error}); restore it from a copy "
                             "or remove the folder it describes") from None


def read_jsonl_rows(path: str | os.PathLike) -> list[dict]:
    """Read the rows of a JSONL file written by :func:`append_jsonl`.

    A last line without its newline was cut off by a crash (or is being appended right now): it is
    dropped, with a warning when it is not whole JSON.

    Raises:
        RunFolderError: a complete line is not JSON (the message names ``file:line``).
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError as error:
        raise RunFolderError(f"{path}: damaged, not UTF-8 text ({error})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not line.endswith("\n"):
            _warn_torn_line(path, number, line)
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as error:
            raise RunFolderError(f"{path}:{number}: damaged line, not JSON ({error}): {line.strip()[:60]!r}") from None
    return rows


def _warn_torn_line(path: Path, number: int, line: str) -> None:
    try:
        json.loads(line)
    except ValueError:
        warnings.warn(f"{path}:{number}: dropped a torn last line (cut off by a crash): {line.strip()[:60]!r}",
                      stacklevel=3)
