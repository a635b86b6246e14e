"""The run folder: the one truth about a sweep, written atomically.

Layout::

    job.yaml               the job, data paths made absolute (a resumed run finds its data)
    run.json               status, timings, the driver's pid and heartbeat
    trials/<id>/trial.json the driver's record of trial <id> (see TrialRecord)
    trials/<id>/...        the trial's own files: params.json, metrics.jsonl, status.json, checkpoints
    steering.jsonl         requests that steer the sweep (see automl_nb.sweep.steering)
    leaderboard.csv, learning_curves.png   written when the sweep ends

The leaderboard, the widgets, ``resume`` and the CLI all read this folder; nothing about a
sweep lives only in memory.

A run may live on a URL (``s3://bucket/runs/x``): then this folder is the machine's local mirror of
it and ``remote`` keeps the two in step (see :mod:`automl_nb.sweep.remote`); a local folder has no
``remote`` and nothing else changes.
"""

from __future__ import annotations

import copy
import os
import socket
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from automl_nb._atomic import atomic_write_json, atomic_write_text, read_json
from automl_nb.errors import RunFolderError

# Trial statuses, as Azure names its child runs.
QUEUED, RUNNING, COMPLETED, FAILED, CANCELED = "Queued", "Running", "Completed", "Failed", "Canceled"
# Why a Canceled trial was stopped. Only a policy's verdict is final: a trial stopped by the
# timeout or by Run.cancel() was never judged, so resume() continues it.
STOPPED_BY_POLICY, STOPPED_BY_TIMEOUT, STOPPED_BY_USER = "policy", "timeout", "user"
TRIAL_RECORD = "trial.json"
# A run on a URL: the image cache its trials share, beside its trials (the driver never syncs it).
IMAGE_CACHE = "image-cache"


@dataclass
class TrialRecord:
    """What the driver knows of one trial.

    Attributes:
        trial_id: the trial's folder name under ``trials/``.
        index: the trial's number (0-based, in order of creation; ``trial_id`` is its str).
        sample: the sampler's index for it (see :attr:`sampler_index`); None for a steered trial.
        origin: for a trial made by steering (a clone, the extension of a Completed trial):
            ``{"kind": "clone" | "extend", "source": trial id, "request": request id}``.
        requests: the steering requests applied to it, ``{"id", "kind"}`` each (extend, requeue, clone).
        sampled: the values the sampler chose (empty for a single-trial job).
        sampler_state: the sampler's record, so a resumed sweep re-registers the trial.
        parameters: what the trial trains with: fixed training parameters, the sampled values,
            and any change made by an out-of-memory retry.
        status: Queued, Running, Completed, Failed or Canceled.
        stopped_by: for Canceled, ``policy``, ``timeout`` or ``user``.
        best_metric, best_epoch, epochs: as reported so far.
        attempts: times the trial started on a worker (> 1 after a worker died).
        oom_retries: restarts with half the batch after running out of GPU memory.
        notes: human-readable events (early termination reason, retries), for the leaderboard.
        error, traceback: why a Failed trial failed.
    """

    trial_id: str
    index: int
    sampled: dict = field(default_factory=dict)
    sampler_state: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    status: str = QUEUED
    stopped_by: str | None = None
    best_metric: float | None = None
    best_epoch: int | None = None
    epochs: int = 0
    started: float | None = None
    ended: float | None = None
    attempts: int = 0
    oom_retries: int = 0
    notes: list = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    sample: int | None = None
    origin: dict | None = None
    requests: list = field(default_factory=list)

    @property
    def sampler_index(self) -> int | None:
        """The sampler's index for this trial; None for a steered trial (nothing was drawn for it)."""
        if self.origin is not None:
            return None
        return self.sample if self.sample is not None else self.index

    @property
    def extended(self) -> bool:
        """The user extended it (in place or as a warm start): early termination leaves it alone."""
        return any(request.get("kind") == "extend" for request in self.requests) or (
            self.origin is not None and self.origin.get("kind") == "extend")

    @property
    def finished(self) -> bool:
        """Ended for good: resume() leaves it alone."""
        return self.status in (COMPLETED, FAILED) or (self.status == CANCELED and self.stopped_by == STOPPED_BY_POLICY)

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started

    @classmethod
    def from_dict(cls, data: dict) -> "TrialRecord":
        names = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


class RunStore:
    """Reads and writes one run folder.

    Args:
        folder: the run folder (for a run on a URL, this machine's mirror of it).
        remote: for a run on a URL, its :class:`~automl_nb.sweep.remote.MirrorSync`; None for a local folder.
    """

    def __init__(self, folder: str | os.PathLike, remote: Any = None) -> None:
        self.folder = Path(folder)
        self.remote = remote

    @property
    def url(self) -> str | None:
        """The run's URL when it lives on a remote store, else None."""
        return None if self.remote is None else self.remote.url

    @property
    def location(self) -> str:
        """Where the run lives, in the user's words: its URL, else its folder."""
        return self.url or str(self.folder)

    # -- a run on a URL: the mirror's sync (no-ops for a local folder) ----------------------------
    def start_sync(self) -> None:
        """While a driver runs: upload its files and download the trials' files in the background."""
        if self.remote is not None:
            self.remote.start()

    def stop_sync(self, pull: bool = True, ended: bool = False) -> None:
        """Stop the background sync and sync a last time (``pull=False``: only upload; ``ended``: the
        drive is over, so other processes of this machine may update the mirror again)."""
        if self.remote is not None:
            self.remote.stop(pull=pull, ended=ended)

    def upload(self, folder: str) -> None:
        """Put the files under ``folder`` (relative to the run folder) on the run's URL, if it has one."""
        if self.remote is not None:
            self.remote.upload(folder)

    def catch_up(self) -> None:
        """A run on a URL that another process drives: bring the mirror's records and metrics up to
        what the store holds (not checkpoints), at most once a second; a no-op otherwise."""
        if self.remote is not None:
            self.remote.catch_up()

    def refresh(self) -> None:
        """Bring the mirror up to what the store holds now (e.g. before resume)."""
        if self.remote is not None:
            self.remote.pull(everything=True)

    # -- the run ---------------------------------------------------------------------------
    def create(self, job) -> None:
        """Start a new run folder: ``job.yaml`` (absolute data paths) and ``run.json``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / "job.yaml", _portable_job(job).dump())
        self.write_run(status="NotStarted", created=time.time(), elapsed_seconds=0.0, sessions=0)
        if self.remote is not None:
            self.remote.push()

    def load_job(self):
        """The job stored with the run."""
        from automl_nb.spec import load_job

        return load_job(self.folder / "job.yaml")

    def run_info(self) -> dict:
        """``run.json`` (empty before :meth:`create`)."""
        path = self.folder / "run.json"
        return _read_record(path) if path.exists() else {}

    def write_run(self, **changes: Any) -> dict:
        """Update fields of ``run.json`` (a single driver writes it, so read-modify-write is safe).

        Raises:
            RunFolderError: run.json is damaged; it is left as it is, not overwritten.
        """
        info = {**self.run_info(), **changes}
        atomic_write_json(self.folder / "run.json", info)
        return info

    def claim(self) -> None:
        """Record this process as the run's driver (its host, pid and a fresh heartbeat)."""
        info = self.run_info()
        self.write_run(status="Running", host=socket.gethostname(), pid=os.getpid(), heartbeat=time.time(),
                       sessions=info.get("sessions", 0) + 1)

    def driver_alive(self) -> bool:
        """Whether a live process on this host is driving the run (by pid), or any host's heartbeat is fresh."""
        info = self.run_info()
        if info.get("status") not in ("Starting", "Running") or "pid" not in info:
            return False
        if info.get("host") == socket.gethostname():
            return pid_alive(info.get("pid"))
        return time.time() - info.get("heartbeat", 0) < HEARTBEAT_STALE_SECONDS

    # -- trials ----------------------------------------------------------------------------
    def trial_folder(self, trial_id: str) -> Path:
        """The trial's folder on this machine (a run on a URL: in the mirror)."""
        return self.folder / "trials" / trial_id

    def trial_location(self, trial_id: str) -> str:
        """Where the trial's worker writes: its folder's URL for a run on a URL, else :meth:`trial_folder`."""
        return f"{self.url}/trials/{trial_id}" if self.url else str(self.trial_folder(trial_id))

    def has_resume_point(self, trial_id: str) -> bool:
        """The trial left a checkpoint to resume from (it was interrupted after an evaluation)."""
        from automl_nb.train.folder import LAST_CHECKPOINT, TrialFolder

        if self.remote is not None:  # the mirror holds no last.pt: the last listing (a sync turn, refresh) says
            return self.remote.has(f"trials/{trial_id}/{LAST_CHECKPOINT}")
        return TrialFolder(self.trial_folder(trial_id)).has_resume_point()

    def write_trial(self, record: TrialRecord) -> None:
        atomic_write_json(self.trial_folder(record.trial_id) / TRIAL_RECORD, asdict(record))

    def trials(self) -> list[TrialRecord]:
        """Every trial record, in the order the sampler asked for them.

        Raises:
            RunFolderError: a ``trial.json`` is damaged (resuming without it could reuse its trial's folder).
        """
        records = [read_trial_record(path) for path in (self.folder / "trials").glob(f"*/{TRIAL_RECORD}")]
        return sorted(records, key=lambda record: record.index)

    def metrics(self, trial_id: str) -> list[dict]:
        """The trial's evaluation rows (``metrics.jsonl``)."""
        from automl_nb.train.folder import TrialFolder

        return TrialFolder(self.trial_folder(trial_id)).metrics()


HEARTBEAT_SECONDS = 5.0
HEARTBEAT_STALE_SECONDS = 30.0


def _read_record(path: Path) -> dict:
    """A JSON object file of the run folder (RunFolderError, naming it, when damaged)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise RunFolderError(f"{path}: damaged, expected a JSON object, found {type(data).__name__}")
    return data


def read_trial_record(path: Path) -> TrialRecord:
    """One ``trial.json`` as a :class:`TrialRecord` (RunFolderError, naming it, when damaged)."""
    data = _read_record(path)
    try:
        return TrialRecord.from_dict(data)
    except TypeError as error:  # a required field (trial_id, index) is missing
        raise RunFolderError(f"{path}: damaged trial record ({error})") from None


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` of this host still runs (False for anything not a pid)."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _portable_job(job):
    """A copy of ``job`` whose data paths are absolute, so job.yaml works from its own folder."""
    from automl_nb.spec import Input

    job = copy.deepcopy(job)
    if isinstance(job.cluster, dict):  # TLS files made absolute, as the data paths are
        job.cluster = job.cluster_connection()
    for key in ("training_data", "validation_data"):
        value = getattr(job, key)
        if value is not None:
            setattr(job, key, Input(path=job.resolve_data_path(value), type=value.type))
    return job


def is_remote(location: Any) -> bool:
    """Whether ``location`` names a remote store (``scheme://...``) rather than a local folder.

    ``file://`` URLs are local folders; Path objects are always local.
    """
    from automl_nb.data.records import is_url  # here: the data package loads numpy and PIL

    return isinstance(location, str) and is_url(location) and not location.startswith("file://")


def local_path(location: str | os.PathLike) -> Path:
    """A local folder given as a path or a ``file://`` URL."""
    text = os.fspath(location)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def open_store(location: str | os.PathLike, *, create: bool = False) -> RunStore:
    """The store of the run at ``location``: a local folder, or a URL (on this machine's mirror of it,
    brought up to date now; see :mod:`automl_nb.sweep.remote`).

    Args:
        create: for a URL, start a new run there (refusing one that holds a run); a local folder
            is made by :meth:`RunStore.create`.
    """
    if is_remote(location):
        from automl_nb.sweep.remote import open_remote_store

        return open_remote_store(location, create=create)
    return RunStore(local_path(location))


def free_folder(path: str | os.PathLike) -> Path:
    """``path`` if it is free, else ``path-2``, ``path-3``...: a new run never overwrites an old one."""
    path = Path(path)
    candidate, n = path, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate
