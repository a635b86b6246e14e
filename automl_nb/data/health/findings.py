"""The pieces of a data-health report: a :class:`Finding` and the YAML it recommends.

A finding says what was seen (with counts and ``file:line`` examples), how much it matters
(its severity) and what to do, where possible as YAML lines to paste into the job. Every
recommended hyperparameter is checked against the spec table with the job's other fixed
parameters before it is offered, so a pasted line never makes the job invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from automl_nb.errors import SpecError

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)
TRAINING_PARAMETERS = "training_parameters"
# Examples named in a finding's message (file:line or image paths); the rest are counted.
SHOWN_EXAMPLES = 5


@dataclass(frozen=True)
class Finding:
    """One thing a data-health check found.

    Attributes:
        kind: what it is, e.g. ``"leakage"``, ``"small_objects"``, ``"class_imbalance"``.
        severity: ``"error"`` (the run's result would be wrong or it would fail), ``"warning"``
            (it will likely train worse than it could) or ``"info"``.
        message: what was found, with the numbers and the first examples.
        recommendation: what to do and why.
        yaml: the YAML line(s) to paste, or None when the fix is in the data itself.
        section: where ``yaml`` goes: ``"training_parameters"``, or None for the job's top level.
        examples: every affected ``file:line`` (or image path), in order.
    """

    kind: str
    severity: str
    message: str
    recommendation: str
    yaml: str | None = None
    section: str | None = None
    examples: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity: {self.severity!r} is not one of {', '.join(SEVERITIES)}")

    def to_dict(self) -> dict[str, Any]:
        """The finding as plain JSON-ready data."""
        return {"kind": self.kind, "severity": self.severity, "message": self.message,
                "recommendation": self.recommendation, "yaml": self.yaml, "section": self.section,
                "examples": list(self.examples)}


def listed(items: list[str] | tuple[str, ...], shown: int = SHOWN_EXAMPLES) -> str:
    """``a, b, c and 4 more``: the first ``shown`` items and a count of the rest."""
    head = ", ".join(items[:shown])
    return f"{head} and {len(items) - shown} more" if len(items) > shown else head


def plural(count: int, noun: str) -> str:
    """``"1 image"``, ``"3 images"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def percent(part: int, whole: int) -> str:
    """``"30%"`` (``"0%"`` of nothing)."""
    return f"{100 * part / whole:.0f}%" if whole else "0%"


def parameter_yaml(task: str, fixed: Mapping[str, Any], values: Mapping[str, Any]) -> str | None:
    """YAML lines setting ``values`` under ``training_parameters``, if the spec accepts them.

    Args:
        task: the job's task.
        fixed: the job's fixed training parameters (the recommendation is checked with them).
        values: the recommended parameters, e.g. ``{"tile_grid_size": "3x2"}``.

    Returns:
        ``"tile_grid_size: 3x2"`` (one line per value), or None when the parameters do not
        apply to the task and model or break a rule of the table (e.g. seresnext's 224 crop).
    """
    from automl_nb.spec import resolve_parameters

    try:
        resolve_parameters(task, {**fixed, **values})
    except SpecError:
        return None
    return "\n".join(f"{key}: {value}" for key, value in values.items())
