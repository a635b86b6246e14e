"""Sweep settings: the sampling algorithm and the early-termination policy records (SPEC section 5).

The policies here are plain validated records (what the user asked for); the code that applies
them to trial histories lives in the sweep layer. Defaults: ``evaluation_interval`` 1 and
``delay_evaluation`` 0 (Azure's documented behaviour: act at every report from the start).
``asha`` and ``hyperband`` are our own (beyond Azure): they act at their rungs instead, at
``min_resource * reduction_factor**k`` reports, so they take no interval or delay.
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


# What asha and hyperband say to Azure's keys, which they do not take (their rungs are when they act).
_RUNG_HINT = ("its rungs, at min_resource * reduction_factor**k reports, are when it acts; "
              "min_resource is the grace period")


@dataclass(frozen=True, kw_only=True)
class AshaPolicy(_Policy):
    """Asynchronous successive halving: at each rung a trial continues only if in the top 1/eta so far.

    Rungs are at reports ``min_resource * reduction_factor**k`` (k = 0, 1, ...) below
    ``max_resource``; see ``automl_nb.sweep.policies.Asha`` for the rule and docs/sweeps.md.

    Attributes:
        reduction_factor: eta, int >= 2 (default 3): about 1 in eta trials goes on at each rung.
        min_resource: the grace period: the first rung's report, int >= 1 (default 2).
        max_resource: int > min_resource, or None (default): how many times the job's trials report
            (its ``number_of_epochs``, fewer with an ``evaluation_frequency`` above 1).

    Example:
        >>> AshaPolicy(reduction_factor="2").to_dict()
        {'type': 'asha', 'reduction_factor': 2, 'min_resource': 2}
    """

    reduction_factor: int = 3
    # Not 1 (Ray's and Optuna's): after one epoch the trials are ranked by how they start, not by
    # where they go. On the recorded curves of bench/early_termination.py a rung at report 1 stopped
    # the two best trials (-7 points); from report 2 on the best stays within 1 point (docs/sweeps.md).
    min_resource: int = 2
    max_resource: int | None = None
    type: ClassVar[str] = "asha"
    not_taken: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"evaluation_interval": _RUNG_HINT, "delay_evaluation": _RUNG_HINT,
         "grace_period": "Ray Tune's grace_period is min_resource here"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "reduction_factor", _int_at_least("reduction_factor", self.reduction_factor, 2))
        object.__setattr__(self, "min_resource", _int_at_least("min_resource", self.min_resource, 1))
        if self.max_resource is not None:
            maximum = _int_at_least("max_resource", self.max_resource, 1)
            if maximum <= self.min_resource:
                fail("max_resource", f"{show(self.max_resource)} is out of range; allowed: int > min_resource "
                     f"({self.min_resource}), or none for the job's number_of_epochs (no rung would be below it)")
            object.__setattr__(self, "max_resource", maximum)


def bracket_count(min_resource: int, max_resource: int, reduction_factor: int) -> int:
    """How many hyperband brackets fit: grace periods ``min_resource * eta**s`` up to ``max_resource``.

    Example:
        >>> bracket_count(1, 9, 3), bracket_count(1, 8, 3), bracket_count(2, 100, 4)
        (3, 2, 3)
    """
    count, grace = 1, min_resource * reduction_factor
    while grace <= max_resource:  # integers: no log rounding surprises at exact powers
        count, grace = count + 1, grace * reduction_factor
    return count


@dataclass(frozen=True, kw_only=True)
class HyperbandPolicy(AshaPolicy):
    """Hyperband as asynchronous brackets: ASHA brackets whose grace periods grow by ``reduction_factor``.

    Bracket ``s`` (0-based) has its first rung at ``min_resource * reduction_factor**s``; trials
    join the brackets in turn. See ``automl_nb.sweep.policies.Hyperband``.

    Attributes:
        brackets: int >= 1, or None (default): as many as fit below ``max_resource``
            (``floor(log_eta(max_resource / min_resource)) + 1``).

    Example:
        >>> HyperbandPolicy(max_resource=27).to_dict()
        {'type': 'hyperband', 'reduction_factor': 3, 'min_resource': 2, 'max_resource': 27}
    """

    brackets: int | None = None
    type: ClassVar[str] = "hyperband"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.brackets is None:
            return
        count = _int_at_least("brackets", self.brackets, 1)
        if self.max_resource is not None:
            fit = bracket_count(self.min_resource, self.max_resource, self.reduction_factor)
            if count > fit:
                fail("brackets", f"{show(self.brackets)} is out of range; allowed: int in [1, {fit}] (grace periods "
                     f"{self.min_resource} * {self.reduction_factor}**s up to max_resource {self.max_resource})")
        object.__setattr__(self, "brackets", count)


EarlyTerminationPolicy = Union[BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy, AshaPolicy,
                               HyperbandPolicy]
POLICIES: Mapping[str, type] = MappingProxyType({
    cls.type: cls for cls in (BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy, AshaPolicy,
                              HyperbandPolicy)
})


def policy_from_dict(data: Mapping[str, Any]) -> EarlyTerminationPolicy:
    """Build a policy from ``{type: bandit, evaluation_interval: 2, slack_factor: 0.2, ...}``.

    The type may be spelt as Azure's SDK does (``Bandit``, ``MedianStoppingPolicy``).

    Raises:
        SpecError: unknown type or field, missing or invalid field.
    """
    if not isinstance(data, Mapping):
        fail("early_termination", f"{show(data)} is not a mapping; allowed: {{type: {' | '.join(POLICIES)}, ...}}")
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
        if key in getattr(cls, "not_taken", {}):
            fail(key, f"{show(data[key])}: not a field of {name} ({cls.not_taken[key]}); allowed: {', '.join(names)}")
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
