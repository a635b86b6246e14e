"""``distributed: true``: one trial trained by several processes with DDP, started where the trial runs.

The process that runs the trial (a Dask worker's, or any caller of ``run_trial``) becomes the
trial's *parent*; it trains nothing itself:

1. It opens the rendezvous, a ``torch.distributed.TCPStore`` on 127.0.0.1 with port 0 (the OS
   picks a free port, so two trials never race for one), as torchrun's agent does.
2. It starts one process per device, ``python -m automl_nb.train.rank``, with torchrun's
   variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). They
   are plain subprocesses: a Dask worker is a daemonic process, and ``multiprocessing`` (torch's
   ``spawn`` included) refuses to give a daemonic process children; a subprocess needs no cluster
   setting, so it works on a worker a user started with ``dask worker`` as on our local cluster.
3. The ranks join a process group: NCCL on GPUs, gloo on CPU (over the loopback device). Rank 0
   sends each report through a pipe; the parent hands it to the trial's reporter and answers
   ``should_stop``; rank 0 broadcasts the verdict so every rank stops together.
4. A rank that raises writes its error and exits; the parent then ends every other rank
   (SIGTERM, then SIGKILL) and fails the trial with that rank's error and traceback, so no rank
   waits in a collective for a peer that is gone. A CUDA out-of-memory error is raised again as
   torch's ``OutOfMemoryError``, which the sweep retries with a smaller batch. Each rank also
   watches a lifeline pipe from the parent: when the parent dies (a killed Dask worker), its
   ranks exit instead of training on unseen.

How many processes (:func:`processes_for_trial`): the environment variable
``AUTOML_NB_TRIAL_PROCESSES`` of the process running the trial when set; else on a CUDA
machine one per GPU the Dask worker owns (its ``GPU`` resource; outside a worker every visible
GPU); else on CPU one per core of the trial's share (its torch threads, ``threads_per_trial`` on
a Dask worker), each process getting one thread. One process runs the ordinary loop.
See docs/distributed.md.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Mapping

from automl_nb.cluster import thread_environment, worker_gpus
from automl_nb.errors import AutoMLError, TrialError
from automl_nb.train.trial import Reporter, Trial, TrialResult

# Set it on a Dask worker (``AUTOML_NB_TRIAL_PROCESSES=4 dask worker ...``) to choose how many processes
# train each of its ``distributed: true`` trials.
PROCESSES_VARIABLE = "AUTOML_NB_TRIAL_PROCESSES"
# How long a rank waits in one collective. Rank 0 validates while the others wait for its verdict,
# so this bounds an evaluation; a rank that dies is noticed by the parent long before.
COLLECTIVE_TIMEOUT_SECONDS = 1800.0
# How long the ranks may take to reach the rendezvous (importing torch, loading the data).
RENDEZVOUS_TIMEOUT_SECONDS = 600.0
# After a rank fails, how long the others get to end on SIGTERM before SIGKILL.
STOP_GRACE_SECONDS = 5.0
# How often the parent looks at its ranks while waiting for rank 0's messages.
POLL_SECONDS = 0.05
SCRATCH_TRIAL = "trial.pkl"


def error_file(scratch: str | os.PathLike, rank: int) -> Path:
    """Where rank ``rank`` writes its error (JSON: error, traceback, out_of_memory, time)."""
    return Path(scratch) / f"rank-{rank}.error.json"


def processes_for_trial(environ: Mapping[str, str] | None = None) -> int:
    """How many processes train a ``distributed: true`` trial here (see the module docstring).

    Raises:
        AutoMLError: ``AUTOML_NB_TRIAL_PROCESSES`` is not a whole number >= 1.
    """
    environ = os.environ if environ is None else environ
    given = environ.get(PROCESSES_VARIABLE, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise AutoMLError(f"{PROCESSES_VARIABLE}: {given!r} is not a number of processes; allowed: a whole "
                              f"number >= 1, or unset (one process per GPU the worker owns, or per CPU core)")
        return int(given)
    import torch

    if torch.cuda.is_available():
        return len(worker_devices())
    return torch.get_num_threads()


def worker_devices() -> list[int]:
    """The CUDA devices this process owns, first the current one.

    In a Dask worker: as many as its ``GPU`` resource (``dask worker --resources GPU=4``, with
    ``CUDA_VISIBLE_DEVICES`` naming them), starting at the device :func:`automl_nb.cluster.pick_gpu`
    made current; elsewhere every visible device.
    """
    import torch

    count = torch.cuda.device_count()
    owned = worker_gpus(count)
    first = torch.cuda.current_device()
    return [(first + i) % count for i in range(min(owned, count))]


def check_node_count(properties: Mapping[str, Any]) -> None:
    """Refuse ``properties.node_count_per_trial`` above 1: a trial's processes run on one machine.

    Raises:
        AutoMLError: ``properties.node_count_per_trial: '2' ...; allowed: 1``.
    """
    from automl_nb.spec import NODE_COUNT_PER_TRIAL, node_count_per_trial

    if node_count_per_trial(properties) > 1:
        raise AutoMLError(
            f"properties.{NODE_COUNT_PER_TRIAL}: {properties[NODE_COUNT_PER_TRIAL]!r} asks for each trial on "
            f"several machines, but a trial runs on the devices of one Dask worker (one machine): "
            f"distributed: true trains it with every GPU that worker owns; allowed: 1 (or leave it out)")


@dataclass(frozen=True)
class RankTask:
    """What every rank runs: ``function(trial, reporter, ranks) -> TrialResult`` (picklable by reference)."""

    trial: Trial
    function: Callable | None = None  # None: automl_nb.train.trainer.run_trial_rank


class RemoteTraceback(Exception):
    """A rank's traceback, chained under the error the parent raises (as concurrent.futures does)."""

    def __str__(self) -> str:
        return str(self.args[0])


def run_distributed_trial(trial: Trial, reporter: Reporter, processes: int,
                          rank_function: Callable | None = None) -> TrialResult:
    """Train ``trial`` with ``processes`` DDP processes started from this process (see the module docstring).

    Args:
        trial: the trial; its folder exists (``run_trial`` made it).
        reporter: gets rank 0's reports here, in this process, and stops the trial.
        processes: the world size (1 runs one rank through the same machinery).
        rank_function: what each rank runs instead of ``run_trial_rank`` (tests).

    Returns:
        Rank 0's result.

    Raises:
        TrialError: a rank failed (its error and rank in the message, its traceback chained),
            or more processes than GPUs were asked for.
        torch.OutOfMemoryError: a rank ran out of device memory.
    """
    import torch
    import torch.distributed as dist

    devices = worker_devices() if torch.cuda.is_available() else []
    if devices and processes > len(devices):
        raise TrialError(f"{PROCESSES_VARIABLE}: {processes} processes for a trial, but this worker owns "
                         f"{len(devices)} GPU(s) ({devices}); allowed: at most {len(devices)}")
    threads = max(1, torch.get_num_threads() // processes)
    with tempfile.TemporaryDirectory(prefix="automl-nb-ddp-") as scratch:
        with open(Path(scratch) / SCRATCH_TRIAL, "wb") as f:
            pickle.dump(RankTask(trial, rank_function), f)
        store = dist.TCPStore("127.0.0.1", 0, processes, is_master=True, wait_for_workers=False,
                              timeout=timedelta(seconds=RENDEZVOUS_TIMEOUT_SECONDS))
        ranks = _Ranks(scratch, processes, store.port, devices, threads)
        try:
            return ranks.supervise(reporter)
        finally:
            ranks.stop()
            del store


class _Ranks:
    """The ranks' processes, seen from the parent: start, relay rank 0's messages, stop."""

    def __init__(self, scratch: str, world_size: int, port: int, devices: list[int], threads: int) -> None:
        self.scratch, self.world_size = scratch, world_size
        reports_read, reports_write = os.pipe()   # rank 0 -> parent
        verdicts_read, verdicts_write = os.pipe()  # parent -> rank 0
        lifeline_read, self.lifeline = os.pipe()   # never written: its end closing tells the ranks we are gone
        self.reports = Connection(reports_read, writable=False)
        self.verdicts = Connection(verdicts_write, readable=False)
        self.processes: list[subprocess.Popen] = []
        try:
            for rank in range(world_size):
                channel = (reports_write, verdicts_read) if rank == 0 else ()
                env = _rank_environment(rank, world_size, port, devices, threads, lifeline_read, channel)
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "automl_nb.train.rank", scratch], env=env,
                    pass_fds=(lifeline_read, *channel)))
        except BaseException:
            self.stop()  # the ranks started so far
            raise
        finally:
            for fd in (reports_write, verdicts_read, lifeline_read):  # the ranks hold their own copies
                os.close(fd)

    def supervise(self, reporter: Reporter) -> TrialResult:
        """Relay rank 0's reports and verdicts until every rank has ended; fail on the first rank that fails."""
        result: dict | None = None
        listening = True
        while True:
            codes = [process.poll() for process in self.processes]
            if any(code not in (None, 0) for code in codes):
                raise self._failure()
            if all(code == 0 for code in codes):
                break
            if not listening or not self.reports.poll(POLL_SECONDS):
                if not listening:
                    time.sleep(POLL_SECONDS)
                continue
            try:
                message = self.reports.recv()
            except EOFError:  # rank 0 has ended (or closed its end): watch the exit codes
                listening = False
                continue
            kind = message[0]
            if kind == "report":
                reporter.report(message[1], message[2])
            elif kind == "should_stop":
                self.verdicts.send(bool(reporter.should_stop()))
            elif kind == "result":
                result = message[1]
        if result is None:
            raise TrialError(f"rank 0 of {self.world_size} ended without a result")
        return TrialResult(**result)

    def _failure(self) -> Exception:
        """The error of the rank that failed first, chained to its traceback (the others are stopped)."""
        time.sleep(POLL_SECONDS)  # a peer failing at the same moment has written its error too
        codes = {rank: process.poll() for rank, process in enumerate(self.processes)}
        self.stop()
        errors = {}
        for rank in range(self.world_size):
            path = error_file(self.scratch, rank)
            if path.exists():
                errors[rank] = json.loads(path.read_text())
        # A rank that died without a word (killed, crashed in C) comes first: its peers' errors are
        # about losing it. Else the earliest error: the others failed in a collective after it.
        silent = [rank for rank, code in codes.items() if code not in (None, 0) and rank not in errors]
        if silent:
            rank = silent[0]
            return TrialError(f"rank {rank} of {self.world_size} died: {_exit_reason(codes[rank])}")
        if not errors:
            return TrialError(f"the ranks of the trial ended with {codes} and no error")
        rank = min(errors, key=lambda r: errors[r]["time"])
        found = errors[rank]
        message = f"rank {rank} of {self.world_size}: {found['error']}"
        import torch

        error = torch.OutOfMemoryError(message) if found["out_of_memory"] else TrialError(message)
        error.__cause__ = RemoteTraceback(f"\n\"\"\"\n{found['traceback']}\"\"\"")
        return error

    def stop(self) -> None:
        """End every rank still running (SIGTERM, then SIGKILL after ``STOP_GRACE_SECONDS``); close the pipes."""
        running = [process for process in self.processes if process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for end in (self.reports, self.verdicts):
            if not end.closed:
                end.close()
        if self.lifeline is not None:
            os.close(self.lifeline)
            self.lifeline = None


def _rank_environment(rank: int, world_size: int, port: int, devices: list[int], threads: int,
                      lifeline: int, channel: tuple[int, ...]) -> dict[str, str]:
    """A rank's environment: torchrun's variables, its device or threads, our pipes, this sys.path."""
    env = dict(os.environ)
    env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size),
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), AUTOML_NB_RANK_LIFELINE=str(lifeline))
    if channel:
        env["AUTOML_NB_RANK_CHANNEL"] = ",".join(map(str, channel))
    if devices:
        env["AUTOML_NB_RANK_DEVICE"] = str(devices[rank])
    else:
        env.update(thread_environment(threads))
        env["AUTOML_NB_RANK_THREADS"] = str(threads)
    # gloo finds its interface from the host name, which a container may not resolve: the ranks
    # of a trial share one machine, so the loopback device always works.
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    # The ranks import what this process can: the package, and the module of a test's rank function.
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel's out-of-memory killer?)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {code} without an error report"
