"""A job's ``properties``: Azure's free-form name/value pairs, and the one we read.

Azure ML keeps any ``properties:`` of a job as metadata; AutoML reads ``node_count_per_trial``
(machines per trial, seed 002: ``properties: {node_count_per_trial: "2"}``). So do we: every
property is kept and dumped as given, and ``node_count_per_trial`` is checked.
"""

from __future__ import annotations

from typing import Any, Mapping

from automl_nb.spec._checks import did_you_mean, fail, show, to_int

NODE_COUNT_PER_TRIAL = "node_count_per_trial"
# Properties AutoML reads; any other name is kept as metadata.
KNOWN_PROPERTIES = (NODE_COUNT_PER_TRIAL,)


def check_properties(value: Any) -> dict[str, Any]:
    """Return a job's properties as a new dict, after checking the ones AutoML reads.

    Args:
        value: the ``properties:`` mapping (names to scalars), or None.

    Returns:
        The properties as given (Azure writes their values as strings: ``"2"`` stays ``"2"``).

    Raises:
        SpecError: not a mapping of names to scalars, or ``node_count_per_trial`` not an int >= 1.

    Example:
        >>> check_properties({"node_count_per_trial": "2"})
        {'node_count_per_trial': '2'}
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        fail("properties", f"{show(value)} is not a mapping of names to values")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, (str, int, float, bool)):
            fail(f"properties.{key}", f"{show(item)} is not allowed; allowed: a string name with a scalar value")
    if NODE_COUNT_PER_TRIAL in value:
        _node_count(value[NODE_COUNT_PER_TRIAL])
    return dict(value)


def node_count_per_trial(properties: Mapping[str, Any]) -> int:
    """Machines per trial that the properties ask for (1 when not set)."""
    return _node_count(properties.get(NODE_COUNT_PER_TRIAL, 1))


def misspelt_properties(properties: Mapping[str, Any]) -> list[str]:
    """Names that look like a misspelt known property, each with its suggestion (for a warning)."""
    found = []
    for key in properties:
        if key not in KNOWN_PROPERTIES:
            suggestion = did_you_mean(key, KNOWN_PROPERTIES)
            if suggestion:
                found.append(f"properties.{key}{suggestion}")
    return found


def _node_count(value: Any) -> int:
    try:
        number = to_int(value)
    except ValueError:
        number = 0
    if number < 1:
        fail(f"properties.{NODE_COUNT_PER_TRIAL}", f"{show(value)} is not allowed; allowed: an int >= 1 "
             "(machines per trial), e.g. \"2\"")
    return number
