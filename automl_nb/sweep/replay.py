"""Replay a finished sweep under another early-termination policy, in simulated time.

A run folder holds every trial's curve (the primary metric per report) and the time each
report took (``elapsed_seconds`` of its metrics rows). :func:`replay` runs the sweep again on
those recordings: the trials start in their original order, ``max_concurrent_trials`` at a
time; report ``k`` of a trial happens at its start plus the durations of its first ``k``
reports; after each report the policy is asked ``should_stop(trial, curves, finished)`` with
only the reports that have happened by then, exactly as the sweep driver asks it. Nothing
trains, so a replay takes milliseconds and answers "what would ASHA have saved here?".

One limit, stated in the result: a trial that the real sweep stopped (its policy, the user, the
timeout) has no reports past that point, so the replay cannot run it longer. If the replayed
policy has not stopped it by then, its curve simply ends there; the table says so (``curve ends
at report k: stopped in the sweep``) and the summary counts those trials.

The simulator itself is :mod:`automl_nb.sweep.simulate`.

Example:
    >>> result = replay("runs/digits", {"type": "asha"})
    >>> result.compute_ratio, result.best, result.best_survives  # less compute by this factor; same best?
    >>> result.plot()
"""

from __future__ import annotations

import copy
import math
import os
from html import escape
from pathlib import Path
from typing import Any, Sequence

import yaml

from automl_nb.errors import RunFolderError, SpecError
from automl_nb.sweep.policies import EarlyTermination, make_policy, trial_report_count
from automl_nb.sweep.simulate import Simulation, TrialCurve, policy_judge, simulate
from automl_nb.sweep.store import CANCELED, COMPLETED, FAILED, STOPPED_BY_POLICY, RunStore

# How a recorded curve ended, when it did not run to the end: the note's words.
_CUT_SHORT = {STOPPED_BY_POLICY: "stopped in the sweep", "timeout": "canceled by the sweep's timeout",
              "user": "canceled by the user"}


# -- a run folder's recordings ----------------------------------------------------------------
def read_curves(run: Any) -> tuple[list[TrialCurve], Any, bool]:
    """The recorded trials of a run folder (or :class:`~automl_nb.sweep.Run`), in their original order.

    Returns:
        (curves, the job, whether the reports' durations were recorded). A report without
        ``elapsed_seconds`` (e.g. a scripted trial) takes 1 simulated second, as does every
        report of that run.

    Raises:
        RunFolderError: not a run folder, or no trial has finished with a metric row.
    """
    folder = Path(os.fspath(getattr(run, "folder", run)))
    if not (folder / "run.json").is_file() or not (folder / "job.yaml").is_file():
        raise RunFolderError(f"replay: {str(folder)!r} is not a run folder (no run.json and job.yaml); "
                             "give a Run or the folder that job.submit() or `automl-nb run` made")
    store = RunStore(folder)
    job = store.load_job()
    metric = job.primary_metric
    records = store.trials()
    rows = {r.trial_id: [row for row in store.metrics(r.trial_id) if isinstance(row.get(metric), (int, float))]
            for r in records}
    if not any(r.finished and rows[r.trial_id] for r in records):
        raise RunFolderError(f"replay: {str(folder)!r} has no finished trial with a {metric} row in its "
                             f"metrics.jsonl ({len(records)} trials); replay needs a sweep that has run")
    timed = all("elapsed_seconds" in row for trial_rows in rows.values() for row in trial_rows)
    curves = []
    for record in records:
        trial_rows = rows[record.trial_id]
        curves.append(TrialCurve(record.trial_id, [row[metric] for row in trial_rows],
                                 _durations(trial_rows) if timed else [1.0] * len(trial_rows),
                                 [int(row["epoch"]) for row in trial_rows], _cut_short(record),
                                 dict(record.parameters)))
    return curves, job, timed


def _durations(rows: list[dict]) -> list[float]:
    """Each report's seconds: the step in ``elapsed_seconds`` (a resumed trial's clock restarts at 0)."""
    durations, last = [], 0.0
    for row in rows:
        elapsed = float(row["elapsed_seconds"])
        durations.append(elapsed - last if elapsed > last else elapsed)
        last = elapsed
    return durations


def _cut_short(record) -> str:
    if record.status in (COMPLETED, FAILED):
        return ""
    if record.status == CANCELED:
        return _CUT_SHORT.get(record.stopped_by, "canceled in the sweep")
    return f"{record.status.lower()} when replayed"  # Queued or Running: the sweep has not ended


# -- the replay --------------------------------------------------------------------------------
def prepare_policy(policy: Any, reports: int | None = None) -> EarlyTermination | None:
    """A policy ready to judge a replay, as the driver prepares one for a fresh sweep.

    Args:
        policy: anything :func:`~automl_nb.sweep.policies.make_policy` takes, a policy object
            (copied: the caller's is not changed), a text as :func:`parse_policy_text` takes, or None.
        reports: how many times the trials report: a stateful policy's (ASHA's) default max_resource.

    Raises:
        SpecError: not a valid policy.

    Example:
        >>> prepare_policy({"type": "asha", "min_resource": 1}, reports=9).rungs()
        [1, 3]
    """
    if policy is None or isinstance(policy, EarlyTermination):
        policy = copy.deepcopy(policy)
    elif isinstance(policy, str):
        policy = parse_policy_text(policy)
    else:
        policy = make_policy(policy)
    if hasattr(policy, "restore"):  # a fresh state, bounded by the reports, as the driver does
        policy.restore(None, reports=reports)
    return policy


def parse_policy_text(text: str) -> EarlyTermination | None:
    """A policy from a line of text: ``type: bandit, slack_factor: 0.1``, ``{type: asha}``, a YAML
    mapping, a bare type (``median_stopping``), or ``none``.

    Raises:
        SpecError: not YAML, not a mapping, or not a valid policy (the spec's message).

    Example:
        >>> parse_policy_text("type: bandit, slack_factor: 0.1, delay_evaluation: 2")
        Bandit(evaluation_interval=1, delay_evaluation=2, slack_factor=0.1)
    """
    text = text.strip()
    if text.lower() in ("", "none", "null"):
        return None
    if ":" not in text:
        data: Any = {"type": text}
    else:
        flow = text if text.startswith("{") or "\n" in text else "{" + text + "}"
        try:
            data = yaml.safe_load(flow)
        except yaml.YAMLError as error:
            raise SpecError(f"early_termination: {text!r} is not YAML ({str(error).splitlines()[0]}); allowed: "
                            "type: bandit, slack_factor: 0.1 (a policy's keys) or a bare type") from None
    return make_policy(data)


def replay(run: Any, policy: Any, *, max_concurrent: int | None = None) -> "ReplayResult":
    """Replay a finished sweep under ``policy`` in simulated time (see the module's docstring).

    Args:
        run: a :class:`~automl_nb.sweep.Run` or its run folder.
        policy: an early-termination policy: a spec record, its YAML mapping
            (``{"type": "asha"}``), a policy object (copied, not changed), a text as
            :func:`parse_policy_text` takes, or None (every trial runs as recorded).
        max_concurrent: trials at once (default: the job's ``max_concurrent_trials``).

    Returns:
        A :class:`ReplayResult`: the table per trial, the summary numbers, ``plot()``.

    Raises:
        RunFolderError: not a run folder, or nothing finished to replay.
        SpecError: ``policy`` or ``max_concurrent`` is not valid.

    Example:
        >>> replay("runs/digits", {"type": "bandit", "slack_factor": 0.1}).summary()
    """
    if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int)
                                       or max_concurrent < 1):
        raise SpecError(f"max_concurrent: {max_concurrent!r} is not valid; allowed: int >= 1, or None for the "
                        "job's max_concurrent_trials")
    prepare_policy(policy)  # a bad policy fails before the run folder is read
    curves, job, timed = read_curves(run)
    slots = max_concurrent or job.limits.max_concurrent_trials
    judged = prepare_policy(policy, trial_report_count(job))
    recorded = simulate(curves, None, slots=slots)
    replayed = simulate(curves, policy_judge(judged), slots=slots)
    return ReplayResult(curves, recorded, replayed, judged, job.primary_metric, slots, timed)


def replay_from_text(run: Any, text: str, *, max_concurrent: int | None = None) -> "ReplayResult":
    """What ``%automl replay [-r RUN] POLICY`` calls: :func:`replay` with the policy as a text.

    Example:
        >>> replay_from_text(run, "type: bandit, slack_factor: 0.1")
    """
    return replay(run, parse_policy_text(text), max_concurrent=max_concurrent)


# -- the result --------------------------------------------------------------------------------
class ReplayResult:
    """A sweep replayed under a policy, against the sweep as recorded.

    Attributes:
        table: pandas DataFrame, one row per trial: ``trial``, ``reports`` (recorded),
            ``stopped_at`` (report, or None), ``reason`` (the policy's, for a stopped trial),
            ``best`` (reached in the replay), ``recorded_best``, ``trial_epochs`` (spent in
            the replay), ``note`` (``curve ends at report k: stopped in the sweep`` when the
            replay ran out of recording, ``failed``...).
        policy: the policy replayed (None: no policy).
        epochs, recorded_epochs: trial-epochs with the policy, and as recorded.
        compute_ratio: ``recorded_epochs / epochs`` (2.0: half the compute).
        best, recorded_best: the best metric reached in the replay, and as recorded.
        best_trial: the recorded best trial; ``best_survives``: the replay reaches its best value.
        cut_short: trials whose recording ended before the replayed policy stopped them.
        slots: trials at once; ``timed``: the durations were recorded (else 1 s per report).
    """

    def __init__(self, curves: Sequence[TrialCurve], recorded: Simulation, replayed: Simulation,
                 policy: EarlyTermination | None, metric: str, slots: int, timed: bool) -> None:
        import pandas as pd

        self.curves, self.policy, self.metric, self.slots, self.timed = list(curves), policy, metric, slots, timed
        self.recorded, self.replayed = recorded, replayed
        self.epochs, self.recorded_epochs = replayed.total_epochs, recorded.total_epochs
        self.compute_ratio = self.recorded_epochs / self.epochs if self.epochs else math.nan
        self.best, self.recorded_best = replayed.best, recorded.best
        bests = {c.trial_id: _best(c.values) for c in curves}
        self.best_trial = max((t for t in bests if math.isfinite(bests[t])), key=bests.get, default=None)
        self.best_survives = self.best_trial is not None and \
            _best(replayed.seen.get(self.best_trial, ())) == bests[self.best_trial]
        rows = [self._row(curve, bests[curve.trial_id]) for curve in curves]
        self.cut_short = [row["trial"] for row in rows if row["note"].startswith("curve ends")]
        self.table = pd.DataFrame(rows, columns=["trial", "reports", "stopped_at", "reason", "best",
                                                 "recorded_best", "trial_epochs", "note"])
        self.table["stopped_at"] = self.table["stopped_at"].astype("Int64")  # a report number, or <NA>

    def _row(self, curve: TrialCurve, recorded_best: float) -> dict:
        trial_id = curve.trial_id
        stop = self.replayed.stops.get(trial_id)
        note = ""
        if stop is None and curve.cut_short:
            note = f"curve ends at report {len(curve.values)}: {curve.cut_short}"
        elif stop is None and curve.failed:
            note = f"failed after report {len(curve.values)}"
        return {"trial": trial_id, "reports": len(curve.values), "stopped_at": stop[0] if stop else None,
                "reason": stop[1] if stop else "", "best": _or_none(_best(self.replayed.seen.get(trial_id, ()))),
                "recorded_best": _or_none(recorded_best), "trial_epochs": self.replayed.epochs[trial_id],
                "note": note}

    def summary(self) -> dict[str, Any]:
        """The summary numbers as a dict (what :meth:`lines` and the HTML show)."""
        return {"policy": _policy_name(self.policy), "trials": len(self.curves), "max_concurrent": self.slots,
                "trial_epochs": self.epochs, "recorded_trial_epochs": self.recorded_epochs,
                "compute_ratio": self.compute_ratio, "stopped": len(self.replayed.stops),
                "best": _or_none(self.best), "recorded_best": _or_none(self.recorded_best),
                "best_trial": self.best_trial, "best_survives": self.best_survives, "cut_short": len(self.cut_short),
                "simulated_seconds": self.replayed.sweep_seconds,
                "recorded_simulated_seconds": self.recorded.sweep_seconds}

    def lines(self) -> list[str]:
        """The summary in words, one fact a line."""
        s = self.summary()
        lines = [f"replay of {s['trials']} trials, {s['max_concurrent']} at a time, under {s['policy']}",
                 f"trial-epochs: {s['trial_epochs']} against {s['recorded_trial_epochs']} as recorded "
                 f"({s['compute_ratio']:.2f}x less compute); {s['stopped']} trials stopped",
                 f"best {self.metric}: {_show(s['best'])} against {_show(s['recorded_best'])} as recorded; the recorded "
                 f"best trial ({s['best_trial']}) {'survives' if s['best_survives'] else 'is stopped before its best'}"]
        if self.cut_short:
            lines.append(f"{len(self.cut_short)} trials ({', '.join(self.cut_short)}) were stopped in the sweep: their "
                         "curves end there, so the replay could not run them longer; a sweep without any policy "
                         "would have spent more than the recorded trial-epochs")
        if not self.timed:
            lines.append("durations not recorded (no elapsed_seconds): every report takes 1 simulated second")
        return lines

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        """In a notebook: the summary, the plot (inline, so a saved notebook keeps it) and the table."""
        import base64
        import io

        items = "".join(f"<li>{escape(line)}</li>" for line in self.lines())
        picture = io.BytesIO()
        self.plot().savefig(picture, format="png", dpi=80)
        image = f'<img src="data:image/png;base64,{base64.b64encode(picture.getvalue()).decode()}"/>'
        return f"<ul>{items}</ul>{image}" + self.table.to_html(index=False, na_rep="", float_format="{:.4f}".format)

    def plot(self, title: str | None = None):
        """The curves as recorded (faint) and as replayed, a cross where the policy stops each trial,
        a triangle where a recording ends before the policy decided (stopped in the sweep), a star
        on the recorded best; returns a matplotlib Figure."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        fig = Figure(figsize=(8, 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        axis = fig.subplots()
        marks = {"x": "stopped by the replayed policy", ">": "curve ends: stopped in the sweep"}
        used = set()
        for curve in self.curves:
            seen = self.replayed.seen.get(curve.trial_id, [])
            line, = axis.plot(curve.epochs, curve.values, alpha=0.25, linewidth=1)
            axis.plot(curve.epochs[:len(seen)], seen, color=line.get_color(), linewidth=1.5, marker="o", markersize=2)
            stop = self.replayed.stops.get(curve.trial_id)
            mark = "x" if stop is not None and stop[0] <= len(curve.values) else (
                ">" if curve.trial_id in self.cut_short else None)
            if mark is not None:
                at = stop[0] - 1 if mark == "x" else len(curve.values) - 1
                axis.plot(curve.epochs[at], curve.values[at], mark, color=line.get_color(), markersize=9,
                          markeredgewidth=2, label=None if mark in used else marks[mark])
                used.add(mark)
        if self.best_trial is not None:
            best = next(c for c in self.curves if c.trial_id == self.best_trial)
            at = max(range(len(best.values)), key=lambda i: _score(best.values[i]))
            axis.plot(best.epochs[at], best.values[at], "*", color="black", markersize=14,
                      label=f"recorded best: trial {best.trial_id}")
        axis.legend(loc="lower right", fontsize=8)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set(xlabel="epoch", ylabel=self.metric, title=title or (
            f"{_policy_name(self.policy)}\n{self.compute_ratio:.2f}x less compute ({self.epochs} of "
            f"{self.recorded_epochs} trial-epochs), best {_show(self.best)} (recorded {_show(self.recorded_best)})"))
        axis.title.set_fontsize(9)
        return fig


def _score(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _best(values: Sequence[float]) -> float:
    return max((v for v in values if math.isfinite(v)), default=math.nan)


def _or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _show(value: float | None) -> str:
    return "none" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _policy_name(policy: EarlyTermination | None) -> str:
    return "no policy" if policy is None else repr(policy)
