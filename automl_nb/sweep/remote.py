"""A run store on an fsspec URL (``s3://bucket/runs/x``, ``gs://``, ``abfs://``): no shared folder needed.

Everything that reads a run works on local files, so a run on a URL has a local **mirror** on the
machine that drives or reads it (``$AUTOML_NB_RUN_MIRRORS/<key>``, else
``$XDG_CACHE_HOME/automl_nb/runs/<key>``, the key a hash of the URL), and the files travel whole:

- The driver writes ``job.yaml``, ``run.json``, ``steering.jsonl``, the summary and each
  ``trials/<id>/trial.json`` into its mirror as it always did (write-then-rename); a sync thread
  (:class:`MirrorSync`) uploads each one that changed, every ``SYNC_SECONDS``, and downloads what
  the trials uploaded (their other files; ``model_best.pt`` once the sweep ends or the run is
  opened; ``last.pt`` stays on the store: the driver only asks whether it is there).
- A trial on a worker gets its folder's URL as ``output_dir`` and runs in a staging folder of its
  worker, downloading its resume point first and uploading as it goes
  (:mod:`automl_nb.sweep.remote_trial`, which also holds its lease as an object on the store).
- Another process steers the run (a kernel, the CLI) with a request object of its own,
  ``steering/<id>.json`` (:meth:`MirrorSync.post`): ``steering.jsonl`` is the driver's file, which
  its upload would overwrite. Each sync merges the request objects into the mirror's log.

Atomicity: each file is uploaded whole, in one PUT, from a complete local file; an object store
replaces an object atomically, so a reader sees the old object or the new one, never half, and a
file that is rewritten (``metrics.jsonl``, ``trial.json``, ``status.json``) is never torn. A
download goes to a temporary file renamed into the mirror, so local readers never see half either.
Every scheme allowed here is such an object store; a shared filesystem is given as a local path,
which bypasses this module entirely (write-then-rename, as always).

Storage options come from fsspec's configuration of each machine (``FSSPEC_S3_ENDPOINT_URL``,
``~/.config/fsspec/*.json``) and the protocol's own credentials (``AWS_ACCESS_KEY_ID``...): the
workers need the same configuration as the driver; nothing secret travels through Dask.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from automl_nb._atomic import atomic_write_json, read_json
from automl_nb.errors import AutoMLError, RunFolderError
from automl_nb.object_store import RemoteFolder, check_url
from automl_nb.sweep.lease import LEASE
from automl_nb.sweep.steering import STEERING_FILE, SteeringLog, log_request
from automl_nb.sweep.store import IMAGE_CACHE, TRIAL_RECORD, RunStore
from automl_nb.train.folder import EPOCH_CHECKPOINT_PREFIX, LAST_CHECKPOINT

log = logging.getLogger(__name__)

# Seconds between two syncs of a driven run's mirror with its URL.
SYNC_SECONDS = 1.0
# Trial files the driver does not download: the resume point and kept epochs are large and only a
# worker reads them (the driver asks the listing whether last.pt is there).
NOT_PULLED = (LAST_CHECKPOINT, EPOCH_CHECKPOINT_PREFIX)
_MANIFEST = ".automl_nb_sync.json"  # in the mirror: the remote version of each file it holds
# In the mirror: held (flock) while a process drives the run from it, so another process of the
# machine reading the same mirror does not download the store's older copies over the driver's.
_DRIVING_LOCK = ".automl_nb_driving.lock"
# Steering requests of processes that do not drive the run, one object each (write-once names).
REQUESTS = "steering"


def mirror_folder(url: str) -> Path:
    """Where this machine keeps its mirror of the run at ``url``."""
    base = os.environ.get("AUTOML_NB_RUN_MIRRORS")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "automl_nb" / "runs"
    name = url.rstrip("/").rsplit("/", 1)[-1] or "run"
    return Path(base) / f"{name}-{hashlib.sha256(url.rstrip('/').encode()).hexdigest()[:12]}"


def file_state(path: Path) -> tuple[int, int] | None:
    """A local file's size and modification time (what tells us it changed), or None when gone."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def hidden(rel: str) -> bool:
    """Temporary and bookkeeping files (``.name.tmp``, a lease's aside copy, the manifest)."""
    return any(part.startswith(".") for part in rel.split("/"))


def worker_owned(rel: str) -> bool:
    """A trial's own file (``trials/<id>/...``, but not the driver's ``trial.json`` nor the lease):
    its worker uploads it, the driver downloads it."""
    parts = rel.split("/")
    return len(parts) >= 3 and parts[0] == "trials" and parts[2] not in (TRIAL_RECORD, LEASE)


# -- the driver's mirror ------------------------------------------------------------------------
class MirrorSync:
    """Keeps a run's local mirror and its URL in step: the driver's files up, the trials' files down.

    Args:
        remote: the run's folder on the store.
        mirror: the local folder the driver and every reader work on.
    """

    def __init__(self, remote: RemoteFolder, mirror: Path) -> None:
        self.remote, self.mirror = remote, Path(mirror)
        self.pushed: dict[str, tuple[int, int]] = {}  # the driver's files: local state as last uploaded
        self.pulled: dict[str, Any] = self._read_manifest()  # remote version of each file downloaded
        self.present: set[str] = set()  # every object at the last listing
        self._lock = threading.Lock()  # one sync at a time (the thread's, and the driver's own)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._caught_up = -math.inf  # when catch_up() last pulled (monotonic seconds)
        self._driving: ExitStack | None = None  # the driving lock, from start() to stop(ended=True)

    @property
    def url(self) -> str:
        return self.remote.url

    def pull(self, everything: bool = False, checkpoints: bool | None = None) -> list[str]:
        """Download the objects that changed on the store: the trials' files, or with ``everything``
        the driver's files too (opening a run). Checkpoints (``model_best.pt``) come with
        ``checkpoints`` (default: with ``everything``; the sweep's end): while trials run they change
        at every improvement and nothing on the driver's side reads them. Returns the names downloaded."""
        checkpoints = everything if checkpoints is None else checkpoints
        if everything and self._driving is None:
            # The driver's files: never over those of a process that drives from this same mirror.
            with self._driving_lock(exclusive=False) as free:
                return self._pull(everything, checkpoints) if free else []
        return self._pull(everything, checkpoints)

    def driven_here(self) -> bool:
        """Whether a process of this machine (this one or another) drives the run from this mirror now."""
        if self._driving is not None:
            return True
        with self._driving_lock(exclusive=False) as free:
            return not free

    def _driving_lock(self, exclusive: bool):
        """The mirror's driving lock, without waiting (yields whether it is held)."""
        from automl_nb.data.cache.locks import file_lock  # here: the data package loads numpy and PIL

        return file_lock(self.mirror / _DRIVING_LOCK, exclusive=exclusive, blocking=False)

    def _pull(self, everything: bool, checkpoints: bool) -> list[str]:
        with self._lock:
            listing = self.remote.listing(skip=(IMAGE_CACHE,))
            self.present = set(listing)
            fetched = []
            for rel, version in sorted(listing.items()):
                if hidden(rel) or rel.rsplit("/", 1)[-1].startswith(NOT_PULLED) or rel.endswith("/" + LEASE):
                    continue
                if not (everything or worker_owned(rel) or rel.startswith(REQUESTS + "/")) or \
                        (rel.endswith(".pt") and not checkpoints):
                    continue
                if self.pulled.get(rel) == version and (self.mirror / rel).exists():
                    continue
                self.remote.get(rel, self.mirror / rel)
                self.pulled[rel] = version
                if not worker_owned(rel):
                    self.pushed[rel] = file_state(self.mirror / rel)  # the store's own copy: nothing to upload
                fetched.append(rel)
            gone = [rel for rel in self.pulled if rel not in listing and worker_owned(rel)] if listing else []
            for rel in gone:  # the trial removed it (a fresh start); an empty listing proves nothing
                (self.mirror / rel).unlink(missing_ok=True)
                del self.pulled[rel]
            if any(rel == STEERING_FILE or rel.startswith(REQUESTS + "/") for rel in fetched):
                self._merge_requests()  # before the manifest says they are here
            if fetched or gone:
                atomic_write_json(self.mirror / _MANIFEST, self.pulled)
            return fetched

    def upload(self, folder: str) -> list[str]:
        """Upload every file under the mirror's ``folder`` (e.g. a trial's ONNX export, made after its
        sweep); they count as pulled, so the next sync does not download them back. Returns their names."""
        with self._lock:
            sent = []
            for path in sorted((self.mirror / folder).rglob("*")):
                rel = path.relative_to(self.mirror).as_posix()
                if path.is_file() and not hidden(rel):
                    self.remote.put(path, rel)
                    self.pulled[rel] = self.remote.version(rel)
                    sent.append(rel)
            if sent:
                atomic_write_json(self.mirror / _MANIFEST, self.pulled)
            return sent

    def post(self, request: dict) -> None:
        """Log a steering request of a process that does not drive the run: an object of its own, which
        the driver's sync merges into its ``steering.jsonl`` (the driver's upload would overwrite ours)."""
        self.remote.write_tagged(f"{REQUESTS}/{request['id']}.json", json.dumps(request).encode(), create=True)

    def _merge_requests(self) -> None:
        """Append to the mirror's steering log, in time order, the request objects it lacks."""
        if not (self.mirror / REQUESTS).is_dir():
            return
        known = {row["id"] for row in SteeringLog(self.mirror).read_new()}
        requests = []
        for path in (self.mirror / REQUESTS).glob("*.json"):
            try:
                requests.append(read_json(path))
            except RunFolderError:  # a damaged object: skipped, as a damaged log line is
                continue
        for request in sorted(requests, key=lambda row: row.get("time", 0)):
            if isinstance(request, dict) and request.get("id") not in known:
                log_request(self.mirror, request)

    def push(self) -> list[str]:
        """Upload the driver's files that changed since they were last uploaded; return their names."""
        with self._lock:
            names = [path for path in self.mirror.glob("*") if path.is_file()]
            names += list(self.mirror.glob(f"trials/*/{TRIAL_RECORD}"))
            sent = []
            for path in sorted(names):
                rel = path.relative_to(self.mirror).as_posix()
                state = file_state(path)  # taken before reading: a change meanwhile is sent next time
                if hidden(rel) or state is None or self.pushed.get(rel) == state:
                    continue
                self.remote.put(path, rel)
                self.pushed[rel] = state
                sent.append(rel)
            return sent

    def catch_up(self) -> list[str]:
        """For a process that reads a run another one drives: download what changed, the driver's records
        too but no checkpoints, at most once every ``SYNC_SECONDS``; nothing while this process drives
        (its own thread syncs). Returns the names downloaded."""
        if self._driving is not None or time.monotonic() - self._caught_up < SYNC_SECONDS:
            return []
        self._caught_up = time.monotonic()
        return self.pull(everything=True, checkpoints=False)

    def sync(self, checkpoints: bool = False) -> None:
        """Push, then pull the trials' files (with their checkpoints, if asked)."""
        self.push()
        self.pull(checkpoints=checkpoints)

    def has(self, rel: str) -> bool:
        """Whether the store held ``rel`` at the last listing."""
        return rel in self.present

    # -- the background thread -----------------------------------------------------------
    def start(self, seconds: float = SYNC_SECONDS) -> None:
        """Sync every ``seconds`` on a thread until :meth:`stop`; this process drives the run from its mirror
        until ``stop(ended=True)``."""
        if self._thread is not None and self._thread.is_alive():
            return
        if self._driving is None:
            self._driving = self._take_driving_lock()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(seconds,), name="automl-run-sync", daemon=True)
        self._thread.start()

    def stop(self, pull: bool = True, ended: bool = False) -> None:
        """Stop the thread, then sync a last time, checkpoints too (``pull=False``: only upload;
        errors raise here). ``ended``: the drive is over; other processes may update the mirror."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.push()
            if pull:
                self.pull(checkpoints=True)
        finally:
            if ended and self._driving is not None:
                self._driving.close()
                self._driving = None

    def _take_driving_lock(self, wait_s: float = 30.0) -> ExitStack:
        """The mirror's driving lock, once a reader's pull of it ends (seconds at most).

        Raises:
            AutoMLError: another process of this machine drives the run from this mirror.
        """
        deadline = time.monotonic() + wait_s
        while True:
            stack = ExitStack()
            if stack.enter_context(self._driving_lock(exclusive=True)):
                return stack
            stack.close()
            if time.monotonic() > deadline:
                raise AutoMLError(f"{self.url}: another process of this machine drives the run from its mirror "
                                  f"{self.mirror}; steer it from there, or wait for it to end")
            time.sleep(0.1)

    def _loop(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.sync()
            except Exception:  # a network blip: the next turn tries again; stop() raises a lasting one
                log.warning("syncing %s with %s failed; retrying", self.mirror, self.url, exc_info=True)

    def _read_manifest(self) -> dict:
        try:
            data = read_json(self.mirror / _MANIFEST)
        except (FileNotFoundError, RunFolderError):
            return {}
        return data if isinstance(data, dict) else {}


def open_remote_store(url: str, *, create: bool = False) -> RunStore:
    """The :class:`RunStore` of the run at ``url``, on this machine's mirror of it.

    Opening an existing run downloads what changed since the mirror last saw it; ``create`` starts
    a new run there (an empty mirror) and refuses a URL that already holds one.

    Raises:
        AutoMLError: a scheme that is not a store, a missing package, no run at ``url`` (or, with
            ``create``, one already there).
    """
    url = check_url(url)
    remote, mirror = RemoteFolder(url), mirror_folder(url)
    if create:
        bucket = remote.root.split("/", 1)[0]
        if not remote.fs.exists(bucket):
            raise AutoMLError(f"output: {url!r}: there is no bucket (or container) {bucket!r}, or no access to it; "
                              "create it first, or check the credentials and endpoint (see docs/cluster.md)")
        if remote.exists("run.json"):
            raise AutoMLError(f"output: {url!r} already holds a run; resume it with load_run({url!r}).resume() "
                              "or choose a new URL")
        if mirror.exists():
            shutil.rmtree(mirror)  # our cache of an older run at this URL, since removed from the store
        mirror.mkdir(parents=True)
        return RunStore(mirror, remote=MirrorSync(remote, mirror))
    sync = MirrorSync(remote, mirror)
    sync.pull(everything=True)
    if not (mirror / "run.json").exists():
        raise AutoMLError(f"{url!r} is not a run (no run.json there); give the URL that job.submit() or "
                          "`automl-nb run --output` was given")
    return RunStore(mirror, remote=sync)
