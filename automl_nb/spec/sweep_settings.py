"""Sweep settings: the sampling algorithm and the early-termination policy records (SPEC section 5).

The policies here are plain validated records (what the user asked for); the code that applies
them to trial histories lives in the sweep layer. Defaults: ``evaluation_interval`` 1 and
``delay_evaluation`` 0 (Azure's documented behaviour: act at every report from the start).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, ClassVar, Mapping, Union

from automl_nb.spec._checks import did_you_mean, fail, show, snake_case, to_bool, to_float, to_int, unknown_key

SAMPLING_ALGORITHMS = ("random", "grid", "bayesian")


def check_sampling_algorithm(value: Any) -> str:
    """Return ``random``, ``grid`` or ``bayesian`` from any casing (Azure writes ``Random``...).

    An object with a string ``type`` (azure-ai-ml's ``RandomSamplingAlgorithm()``...) gives its type.

    Raises:
        SpecError: for anything else.
    """
    if not isinstance(value, str) and isinstance(getattr(value, "type", None), str):
        value = value.type
    if isinstance(value, str) and snake_case(value) in SAMPLING_ALGORITHMS:
        return snake_case(value)
    suffix = did_you_mean(value, SAMPLING_ALGORITHMS) if isinstance(value, str) else ""
    fail("sampling_algorithm", f"{show(value)} is not allowed; allowed: one of {', '.join(SAMPLING_ALGORITHMS)}{suffix}")


def _int_at_least(key: str, value: Any, minimum: int) -> int:
    try:
        number = to_int(value)
    except ValueError:
        fail(key, f"{show(value)} is not an int; allowed: int >= {minimum}")
    if number < minimum:
        fail(key, f"{show(value)} is out of range; allowed: int >= {minimum}")
    return number


def _slack(key: str, value: Any) -> float | None:
    """A bandit's slack: a float > 0, or None when not set (0 too: Azure's SDK fills the unset one with 0)."""
    if value is None:
        return None
    try:
        number = to_float(value)
    except ValueError:
        fail(key, f"{show(value)} is not a number; allowed: float > 0 (0 or None: not set)")
    if number < 0:
        fail(key, f"{show(value)} is out of range; allowed: float > 0 (0 or None: not set)")
    return number or None


class _Policy:
    """Shared behaviour of the early-termination policy records."""

    type: ClassVar[str] = ""

    def _check_common(self) -> None:
        object.__setattr__(self, "evaluation_interval", _int_at_least("evaluation_interval", self.evaluation_interval, 1))
        object.__setattr__(self, "delay_evaluation", _int_at_least("delay_evaluation", self.delay_evaluation, 0))

    def to_dict(self) -> dict[str, Any]:
        """Return the YAML form ``{type: bandit, evaluation_interval: .., ...}`` (unset fields left out)."""
        result: dict[str, Any] = {"type": self.type}
        for item in fields(self):
            if getattr(self, item.name) is not None:
                result[item.name] = getattr(self, item.name)
        return result


@dataclass(frozen=True, kw_only=True)
class BanditPolicy(_Policy):
    """Stop a trial whose metric falls below best / (1 + slack_factor), or best - slack_amount.

    Exactly one of ``slack_factor`` and ``slack_amount`` is given; the other is None or 0 (the
    Azure SDK's ``BanditPolicy(slack_factor=0.2)`` has ``slack_amount=0``), kept as None.

    Example:
        >>> BanditPolicy(slack_factor=0.2, slack_amount=0) == BanditPolicy(slack_factor=0.2)
        True
    """

    evaluation_interval: int = 1
    delay_evaluation: int = 0
    slack_factor: float | None = None
    slack_amount: float | None = None
    type: ClassVar[str] = "bandit"

    def __post_init__(self) -> None:
        self._check_common()
        for name in ("slack_factor", "slack_amount"):
            object.__setattr__(self, name, _slack(name, getattr(self, name)))
        if (self.slack_factor is None) == (self.slack_amount is None):
            given = "both" if self.slack_factor is not None else "neither"
            fail("early_termination", f"bandit needs exactly one of slack_factor and slack_amount (> 0); got {given}")


@dataclass(frozen=True, kw_only=True)
class MedianStoppingPolicy(_Policy):
    """Stop a trial whose best metric is worse than the median of the running averages."""

    evaluation_interval: int = 1
    delay_evaluation: int = 0
    type: ClassVar[str] = "median_stopping"

    def __post_init__(self) -> None:
        self._check_common()


@dataclass(frozen=True, kw_only=True)
class TruncationSelectionPolicy(_Policy):
    """At each evaluation stop the lowest ``truncation_percentage`` percent of trials."""

    truncation_percentage: int
    evaluation_interval: int = 1
    delay_evaluation: int = 0
    exclude_finished_jobs: bool = False
    type: ClassVar[str] = "truncation_selection"

    def __post_init__(self) -> None:
        self._check_common()
        try:
            percentage = to_int(self.truncation_percentage)
        except ValueError:
            fail("truncation_percentage", f"{show(self.truncation_percentage)} is not an int; allowed: int in [1, 99]")
        if not 1 <= percentage <= 99:
            fail("truncation_percentage", f"{show(self.truncation_percentage)} is out of range; allowed: int in [1, 99]")
        object.__setattr__(self, "truncation_percentage", percentage)
        try:
            object.__setattr__(self, "exclude_finished_jobs", to_bool(self.exclude_finished_jobs))
        except ValueError:
            fail("exclude_finished_jobs", f"{show(self.exclude_finished_jobs)} is not a bool; allowed: true or false")


EarlyTerminationPolicy = Union[BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy]
POLICIES: Mapping[str, type] = MappingProxyType({
    cls.type: cls for cls in (BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy)
})


def policy_from_dict(data: Mapping[str, Any]) -> EarlyTerminationPolicy:
    """Build a policy from ``{type: bandit, evaluation_interval: 2, slack_factor: 0.2, ...}``.

    The type may be spelt as Azure's SDK does (``Bandit``, ``MedianStoppingPolicy``).

    Raises:
        SpecError: unknown type or field, missing or invalid field.
    """
    if not isinstance(data, Mapping):
        fail("early_termination", f"{show(data)} is not a mapping; allowed: {{type: bandit | median_stopping | "
             "truncation_selection, ...}")
    if "type" not in data:
        fail("early_termination", f"type is missing; allowed: one of {', '.join(POLICIES)}")
    name = snake_case(str(data["type"]))
    name = name[: -len("_policy")] if name.endswith("_policy") else name
    if name not in POLICIES:
        fail("type", f"{show(data['type'])} is not an early-termination policy; allowed: one of "
             f"{', '.join(POLICIES)}{did_you_mean(name, POLICIES)}")
    cls = POLICIES[name]
    names = [item.name for item in fields(cls)]
    for key in data:
        if key != "type" and key not in names:
            unknown_key(key, f"field of {name}", names, data[key])
    if cls is TruncationSelectionPolicy and "truncation_percentage" not in data:
        fail("early_termination", "truncation_selection needs truncation_percentage (int in [1, 99])")
    return cls(**{key: value for key, value in data.items() if key != "type"})


def as_policy(value: Any) -> EarlyTerminationPolicy | None:
    """Return a policy from a policy, its YAML mapping, or None (no early termination)."""
    if value is None or isinstance(value, tuple(POLICIES.values())):
        return value
    return policy_from_dict(value)


@dataclass(frozen=True)
class Sweep:
    """How a search space is swept: ``sampling_algorithm`` and an optional ``early_termination``.

    Example:
        >>> Sweep("Random", {"type": "bandit", "slack_factor": 0.2}).to_dict()["sampling_algorithm"]
        'random'
    """

    sampling_algorithm: str = "random"
    early_termination: EarlyTerminationPolicy | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sampling_algorithm", check_sampling_algorithm(self.sampling_algorithm))
        object.__setattr__(self, "early_termination", as_policy(self.early_termination))

    def to_dict(self) -> dict[str, Any]:
        """Return the YAML form of ``sweep:``."""
        result: dict[str, Any] = {"sampling_algorithm": self.sampling_algorithm}
        if self.early_termination is not None:
            result["early_termination"] = self.early_termination.to_dict()
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Sweep":
        """Build from the YAML ``sweep:`` mapping.

        Raises:
            SpecError: unknown key, missing sampling_algorithm, invalid policy.
        """
        if not isinstance(data, Mapping):
            fail("sweep", f"{show(data)} is not a mapping; allowed: {{sampling_algorithm: ..., early_termination: ...}}")
        names = ("sampling_algorithm", "early_termination")
        for key in data:
            if key not in names:
                unknown_key(key, "sweep setting", names, data[key])
        if "sampling_algorithm" not in data:
            fail("sampling_algorithm", f"missing; allowed: one of {', '.join(SAMPLING_ALGORITHMS)}")
        return cls(data["sampling_algorithm"], data.get("early_termination"))
