"""Read Azure CLI v2 AutoML image job YAML; every error points at its file and line.

The loader composes the YAML node tree once, records the line of every mapping key and
sequence item by its path (``("training_parameters", "learning_rate")``,
``("search_space", 1, "min_size")``), then builds the job section by section. A SpecError
raised while building starts with the key it is about (``learning_rate: 1.5 is out of range``),
so the loader finds that key's line and re-raises ``file:line: key: message``.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from automl_nb.errors import SpecError
from automl_nb.spec._yaml_dump import to_yaml_text
from automl_nb.spec.job import ImageJob, job_from_dict

TEXT_SOURCE = "<yaml>"
_YAML_SUFFIXES = (".yml", ".yaml")
_KEY_TOKEN = re.compile(r"^([A-Za-z_$][\w$-]*(?:\[\d+\]|\.[A-Za-z_$][\w$-]*)*): ")
_TOKEN_PART = re.compile(r"[A-Za-z_$][\w$-]*|\[(\d+)\]")


def load_job(source: str | os.PathLike) -> ImageJob:
    """Load and validate a job from a YAML file or YAML text.

    Args:
        source: a path to an existing file (str or PathLike), or YAML text.

    Returns:
        The job; its ``base_dir`` is the file's folder (the working directory for text).

    Raises:
        SpecError: ``file:line: key: message`` for any invalid key or value (``<yaml>`` for
            text), ``file:line:column: YAML syntax error: ...`` for broken YAML, or a missing file.

    Example:
        >>> job = load_job("task: image_object_detection\\ntraining_data: {path: data/train, type: mltable}")
        >>> job.task
        'image_object_detection'
    """
    text, name, base_dir = _read(source)
    data, lines = _parse(text, name)

    @contextmanager
    def located(section: tuple) -> Iterator[None]:
        try:
            yield
        except SpecError as error:
            line = _line_of(str(error), section, lines)
            raise SpecError(f"{name}:{line}: {error}") from None

    return job_from_dict(data, base_dir=base_dir, located=located)


def dump_job_dict(data: dict[str, Any]) -> str:
    """YAML text of a job's plain dict, laid out as ``job.dump()`` lays it out.

    For ``job.to_dict()`` with keys left out: the search-space builder's preview leaves out
    invalid fields this way.

    Example:
        >>> data = job.to_dict(); del data["limits"]["max_trials"]
        >>> print(dump_job_dict(data))
    """
    return to_yaml_text(data)


def _read(source: str | os.PathLike) -> tuple[str, str, Path | None]:
    if isinstance(source, os.PathLike):
        return _read_file(Path(source))
    if not isinstance(source, str):
        raise SpecError(f"source: {source!r} is neither a path nor YAML text")
    if "\n" not in source and os.path.isfile(source):
        return _read_file(Path(source))
    if "\n" not in source and source.strip().lower().endswith(_YAML_SUFFIXES) and ": " not in source:
        raise SpecError(f"{source}: no such file")
    return source, TEXT_SOURCE, None


def _read_file(path: Path) -> tuple[str, str, Path]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(f"{path}: cannot read the job file ({error.strerror or error})") from None
    return text, str(path), path.resolve().parent


def _parse(text: str, name: str) -> tuple[Any, dict[tuple, int]]:
    """Return the YAML data and the line of every key path."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise SpecError(f"{where}: YAML syntax error: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{name}: YAML error: {error}") from None
    lines: dict[tuple, int] = {}
    if node is not None:
        _record_lines(node, (), lines, name, set())
    return data, lines


def _record_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int], name: str, active: set[int]) -> None:
    if id(node) in active:  # an alias back into itself
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise SpecError(f"{name}:{line}: {key}: duplicate key")
            seen.add(key)
            lines[path + (key,)] = line
            _record_lines(value_node, path + (key,), lines, name, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _record_lines(item, path + (index,), lines, name, active)
    active.discard(id(node))


def _token_path(message: str) -> tuple:
    match = _KEY_TOKEN.match(message)
    if not match:
        return ()
    parts = []
    for found in _TOKEN_PART.finditer(match.group(1)):
        parts.append(int(found.group(1)) if found.group(1) is not None else found.group(0))
    return tuple(parts)


def _line_of(message: str, section: tuple, lines: dict[tuple, int]) -> int:
    """The line of the key a message starts with, looked up within a section of the YAML."""
    token = _token_path(message)
    if token:
        for path in (section + token, token):
            if path in lines:
                return lines[path]
        if len(token) == 1:  # a bare key deeper inside the section, first in document order
            for path, line in lines.items():
                if path[: len(section)] == section and path[-1] == token[0]:
                    return line
    for path in (section + token, token):  # else the nearest enclosing key
        while path:
            if path in lines:
                return lines[path]
            path = path[:-1]
    return 1
