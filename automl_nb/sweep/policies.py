"""Early-termination policies: decide from the trials' metric curves whether a trial stops.

A policy is a small object with no I/O. The sweep driver calls
``policy.should_stop(trial_id, curves, finished)`` right after trial ``trial_id`` reports, where
``curves[t]`` is the list of primary-metric values of trial ``t`` (report ``k`` is
``curves[t][k - 1]``, metrics are maximised) and ``finished`` holds the ids of the trials that
ended (completed, failed or stopped). ``describe`` gives the one-line reason shown on the
leaderboard. Without a policy (``make_policy(None)`` is None) every trial runs to the end.

The rules are Azure ML's documented ones (SPEC section 5), with one report as one interval: a
policy acts at report ``k`` only when ``k % evaluation_interval == 0`` and
``k >= delay_evaluation``. A non-finite value (nan, inf) counts as worse than any number.

Example:
    >>> policy = Bandit(slack_factor=0.2)
    >>> policy.should_stop("1", {"0": [0.8], "1": [0.6]}, finished=set())
    True
    >>> policy.describe("1", {"0": [0.8], "1": [0.6]})
    'bandit: 0.600 < 0.800/(1+0.2)=0.667 at report 1'
"""

from __future__ import annotations

import math
import statistics
from dataclasses import MISSING, fields
from typing import AbstractSet, Any, Mapping, Protocol, Sequence, runtime_checkable

from automl_nb.errors import SpecError
from automl_nb.spec.sweep_settings import (
    BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy, as_policy,
)

Curves = Mapping[str, Sequence[float]]
_NOTHING: AbstractSet[str] = frozenset()


@runtime_checkable
class EarlyTermination(Protocol):
    """What the sweep driver needs from a policy."""

    def should_stop(self, trial_id: str, curves: Curves, finished: AbstractSet[str]) -> bool:
        """Return True when ``trial_id`` should stop now, right after its latest report."""

    def describe(self, trial_id: str, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> str:
        """Return a short human reason for the decision, for the leaderboard."""


def make_policy(settings: Any) -> EarlyTermination | None:
    """Build the policy that a spec record asks for.

    Args:
        settings: a :class:`~automl_nb.spec.BanditPolicy`, :class:`~automl_nb.spec.MedianStoppingPolicy`
            or :class:`~automl_nb.spec.TruncationSelectionPolicy`, its YAML mapping, or None.

    Returns:
        The matching :class:`Bandit`, :class:`MedianStopping` or :class:`TruncationSelection`;
        None when ``settings`` is None (no early termination).

    Raises:
        SpecError: ``settings`` is not a policy record or a valid policy mapping.

    Example:
        >>> make_policy(BanditPolicy(slack_amount=0.1, delay_evaluation=2))
        Bandit(evaluation_interval=1, delay_evaluation=2, slack_amount=0.1)
    """
    settings = as_policy(settings)
    if settings is None:
        return None
    common = {"evaluation_interval": settings.evaluation_interval, "delay_evaluation": settings.delay_evaluation}
    if isinstance(settings, BanditPolicy):
        return Bandit(slack_factor=settings.slack_factor, slack_amount=settings.slack_amount, **common)
    if isinstance(settings, MedianStoppingPolicy):
        return MedianStopping(**common)
    if isinstance(settings, TruncationSelectionPolicy):
        return TruncationSelection(truncation_percentage=settings.truncation_percentage,
                                   exclude_finished_jobs=settings.exclude_finished_jobs, **common)
    raise SpecError(f"early_termination: {settings!r} is not an early-termination policy")


# -- helpers --------------------------------------------------------------------------------
def _score(value: float) -> float:
    """The value as compared: non-finite (nan, inf) counts as worse than anything."""
    value = float(value)
    return value if math.isfinite(value) else -math.inf


def _show(value: float) -> str:
    return f"{float(value):.3f}"


class _Scheduled:
    """Shared part of the policies: when they act, and the should_stop/describe pair.

    Subclasses implement ``_decide(trial_id, k, curves, finished) -> (stop, reason)``, called
    only at evaluation points with ``k`` the trial's number of reports.
    """

    name = ""
    record: type = type(None)  # the spec record that validates the arguments

    def __init__(self, **arguments: Any) -> None:
        # The spec's record checks every argument (names, ranges) and holds the defaults of the
        # ones left None: one place for those rules.
        defaulted = {item.name for item in fields(self.record) if item.default is not MISSING}
        checked = self.record(**{key: value for key, value in arguments.items()
                                 if value is not None or key not in defaulted})
        for item in fields(checked):
            setattr(self, item.name, getattr(checked, item.name))

    def evaluates_at(self, k: int) -> bool:
        """True when the policy acts at report ``k`` (1-based)."""
        return k >= 1 and k % self.evaluation_interval == 0 and k >= self.delay_evaluation

    def should_stop(self, trial_id: str, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> bool:
        """Return True when ``trial_id`` should stop now, right after its latest report.

        Args:
            trial_id: the trial that just reported.
            curves: every trial's primary-metric values so far, one per report.
            finished: ids of trials that ended (completed, failed or stopped).
        """
        return self._verdict(trial_id, curves, finished)[0]

    def describe(self, trial_id: str, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> str:
        """Return the reason for the decision at the trial's latest report, e.g. for the leaderboard."""
        return self._verdict(trial_id, curves, finished)[1]

    def _verdict(self, trial_id: str, curves: Curves, finished: AbstractSet[str]) -> tuple[bool, str]:
        k = len(curves.get(trial_id, ()))
        if not self.evaluates_at(k):
            return False, (f"{self.name}: no evaluation at report {k} (evaluation_interval "
                           f"{self.evaluation_interval}, delay_evaluation {self.delay_evaluation})")
        return self._decide(trial_id, k, curves, finished)

    def _decide(self, trial_id: str, k: int, curves: Curves, finished: AbstractSet[str]) -> tuple[bool, str]:
        raise NotImplementedError

    def _arguments(self) -> dict[str, Any]:
        return {"evaluation_interval": self.evaluation_interval, "delay_evaluation": self.delay_evaluation}

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self._arguments().items())
        return f"{type(self).__name__}({shown})"


# -- the policies ---------------------------------------------------------------------------
class Bandit(_Scheduled):
    """Stop a trial that falls too far behind the best trial at the same report.

    Rule, at an evaluation point ``k`` (the trial's number of reports): ``best`` is the largest
    value at report ``k`` among all trials with at least ``k`` reports (this one included).
    With ``slack_factor`` f the trial stops when ``value(k) < best / (1 + f)``; with
    ``slack_amount`` a when ``value(k) < best - a``. Equal to the threshold does not stop.
    The factor form assumes metrics >= 0, as all primary metrics here are.

    Args:
        slack_factor: allowed ratio (> 0); exactly one of it and ``slack_amount``.
        slack_amount: allowed difference (> 0).
        evaluation_interval: act every this many reports (>= 1).
        delay_evaluation: act from this report on (>= 0).

    Raises:
        SpecError: neither or both slacks, or a value out of range.

    Example:
        >>> Bandit(slack_factor=0.2).should_stop("b", {"a": [0.8], "b": [0.66]}, set())
        True
    """

    name = "bandit"
    record = BanditPolicy

    def __init__(self, *, slack_factor: float | None = None, slack_amount: float | None = None,
                 evaluation_interval: int | None = None, delay_evaluation: int | None = None) -> None:
        super().__init__(slack_factor=slack_factor, slack_amount=slack_amount,
                         evaluation_interval=evaluation_interval, delay_evaluation=delay_evaluation)

    def threshold(self, best: float) -> float:
        """The value below which a trial stops, given the best value at the same report."""
        if self.slack_factor is not None:
            return best / (1 + self.slack_factor)
        return best - self.slack_amount

    def _decide(self, trial_id: str, k: int, curves: Curves, finished: AbstractSet[str]) -> tuple[bool, str]:
        value = curves[trial_id][k - 1]
        best = max((curve[k - 1] for curve in curves.values() if len(curve) >= k), key=_score)
        threshold = self.threshold(_score(best))
        stop = _score(value) < threshold
        if self.slack_factor is not None:
            rule = f"{_show(best)}/(1+{self.slack_factor:g})={_show(threshold)}"
        else:
            rule = f"{_show(best)}-{self.slack_amount:g}={_show(threshold)}"
        return stop, f"bandit: {_show(value)} {'<' if stop else '>='} {rule} at report {k}"

    def _arguments(self) -> dict[str, Any]:
        if self.slack_factor is not None:
            return {**super()._arguments(), "slack_factor": self.slack_factor}
        return {**super()._arguments(), "slack_amount": self.slack_amount}


class MedianStopping(_Scheduled):
    """Stop a trial whose best value so far is below the median of the other trials' running averages.

    Rule, at an evaluation point ``k``: for each other trial with at least ``k`` reports, its
    running average is the mean of its values at reports 1..k. The trial stops when the max of
    its own values at reports 1..k is strictly below the median of those averages (for an even
    count, the mean of the two middle ones). With no other trial at report ``k`` it never stops.

    Args:
        evaluation_interval: act every this many reports (>= 1).
        delay_evaluation: act from this report on (>= 0).

    Raises:
        SpecError: a value out of range.

    Example:
        >>> MedianStopping().should_stop("c", {"a": [0.6, 0.8], "b": [0.5, 0.7], "c": [0.3, 0.4]}, set())
        True
    """

    name = "median_stopping"
    record = MedianStoppingPolicy

    def __init__(self, *, evaluation_interval: int | None = None, delay_evaluation: int | None = None) -> None:
        super().__init__(evaluation_interval=evaluation_interval, delay_evaluation=delay_evaluation)

    def _decide(self, trial_id: str, k: int, curves: Curves, finished: AbstractSet[str]) -> tuple[bool, str]:
        averages = [sum(_score(v) for v in curve[:k]) / k
                    for other, curve in curves.items() if other != trial_id and len(curve) >= k]
        if not averages:
            return False, f"median_stopping: no other trial has reached report {k}"
        best = max(_score(v) for v in curves[trial_id][:k])
        median = statistics.median(averages)
        stop = best < median
        return stop, (f"median_stopping: best {_show(best)} {'<' if stop else '>='} median {_show(median)} "
                      f"of {len(averages)} running averages at report {k}")


class TruncationSelection(_Scheduled):
    """Stop a trial that is among the lowest ``truncation_percentage`` percent at a report.

    Rule, at an evaluation point ``k``: the trial is compared with every trial that has a value
    at report ``k``; with ``exclude_finished_jobs`` the trials in ``finished`` (other than this
    one) are left out. With ``n`` trials compared (this one included) and
    ``cut = floor(n * truncation_percentage / 100)``, the trial stops when fewer than ``cut`` of
    the others have a value <= its own, i.e. when it is strictly among the lowest ``cut``. Ties
    protect: trials with equal values never stop each other, and with ``cut`` 0 nothing stops.

    Args:
        truncation_percentage: percent of trials to cut, int in [1, 99].
        exclude_finished_jobs: leave finished trials out of the comparison.
        evaluation_interval: act every this many reports (>= 1).
        delay_evaluation: act from this report on (>= 0).

    Raises:
        SpecError: a value out of range.

    Example:
        >>> curves = {"a": [0.9], "b": [0.8], "c": [0.7], "d": [0.6], "e": [0.5]}
        >>> TruncationSelection(truncation_percentage=20).should_stop("e", curves, set())
        True
    """

    name = "truncation_selection"
    record = TruncationSelectionPolicy

    def __init__(self, *, truncation_percentage: int, exclude_finished_jobs: bool | None = None,
                 evaluation_interval: int | None = None, delay_evaluation: int | None = None) -> None:
        super().__init__(truncation_percentage=truncation_percentage, exclude_finished_jobs=exclude_finished_jobs,
                         evaluation_interval=evaluation_interval, delay_evaluation=delay_evaluation)

    def _decide(self, trial_id: str, k: int, curves: Curves, finished: AbstractSet[str]) -> tuple[bool, str]:
        value = _score(curves[trial_id][k - 1])
        others = [_score(curve[k - 1]) for other, curve in curves.items()
                  if other != trial_id and len(curve) >= k
                  and not (self.exclude_finished_jobs and other in finished)]
        n = len(others) + 1
        cut = n * self.truncation_percentage // 100  # floor, in integers to avoid 0.29 * 100 surprises
        at_or_below = sum(1 for other in others if other <= value)
        stop = at_or_below < cut
        place = "in" if stop else "not in"
        return stop, (f"truncation_selection: {_show(curves[trial_id][k - 1])} {place} the lowest {cut} of {n} "
                      f"({self.truncation_percentage}%; {at_or_below} others at or below) at report {k}")

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "truncation_percentage": self.truncation_percentage,
                "exclude_finished_jobs": self.exclude_finished_jobs}
