"""Write a job's plain dict as readable YAML: sections in block style, small records in flow style."""

from __future__ import annotations

from typing import Any, Mapping

import yaml


class _Flow(dict):
    """A mapping written on one line, e.g. ``{type: uniform, min_value: 0.0001, max_value: 0.01}``."""


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes ``_Flow`` mappings in flow style and keeps key order."""


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_Dumper.add_representer(_Flow, _represent_flow)


def flow(mapping: Mapping[str, Any]) -> dict:
    """Mark a mapping to be written on one line."""
    return _Flow(mapping)


def to_yaml_text(data: Mapping[str, Any]) -> str:
    """Return YAML text for a job dict, keys in the order given.

    Args:
        data: plain values (dicts, lists, str, numbers, bools, None); ``flow(...)`` marks records.

    Returns:
        The YAML text.
    """
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)
