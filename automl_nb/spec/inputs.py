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


OUTPUT_TYPES = ("uri_folder", "uri_file", "mlflow_model", "custom_model", "mltable", "triton_model")
_OUTPUT_FIELDS = ("type", "path", "mode")


@dataclass(frozen=True)
class Output:
    """A named output of a job, as Azure ML's ``Output(type=..., path=..., mode=...)``.

    A job keeps its outputs and writes them back in ``dump``; a run writes its models and
    metrics to its run folder (``submit(output=...)``), not to these.

    Args:
        type: one of ``OUTPUT_TYPES`` (default ``uri_folder``).
        path: where Azure would write it (optional).
        mode: Azure's upload mode, e.g. ``rw_mount`` or ``upload`` (optional, kept as given).

    Raises:
        SpecError: an unknown type, or a path or mode that is not a non-empty string.
    """

    type: str = "uri_folder"
    path: str | None = None
    mode: str | None = None

    def __post_init__(self) -> None:
        kind = self.type.strip().lower() if isinstance(self.type, str) else self.type
        if kind not in OUTPUT_TYPES:
            suffix = did_you_mean(kind, OUTPUT_TYPES) if isinstance(kind, str) else ""
            fail("type", f"{show(self.type)} is not an output type; allowed: one of {', '.join(OUTPUT_TYPES)}{suffix}")
        object.__setattr__(self, "type", kind)
        path = os.fspath(self.path) if isinstance(self.path, os.PathLike) else self.path
        for name, value in (("path", path), ("mode", self.mode)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                fail(name, f"{show(value)} is not allowed; allowed: a non-empty string")
        object.__setattr__(self, "path", path)

    def to_dict(self) -> dict[str, str]:
        """Return the YAML form ``{type: ..., path: ..., mode: ...}`` (unset fields left out)."""
        return {name: getattr(self, name) for name in _OUTPUT_FIELDS if getattr(self, name) is not None}


def as_outputs(value: Any) -> dict[str, Output]:
    """Return a job's outputs by name from a mapping of names to Outputs, ``{type, path}`` mappings or paths.

    Objects with ``type``/``path``/``mode`` attributes (azure-ai-ml's ``Output``) are read too.

    Raises:
        SpecError: ``outputs.name.field: ...`` for a malformed output.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        fail("outputs", f"{show(value)} is not a mapping of output names to outputs")
    outputs = {}
    for name, item in value.items():
        where = f"outputs.{name}"
        if isinstance(item, (str, os.PathLike)):
            item = {"path": os.fspath(item)}
        elif not isinstance(item, (Mapping, Output)):
            item = {field: getattr(item, field, None) for field in _OUTPUT_FIELDS}
            item = {field: v for field, v in item.items() if v is not None}
        if isinstance(item, Mapping):
            for field in item:
                if field not in _OUTPUT_FIELDS:
                    unknown_key(f"{where}.{field}", "output field", _OUTPUT_FIELDS, item[field])
            try:
                item = Output(**dict(item))
            except SpecError as error:
                raise SpecError(f"{where}.{error}") from None
        outputs[str(name)] = item
    return outputs
