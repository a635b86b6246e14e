"""The worker's side of a sweep: run one trial and talk to the driver while it runs.

Reports travel as Dask events (``log_event`` on the worker, ``subscribe_topic`` on the
driver: ~1 ms, no round trip). The driver answers each report with a verdict in a Dask
``Variable`` named for the trial; the trial reads it after each evaluation, so a stop decided
on epoch e's metrics ends the trial right there.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from automl_nb.train.trial import Trial

# How long a trial waits after a report for the driver's verdict on it before going on.
# The driver answers in milliseconds; the wait only matters when it is very busy or gone.
VERDICT_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Channel:
    """The names that connect one trial on a worker with the sweep's driver.

    Attributes:
        topic: the Dask event topic the driver subscribes to.
        verdict: the Dask Variable holding ``{"epoch": e, "stop": bool}``, the driver's
            answer to the trial's latest report.
        wait_for_verdict: wait for the answer to each report (the sweep has a policy).
    """

    topic: str
    verdict: str
    wait_for_verdict: bool = True


class DaskReporter:
    """The trial's reporter inside a Dask worker (see the module docstring)."""

    def __init__(self, trial_id: str, channel: Channel) -> None:
        from distributed import Variable, get_client, get_worker

        self.trial_id, self.channel = trial_id, channel
        self.worker = get_worker()
        self.verdict = Variable(channel.verdict, client=get_client())
        self.last_epoch = 0

    def send(self, kind: str, **fields: Any) -> None:
        """Send one event to the driver (fire and forget)."""
        self.worker.log_event(self.channel.topic, {"kind": kind, "trial": self.trial_id, **fields})

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.last_epoch = epoch
        self.send("report", epoch=epoch, metrics=dict(metrics))

    def should_stop(self) -> bool:
        wait = VERDICT_WAIT_SECONDS if self.channel.wait_for_verdict else 0.0
        deadline = time.monotonic() + wait
        while True:
            # The driver sets the variable before submitting, so get() returns at once.
            verdict = self.verdict.get(timeout=VERDICT_WAIT_SECONDS)
            if verdict["stop"]:
                return True
            if verdict["epoch"] >= self.last_epoch or time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def run_sweep_trial(trial: Trial, channel: Channel, threads: int | None = None,
                    trial_function: Callable | None = None) -> dict:
    """The Dask task of one trial: set the worker up, run the trial, return how it ended.

    Args:
        trial: the trial (resume=True continues from its last checkpoint after a worker died).
        channel: how to reach the driver.
        threads: torch intra-op threads for this trial (None: leave as is).
        trial_function: what runs the trial (default :func:`automl_nb.train.run_trial`).

    Returns:
        What :func:`execute_trial` returns. Errors are returned, not raised, so Dask does not
        retry them; only a dying worker makes Dask run the task again.
    """
    from automl_nb.cluster import pick_gpu

    reporter = DaskReporter(trial.trial_id, channel)
    reporter.send("start", pid=os.getpid())
    if threads:
        import torch

        torch.set_num_threads(threads)
    pick_gpu()
    return execute_trial(trial, reporter, trial_function)


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
