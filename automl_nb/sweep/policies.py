"""Early-termination policies: decide from the trials' metric curves whether a trial stops.

A policy is a small object with no I/O. The sweep driver calls
``policy.should_stop(trial_id, curves, finished)`` right after trial ``trial_id`` reports, where
``curves[t]`` is the list of primary-metric values of trial ``t`` (report ``k`` is
``curves[t][k - 1]``, metrics are maximised) and ``finished`` holds the ids of the trials that
ended (completed, failed or stopped). ``describe`` gives the one-line reason shown on the
leaderboard. Without a policy (``make_policy(None)`` is None) every trial runs to the end.
A policy with memory (ASHA's rungs) also has ``state()`` and ``restore(state, epochs=)``: the
driver keeps that state in ``run.json``, so a resumed sweep judges as the first session did.

``thresholds(curves, finished)`` gives the lines the dashboard draws on the curves: at each
report, the value below which a trial reaching that report now would stop, computed by the same
functions as the verdicts. A policy keeps the trials' values per report sorted and updates them
as reports arrive, so a verdict costs a bisection, not a sort of every trial's curve.

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
from bisect import bisect_left, bisect_right, insort
from dataclasses import MISSING, dataclass, fields
from operator import itemgetter
from typing import AbstractSet, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from automl_nb.errors import SpecError
from automl_nb.spec.job_checks import trial_reports
from automl_nb.spec.sweep_settings import (
    AshaPolicy, BanditPolicy, HyperbandPolicy, MedianStoppingPolicy, TruncationSelectionPolicy, as_policy,
    bracket_count,
)

Curves = Mapping[str, Sequence[float]]
_NOTHING: AbstractSet[str] = frozenset()
# How a stopped trial's notes give a policy's reason: this, then Verdict.reason (the dashboard finds it so).
POLICY_NOTE = "early termination: "


@dataclass(frozen=True)
class Verdict:
    """A policy's decision on a trial's latest report, with the numbers it compared.

    Every rule here has the same shape: the trial stops when ``value < threshold``.

    Attributes:
        stop: whether the trial stops now.
        reason: the one line for the leaderboard, e.g. ``bandit: 0.600 < 0.800/(1+0.2)=0.667 at report 1``.
        rule: the policy (``hyperband bracket 1`` for a bracket), or "" when it did not judge.
        report: the report judged (for ASHA the rung; the trial's latest report otherwise).
        value: the trial's value compared (median_stopping: its best so far); None when not judged
            or not a number.
        threshold: the value below which it stops (bandit's best/(1+f) or best-a, the median,
            truncation's cut, ASHA's rung cut-off); None when not judged or nothing to compare.
    """

    stop: bool
    reason: str
    rule: str = ""
    report: int = 0
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Threshold:
    """One point of a policy's live threshold line, for drawing on the curves.

    Attributes:
        report: the report (epoch) it applies at.
        value: a trial that reaches ``report`` now stops when its value is below this one
            (for median_stopping: when its best so far is).
        label: the line it belongs to, e.g. ``bandit: best/(1+0.2)``; one line per label.
    """

    report: int
    value: float
    label: str


@runtime_checkable
class EarlyTermination(Protocol):
    """What the sweep driver needs from a policy."""

    def should_stop(self, trial_id: str, curves: Curves, finished: AbstractSet[str]) -> bool:
        """Return True when ``trial_id`` should stop now, right after its latest report."""

    def describe(self, trial_id: str, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> str:
        """Return a short human reason for the decision, for the leaderboard."""

    def verdict(self, trial_id: str, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> Verdict:
        """Return the decision with its reason and the numbers compared (see :class:`Verdict`)."""

    def thresholds(self, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> list[Threshold]:
        """Return the live threshold lines (see :class:`Threshold`), without deciding anything."""


def make_policy(settings: Any) -> EarlyTermination | None:
    """Build the policy that a spec record asks for.

    Args:
        settings: a policy record of ``automl_nb.spec.sweep_settings`` (``BanditPolicy``,
            ``MedianStoppingPolicy``, ``TruncationSelectionPolicy``, ``AshaPolicy``,
            ``HyperbandPolicy``), its YAML mapping, or None.

    Returns:
        The matching :class:`Bandit`, :class:`MedianStopping`, :class:`TruncationSelection`,
        :class:`Asha` or :class:`Hyperband`; None when ``settings`` is None (no early termination).

    Raises:
        SpecError: ``settings`` is not a policy record or a valid policy mapping.

    Example:
        >>> make_policy(BanditPolicy(slack_amount=0.1, delay_evaluation=2))
        Bandit(evaluation_interval=1, delay_evaluation=2, slack_amount=0.1)
    """
    settings = as_policy(settings)
    if settings is None:
        return None
    common = {"evaluation_interval": getattr(settings, "evaluation_interval", None),
              "delay_evaluation": getattr(settings, "delay_evaluation", None)}
    if isinstance(settings, BanditPolicy):
        return Bandit(slack_factor=settings.slack_factor, slack_amount=settings.slack_amount, **common)
    if isinstance(settings, MedianStoppingPolicy):
        return MedianStopping(**common)
    if isinstance(settings, TruncationSelectionPolicy):
        return TruncationSelection(truncation_percentage=settings.truncation_percentage,
                                   exclude_finished_jobs=settings.exclude_finished_jobs, **common)
    halving = {"reduction_factor": settings.reduction_factor, "min_resource": settings.min_resource,
               "max_resource": settings.max_resource} if isinstance(settings, AshaPolicy) else {}
    if isinstance(settings, HyperbandPolicy):
        return Hyperband(brackets=settings.brackets, **halving)
    if isinstance(settings, AshaPolicy):
        return Asha(**halving)
    raise SpecError(f"early_termination: {settings!r} is not an early-termination policy")


# -- helpers --------------------------------------------------------------------------------
def _score(value: float) -> float:
    """The value as compared: non-finite (nan, inf) counts as worse than anything."""
    value = float(value)
    return value if math.isfinite(value) else -math.inf


def _show(value: float) -> str:
    return f"{float(value):.3f}"


def _number(value: float) -> float | None:
    """A compared number as a Verdict holds it: None for a non-finite one."""
    value = float(value)
    return value if math.isfinite(value) else None


class _Others:
    """A sorted list of values with one entry (a trial's own) left out, read by index: no copy.

    Equal values are interchangeable, so leaving out the first entry equal to ``own`` leaves the
    same values as leaving out the trial's own one.
    """

    def __init__(self, entries: list[float], own: float | None = None) -> None:
        self.entries = entries
        self.skip = len(entries) if own is None else bisect_left(entries, own)
        self.size = len(entries) - (own is not None)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> float:
        return self.entries[i if i < self.skip else i + 1]

    def at_or_below(self, value: float) -> int:
        """How many of the values are <= ``value``."""
        n = bisect_right(self.entries, value)
        return n - (1 if self.skip < n else 0)

    def median(self) -> float:
        """As ``statistics.median``: the middle one, or the mean of the two middle ones."""
        half = self.size // 2
        return self[half] if self.size % 2 else (self[half - 1] + self[half]) / 2


class _ReportIndex:
    """Per report ``k``: the sorted entries of the trials that reached it, kept as curves grow.

    A trial's entry at report ``k`` is ``entry(scores, k)`` (``scores`` its compared values,
    see :func:`_score`): its value there, or its running average. :meth:`sync` takes in what
    changed since the last call: a curve whose length or last value changed is indexed again
    from where it differs (only new reports, as a rule), so a report costs a bisection per
    entry instead of a sort of every trial's curve. With ``exclude_finished`` the trials in
    ``finished`` are left out of the sorted entries (truncation's exclude_finished_jobs).
    """

    def __init__(self, entry: Callable[[list[float], int], float], exclude_finished: bool = False) -> None:
        self.entry, self.exclude_finished = entry, exclude_finished
        self.known: dict[str, list] = {}  # trial -> the values indexed (a copy of its curve)
        self.entries: dict[str, list[float]] = {}  # trial -> its entry at reports 1..len
        self.sorted: list[list[float]] = []  # report k - 1 -> the counted trials' entries, sorted
        self.finished: frozenset = frozenset()
        # The curves' order, and each one's length and last value as taken in: compared at C speed.
        self.order: list[str] = []
        self.position: dict[str, int] = {}
        self.lengths: list[int] = []
        self.lasts: list = []

    def sync(self, curves: Curves, finished: AbstractSet[str] = _NOTHING, hint: str | None = None) -> None:
        """Take in the curves and finished trials as they are now.

        ``hint`` is the trial that just reported: taken in first, after which the other curves'
        lengths and last values are compared at C speed, and only a change found there costs a
        look at each curve.
        """
        keys = list(curves)
        if keys[:len(self.order)] != self.order:  # a trial went, or the order changed: look at each
            self._look(curves)
        for trial in keys[len(self.order):]:  # new trials
            self.position[trial] = len(self.order)
            self.order.append(trial)
            self.lengths.append(-1)
            self.lasts.append(None)
            self._take(trial, curves[trial])
        if hint in self.position:
            self._take(hint, curves[hint])
        values = list(curves.values())
        lengths = list(map(len, values))
        lasts = list(map(itemgetter(-1), values)) if all(lengths) else [c[-1] if len(c) else None for c in values]
        if lengths != self.lengths or lasts != self.lasts:
            self._look(curves)
        if self.exclude_finished and finished != self.finished:
            finished = frozenset(finished)
            for trial in (finished ^ self.finished) & self.known.keys():
                for k, entry in enumerate(self.entries[trial]):
                    if trial in finished:
                        self._remove(k, entry)
                    else:
                        insort(self.sorted[k], entry)
            self.finished = finished

    def _look(self, curves: Curves) -> None:
        """Compare every curve with what was indexed and take in the ones that changed."""
        for gone in [trial for trial in self.known if trial not in curves]:
            self._index(gone, [])
            del self.known[gone], self.entries[gone]
        self.order, self.position, self.lengths, self.lasts = list(curves), {}, [], []
        for i, (trial, curve) in enumerate(curves.items()):
            self.position[trial] = i
            self.lengths.append(-1)
            self.lasts.append(None)
            self._take(trial, curve)

    def _take(self, trial: str, curve: Sequence[float]) -> None:
        """Index the trial's curve again when its length or last value changed."""
        i, known = self.position[trial], self.known.get(trial)
        if known is None or len(curve) != len(known) or (len(known) and curve[-1] is not known[-1]
                                                         and curve[-1] != known[-1]):
            self._index(trial, list(curve))
        self.lengths[i], self.lasts[i] = len(curve), curve[-1] if len(curve) else None

    def counted(self, trial: str) -> bool:
        """The trial's entries are among the sorted ones."""
        return not (self.exclude_finished and trial in self.finished)

    def others(self, trial: str, k: int) -> _Others:
        """The entries at report ``k`` of the counted trials other than ``trial``."""
        entries = self.sorted[k - 1] if k <= len(self.sorted) else []
        own = self.entries[trial][k - 1] if trial in self.entries and self.counted(trial) else None
        return _Others(entries, own)

    def _index(self, trial: str, values: list) -> None:
        known, entries = self.known.get(trial, []), self.entries.setdefault(trial, [])
        same = 0  # the reports whose values did not change keep their entries
        while same < min(len(known), len(values)) and (known[same] is values[same] or known[same] == values[same]):
            same += 1
        counted = self.counted(trial)
        for k in range(len(entries) - 1, same - 1, -1):
            if counted:
                self._remove(k, entries[k])
            del entries[k]
        scores = [_score(value) for value in values]
        for k in range(same, len(values)):
            entries.append(self.entry(scores, k + 1))
            if len(self.sorted) <= k:
                self.sorted.append([])
            if counted:
                insort(self.sorted[k], entries[k])
        self.known[trial] = values

    def _remove(self, k: int, entry: float) -> None:
        entries = self.sorted[k]
        del entries[bisect_left(entries, entry)]


def _value_at(scores: list[float], k: int) -> float:
    return scores[k - 1]


def _running_average(scores: list[float], k: int) -> float:
    return sum(scores[:k]) / k


class _Scheduled:
    """Shared part of the policies: when they act, and the should_stop/describe pair.

    Subclasses implement ``_decide(trial_id, k, curves, finished) -> Verdict``, called
    only at evaluation points with ``k`` the trial's number of reports, with ``self.index``
    (a :class:`_ReportIndex` of their ``entry``) up to date; and ``_line(k)``, the threshold a
    trial reaching report ``k`` now would be compared with.
    """

    name = ""
    record: type = type(None)  # the spec record that validates the arguments
    entry: Callable[[list[float], int], float] = staticmethod(_value_at)  # what a trial counts for at a report

    def __init__(self, **arguments: Any) -> None:
        # The spec's record checks every argument (names, ranges) and holds the defaults of the
        # ones left None: one place for those rules.
        defaulted = {item.name for item in fields(self.record) if item.default is not MISSING}
        checked = self.record(**{key: value for key, value in arguments.items()
                                 if value is not None or key not in defaulted})
        for item in fields(checked):
            setattr(self, item.name, getattr(checked, item.name))
        self.index = _ReportIndex(self.entry, exclude_finished=bool(getattr(self, "exclude_finished_jobs", False)))

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
        return self.verdict(trial_id, curves, finished).stop

    def describe(self, trial_id: str, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> str:
        """Return the reason for the decision at the trial's latest report, e.g. for the leaderboard."""
        return self.verdict(trial_id, curves, finished).reason

    def verdict(self, trial_id: str, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> Verdict:
        """Return the decision at the trial's latest report with the numbers compared (see :class:`Verdict`)."""
        k = len(curves.get(trial_id, ()))
        if not self.evaluates_at(k):
            return Verdict(False, f"{self.name}: no evaluation at report {k} (evaluation_interval "
                                  f"{self.evaluation_interval}, delay_evaluation {self.delay_evaluation})", report=k)
        self.index.sync(curves, finished, hint=trial_id)
        return self._decide(trial_id, k, curves, finished)

    def thresholds(self, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> list[Threshold]:
        """The live threshold line: at each evaluation report some trial reached, the value below
        which a trial reaching it now would stop (the number its verdict would compare).

        Example:
            >>> [(t.report, t.value) for t in Bandit(slack_amount=0.25).thresholds({"a": [0.5, 0.75], "b": [0.25]})]
            [(1, 0.25), (2, 0.5)]
        """
        self.index.sync(curves, finished)
        lines = []
        for k in range(1, len(self.index.sorted) + 1):
            value = self._line(k) if self.evaluates_at(k) and self.index.sorted[k - 1] else None
            if value is not None and math.isfinite(value):
                lines.append(Threshold(k, value, self._line_label()))
        return lines

    def _decide(self, trial_id: str, k: int, curves: Curves, finished: AbstractSet[str]) -> Verdict:
        raise NotImplementedError

    def _line(self, k: int) -> float | None:
        raise NotImplementedError

    def _line_label(self) -> str:
        return self.name

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

    def _decide(self, trial_id: str, k: int, curves: Curves, finished: AbstractSet[str]) -> Verdict:
        value = curves[trial_id][k - 1]
        best = self.index.sorted[k - 1][-1]  # the largest value at report k, this trial's included
        if best == -math.inf:  # none is a number: the reason shows the first of them, as nan or inf
            best = next(curve[k - 1] for curve in curves.values() if len(curve) >= k)
        threshold = self.threshold(_score(best))
        stop = _score(value) < threshold
        if self.slack_factor is not None:
            rule = f"{_show(best)}/(1+{self.slack_factor:g})={_show(threshold)}"
        else:
            rule = f"{_show(best)}-{self.slack_amount:g}={_show(threshold)}"
        return Verdict(stop, f"bandit: {_show(value)} {'<' if stop else '>='} {rule} at report {k}", self.name, k,
                       _number(value), _number(threshold))

    def _line(self, k: int) -> float:
        return self.threshold(self.index.sorted[k - 1][-1])

    def _line_label(self) -> str:
        return f"bandit: best/(1+{self.slack_factor:g})" if self.slack_factor is not None else \
            f"bandit: best-{self.slack_amount:g}"

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
    entry = staticmethod(_running_average)

    def __init__(self, *, evaluation_interval: int | None = None, delay_evaluation: int | None = None) -> None:
        super().__init__(evaluation_interval=evaluation_interval, delay_evaluation=delay_evaluation)

    def _decide(self, trial_id: str, k: int, curves: Curves, finished: AbstractSet[str]) -> Verdict:
        averages = self.index.others(trial_id, k)  # the other trials' running averages at report k
        best = max(_score(v) for v in curves[trial_id][:k])
        if not len(averages):
            return Verdict(False, f"median_stopping: no other trial has reached report {k}", self.name, k,
                           _number(best))
        median = averages.median()
        stop = best < median
        return Verdict(stop, f"median_stopping: best {_show(best)} {'<' if stop else '>='} median {_show(median)} "
                             f"of {len(averages)} running averages at report {k}", self.name, k, _number(best),
                       _number(median))

    def _line(self, k: int) -> float:
        return _Others(self.index.sorted[k - 1]).median()

    def _line_label(self) -> str:
        return "median_stopping: median of running averages"


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

    def _decide(self, trial_id: str, k: int, curves: Curves, finished: AbstractSet[str]) -> Verdict:
        value = _score(curves[trial_id][k - 1])
        others = self.index.others(trial_id, k)  # finished ones left out with exclude_finished_jobs
        n = len(others) + 1
        cut, threshold = self._cut(others)
        at_or_below = others.at_or_below(value)
        stop = at_or_below < cut
        place = "in" if stop else "not in"
        return Verdict(stop, f"truncation_selection: {_show(curves[trial_id][k - 1])} {place} the lowest {cut} of {n} "
                             f"({self.truncation_percentage}%; {at_or_below} others at or below) at report {k}",
                       self.name, k, _number(value), None if threshold is None else _number(threshold))

    def _cut(self, others: _Others) -> tuple[int, float | None]:
        """How many of ``len(others) + 1`` trials are cut, and the threshold: a trial stops when
        strictly among the lowest ``cut``, i.e. below the cut-th lowest of the others."""
        cut = (len(others) + 1) * self.truncation_percentage // 100  # floor, in integers: no 0.29 * 100 surprises
        return cut, others[cut - 1] if cut else None

    def _line(self, k: int) -> float | None:
        return self._cut(_Others(self.index.sorted[k - 1]))[1]

    def _line_label(self) -> str:
        return f"truncation_selection: lowest {self.truncation_percentage}% cut"

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "truncation_percentage": self.truncation_percentage,
                "exclude_finished_jobs": self.exclude_finished_jobs}


class Asha(_Scheduled):
    """Asynchronous successive halving (ASHA, Li et al. 2018): at each rung, only the top 1/eta go on.

    Rungs are at reports ``r = min_resource * eta**k`` (k = 0, 1, ...; eta is
    ``reduction_factor``) below ``max_resource``. When a trial first reaches rung ``r``, its value
    at report ``r`` is recorded there and compared with the ``n`` values recorded at that rung so
    far (its own included): with ``top = max(1, n // eta)``, it continues when its value is at
    least the ``top``-th best (ties continue), else it stops. Nothing waits for a rung to fill:
    the early arrivals are judged among few (the first always continues), later ones among more.
    A non-finite value (nan, inf) stops. The verdict is recorded with the value: a trial that
    reports a rung again (resumed from a checkpoint) gets its first verdict, not a new one.

    Args:
        reduction_factor: eta, int >= 2.
        min_resource: the first rung (grace period), in reports, int >= 1.
        max_resource: no rung at or above it, int > min_resource; None (default): the
            ``reports`` given to :meth:`restore` (how many times the job's trials report), else no limit.
        Left None, reduction_factor and min_resource take :class:`AshaPolicy`'s defaults.

    Raises:
        SpecError: a value out of range.

    Example:
        >>> policy = Asha(reduction_factor=2, min_resource=1)
        >>> [policy.should_stop(t, {"a": [0.8], "b": [0.6], "c": [0.7]}) for t in ("a", "b", "c")]
        [False, True, True]
        >>> policy.describe("b", {"b": [0.6]})
        'asha: 0.600 < 0.800 = cut-off for the top 1 of 2 at rung 1 (1/2 continue) at report 1'
    """

    name = "asha"
    record = AshaPolicy

    def __init__(self, *, reduction_factor: int | None = None, min_resource: int | None = None,
                 max_resource: int | None = None, **more: Any) -> None:
        super().__init__(reduction_factor=reduction_factor, min_resource=min_resource, max_resource=max_resource,
                         **more)
        self.limit = self.max_resource  # the rungs' bound: max_resource, or the epochs given to restore
        self.rows: list[dict] = []  # every rung result in the order judged: the state kept in run.json
        self._rungs: dict[tuple[int, int], dict[str, dict]] = {}  # (bracket, rung) -> trial -> its row
        self._sorted: dict[tuple[int, int], list[float]] = {}  # (bracket, rung) -> its values compared, sorted
        self._bracket_of: dict[str, int] = {}

    # -- state, kept by the driver in run.json ---------------------------------------------
    def state(self) -> dict:
        """The rung results and bracket assignments, as plain JSON (see :meth:`restore`)."""
        return {"type": self.name, "max_resource": self.limit, "bracket_of": dict(self._bracket_of),
                "rungs": list(self.rows)}

    def restore(self, state: Mapping[str, Any] | None, *, reports: int | None = None) -> None:
        """Take up the state an earlier session saved, or start fresh (called once, before any report).

        Args:
            state: what :meth:`state` returned, or None for a fresh sweep.
            reports: how many times the trials report (:func:`trial_report_count`): the bound of the
                rungs when max_resource is not set.
        """
        if not state or state.get("type") != self.name:
            self.limit = self.max_resource or reports
            return
        self.limit = state.get("max_resource")
        self._bracket_of = {str(trial): int(bracket) for trial, bracket in state.get("bracket_of", {}).items()}
        self.rows, self._rungs, self._sorted = [], {}, {}
        for row in state.get("rungs", ()):
            self._keep(dict(row))

    # -- the rule --------------------------------------------------------------------------
    def rungs(self, bracket: int = 0, up_to: int | None = None) -> list[int]:
        """The reports at which ``bracket``'s rungs are, up to report ``up_to`` (needed without a limit)."""
        if self.limit is None and up_to is None:
            raise ValueError("rungs: without max_resource the list needs up_to, or it would never end")
        result, rung = [], self.min_resource * self.reduction_factor ** bracket
        while (self.limit is None or rung < self.limit) and (up_to is None or rung <= up_to):
            result.append(rung)
            rung *= self.reduction_factor
        return result

    def results(self, bracket: int, rung: int) -> dict[str, float | None]:
        """The values recorded at a rung so far, by trial (None for a non-finite value)."""
        return {trial: row["value"] for trial, row in self._rungs.get((bracket, rung), {}).items()}

    def _bracket(self, trial_id: str) -> int:
        return 0

    def _label(self, bracket: int) -> str:
        return self.name

    def verdict(self, trial_id: str, curves: Curves, finished: AbstractSet[str] = _NOTHING) -> Verdict:
        """Return the decision at the trial's latest report: the verdict of each rung it reached, in order.

        A rung reached for the first time is judged now and recorded; one judged before keeps its verdict.
        """
        curve = curves.get(trial_id, ())
        k, bracket = len(curve), self._bracket(trial_id)
        last = None
        for rung in self.rungs(bracket, up_to=k):
            row = self._rungs.get((bracket, rung), {}).get(trial_id) or self._judge(bracket, rung, trial_id,
                                                                                   curve[rung - 1])
            if not row["promoted"]:
                return self._from_row(row)
            last = row
        if last is not None and last["rung"] == k:
            return self._from_row(last)
        following = self.min_resource * self.reduction_factor ** bracket
        while following <= k:
            following *= self.reduction_factor
        where = ("no rung left below max_resource" if self.limit is not None and following >= self.limit
                 else f"next rung at report {following}")
        return Verdict(False, f"{self._label(bracket)}: no rung at report {k} ({where})", report=k)

    def _judge(self, bracket: int, rung: int, trial_id: str, value: float) -> dict:
        """Record ``value`` at the rung and decide, among the values recorded there so far."""
        finite = math.isfinite(float(value))
        values = self._sorted.setdefault((bracket, rung), [])
        insort(values, _score(value))
        top, cutoff = self._cutoff(values)
        row = {"bracket": bracket, "rung": rung, "trial": trial_id, "value": float(value) if finite else None,
               "cutoff": cutoff if math.isfinite(cutoff) else None, "top": top, "of": len(values),
               "promoted": finite and _score(value) >= cutoff}
        self._keep(row, sorted_in=True)
        return row

    def _cutoff(self, values: Sequence[float], arriving: int = 0) -> tuple[int, float]:
        """The top that continue among ``values`` (sorted) and ``arriving`` more, and the
        ``top``-th best of ``values``: the cut-off (for one arriving, the value it must reach)."""
        top = max(1, (len(values) + arriving) // self.reduction_factor)
        return top, values[len(values) - top]

    def _keep(self, row: dict, sorted_in: bool = False) -> None:
        self.rows.append(row)
        self._rungs.setdefault((row["bracket"], row["rung"]), {})[row["trial"]] = row
        if not sorted_in:
            insort(self._sorted.setdefault((row["bracket"], row["rung"]), []),
                   -math.inf if row["value"] is None else row["value"])

    def thresholds(self, curves: Curves = None, finished: AbstractSet[str] = _NOTHING) -> list[Threshold]:
        """Each rung's cut-off for the next trial to reach it: the value it must reach to continue
        (a rung with fewer values recorded than continue has none yet). From the rung results
        recorded (restore the driver's state first); ``curves`` are not needed.

        Example:
            >>> policy = Asha(reduction_factor=2, min_resource=1)
            >>> [policy.should_stop(t, {t: [v]}) for t, v in (("a", 0.5), ("b", 0.75))]
            [False, False]
            >>> policy.thresholds()
            [Threshold(report=1, value=0.75, label='asha')]
        """
        lines = []
        for (bracket, rung), values in sorted(self._sorted.items()):
            top, cutoff = self._cutoff(values, arriving=1)
            if len(values) >= top and math.isfinite(cutoff):
                lines.append(Threshold(rung, cutoff, self._label(bracket)))
        return lines

    def _from_row(self, row: dict) -> Verdict:
        return Verdict(not row["promoted"], self._reason(row), self._label(row["bracket"]), row["rung"], row["value"],
                       row["cutoff"])

    def _reason(self, row: dict) -> str:
        label, rung = self._label(row["bracket"]), row["rung"]
        if row["value"] is None:
            return f"{label}: not a number at rung {rung} (non-finite values stop) at report {rung}"
        cutoff = "-inf" if row["cutoff"] is None else _show(row["cutoff"])
        sign = ">=" if row["promoted"] else "<"
        return (f"{label}: {_show(row['value'])} {sign} {cutoff} = cut-off for the top {row['top']} of {row['of']} "
                f"at rung {rung} (1/{self.reduction_factor} continue) at report {rung}")

    def _arguments(self) -> dict[str, Any]:
        return {"reduction_factor": self.reduction_factor, "min_resource": self.min_resource,
                "max_resource": self.max_resource}


class Hyperband(Asha):
    """Hyperband as ASHA brackets: bracket ``s`` has its first rung at ``min_resource * eta**s``.

    Each bracket is an :class:`Asha` of its own (its trials compete only with each other), so
    bracket 0 stops early and hard, and the last bracket, whose first rung is at or near
    ``max_resource``, lets its trials run (nearly) to the end. Trials join the brackets in
    turn, in the order they first report (0, 1, ..., brackets - 1, 0, ...); the assignment is
    part of the state, so a resumed sweep keeps it.

    Args:
        brackets: int >= 1; None (default): as many as fit,
            ``floor(log_eta(max_resource / min_resource)) + 1``.
        reduction_factor, min_resource, max_resource: as :class:`Asha`.

    Raises:
        SpecError: a value out of range.

    Example:
        >>> policy = Hyperband(reduction_factor=3, min_resource=1, max_resource=9)  # 3 brackets
        >>> [policy.rungs(s) for s in range(policy.bracket_total())]
        [[1, 3], [3], []]
    """

    name = "hyperband"
    record = HyperbandPolicy

    def __init__(self, *, brackets: int | None = None, reduction_factor: int | None = None,
                 min_resource: int | None = None, max_resource: int | None = None) -> None:
        super().__init__(reduction_factor=reduction_factor, min_resource=min_resource, max_resource=max_resource,
                         brackets=brackets)

    def bracket_total(self) -> int:
        """The number of brackets: ``brackets``, else as many as fit below the rungs' bound.

        Raises:
            SpecError: neither ``brackets`` nor a bound (max_resource, or the epochs of :meth:`restore`).
        """
        if self.brackets is not None:
            return self.brackets
        if self.limit is None:
            raise SpecError("brackets: none given and no max_resource to count them from; allowed: "
                            "brackets (int >= 1) or max_resource")
        return bracket_count(self.min_resource, self.limit, self.reduction_factor)

    def _bracket(self, trial_id: str) -> int:
        if trial_id not in self._bracket_of:
            self._bracket_of[trial_id] = len(self._bracket_of) % self.bracket_total()
        return self._bracket_of[trial_id]

    def _label(self, bracket: int) -> str:
        return f"hyperband bracket {bracket}"

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "brackets": self.brackets}


def trial_report_count(job) -> int | None:
    """How many times a trial of ``job``'s fixed parameters reports (its validations): a rung policy's
    default max_resource. None when they do not resolve (e.g. epochs sampled per trial)."""
    try:
        params = job.trial_parameters({})
        return trial_reports(int(params["number_of_epochs"]), int(params["evaluation_frequency"]))
    except (SpecError, KeyError, TypeError, ValueError):
        return None
