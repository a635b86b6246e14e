"""Data inputs of a job: ``Input(path, type)`` as in Azure ML's ``training_data: {path, type}``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from automl_nb.errors import SpecError
from automl_nb.spec._checks import did_you_mean, fail, show, unknown_key

INPUT_TYPES = ("mltable", "uri_file", "uri_folder")
# The JSONL key holding an image's labels when a job names no target_column_name.
DEFAULT_TARGET_COLUMN_NAME = "label"
# The fraction of the training data held out for validation when a job gives no validation data.
DEFAULT_VALIDATION_DATA_SIZE = 0.2
_FILE_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class Input:
    """A data input: a path or URL and its type (``mltable``, ``uri_file`` or ``uri_folder``).

    Args:
        path: a local path (relative ones resolve against the job's ``base_dir``) or a URL.
        type: how the path is read; an MLTable folder by default.

    Raises:
        SpecError: an empty path or an unknown type.

    Example:
        >>> Input("data/training-mltable-folder").to_dict()
        {'path': 'data/training-mltable-folder', 'type': 'mltable'}
    """

    path: str
    type: str = "mltable"

    def __post_init__(self) -> None:
        path = os.fspath(self.path) if isinstance(self.path, os.PathLike) else self.path
        if not isinstance(path, str) or not path.strip():
            fail("path", f"{show(self.path)} is not a path; allowed: a non-empty path or URL")
        kind = self.type.strip().lower() if isinstance(self.type, str) else self.type
        if kind not in INPUT_TYPES:
            suffix = did_you_mean(kind, INPUT_TYPES) if isinstance(kind, str) else ""
            fail("type", f"{show(self.type)} is not an input type; allowed: one of {', '.join(INPUT_TYPES)}{suffix}")
        object.__setattr__(self, "path", path.strip())
        object.__setattr__(self, "type", kind)

    def to_dict(self) -> dict[str, str]:
        """Return the YAML form ``{path: ..., type: ...}``."""
        return {"path": self.path, "type": self.type}


def as_input(value: Any, key: str) -> Input | None:
    """Return an Input from an Input, a ``{path, type}`` mapping, a path string, or None.

    A bare string ending in ``.jsonl``/``.json`` becomes a ``uri_file``, any other an ``mltable``.

    Args:
        value: what the user gave.
        key: the job key (``training_data``...) for messages.

    Raises:
        SpecError: ``key.field: ...`` for a malformed input.
    """
    if value is None or isinstance(value, Input):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        kind = "uri_file" if path.lower().endswith(_FILE_SUFFIXES) else "mltable"
        return _build(key, path, kind)
    if isinstance(value, Mapping):
        for field in value:
            if field not in ("path", "type"):
                unknown_key(f"{key}.{field}", "input field", ("path", "type"), value[field])
        if "path" not in value:
            fail(key, f"{show(dict(value))} has no path; allowed: {{path: ..., type: mltable}}")
        return _build(key, value["path"], value.get("type", "mltable"))
    fail(key, f"{show(value)} is not a data input; allowed: {{path: ..., type: mltable | uri_file | uri_folder}}")


def _build(key: str, path: Any, kind: Any) -> Input:
    try:
        return Input(path, kind)
    except SpecError as error:
        raise SpecError(f"{key}.{error}") from None
