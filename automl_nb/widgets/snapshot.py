"""What a sweep looks like at one moment, read from its run folder: plain frozen records.

The dashboard, its static HTML form and the ``%automl`` magics all draw from a
:class:`RunSnapshot`; the run folder stays the one truth. A :class:`SnapshotReader` keeps what
it read and reads again only the files that changed since, so a refresh costs what changed,
not the size of the run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl_nb.train.folder import EXPORT_FOLDER, PARITY_FILE, TrialFolder  # an export's parity report

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
        export: for a trial exported to ONNX at its default place, its parity check as the run's
            leaderboard has it (``onnx_parity``, ``onnx_max_abs_diff``, ``onnx_speedup_batch1``);
            empty for the others.
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
    export: dict = field(default_factory=dict)

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
        max_trials, max_concurrent_trials and timeout_s follow the limits steering changed.
        policy_state: a stateful policy's state in run.json (ASHA's rung results), else None.
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
    policy_state: dict | None = None

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
    """Takes snapshots of one run, reading only what changed since the last one.

    It remembers the job, and for each trial its record (``trial.json``, read again only when
    its size or modification time changed), the rows of its ``metrics.jsonl`` (only lines
    appended since are read; the file is read whole again when it was rewritten) and its
    epoch count. So a refresh of a 1,000-trial run after one report reads two small files.

    Args:
        run: the :class:`~automl_nb.sweep.Run`.

    Attributes:
        last_read: the trial files the last :meth:`take` opened (what changed).
    """

    def __init__(self, run) -> None:
        self.run = run
        from automl_nb.widgets.leaderboard import declared_swept

        self.job = run.store.load_job()
        self._swept = declared_swept(self.job.search_space)
        self._total_epochs: dict[str, int | None] = {}
        self._records: dict[str, tuple[tuple, Any]] = {}  # trial id -> (stat of trial.json, TrialRecord)
        self._curves: dict[str, _Curve] = {}
        self._rows: dict[str, tuple[tuple, TrialRow]] = {}  # an ended trial's row, until its files change
        self.last_read: list[Path] = []

    def take(self) -> RunSnapshot:
        """Read the run folder now."""
        from automl_nb.sweep.steering import effective_limits

        run, job = self.run, self.job
        status = run.status
        info = run.store.run_info()
        self.last_read = []
        records = self._read_records()
        rows = []
        for record in records:
            curve = self._curve(record.trial_id)
            parity = _stat_key(self.run.store.trial_folder(record.trial_id) / EXPORT_FOLDER / PARITY_FILE)
            key = (self._records[record.trial_id][0], len(curve.rows), parity)  # an export comes after the trial
            cached = self._rows.get(record.trial_id)
            if cached is not None and cached[0] == key:
                rows.append(cached[1])
                continue
            row = self._row(record, curve, parity is not None)
            if not row.active:  # a running trial's time changes every time: only an ended one's row is kept
                self._rows[record.trial_id] = (key, row)
            rows.append(row)
        # The leaderboard's order (as automl_nb.sweep.report.leaderboard): best metric first, none last.
        rows.sort(key=lambda row: (row.metric is None, -(row.metric or 0.0)))
        elapsed = info.get("elapsed_seconds")
        if status in ACTIVE_STATUSES and info.get("started"):
            elapsed = (elapsed or 0.0) + time.time() - info["started"]
        limits = effective_limits(job, info)  # the job's, as steering requests changed them
        return RunSnapshot(folder=str(run.folder), task=job.task, primary_metric=job.primary_metric, status=status,
                           max_trials=int(info.get("max_trials", limits["max_trials"])), rows=tuple(rows),
                           elapsed_s=elapsed, taken=time.time(), swept=self._swept,
                           max_concurrent_trials=int(limits["max_concurrent_trials"]),
                           timeout_s=float(limits["timeout_minutes"]) * 60, policy_state=info.get("policy_state"))

    def _read_records(self) -> list:
        """Every trial record in sampler order; a ``trial.json`` is read only when it changed."""
        from automl_nb.sweep.store import read_trial_record

        trials = Path(self.run.folder) / "trials"
        seen = set()
        for path in trials.glob("*/trial.json"):
            trial_id = path.parent.name
            try:
                stat = path.stat()
            except FileNotFoundError:  # being replaced right now: the last one read stands
                continue
            key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            seen.add(trial_id)
            if trial_id in self._records and self._records[trial_id][0] == key:
                continue
            self.last_read.append(path)
            self._records[trial_id] = (key, read_trial_record(path))  # RunFolderError when damaged, as Run.trials()
        for gone in set(self._records) - seen:
            del self._records[gone]
        return sorted((record for _, record in self._records.values()), key=lambda record: record.index)

    def _curve(self, trial_id: str) -> "_Curve":
        curve = self._curves.setdefault(trial_id, _Curve(self.run.store.trial_folder(trial_id) / "metrics.jsonl"))
        if curve.update():
            self.last_read.append(curve.path)
        return curve

    def _row(self, record, curve: "_Curve", exported: bool = False) -> TrialRow:
        from automl_nb.sweep.failures import failure_reason

        metric = record.best_metric
        return TrialRow(
            trial_id=record.trial_id, model=str(record.parameters.get("model_name", "") or ""),
            params={key: value for key, value in record.sampled.items() if key != "model_name"},
            metric=None if metric is None or (isinstance(metric, float) and math.isnan(metric)) else float(metric),
            status=record.status, epochs=int(record.epochs), total_epochs=self._epochs_of(record),
            stopped_by=record.stopped_by, notes="; ".join(record.notes + ([record.error] if record.error else [])),
            duration_s=record.duration, curve=tuple(curve.rows),
            failure=failure_reason(record) if record.status == "Failed" else "",
            export=TrialFolder(self.run.store.trial_folder(record.trial_id)).parity_columns() if exported else {})

    def _epochs_of(self, record) -> int | None:
        key = f"{record.trial_id}:{record.oom_retries}"
        if key not in self._total_epochs:
            self._total_epochs[key] = _number_of_epochs(self.job.task, record.parameters)
        return self._total_epochs[key]


def _stat_key(path: Path) -> tuple | None:
    """What tells a changed file: (mtime, size, inode); None when there is no file."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class _Curve:
    """The rows of one ``metrics.jsonl``, read on: only the bytes appended since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict] = []
        self._file: tuple | None = None  # (inode, bytes of whole lines read)

    def update(self) -> bool:
        """Read what is new; True when the file was opened."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:  # not written yet, or removed by a trial that starts over
            changed = bool(self.rows)
            self.rows, self._file = [], None
            return changed
        inode, offset = self._file or (None, 0)
        if inode == stat.st_ino and stat.st_size == offset:
            return False
        if inode != stat.st_ino or stat.st_size < offset:  # rewritten (a resumed trial truncates it): from the start
            self.rows, offset = [], 0
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = f.read()
        whole = data.rfind(b"\n") + 1  # a last line without its newline is being appended: read it next time
        for line in data[:whole].decode("utf-8", errors="replace").splitlines():
            if line.strip():
                try:
                    self.rows.append(json.loads(line))
                except ValueError:  # a damaged line: the run's own readers say so; the dashboard skips it
                    continue
        self._file = (stat.st_ino, offset + whole)
        return True


def _number_of_epochs(task: str, parameters: dict[str, Any]) -> int | None:
    """The trial's epochs, defaults filled in by the spec (None when its parameters break a rule)."""
    from automl_nb.errors import SpecError
    from automl_nb.spec import resolve_parameters

    try:
        return int(resolve_parameters(task, parameters)["number_of_epochs"])
    except SpecError:
        return None
