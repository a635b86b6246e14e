"""A trial orphaned by a killed driver on a remote cluster: a scheduler, a worker and a driver,
each its own process on 127.0.0.1. The trial stops within the heartbeat limit and says why,
a second copy cannot write its folder meanwhile, and resume() continues it from its checkpoint.
The limits are shortened (``TIMING``) so the whole story takes seconds."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl_nb.cluster import connect
from automl_nb.data.synthetic import make_dataset
from automl_nb.sweep import load_run
from automl_nb.sweep.executor import DaskExecutor
from automl_nb.sweep.lease import LEASE, Lease, LeaseHeldError, LeaseTimes
from automl_nb.sweep.worker import Timing
from automl_nb.testing import ScriptedTrial

EPOCHS = 20
SECONDS_PER_EPOCH = 0.3
TIMING = Timing(verdict_wait=0.3, heartbeat=0.1, driver_gone=1.5, lease=LeaseTimes(renew=0.1, stale=1.0, wait=30))

DRIVER = f"""\
import sys
import time
import types
import automl_nb.sweep.executor
# The driver's clock runs an hour ahead of the worker's: its heartbeat's values say nothing of
# the worker's time, and the orphan check must not compare clocks.
automl_nb.sweep.executor.time = types.SimpleNamespace(monotonic=time.monotonic, time=lambda: time.time() + 3600)
from automl_nb.cluster import connect
from automl_nb.spec import load_job
from automl_nb.sweep.executor import DaskExecutor
from automl_nb.sweep.lease import LeaseTimes
from automl_nb.sweep.worker import Timing
from automl_nb.testing import ScriptedTrial
if __name__ == "__main__":
    job, folder, address = sys.argv[1:]
    executor = DaskExecutor(connect(address), ScriptedTrial([0.5], seconds_per_epoch={SECONDS_PER_EPOCH}),
                            timing={TIMING!r})
    load_job(job).submit(folder, executor=executor, check_data=False).wait()
"""

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
training_parameters: {{model_name: resnet18, number_of_epochs: {epochs}, use_pretrained_model: false}}
"""


def start(log: Path, *command):
    """A process of the cluster; its output goes to ``log`` (shown when the test fails)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, *command], env=env, stdout=out, stderr=subprocess.STDOUT)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def epochs_written(trial: Path) -> list[int]:
    path = trial / "metrics.jsonl"
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines()] if path.exists() else []


def status(trial: Path) -> dict:
    return json.loads((trial / "status.json").read_text()) if (trial / "status.json").exists() else {}


@pytest.mark.slow
def test_an_orphaned_trial_stops_says_why_and_is_resumed_by_one_copy(tmp_path):
    make_dataset("image_classification", 8, 32, tmp_path / "data", seed=0)
    (tmp_path / "job.yml").write_text(JOB.format(data=tmp_path / "data", epochs=EPOCHS))
    (tmp_path / "driver.py").write_text(DRIVER)
    folder, trial = tmp_path / "run", tmp_path / "run" / "trials" / "0"
    address = f"tcp://127.0.0.1:{free_port()}"
    # All three start at once: the worker and the driver retry until the scheduler listens.
    scheduler = start(tmp_path / "scheduler.log", "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                      "--port", address.rsplit(":", 1)[1], "--no-dashboard")
    worker = start(tmp_path / "worker.log", "-m", "distributed.cli.dask_worker", address, "--no-nanny",
                   "--nthreads", "2", "--host", "127.0.0.1", "--no-dashboard")
    driver = start(tmp_path / "driver.log", str(tmp_path / "driver.py"), str(tmp_path / "job.yml"), str(folder),
                   address)
    processes = [scheduler, worker, driver]
    try:
        wait_until(lambda: len(epochs_written(trial)) >= 1, timeout=60)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        killed = time.monotonic()

        # While the orphan runs, it holds the folder: a second copy is kept out, told by whom.
        holder = json.loads((trial / LEASE).read_text())
        assert holder["pid"] == worker.pid
        with pytest.raises(LeaseHeldError, match=f"still writing its folder \\(pid {worker.pid} on "):
            Lease(trial, LeaseTimes(renew=0.1, stale=1.0, wait=0.2)).acquire()

        # The orphan stops at its first evaluation after the heartbeat limit, and says why.
        wait_until(lambda: status(trial).get("status") == "Canceled" and not (trial / LEASE).exists(), timeout=15)
        stopped_after = time.monotonic() - killed
        bound = TIMING.driver_gone + TIMING.verdict_wait + 2 * SECONDS_PER_EPOCH + 2.0  # + slack on a busy machine
        assert stopped_after < bound
        assert status(trial)["reason"].startswith("driver gone: its heartbeat did not change in ")
        stopped_at = epochs_written(trial)
        assert stopped_at[-1] < EPOCHS

        # resume() continues it from its checkpoint, as the only copy.
        run = load_run(folder)
        assert run.status == "Interrupted"
        executor = DaskExecutor(connect(address), ScriptedTrial([0.5]), timing=TIMING)
        assert run.resume(executor=executor, check_data=False).wait(60) == "Completed"
        assert epochs_written(trial) == list(range(1, EPOCHS + 1))  # each epoch once: no copy wrote beside it
        assert "resumed from its last checkpoint" in run.trials()[0].notes
        assert status(trial)["status"] == "Completed"
    except BaseException:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    finally:
        for process in reversed(processes):
            process.kill()
            process.wait()
