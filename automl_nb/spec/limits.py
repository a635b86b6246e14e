"""Job limits (SPEC section 4): trials, concurrent trials and the time budget."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, Mapping

from automl_nb.spec._checks import fail, show, to_int, unknown_key

MAX_TRIALS = 1000
MAX_CONCURRENT_TRIALS = 100
MAX_TIMEOUT_MINUTES = 60 * 24 * 60  # 60 days
DEFAULT_TIMEOUT_MINUTES = 7 * 24 * 60  # 7 days


def _bounded_int(key: str, value: Any, low: int, high: int) -> int:
    try:
        number = to_int(value)
    except ValueError:
        fail(key, f"{show(value)} is not an int; allowed: int in [{low}, {high}]")
    if not low <= number <= high:
        fail(key, f"{show(value)} is out of range; allowed: int in [{low}, {high}]")
    return number


def _minutes(value: Any) -> Any:
    """A ``timedelta`` (as the Azure SDK takes) in whole minutes; anything else as it is."""
    if not isinstance(value, timedelta):
        return value
    minutes, rest = divmod(value.total_seconds(), 60)
    if rest:
        fail("timeout_minutes", f"{show(value)} is not a whole number of minutes; allowed: int in "
             f"[1, {MAX_TIMEOUT_MINUTES}] or a timedelta of whole minutes")
    return int(minutes)


@dataclass(frozen=True)
class Limits:
    """How many trials, how many at once, and how long the whole job may take.

    ``max_concurrent_trials`` is capped to ``max_trials`` (as Azure does): ``Limits(2, 4)``
    has ``max_concurrent_trials == 2``.

    Args:
        max_trials: trials in the sweep, int in [1, 1000].
        max_concurrent_trials: trials at once, int in [1, 100].
        timeout_minutes: whole-job budget, int in [1, 86400] (60 days), or a ``timedelta`` of
            whole minutes as the Azure SDK takes; default 7 days.

    Raises:
        SpecError: naming the field, the value and the allowed range.

    Example:
        >>> Limits(max_trials=2, max_concurrent_trials=4).max_concurrent_trials
        2
    """

    max_trials: int = 1
    max_concurrent_trials: int = 1
    timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES

    def __post_init__(self) -> None:
        trials = _bounded_int("max_trials", self.max_trials, 1, MAX_TRIALS)
        concurrent = _bounded_int("max_concurrent_trials", self.max_concurrent_trials, 1, MAX_CONCURRENT_TRIALS)
        timeout = _bounded_int("timeout_minutes", _minutes(self.timeout_minutes), 1, MAX_TIMEOUT_MINUTES)
        object.__setattr__(self, "max_trials", trials)
        object.__setattr__(self, "max_concurrent_trials", min(concurrent, trials))
        object.__setattr__(self, "timeout_minutes", timeout)

    def to_dict(self) -> dict[str, int]:
        """Return the YAML form of ``limits:``."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Limits":
        """Build from the YAML ``limits:`` mapping (missing keys take their defaults).

        Raises:
            SpecError: unknown key (with a suggestion) or invalid value.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            fail("limits", f"{show(data)} is not a mapping; allowed: {{max_trials, max_concurrent_trials, timeout_minutes}}")
        names = [item.name for item in fields(cls)]
        for key in data:
            if key not in names:
                unknown_key(key, "limit", names, data[key])
        return cls(**{key: value for key, value in data.items() if value is not None})


# The limits by name: a job's, the builder's boxes, and what steering may change while a sweep runs.
LIMIT_KEYS = tuple(item.name for item in fields(Limits))
