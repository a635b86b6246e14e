"""The worker's side of a sweep: run one trial and talk to the driver while it runs.

Reports travel as Dask events (``log_event`` on the worker, ``subscribe_topic`` on the
driver: ~1 ms, no round trip). The driver answers each report with a verdict in a Dask
``Variable`` named for the trial; the trial reads it after each evaluation, so a stop decided
on epoch e's metrics ends the trial right there.

A trial can outlive its driver (a killed kernel): Dask forgets the task but cannot stop its
thread. So the driver's executor beats a heartbeat ``Variable``. A trial whose verdict is late
watches the beat, by its own machine's monotonic clock (no clocks are compared between machines):
a change means the driver is alive (busy); no change for ``Timing.driver_gone`` means it is gone,
and the trial stops Canceled at that evaluation, its ``status.json`` saying why; ``resume()``
continues it from that checkpoint. Each copy of a trial holds its folder's lease
(:mod:`automl_nb.sweep.lease`) while it runs, so a resumed copy never writes beside an orphan.

A trial of a run on a URL (its ``output_dir`` is ``s3://.../trials/<id>``) runs in a staging folder
of its worker, uploading its files after each evaluation and at its end, and holds its lease as an
object on the store (:mod:`automl_nb.sweep.remote_trial`); a local trial folder is written as always.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from automl_nb.sweep.lease import Lease, LeaseHeldError, LeaseTimes
from automl_nb.sweep.remote_trial import stage_trial, trial_lease
from automl_nb.sweep.store import HEARTBEAT_SECONDS, HEARTBEAT_STALE_SECONDS

if TYPE_CHECKING:
    from automl_nb.train.trial import Trial

# How long a trial waits after a report for the driver's verdict on it before going on.
# The driver answers in milliseconds; the wait only matters when it is very busy or gone.
VERDICT_WAIT_SECONDS = 10.0
# A driver whose heartbeat is silent this long is gone (as run.json's heartbeat goes stale).
DRIVER_GONE_SECONDS = HEARTBEAT_STALE_SECONDS


@dataclass(frozen=True)
class Timing:
    """How the driver and its trials tell each other that they are alive (seconds).

    Attributes:
        verdict_wait: a trial's wait for the verdict on each report.
        heartbeat: between two beats of the driver's heartbeat.
        driver_gone: a trial whose verdict is late and whose driver's heartbeat then does not change
            for this long stops (an orphan).
        lease: how each copy of a trial holds its folder.

    Example:
        >>> DaskExecutor(handle, timing=Timing(verdict_wait=0.5, heartbeat=0.2, driver_gone=2))  # tests
    """

    verdict_wait: float = VERDICT_WAIT_SECONDS
    heartbeat: float = HEARTBEAT_SECONDS
    driver_gone: float = DRIVER_GONE_SECONDS
    lease: LeaseTimes = field(default_factory=LeaseTimes)

    def __post_init__(self) -> None:
        if not (self.verdict_wait >= 0 and 0 < self.heartbeat < self.driver_gone):
            raise ValueError(f"Timing: verdict_wait {self.verdict_wait!r}, heartbeat {self.heartbeat!r}, driver_gone "
                             f"{self.driver_gone!r}; allowed: verdict_wait >= 0 and 0 < heartbeat < driver_gone")


@dataclass(frozen=True)
class Channel:
    """The names that connect one trial on a worker with the sweep's driver.

    Attributes:
        topic: the Dask event topic the driver subscribes to.
        verdict: the Dask Variable holding ``{"epoch": e, "stop": bool}``, the driver's
            answer to the trial's latest report.
        wait_for_verdict: wait for the answer to each report (the sweep has a policy).
        heartbeat: the Dask Variable the driver's executor beats (None: no orphan check).
        timing: the waits and limits (see :class:`Timing`).
    """

    topic: str
    verdict: str
    wait_for_verdict: bool = True
    heartbeat: str | None = None
    timing: Timing = field(default_factory=Timing)


class DaskReporter:
    """The trial's reporter inside a Dask worker (see the module docstring).

    Attributes:
        stop_reason: why the trial stopped on its own (its driver gone, its lease lost), else None.
        lease: the trial folder's lease this copy holds (set by :func:`run_sweep_trial`).
    """

    def __init__(self, trial_id: str, channel: Channel) -> None:
        from distributed import Variable, get_client, get_worker

        self.trial_id, self.channel = trial_id, channel
        self.worker = get_worker()
        self.verdict = Variable(channel.verdict, client=get_client())
        self.heartbeat = Variable(channel.heartbeat, client=get_client()) if channel.heartbeat else None
        self.last_epoch = 0
        self.stop_reason: str | None = None
        self.lease: Lease | None = None

    def send(self, kind: str, **fields: Any) -> None:
        """Send one event to the driver (fire and forget)."""
        self.worker.log_event(self.channel.topic, {"kind": kind, "trial": self.trial_id, **fields})

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.last_epoch = epoch
        self.send("report", epoch=epoch, metrics=dict(metrics))

    def should_stop(self) -> bool:
        if self.lease is not None and self.lease.lost.is_set():
            self.stop_reason = f"another copy of the trial took over its folder ({self.lease.path})"
            return True
        timing = self.channel.timing
        deadline = time.monotonic() + (timing.verdict_wait if self.channel.wait_for_verdict else 0.0)
        while True:
            # The driver sets the variable before submitting, so get() returns at once.
            verdict = self.verdict.get(timeout=max(timing.verdict_wait, 1.0))
            if verdict["stop"]:
                return True
            if verdict["epoch"] >= self.last_epoch:
                return False
            if time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        # No verdict on this report in time: the driver is very busy, or gone.
        self.stop_reason = self.driver_gone()
        return self.stop_reason is not None

    def driver_gone(self) -> str | None:
        """Why the driver is gone (its heartbeat removed, or still for ``timing.driver_gone``), or None
        (no heartbeat to watch, or it changed: the driver is alive). Waits for a change: a beat at most."""
        if self.heartbeat is None:
            return None
        timing = self.channel.timing
        started = time.monotonic()
        first = self._beat()
        while first is not None:
            time.sleep(min(timing.heartbeat, max(0.0, started + timing.driver_gone - time.monotonic())))
            beat = self._beat()
            if beat != first:
                return None if beat is not None else "driver gone: its heartbeat was removed (the sweep ended)"
            if time.monotonic() - started >= timing.driver_gone:
                return f"driver gone: its heartbeat did not change in {timing.driver_gone:g} s"
        return "driver gone: its heartbeat was removed (the sweep ended)"

    def _beat(self) -> Any:
        """The driver's heartbeat now (an opaque value that changes at each beat), or None once removed."""
        try:
            return self.heartbeat.get(timeout=1.0)
        except TimeoutError:
            return None


def run_sweep_trial(trial: Trial, channel: Channel, threads: int | None = None,
                    trial_function: Callable | None = None) -> dict:
    """The Dask task of one trial: take its folder's lease, set the worker up, run the trial.

    Args:
        trial: the trial (resume=True continues from its last checkpoint after a worker died).
        channel: how to reach the driver.
        threads: torch intra-op threads for this trial (None: leave as is).
        trial_function: what runs the trial (default :func:`automl_nb.train.run_trial`).

    Returns:
        What :func:`execute_trial` returns. Errors are returned, not raised, so Dask does not
        retry them; only a dying worker makes Dask run the task again. A trial whose folder
        another copy kept writing for ``channel.timing.lease.wait`` s fails, saying so.
    """
    from automl_nb.cluster import pick_gpu

    reporter = DaskReporter(trial.trial_id, channel)
    lease = trial_lease(trial.output_dir, channel.timing.lease, holder=f"Dask worker {reporter.worker.address}")
    try:
        lease.acquire()
    except LeaseHeldError as error:
        return {"trial_id": trial.trial_id, "status": "Failed", "error": f"LeaseHeldError: {error}",
                "traceback": None, "out_of_memory": False}
    reporter.lease = lease
    try:
        reporter.send("start", pid=os.getpid())
        if threads:
            import torch

            torch.set_num_threads(threads)
        pick_gpu()
        # A trial folder on a URL is staged here and uploaded as the trial goes (a local one: as is).
        with stage_trial(trial, reporter, may_write=lambda: not lease.lost.is_set()) as (staged, staged_reporter):
            result = execute_trial(staged, staged_reporter, trial_function)
            if reporter.stop_reason and result.get("status") == "Canceled" and not lease.lost.is_set():
                record_stop_reason(staged.output_dir, reporter.stop_reason)
        return result
    finally:
        lease.release()


def record_stop_reason(folder: str | os.PathLike, reason: str) -> None:
    """Add why the trial stopped to its ``status.json`` (``reason``), keeping what the trial wrote."""
    from automl_nb.train.folder import STATUS, TrialFolder

    trial_folder = TrialFolder(folder)
    status = dict(trial_folder.read_json(STATUS)) if trial_folder.has(STATUS) else {}
    trial_folder.write_status(status.pop("status", "Canceled"), **{**status, "reason": reason})


def execute_trial(trial: Trial, reporter, trial_function: Callable | None = None) -> dict:
    """Run one trial wherever an executor put it; return how it ended, never raise an Exception.

    Returns:
        The ``TrialResult``'s fields, or for a trial that raised ``status: Failed`` with
        ``error``, ``traceback`` and ``out_of_memory`` (torch's OutOfMemoryError: the driver
        retries it with a smaller batch).
    """
    if trial_function is None:
        from automl_nb.train import run_trial as trial_function
    try:
        return asdict(trial_function(trial, reporter))
    except Exception as error:
        torch = sys.modules.get("torch")  # an out-of-memory error means torch is loaded already
        out_of_memory = torch is not None and isinstance(error, torch.OutOfMemoryError)
        return {"trial_id": trial.trial_id, "status": "Failed", "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(), "out_of_memory": out_of_memory}
