"""Where a sweep's trials run. The driver talks to an :class:`Executor` only.

An executor takes trials, delivers their events (``start`` and ``report``) to the driver,
passes the driver's verdict on each report back to the trial, and hands over each trial's
:class:`Outcome` once it has ended. Two implementations:

- :class:`DaskExecutor`, the default: each trial is a Dask task on a cluster, local or remote
  (see ``automl_nb.sweep.worker`` for the trial's side).
- :class:`InProcessExecutor`: each trial runs on a thread of this process. For tests of the
  driver's loop and for debugging a trial function with a debugger.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol

from automl_nb.sweep.remote_trial import stage_trial
from automl_nb.sweep.worker import VERDICT_WAIT_SECONDS, Channel, Timing, execute_trial, run_sweep_trial

EventSink = Callable[[dict], None]


@dataclass(frozen=True)
class Outcome:
    """How one submitted trial ended, as its executor saw it.

    Attributes:
        trial_id: the trial.
        result: what the trial returned: its ``TrialResult`` fields, or for a trial that
            raised ``status: Failed`` with ``error``, ``traceback`` and ``out_of_memory``.
        error: the task itself failed (no result), e.g. its worker died twice.
        traceback: the traceback of ``error``.
        canceled: the executor canceled the trial before it returned.
    """

    trial_id: str
    result: dict | None = None
    error: str | None = None
    traceback: str | None = None
    canceled: bool = False


class Executor(Protocol):
    """What the sweep driver needs of the place where trials run."""

    uses_gpus: bool
    can_focus: bool  # focus() can give fewer trials more CPU threads

    def start(self, on_event: EventSink) -> None:
        """Begin delivering trial events to ``on_event`` (called from any thread)."""

    def focus(self, concurrent: int) -> None:
        """Only ``concurrent`` trials will run at once: give each the CPU threads of the idle workers."""

    def submit(self, trial_id: str, trial: Any, *, wait_for_verdict: bool) -> None:
        """Run ``trial``; with ``wait_for_verdict`` it waits for a verdict after each report."""

    def send_verdict(self, trial_id: str, epoch: float, stop: bool) -> None:
        """The driver's answer to the trial's report of ``epoch``: go on, or stop."""

    def collect(self) -> list[Outcome]:
        """The trials that ended since the last call."""

    def cancel(self, trial_ids: Iterable[str]) -> None:
        """Stop these trials now; their outcomes are not collected."""

    def close(self) -> None:
        """Stop delivering events and release what the executor made."""


class DaskExecutor:
    """Trials as Dask tasks; events as Dask events, verdicts as Dask ``Variable`` s.

    While the driver's loop runs it beats a heartbeat ``Variable`` (from :meth:`collect`, which
    the loop calls every turn), so a trial can tell a gone driver from a busy one.

    Args:
        handle: the cluster (``automl_nb.cluster.ClusterHandle``); closed with the executor.
        trial_function: what a worker runs for each trial (default ``run_trial``).
        timing: the heartbeat, the verdict wait and the limits after which a trial stops as an
            orphan (see ``automl_nb.sweep.worker.Timing``; short ones make tests fast).
    """

    def __init__(self, handle, trial_function: Callable | None = None, *, timing: Timing = Timing()) -> None:
        self.handle = handle
        self.trial_function = trial_function
        self.timing = timing
        self.session = uuid.uuid4().hex[:8]
        self.topic = f"automl_nb-{self.session}"
        self.heartbeat_name = f"{self.topic}-heartbeat"
        self.last_beat = -math.inf
        self.futures: dict[str, Any] = {}
        self.subscribed = False
        self.threads_per_trial = handle.threads_per_trial  # torch threads each trial sets (focus() raises it)

    @property
    def client(self):
        """The ``distributed.Client`` trials go to."""
        return self.handle.client

    @property
    def uses_gpus(self) -> bool:
        return self.handle.uses_gpus

    @property
    def can_focus(self) -> bool:
        """A local CPU cluster made for this sweep: its cores are ours to split between fewer trials."""
        return self.handle.owned and not self.handle.uses_gpus and bool(self.handle.cpus and self.handle.threads_per_trial)

    def focus(self, concurrent: int) -> None:
        if self.can_focus:  # the cores split as local_cluster and the estimate split them
            from automl_nb.cluster import split_threads

            self.threads_per_trial = max(self.handle.threads_per_trial, split_threads(self.handle.cpus, concurrent))

    def start(self, on_event: EventSink) -> None:
        # Dask calls this on its event loop with (time logged, message).
        self.client.subscribe_topic(self.topic, lambda event: on_event({**event[1], "logged": event[0]}))
        self.subscribed = True
        self._beat()

    def submit(self, trial_id: str, trial: Any, *, wait_for_verdict: bool) -> None:
        channel = Channel(self.topic, self._verdict(trial_id).name, wait_for_verdict=wait_for_verdict,
                          heartbeat=self.heartbeat_name, timing=self.timing)
        self.send_verdict(trial_id, 0, False)  # set before the task starts: its first read never waits
        self.futures[trial_id] = self.client.submit(
            run_sweep_trial, trial, channel, self.threads_per_trial, self.trial_function,
            key=f"automl-trial-{self.session}-{trial_id}-{uuid.uuid4().hex[:6]}", pure=False,
            resources=self.handle.trial_resources)

    def send_verdict(self, trial_id: str, epoch: float, stop: bool) -> None:
        self._verdict(trial_id).set({"epoch": epoch, "stop": stop})

    def collect(self) -> list[Outcome]:
        self._beat()
        ended = []
        for trial_id, future in list(self.futures.items()):
            if not future.done():
                continue
            del self.futures[trial_id]
            self._verdict(trial_id).delete()  # the task has returned: nobody reads it any more
            ended.append(_outcome_of(trial_id, future))
        return ended

    def cancel(self, trial_ids: Iterable[str]) -> None:
        futures = [self.futures.pop(trial_id) for trial_id in trial_ids if trial_id in self.futures]
        self.client.cancel(futures)

    def close(self) -> None:
        if self.subscribed:
            self.client.unsubscribe_topic(self.topic)
            self.subscribed = False
            self._variable(self.heartbeat_name).delete()  # a trial still running sees the beats stop
        self.handle.close()

    def _beat(self) -> None:
        """Set the heartbeat to the time now, every ``timing.heartbeat`` s."""
        now = time.monotonic()
        if now - self.last_beat >= self.timing.heartbeat:
            self.last_beat = now
            self._variable(self.heartbeat_name).set(time.time())

    def _verdict(self, trial_id: str):
        return self._variable(f"{self.topic}-{trial_id}")

    def _variable(self, name: str):
        from distributed import Variable

        return Variable(name, client=self.client)


def _outcome_of(trial_id: str, future) -> Outcome:
    if future.status == "finished":
        return Outcome(trial_id, result=future.result())
    if future.status == "error":
        error = future.exception()
        text = "".join(traceback.format_exception(type(error), error, future.traceback()))
        reason = "worker died twice" if type(error).__name__ == "KilledWorker" else "task failed"
        return Outcome(trial_id, error=f"{reason}: {type(error).__name__}: {error}", traceback=text)
    return Outcome(trial_id, canceled=True)


class InProcessExecutor:
    """Trials on threads of this process, at most ``max_workers`` at once.

    A thread cannot be killed, so :meth:`cancel` sets a stop verdict: the trial ends at its
    next evaluation, and its outcome is dropped.

    Args:
        trial_function: what runs each trial (default ``run_trial``).
        max_workers: trials running at once (more wait in a queue, as on a busy cluster).
    """

    uses_gpus = False
    can_focus = False  # threads of one process: torch's thread count is the process's
    client = None

    def __init__(self, trial_function: Callable | None = None, max_workers: int = 1) -> None:
        self.trial_function = trial_function
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="automl-trial")
        self.futures: dict[str, Any] = {}
        self.verdicts: dict[str, dict] = {}
        self.changed = threading.Condition()
        self.on_event: EventSink = lambda event: None

    def start(self, on_event: EventSink) -> None:
        self.on_event = on_event

    def focus(self, concurrent: int) -> None:
        pass

    def submit(self, trial_id: str, trial: Any, *, wait_for_verdict: bool) -> None:
        self.send_verdict(trial_id, 0, False)
        reporter = _ThreadReporter(self, trial_id, wait_for_verdict)
        self.futures[trial_id] = self.pool.submit(self._run, trial, reporter)

    def _run(self, trial, reporter: "_ThreadReporter") -> dict:
        reporter.send("start", pid=threading.get_native_id(), worker="in-process")
        with stage_trial(trial, reporter) as (staged, staged_reporter):  # a trial of a run on a URL: staged here
            return execute_trial(staged, staged_reporter, self.trial_function)

    def send_verdict(self, trial_id: str, epoch: float, stop: bool) -> None:
        with self.changed:
            self.verdicts[trial_id] = {"epoch": epoch, "stop": stop}
            self.changed.notify_all()

    def verdict(self, trial_id: str, epoch: int, wait: float) -> dict:
        """The latest verdict on ``trial_id``, waiting up to ``wait`` s for one on ``epoch``."""
        with self.changed:
            self.changed.wait_for(lambda: self.verdicts[trial_id]["stop"]
                                  or self.verdicts[trial_id]["epoch"] >= epoch, timeout=wait)
            return self.verdicts[trial_id]

    def collect(self) -> list[Outcome]:
        ended = []
        for trial_id, future in list(self.futures.items()):
            if future.done():
                del self.futures[trial_id]
                error = future.exception()
                if error is None:
                    ended.append(Outcome(trial_id, result=future.result()))
                else:  # execute_trial returns errors; only a BaseException gets here
                    ended.append(Outcome(trial_id, error=f"task failed: {type(error).__name__}: {error}",
                                         traceback="".join(traceback.format_exception(error))))
        return ended

    def cancel(self, trial_ids: Iterable[str]) -> None:
        for trial_id in trial_ids:
            if self.futures.pop(trial_id, None) is not None:
                self.send_verdict(trial_id, float("inf"), True)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _ThreadReporter:
    """A trial's reporter on an :class:`InProcessExecutor` thread."""

    def __init__(self, executor: InProcessExecutor, trial_id: str, wait_for_verdict: bool) -> None:
        self.executor, self.trial_id, self.wait_for_verdict = executor, trial_id, wait_for_verdict
        self.last_epoch = 0

    def send(self, kind: str, **fields: Any) -> None:
        self.executor.on_event({"kind": kind, "trial": self.trial_id, "logged": time.time(), **fields})

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.last_epoch = epoch
        self.send("report", epoch=epoch, metrics=dict(metrics))

    def should_stop(self) -> bool:
        wait = VERDICT_WAIT_SECONDS if self.wait_for_verdict else 0.0
        return bool(self.executor.verdict(self.trial_id, self.last_epoch, wait)["stop"])
