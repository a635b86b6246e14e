"""MLTable folders: find the JSONL files they point at, load their records, write one.

An MLTable folder holds a YAML file named ``MLTable`` whose ``paths`` list entries of the
forms ``- file: ./x.jsonl``, ``- folder: ./labels`` (every ``*.jsonl`` in it) or
``- pattern: ./parts/*.jsonl``, relative to the folder (absolute paths and URLs are kept).
Only JSON-lines tables are image datasets; a delimited or parquet table is rejected.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import yaml

from automl_nb._atomic import atomic_write_text
from automl_nb.data.jsonl import read_jsonl, resolve_url
from automl_nb.data.records import ImageRecord, is_url
from automl_nb.errors import DataError
from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME

MLTABLE_FILE = "MLTable"

_MLTABLE_TEMPLATE = """\
paths:
  - file: ./{jsonl_name}
transformations:
  - read_json_lines:
      encoding: utf8
      invalid_lines: error
      include_path_column: false
  - convert_column_types:
      - columns: image_url
        column_type: stream_info
"""


def is_mltable_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` (local folder or URL) holds an ``MLTable`` file."""
    path = str(path)
    if is_url(path):
        fs, inner = _fs(path)
        return fs.isfile(inner.rstrip("/") + "/" + MLTABLE_FILE)
    return os.path.isfile(os.path.join(path, MLTABLE_FILE))


def jsonl_paths(path: str | os.PathLike) -> list[str]:
    """Return the JSONL files that ``path`` stands for.

    Args:
        path: a JSONL file, an MLTable folder (or its ``MLTable`` file), or a folder that
            holds exactly one ``.jsonl`` file; local or an fsspec URL.

    Returns:
        Paths (or URLs) of the JSONL files, in the order the MLTable lists them.

    Raises:
        DataError: the path does not exist, an MLTable is malformed or lists no paths, a
            listed file is missing, or a plain folder holds zero or several JSONL files.
    """
    path = str(path)
    if _isfile(path):
        if os.path.basename(path.rstrip("/")) == MLTABLE_FILE:
            return _paths_from_mltable(_parent(path))
        return [path]
    if not _isdir(path):
        raise DataError(f"training/validation data not found: {path}")
    if is_mltable_folder(path):
        return _paths_from_mltable(path)
    found = _glob(_join(path, "*.jsonl"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise DataError(
            f"{path}: folder has {what} .jsonl files and no {MLTABLE_FILE} file; "
            f"point at one JSONL file or add an {MLTABLE_FILE} file listing them"
        )
    return found


def load_records(
    path: str | os.PathLike,
    task: str,
    target_column_name: str = DEFAULT_TARGET_COLUMN_NAME,
    check_images: bool = True,
    *,
    problems: list[str] | None = None,
) -> list[ImageRecord]:
    """Load the records of a JSONL file, an MLTable folder or a folder with one JSONL.

    Args:
        path: local path or fsspec URL (see :func:`jsonl_paths`).
        task: image task name.
        target_column_name: the key holding the label.
        check_images: see :func:`automl_nb.data.jsonl.read_jsonl`.
        problems: collect every problem of every file into this list instead of raising
            at the first (see :func:`automl_nb.data.jsonl.read_jsonl`).

    Returns:
        The records of every JSONL file, concatenated (with ``problems``: those read).

    Raises:
        DataError: (without ``problems``) see :func:`jsonl_paths` and :func:`read_jsonl`.

    Example:
        >>> records = load_records("data/training-mltable-folder", "image_object_detection")
    """
    try:
        paths = jsonl_paths(path)
    except DataError as error:
        if problems is None:
            raise
        problems.append(str(error))
        return []
    records: list[ImageRecord] = []
    for jsonl_path in paths:
        records.extend(read_jsonl(jsonl_path, task, target_column_name, check_images, problems=problems))
    return records


def write_mltable(folder: str | os.PathLike, jsonl_name: str) -> Path:
    """Write an ``MLTable`` file in ``folder`` pointing at ``jsonl_name`` (Azure's format).

    Args:
        folder: the MLTable folder (created if missing).
        jsonl_name: file name of the JSONL, relative to ``folder`` (e.g. ``"labels.jsonl"``).

    Returns:
        Path of the ``MLTable`` file.
    """
    jsonl_name = str(jsonl_name).replace(os.sep, "/")
    if jsonl_name.startswith("./"):
        jsonl_name = jsonl_name[2:]
    if not jsonl_name or os.path.isabs(jsonl_name) or is_url(jsonl_name):
        raise DataError(f"jsonl_name must be a file name relative to {folder}, got {jsonl_name!r}")
    return atomic_write_text(Path(folder) / MLTABLE_FILE, _MLTABLE_TEMPLATE.format(jsonl_name=jsonl_name))


def _paths_from_mltable(folder: str) -> list[str]:
    mltable = _join(folder, MLTABLE_FILE)
    try:
        document = yaml.safe_load(_read_text(mltable))
    except yaml.YAMLError as exc:
        raise DataError(f"{mltable}: malformed YAML: {exc}") from exc
    if not isinstance(document, dict) or not document.get("paths"):
        raise DataError(f"{mltable}: no 'paths' listed (expected 'paths: - file: ./x.jsonl')")
    _check_json_lines(document, mltable)
    entries = document["paths"]
    if not isinstance(entries, list):
        raise DataError(f"{mltable}: 'paths' must be a list, got {entries!r}")
    found: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise DataError(f"{mltable}: each paths entry needs one of file, folder, pattern; got {entry!r}")
        kind, value = next(iter(entry.items()))
        target = resolve_url(str(value), folder)
        if kind == "file":
            if not _isfile(target):
                raise DataError(f"{mltable}: listed file {value} not found ({target})")
            found.append(target)
        elif kind == "folder":
            if not _isdir(target):
                raise DataError(f"{mltable}: listed folder {value} not found ({target})")
            found.extend(_glob(_join(target, "*.jsonl")))
        elif kind == "pattern":
            found.extend(_glob(target))
        else:
            raise DataError(f"{mltable}: unknown paths entry {kind!r} (expected file, folder or pattern)")
    if not found:
        raise DataError(f"{mltable}: its paths match no JSONL file")
    return found


def _check_json_lines(document: dict, mltable: str) -> None:
    steps = document.get("transformations") or []
    kinds = {key for step in steps if isinstance(step, dict) for key in step}
    readers = {k for k in kinds if k.startswith("read_")}
    if readers and "read_json_lines" not in readers:
        raise DataError(
            f"{mltable}: image data must be JSON lines (read_json_lines), found {', '.join(sorted(readers))}"
        )


# ---- local paths and fsspec URLs behind one small interface ----------------------------

def _fs(url: str):
    """The fsspec filesystem of ``url``; DataError when its protocol is unknown or its package missing."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:  # e.g. "Install s3fs to access S3", "Protocol not known"
        raise DataError(f"cannot open {url}: {error}") from None


def _isfile(path: str) -> bool:
    if is_url(path):
        fs, inner = _fs(path)
        return fs.isfile(inner)
    return os.path.isfile(path)


def _isdir(path: str) -> bool:
    if is_url(path):
        fs, inner = _fs(path)
        return fs.isdir(inner)
    return os.path.isdir(path)


def _parent(path: str) -> str:
    if is_url(path):
        return path.rstrip("/").rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))


def _join(folder: str, name: str) -> str:
    if is_url(folder):
        return folder.rstrip("/") + "/" + name
    return os.path.join(folder, name)


def _glob(pattern: str) -> list[str]:
    if is_url(pattern):
        fs, inner = _fs(pattern)
        return sorted(fs.unstrip_protocol(p) for p in fs.glob(inner) if fs.isfile(p))
    return sorted(p for p in glob.glob(pattern) if os.path.isfile(p))


def _read_text(path: str) -> str:
    if is_url(path):
        fs, inner = _fs(path)
        with fs.open(inner, "rb") as f:
            data = f.read()
    else:
        data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from exc
