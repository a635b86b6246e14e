"""The sweep simulator: trials on recorded curves, started in order, a few at a time, in simulated time.

Report ``k`` of a trial happens at its start plus the durations of its first ``k`` reports;
after each report a judge (a policy's ``should_stop``, as the sweep driver asks it) sees only
the reports that have happened by then. :func:`automl_nb.sweep.replay.replay` runs it on a run
folder's recordings; ``bench/early_termination.py`` on curves recorded without any policy.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Callable, Mapping, Sequence

from automl_nb.sweep.policies import Curves, EarlyTermination

# judge(trial_id, curves, finished) -> the reason to stop the trial now, or None to let it go on.
Judge = Callable[[str, Curves, AbstractSet[str]], "str | None"]


@dataclass(frozen=True)
class TrialCurve:
    """One trial as recorded: its primary metric per report and what each report took.

    Attributes:
        trial_id: the trial.
        values: the primary metric at each report, in order.
        durations: seconds from the previous report (or the start) to each report; one more
            entry than ``values`` when the trial failed in the epoch after its last report (that
            epoch is spent too).
        epochs: the epoch of each report (default 1, 2, ...), for counting trial-epochs.
        cut_short: why the recording ends before the trial's end ("stopped in the sweep"), or
            "" when the trial ran to its end (or failed: the replay would fail it too).
        parameters: what the trial trained with (for tables and labels only).
    """

    trial_id: str
    values: tuple[float, ...]
    durations: tuple[float, ...]
    epochs: tuple[int, ...] = ()
    cut_short: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        object.__setattr__(self, "durations", tuple(float(d) for d in self.durations))
        object.__setattr__(self, "epochs", tuple(self.epochs) or tuple(range(1, len(self.values) + 1)))
        if len(self.durations) not in (len(self.values), len(self.values) + 1) or len(self.epochs) != len(self.values):
            raise ValueError(f"trial {self.trial_id}: {len(self.values)} values need as many epochs and "
                             f"{len(self.values)} or {len(self.values) + 1} durations; got {len(self.epochs)} "
                             f"and {len(self.durations)}")

    @property
    def failed(self) -> bool:
        """The trial failed in the epoch after its last report."""
        return len(self.durations) > len(self.values)


@dataclass
class Simulation:
    """What happened to each trial in one simulated sweep.

    Attributes:
        seen: the values reported before each trial ended (the replayed curves).
        epochs: trial-epochs each trial spent (a failed epoch counts).
        stops: trial -> (report, reason) for the trials the judge stopped.
        sweep_seconds: simulated time until the last trial ended.
    """

    seen: dict[str, list[float]]
    epochs: dict[str, int]
    stops: dict[str, tuple[int, str]]
    sweep_seconds: float

    @property
    def total_epochs(self) -> int:
        return sum(self.epochs.values())

    @property
    def best(self) -> float:
        """The best finite value any trial reported (nan when none)."""
        return max((v for values in self.seen.values() for v in values if math.isfinite(v)), default=math.nan)


def policy_judge(policy: EarlyTermination | None) -> Judge | None:
    """A judge that asks ``policy`` as the driver does: ``should_stop``, then ``describe`` for the reason."""
    if policy is None:
        return None

    def judge(trial_id: str, curves: Curves, finished: AbstractSet[str]) -> str | None:
        if policy.should_stop(trial_id, curves, finished):
            return policy.describe(trial_id, curves, finished)
        return None

    return judge


def simulate(curves: Sequence[TrialCurve], judge: Judge | None, *, slots: int,
             on_end: Callable[[str, bool], None] | None = None) -> Simulation:
    """Run the sweep of ``curves`` event by event in simulated time, asking ``judge`` after each report.

    Trials start in the order given, ``slots`` at a time; a stopped, failed or completed trial
    frees its slot for the next. ``judge`` sees only the trials that have reported, each with
    the reports that happened so far, and ``finished`` (the trials that ended); it is asked on
    every report, the last one too (as the driver does), but a stop on a completed trial's last
    report changes nothing.

    Args:
        curves: the recorded trials.
        judge: see :func:`policy_judge`; None runs every trial as recorded.
        slots: trials at once (>= 1).
        on_end: called with (trial, stopped by the judge) as each trial ends (e.g. to tell Optuna).

    Example:
        >>> runs = [TrialCurve("0", [0.5, 0.9], [1, 1]), TrialCurve("1", [0.1, 0.2], [1, 1])]
        >>> simulate(runs, policy_judge(make_policy({"type": "bandit", "slack_factor": 0.5})), slots=2).stops
        {'1': (1, 'bandit: 0.100 < 0.500/(1+0.5)=0.333 at report 1')}
    """
    by_id = {curve.trial_id: curve for curve in curves}
    waiting = deque(curves)
    seen: dict[str, list[float]] = {}
    done = {curve.trial_id: 0 for curve in curves}  # events (reports, or the failed epoch) so far
    finished: set[str] = set()
    stops: dict[str, tuple[int, str]] = {}
    events: list[tuple[float, int, str]] = []  # (time, order, trial): the trial's next report happens
    order, now = 0, 0.0

    def end(trial_id: str, stopped: bool) -> None:
        finished.add(trial_id)
        if on_end is not None:
            on_end(trial_id, stopped)

    def start_next(at: float) -> None:
        nonlocal order
        while waiting:
            curve = waiting.popleft()
            if curve.durations:
                heapq.heappush(events, (at + curve.durations[0], order, curve.trial_id))
                order += 1
                return
            end(curve.trial_id, False)  # nothing recorded: it ends as it starts

    for _ in range(slots):
        start_next(0.0)
    while events:
        now, _, trial_id = heapq.heappop(events)
        curve, k = by_id[trial_id], done[trial_id] + 1
        done[trial_id] = k
        reason = None
        if k <= len(curve.values):  # report k happens now
            seen.setdefault(trial_id, []).append(curve.values[k - 1])
            if judge is not None:
                reason = judge(trial_id, seen, finished)  # the live dict and set, as the driver passes them
        last = k == len(curve.durations)
        stopped = reason is not None and not (last and not curve.cut_short)  # too late to matter
        if stopped:
            stops[trial_id] = (k, reason)
        if stopped or last:
            end(trial_id, stopped)
            start_next(now)
        else:
            heapq.heappush(events, (now + curve.durations[k], order, trial_id))
            order += 1
    epochs = {curve.trial_id: _epochs_spent(curve, done[curve.trial_id]) for curve in curves}
    return Simulation(seen, epochs, stops, now)


def _epochs_spent(curve: TrialCurve, done: int) -> int:
    reported = min(done, len(curve.values))
    spent = curve.epochs[reported - 1] if reported else 0
    return spent + (1 if done > len(curve.values) else 0)  # the epoch it failed in
