"""One rank of a data-parallel trial: ``python -m automl_nb.train.rank SCRATCH``.

Started by :mod:`automl_nb.train.distributed`, which sets torchrun's variables (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and ours: the device or the
CPU threads of this rank, the lifeline pipe, and for rank 0 the pipe pair to the parent. The
rank reads its task from ``SCRATCH/trial.pkl`` (written by the parent a moment before), joins
the process group at the parent's store, trains, and on an error writes
``SCRATCH/rank-<r>.error.json`` and exits 1.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import threading
import time
import traceback
from dataclasses import asdict
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Mapping

from automl_nb._atomic import atomic_write_bytes
from automl_nb.train.distributed import (COLLECTIVE_TIMEOUT_SECONDS, RENDEZVOUS_TIMEOUT_SECONDS, SCRATCH_TRIAL,
                                         error_file)
from automl_nb.train.trial import NullReporter


class PipeReporter:
    """Rank 0's reporter: each report and each ``should_stop`` goes to the parent, which asks the trial's reporter."""

    def __init__(self, reports: Connection, verdicts: Connection) -> None:
        self.reports, self.verdicts = reports, verdicts

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.reports.send(("report", epoch, dict(metrics)))

    def should_stop(self) -> bool:
        self.reports.send(("should_stop",))
        return bool(self.verdicts.recv())

    def send_result(self, result) -> None:
        """Hand the trial's result to the parent."""
        self.reports.send(("result", asdict(result)))


def main(argv: list[str] | None = None) -> int:
    """Run this rank; return its exit code (0 done, 1 failed: the error is in its file)."""
    scratch = Path((sys.argv[1:] if argv is None else argv)[0])
    rank = int(os.environ["RANK"])
    _exit_with_parent(int(os.environ["AUTOML_NB_RANK_LIFELINE"]))
    try:
        _run(scratch, rank)
        return 0
    except BaseException as error:  # noqa: BLE001 - every failure reaches the parent
        torch = sys.modules.get("torch")
        out_of_memory = torch is not None and isinstance(error, torch.OutOfMemoryError)
        report = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(),
                  "out_of_memory": out_of_memory, "time": time.time()}
        atomic_write_bytes(error_file(scratch, rank), json.dumps(report).encode())
        return 1


def _run(scratch: Path, rank: int) -> None:
    import torch
    import torch.distributed as dist

    from automl_nb.train.ranks import ProcessGroup

    with open(scratch / SCRATCH_TRIAL, "rb") as f:
        task = pickle.load(f)  # written by our parent process a moment ago, in its private folder
    world_size = int(os.environ["WORLD_SIZE"])
    if "AUTOML_NB_RANK_DEVICE" in os.environ:
        device = torch.device("cuda", int(os.environ["AUTOML_NB_RANK_DEVICE"]))
        torch.cuda.set_device(device)  # the trainer's "cuda" is this device
        backend = "nccl"
    else:
        device = torch.device("cpu")
        torch.set_num_threads(int(os.environ["AUTOML_NB_RANK_THREADS"]))
        backend = "gloo"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, is_master=False,
                          timeout=timedelta(seconds=RENDEZVOUS_TIMEOUT_SECONDS))
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_SECONDS))
    reporter = NullReporter()
    if rank == 0:
        reports, verdicts = (int(fd) for fd in os.environ["AUTOML_NB_RANK_CHANNEL"].split(","))
        reporter = PipeReporter(Connection(reports, readable=False), Connection(verdicts, writable=False))
    function = task.function
    if function is None:
        from automl_nb.train.trainer import run_trial_rank as function
    result = function(task.trial, reporter, ProcessGroup(device))
    if rank == 0:
        reporter.send_result(result)
    # Only after success: on an error the group stays up until this rank's error is on file, so
    # the peers' "connection reset" errors come after it (the parent reports the earliest).
    dist.destroy_process_group()


def _exit_with_parent(lifeline: int) -> None:
    """Exit when the parent's end of the lifeline closes (it died, or ended the trial)."""

    def watch() -> None:
        while os.read(lifeline, 1):
            pass
        os._exit(3)

    threading.Thread(target=watch, name="automl-rank-lifeline", daemon=True).start()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: a failed rank's process group threads may still wait on peers.
    os._exit(code)
