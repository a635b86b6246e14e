"""A trial of a run on a URL, on its worker: staged in a local folder, uploaded as it goes, leased on the store.

A trial whose ``output_dir`` is a URL (``s3://.../trials/<id>``) is run by :func:`stage_trial` in a
staging folder of its worker: the folder's files (a resume point) are downloaded first, the files
that changed are uploaded after each evaluation (on a thread, while the trial trains on) and at its
end, and the files it removed (``last.pt`` once complete) are deleted. Each upload is one whole
object (see :mod:`automl_nb.sweep.remote` for why that is atomic).

Two copies of a trial are kept apart by a lease object, ``trials/<id>/lease.json``
(:class:`RemoteLease`): created with a conditional PUT (``If-None-Match: *``), renewed and taken
over with ``If-Match`` on the ETag last seen, so of two copies exactly one holds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

from automl_nb.sweep.lease import LEASE, Lease, LeaseTimes, describe
from automl_nb.object_store import RemoteFolder, check_url
from automl_nb.sweep.remote import file_state, hidden
from automl_nb.sweep.store import IMAGE_CACHE, TRIAL_RECORD, is_remote
from automl_nb.train.folder import EPOCH_CHECKPOINT_PREFIX, EXPORT_FOLDER

log = logging.getLogger(__name__)


class TrialStage:
    """A trial folder on the store, staged in a local folder of the worker that runs the trial.

    After each evaluation :meth:`upload_soon` uploads what changed on a thread while the trial trains
    on (the previous upload ends before the next starts, so the store is at most one evaluation
    behind); :meth:`upload` at the trial's end waits for it and uploads the rest.

    Args:
        remote: the trial's folder on the store.
        local: the staging folder (made here, removed by :func:`stage_trial`).
        may_write: asked before each upload; False once another copy of the trial took its lease.
    """

    # Upload order: a reader who sees status.json or a metrics row of epoch e finds e's checkpoints.
    LAST = ("metrics.jsonl", "status.json")

    def __init__(self, remote: RemoteFolder, local: Path, may_write: Callable[[], bool] = lambda: True) -> None:
        self.remote, self.local, self.may_write = remote, Path(local), may_write
        self.sent: dict[str, tuple[int, int]] = {}  # file -> local state as on the store
        self._pending: threading.Thread | None = None

    def download(self) -> list[str]:
        """Fetch the trial's files (a resume point), except the driver's record, the lease and kept epochs."""
        self.local.mkdir(parents=True, exist_ok=True)
        names = []
        for rel in sorted(self.remote.listing()):
            kept_epoch_or_export = rel.startswith((EPOCH_CHECKPOINT_PREFIX, EXPORT_FOLDER + "/"))
            if hidden(rel) or rel in (TRIAL_RECORD, LEASE) or kept_epoch_or_export:
                continue
            self.remote.get(rel, self.local / rel)
            self.sent[rel] = file_state(self.local / rel)
            names.append(rel)
        return names

    def upload_soon(self) -> None:
        """Start uploading what changed, on a thread, once the previous upload has ended."""
        self.wait()
        self._pending = threading.Thread(target=self._upload_logging, name="automl-trial-upload", daemon=True)
        self._pending.start()

    def upload(self) -> list[str]:
        """Upload the files that changed since the last upload, delete those the trial removed; return their names."""
        self.wait()
        return self._upload_now()

    def _upload_now(self) -> list[str]:
        if not self.may_write():
            return []
        files = {path.relative_to(self.local).as_posix(): path for path in self.local.rglob("*") if path.is_file()}
        changed = []
        for rel, path in sorted(files.items(), key=lambda item: self._order(item[0])):
            state = file_state(path)  # taken before the upload: a change meanwhile goes next time
            if hidden(rel) or state is None or self.sent.get(rel) == state:
                continue
            try:
                self.remote.put(path, rel)
            except FileNotFoundError:
                if path.exists():  # the store's (no such bucket...)
                    raise
                continue  # removed since listed (last.pt as the trial completes): deleted next time
            self.sent[rel] = state
            changed.append(rel)
        removed = [rel for rel in self.sent if rel not in files]
        for rel in removed:
            self.remote.remove(rel)
            del self.sent[rel]
        return changed + removed

    def _order(self, rel: str) -> tuple:
        """Checkpoints first, then the other files, metrics.jsonl and status.json last."""
        return (not rel.endswith(".pt"), rel in self.LAST, self.LAST.index(rel) if rel in self.LAST else 0, rel)

    def wait(self) -> None:
        """Wait for the upload on the thread, if one runs."""
        if self._pending is not None:
            self._pending.join()
            self._pending = None

    def _upload_logging(self) -> None:
        try:
            self._upload_now()
        except Exception:  # the next upload tries again; the last one (at the trial's end) raises
            log.warning("uploading %s to %s failed; retrying after the next evaluation", self.local, self.remote.url,
                        exc_info=True)


class UploadingReporter:
    """A trial's reporter that starts uploading the trial's changed files after each evaluation (its
    resume point is then written), while the trial waits for the verdict and trains on."""

    def __init__(self, reporter, stage: TrialStage) -> None:
        self.reporter, self.stage = reporter, stage

    def report(self, epoch: int, metrics) -> None:
        self.reporter.report(epoch, metrics)

    def should_stop(self) -> bool:
        self.stage.upload_soon()
        return self.reporter.should_stop()


def staging_root() -> Path:
    """The worker's own folder for staged trials (the Dask worker's local directory, else the temp folder)."""
    try:
        from distributed import get_worker

        return Path(get_worker().local_directory) / "automl_nb-staging"
    except (ImportError, ValueError):  # not in a Dask worker
        return Path(tempfile.gettempdir()) / "automl_nb-staging"


@contextmanager
def stage_trial(trial, reporter, may_write: Callable[[], bool] = lambda: True) -> Iterator[tuple[Any, Any]]:
    """Run a trial whose ``output_dir`` is a URL in a local staging folder; a local trial passes through.

    Yields ``(trial, reporter)``: the trial with its staging folder as ``output_dir`` (and, unless it
    has one, the run's ``image-cache/`` as its shared image cache), and a reporter that uploads what
    changed after each evaluation (a local trial: both as given). On leaving, the trial's files are
    uploaded a last time and the staging folder is removed.
    """
    if not is_remote(trial.output_dir):
        yield trial, reporter
        return
    remote = RemoteFolder(check_url(trial.output_dir, key="output_dir"))
    local = staging_root() / hashlib.sha256(remote.url.encode()).hexdigest()[:16]
    if local.exists():
        shutil.rmtree(local)  # a copy of this trial that died here: the store holds the truth
    stage = TrialStage(remote, local, may_write)
    stage.download()
    try:
        run_url = remote.url.rsplit("/trials/", 1)[0]
        staged = replace(trial, output_dir=str(local), image_cache_url=trial.image_cache_url or f"{run_url}/{IMAGE_CACHE}")
        yield staged, UploadingReporter(reporter, stage)
        stage.upload()
    finally:
        stage.wait()
        shutil.rmtree(local, ignore_errors=True)


# -- the lease, on the store --------------------------------------------------------------------
class RemoteLease(Lease):
    """The lease of a trial folder on an object store: ``lease.json`` written with conditional PUTs.

    Created only where there is none (``If-None-Match: *``); renewed, and a stale one taken over,
    only while it is the version this copy last saw (``If-Match`` its ETag), so of two copies that
    race exactly one wins. Timing and waiting are :class:`~automl_nb.sweep.lease.Lease`'s.

    Example:
        >>> with RemoteLease("s3://bucket/runs/x/trials/3"):
        ...     train()
    """

    def __init__(self, url: str, times: LeaseTimes = LeaseTimes(), holder: str = "") -> None:
        super().__init__(url, times, holder)
        self.remote = RemoteFolder(url.rstrip("/"))
        self.path = f"{self.remote.url}/{LEASE}"  # named in messages
        self.etag: str | None = None  # of our lease as last written

    def _body(self) -> bytes:
        return json.dumps({**self.record, "heartbeat": time.time()}, sort_keys=True).encode()

    def _read_tagged(self) -> tuple[dict | None, str | None]:
        found = self.remote.read_tagged(LEASE)
        if found is None:
            return None, None
        try:
            data = json.loads(found[0])
        except ValueError:
            return None, found[1]
        return (data if isinstance(data, dict) else None), found[1]

    def read(self) -> dict | None:
        try:
            return self._read_tagged()[0]
        except OSError:  # changed while read (If-Match failed): as good as unreadable now
            return None

    def _create(self) -> bool:
        try:
            self.etag = self.remote.write_tagged(LEASE, self._body(), create=True)
            return True
        except FileExistsError:
            current = self.read()
            return current is not None and current.get("owner") == self.record["owner"]  # _break gave it us

    def _break(self, stale: dict) -> None:
        current, etag = self._read_tagged()
        if current != stale or etag is None:
            return  # renewed, released or taken since we judged it
        try:
            self.etag = self.remote.write_tagged(LEASE, self._body(), if_match=etag)
        except (PermissionError, FileNotFoundError):
            return  # another copy took it over first
        log.warning("%s: took over the stale lease of %s", self.path, describe(stale))

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.times.renew):
            try:
                self.etag = self.remote.write_tagged(LEASE, self._body(), if_match=self.etag)
            except (PermissionError, FileNotFoundError):
                log.error("%s: lease taken over by %s; this copy stops at its next evaluation", self.path,
                          describe(self.read()))
                self.lost.set()
                return
            except OSError:  # the store did not answer: keep the lease, try at the next beat
                log.warning("%s: renewing the lease failed; retrying", self.path, exc_info=True)

    def _remove(self) -> None:
        self.remote.remove(LEASE)


def trial_lease(folder: str | os.PathLike, times: LeaseTimes = LeaseTimes(), holder: str = "") -> Lease:
    """The lease of a trial folder: on the store for a URL, else the local folder's."""
    if is_remote(folder):
        return RemoteLease(check_url(os.fspath(folder), key="output_dir"), times, holder)
    return Lease(folder, times, holder)
