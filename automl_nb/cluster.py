"""Make or connect the Dask cluster that runs a sweep's trials.

By default a ``distributed.LocalCluster`` on this machine: one worker per GPU, each
advertising a ``GPU`` resource, or on a CPU-only machine one worker per concurrent trial
with the CPU threads split evenly between them. A scheduler address (``tcp://host:8786``),
a ``tls://`` address with its TLS files (Dask's ``Security``), or an existing ``Client``
connects to a cluster the user runs instead (see docs/cluster.md).

Dask's worker threads are not torch's: each worker runs one trial at a time (one Dask
thread), and the trial sets torch's intra-op threads to ``threads_per_trial``.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from automl_nb.errors import AutoMLError
from automl_nb.spec.limits import Limits

GPU = "GPU"
# A trial whose worker dies is retried once (resuming from its last checkpoint), then failed.
ALLOWED_WORKER_DEATHS = 1
# How long connect() tries to reach a remote scheduler before it says it cannot.
CONNECT_TIMEOUT = "10s"


@dataclass
class ClusterHandle:
    """The client a sweep submits to, and what it owns.

    Attributes:
        client: a ``distributed.Client``.
        cluster: the LocalCluster made for this sweep (closed with the handle), or None.
        threads_per_trial: torch threads for each trial (None: leave the worker's default).
        uses_gpus: the workers advertise GPU resources, so each trial asks for one.
        owns_client: the client was made here (closed with the handle).
        cpus: the CPU cores a local cluster's trials share (None for a remote cluster).
        gpus_per_trial: GPUs each worker owns and each trial asks for (``distributed: true`` trains
            on all of them, see docs/distributed.md).
    """

    client: Any
    cluster: Any = None
    threads_per_trial: int | None = None
    uses_gpus: bool = False
    owns_client: bool = True
    cpus: int | None = None
    gpus_per_trial: int = 1

    @property
    def owned(self) -> bool:
        """This handle made the cluster, so it may stop its workers."""
        return self.cluster is not None

    @property
    def trial_resources(self) -> dict[str, float] | None:
        """What each trial asks of its worker: its GPUs where workers have them."""
        return {GPU: self.gpus_per_trial} if self.uses_gpus else None

    def close(self) -> None:
        """Close what this handle made: the client, and the local cluster (its workers die)."""
        if self.owns_client:
            self.client.close()
        if self.owned:
            self.cluster.close()


def gpu_count() -> int:
    """CUDA devices this process may use, counted without importing torch where possible.

    ``job.submit()`` runs in the notebook kernel, and torch (with every CUDA library) belongs in
    the workers: on Linux the NVIDIA driver lists its GPUs under ``/proc/driver/nvidia/gpus``,
    narrowed by ``CUDA_VISIBLE_DEVICES``. Elsewhere, or once torch is loaded anyway, torch counts.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    driver = "/proc/driver/nvidia/gpus"
    if "torch" not in sys.modules and sys.platform.startswith("linux"):
        if not os.path.isdir(driver):
            return 0  # no NVIDIA driver: no CUDA device whatever torch says
        present = len(os.listdir(driver))
        if visible is None:
            return present
        chosen = 0  # CUDA stops at the first invalid entry ("-1" hides every device)
        for item in visible.split(","):
            if not item.strip() or item.strip().startswith("-"):
                break
            chosen += 1
        return min(present, chosen)
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def usable_cpus() -> int:
    """CPU cores this process may run on: its affinity mask (taskset, a container's cpuset),
    which ``os.cpu_count()`` ignores."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def split_threads(cpus: int, trials: int) -> int:
    """Torch threads for each of ``trials`` CPU trials sharing ``cpus`` cores: an even split, at least 1."""
    return max(1, cpus // max(trials, 1))


def local_cluster(max_concurrent_trials: int, *, gpus: int | None = None, cpus: int | None = None,
                  distributed: bool = False) -> ClusterHandle:
    """Start a LocalCluster sized for a sweep.

    Args:
        max_concurrent_trials: trials at once (the job's limit).
        gpus: GPUs to use (default: all visible). With GPUs there is one worker per GPU and
            at most that many trials at once.
        cpus: CPU cores to split between CPU trials (default: all this process may use).
        distributed: the trials train with DDP (``distributed: true``): the GPUs are shared out
            between ``max_concurrent_trials`` workers, each owning a ``GPU`` resource of that many
            (worker ``n`` has GPUs ``n * owned`` onwards), instead of one worker per GPU.

    Returns:
        A handle owning the cluster.
    """
    import dask
    from distributed import Client, LocalCluster

    gpus = gpu_count() if gpus is None else gpus
    cpus = cpus or usable_cpus()
    gpus_per_trial = max(1, gpus // max(max_concurrent_trials, 1)) if distributed and gpus else 1
    workers = gpus // gpus_per_trial if gpus else max_concurrent_trials
    threads = split_threads(cpus, workers)
    options: dict[str, Any] = {"resources": {GPU: gpus_per_trial}} if gpus else {}
    config = {
        "distributed.scheduler.allowed-failures": ALLOWED_WORKER_DEATHS,
        # Dask's default worker environment sets MALLOC_TRIM_THRESHOLD_=65536, which makes
        # glibc hand memory back to the OS on every free: PyTorch training on CPU ran at half
        # speed with it (measured here). We keep glibc's default and set the math threads.
        "distributed.nanny.pre-spawn-environ": thread_environment(threads),
        # The worker's statistical profiler samples every thread's stack every 10 ms, taking
        # the GIL from the trial's Python data loading.
        "distributed.worker.profile.enabled": False,
    }
    if FORK_SERVER:
        config["distributed.worker.multiprocessing-method"] = "forkserver"
    # The nanny prefers this process's environment over its config, and copies its settings
    # into this process's environment: set ours for the start, then put everything back.
    with dask.config.set(config), _environment(thread_environment(threads),
                                               unset=("MALLOC_TRIM_THRESHOLD_",)):
        if FORK_SERVER:
            _preload_fork_server()
            # A forked worker starts with the fork server's environment (from its start):
            # give it this process's, as a spawned one would have.
            options["env"] = dict(os.environ)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                               silence_logs=logging.ERROR, **options)
    client = Client(cluster, set_as_default=False)
    return ClusterHandle(client, cluster, threads_per_trial=threads, uses_gpus=bool(gpus), cpus=cpus,
                         gpus_per_trial=gpus_per_trial)


def thread_environment(threads: int) -> dict[str, str]:
    """The math libraries' thread variables set to ``threads`` (for a process about to start)."""
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


# On Linux, worker processes are forked from a fork server that imported torch and torchvision
# once (multiprocessing's "forkserver"), instead of each spawned worker importing them afresh:
# 2.7 s of every worker's start here. The first sweep of a process pays it once; each later one
# (the next %%automl cell) starts its workers in 0.3 s instead of 3.3 s (bench/cluster_start.py).
# No CUDA is touched before the fork. Elsewhere (macOS, Windows) workers are spawned.
FORK_SERVER = sys.platform.startswith("linux")
FORK_SERVER_PRELOAD = ("distributed", "numpy", "torch", "torchvision")


def _preload_fork_server() -> None:
    """Name the modules the fork server imports when it starts (with the first worker).

    Dask names its own list the first time it makes a forkserver context, and never again;
    so let it, then name ours. Once a fork server runs, it keeps what it imported.
    """
    from distributed.utils import get_mp_context

    get_mp_context().set_forkserver_preload(list(FORK_SERVER_PRELOAD))


@contextmanager
def _environment(values: dict[str, str], unset: tuple[str, ...] = ()) -> Iterator[None]:
    """Set ``values`` and remove ``unset`` in ``os.environ`` inside the block; restore it after."""
    saved = dict(os.environ)
    os.environ.update(values)
    for name in unset:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def connect(address: str | Mapping[str, str] | None = None, client: Any = None, *,
            max_concurrent_trials: int = Limits.max_concurrent_trials, distributed: bool = False) -> ClusterHandle:
    """The cluster a sweep runs on: ``client`` if given, else ``address``, else a new local one.

    Args:
        address: a scheduler address, or a mapping of ``address`` (``tls://host:port``) and the
            TLS files ``tls_ca_file``, ``tls_client_cert``, ``tls_client_key`` (as
            ``ImageJob.cluster_connection()`` gives it): encryption is then required.
        client: a ``distributed.Client`` of the user's (not closed with the handle).
        max_concurrent_trials: sizes a local cluster.
        distributed: the trials train with DDP on every GPU of their worker: a local cluster gives
            each worker several (see :func:`local_cluster`), and each trial asks for all its
            worker's GPUs (the fewest any GPU worker has), so two never share a worker's GPUs.

    Raises:
        AutoMLError: the scheduler at ``address`` cannot be reached, or refused our TLS.

    Example:
        >>> connect({"address": "tls://10.0.0.5:8786", "tls_ca_file": "ca.pem",
        ...          "tls_client_cert": "client.pem", "tls_client_key": "client.key"})
    """
    if client is not None:
        return _remote_handle(client, distributed, owns_client=False)
    if address is None:
        return local_cluster(max_concurrent_trials, distributed=distributed)
    from distributed import Client

    target, security = _target(address)
    try:
        remote = Client(target, security=security, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise AutoMLError(f"cluster: cannot reach the Dask scheduler at {target!r} ({error}); "
                          f"{_hint(target, security)}") from None
    return _remote_handle(remote, distributed)


def _remote_handle(client: Any, distributed: bool, owns_client: bool = True) -> ClusterHandle:
    """The handle of a cluster someone else started: its workers' GPU resources say what a trial asks for."""
    gpus = [worker.get("resources", {}).get(GPU) for worker in client.scheduler_info().get("workers", {}).values()]
    gpus = [int(count) for count in gpus if count]
    per_trial = min(gpus) if distributed and gpus else 1
    return ClusterHandle(client, uses_gpus=bool(gpus), owns_client=owns_client, gpus_per_trial=max(1, per_trial))


def _target(address: str | Mapping[str, str]) -> tuple[str, Any]:
    """The address to dial, and the ``Security`` for it (None: Dask's configuration decides)."""
    if isinstance(address, str):
        return address, None
    from distributed.security import Security

    files = {key: value for key, value in address.items() if key != "address"}
    return address["address"], Security(require_encryption=True, **files)


def _hint(address: str, security: Any) -> str:
    """What to do when the scheduler at ``address`` does not answer."""
    if security is not None:
        return ("check that it runs, and that cluster.tls_ca_file signed its certificate and trusts "
                "cluster.tls_client_cert (Dask's TLS is mutual)")
    if address.lower().startswith("tcp://"):
        return ("start it with `dask scheduler`, or leave out cluster: for a local one; a scheduler started with "
                "TLS refuses tcp://: set cluster: {address: tls://host:port, tls_ca_file, tls_client_cert, "
                "tls_client_key}")
    if address.lower().startswith("tls://"):
        return ("check that it runs; a tls:// address without TLS files takes them from Dask's configuration "
                "(distributed.comm.tls): set cluster: {address, tls_ca_file, tls_client_cert, tls_client_key}")
    return "start it with `dask scheduler`, or leave out cluster: for a local one"


def worker_gpus(default: int) -> int:
    """The GPUs the Dask worker running this owns (its ``GPU`` resource), or ``default`` outside one."""
    try:
        from distributed import get_worker

        return int(get_worker().state.total_resources.get(GPU, default))
    except (ImportError, ValueError):  # not in a Dask worker
        return default


def pick_gpu() -> None:
    """In a GPU worker of a local cluster, make this worker's (first) GPU, by worker name, the current one."""
    import torch

    if not torch.cuda.is_available():
        return
    from distributed import get_worker

    worker = get_worker()
    owned = worker_gpus(1)  # local_cluster's GPUs per worker
    if isinstance(worker.name, int) or str(worker.name).isdigit():
        torch.cuda.set_device(int(worker.name) * owned % torch.cuda.device_count())
