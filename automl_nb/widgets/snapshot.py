"""What a sweep looks like at one moment, read from its run folder: plain frozen records.

The dashboard, its static HTML form and the ``%automl`` magics all draw from a
:class:`RunSnapshot`; the run folder stays the one truth (nothing here is kept in memory
between snapshots except the job, which does not change).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

ACTIVE_STATUSES = ("Starting", "Running")
TRIAL_ACTIVE = ("Queued", "Running")


@dataclass(frozen=True)
class TrialRow:
    """One trial as the leaderboard shows it.

    Attributes:
        trial_id, model, status, epochs, notes: as in the run's leaderboard.
        params: the sampled values other than the model.
        metric: the best primary metric so far (None before the first evaluation).
        total_epochs: the epochs the trial is set to train (None when unknown, e.g. a trial
            whose sampled values broke a rule).
        stopped_by: for a Canceled trial: ``policy``, ``timeout`` or ``user``.
        early_terminated: stopped by the early-termination policy.
        duration_s: seconds since it started (to its end when it ended).
        curve: its evaluation rows (``metrics.jsonl``).
        failure: why a Failed trial failed, one line (empty for any other status).
    """

    trial_id: str
    model: str
    params: dict
    metric: float | None
    status: str
    epochs: int
    total_epochs: int | None
    stopped_by: str | None
    notes: str
    duration_s: float | None
    curve: tuple = field(default=(), repr=False)
    failure: str = ""

    @property
    def early_terminated(self) -> bool:
        return self.status == "Canceled" and self.stopped_by == "policy"

    @property
    def active(self) -> bool:
        return self.status in TRIAL_ACTIVE


@dataclass(frozen=True)
class RunSnapshot:
    """A sweep at one moment.

    Attributes:
        folder: the run folder.
        task, primary_metric: from the job.
        status: the run's status (``Interrupted`` when its driver died).
        max_trials: trials the sweep will run.
        rows: the trials, best primary metric first (the leaderboard's order).
        elapsed_s: seconds the sweep has run, over all its sessions.
        taken: when the snapshot was taken (``time.time()``).
        swept: the names the job's search space can vary (the leaderboard's columns from the
            start; see :func:`automl_nb.widgets.leaderboard.declared_swept`).
        max_concurrent_trials: trials at once (for the job's time left).
        timeout_s: the job's whole budget in seconds (its ``timeout_minutes``), if known.
    """

    folder: str
    task: str
    primary_metric: str
    status: str
    max_trials: int
    rows: tuple[TrialRow, ...]
    elapsed_s: float | None
    taken: float
    swept: tuple[str, ...] = ()
    max_concurrent_trials: int = 1
    timeout_s: float | None = None

    @property
    def active(self) -> bool:
        """The sweep is still going (Starting or Running)."""
        return self.status in ACTIVE_STATUSES

    @property
    def best(self) -> TrialRow | None:
        """The trial with the best primary metric so far."""
        return self.rows[0] if self.rows and self.rows[0].metric is not None else None

    @property
    def ended_trials(self) -> int:
        return sum(1 for row in self.rows if not row.active)


class SnapshotReader:
    """Takes snapshots of one run; remembers the job and each trial's epoch count.

    Args:
        run: the :class:`~automl_nb.sweep.Run`.
    """

    def __init__(self, run) -> None:
        self.run = run
        from automl_nb.widgets.leaderboard import declared_swept

        self.job = run.store.load_job()
        self._swept = declared_swept(self.job.search_space)
        self._total_epochs: dict[str, int | None] = {}

    def take(self) -> RunSnapshot:
        """Read the run folder now."""
        from automl_nb.sweep.failures import failure_reason

        run, job = self.run, self.job
        status = run.status
        info = run.store.run_info()
        records = run.trials()
        table = run.leaderboard()  # the leaderboard's order and columns are the sweep layer's
        by_id = {record.trial_id: record for record in records}
        rows = []
        for entry in table.to_dict("records"):
            record = by_id[entry["trial"]]
            metric = entry[job.primary_metric]
            rows.append(TrialRow(
                trial_id=record.trial_id, model=str(entry["model"] or ""), params=dict(entry["params"]),
                metric=None if metric is None or (isinstance(metric, float) and math.isnan(metric)) else float(metric),
                status=record.status, epochs=int(record.epochs), total_epochs=self._epochs_of(record),
                stopped_by=record.stopped_by, notes=str(entry["notes"] or ""), duration_s=record.duration,
                curve=tuple(run.metrics(record.trial_id)),
                failure=failure_reason(record) if record.status == "Failed" else ""))
        elapsed = info.get("elapsed_seconds")
        if status in ACTIVE_STATUSES and info.get("started"):
            elapsed = (elapsed or 0.0) + time.time() - info["started"]
        return RunSnapshot(folder=str(run.folder), task=job.task, primary_metric=job.primary_metric, status=status,
                           max_trials=int(info.get("max_trials", job.limits.max_trials)), rows=tuple(rows),
                           elapsed_s=elapsed, taken=time.time(), swept=self._swept,
                           max_concurrent_trials=int(job.limits.max_concurrent_trials),
                           timeout_s=float(job.limits.timeout_minutes) * 60)

    def _epochs_of(self, record) -> int | None:
        key = f"{record.trial_id}:{record.oom_retries}"
        if key not in self._total_epochs:
            self._total_epochs[key] = _number_of_epochs(self.job.task, record.parameters)
        return self._total_epochs[key]


def _number_of_epochs(task: str, parameters: dict[str, Any]) -> int | None:
    """The trial's epochs, defaults filled in by the spec (None when its parameters break a rule)."""
    from automl_nb.errors import SpecError
    from automl_nb.spec import resolve_parameters

    try:
        return int(resolve_parameters(task, parameters)["number_of_epochs"])
    except SpecError:
        return None
