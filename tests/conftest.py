"""Shared test set-up: no network, tiny synthetic datasets made once per session."""

import os

# timm otherwise retries hub downloads for about 50 s before failing.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# `automl-nb run` and %%automl time the sweep's models first (seconds each, cached in the user's
# home); the suite's runs skip that, and tests/*/test_*estimate.py test it with their own cache.
os.environ.setdefault("AUTOML_NB_NO_ESTIMATE", "1")

import pytest  # noqa: E402


def _pin_xdist_worker() -> None:
    """Under pytest-xdist, give each test process its own share of the cores (with 2 workers on 2
    cores, one core each). torch, Dask clusters and kernels started by a test follow the affinity
    mask, so two processes never fight over two cores with four threads."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= count:
        os.sched_setaffinity(0, set(cores[int(worker[2:]) % count::count]))


_pin_xdist_worker()


def pytest_collection_modifyitems(items) -> None:
    """Run the slow tests (whole jobs, notebooks, the browser) first, in file order.

    pytest-xdist's work stealing then ends the suite on short tests: in file order a worker
    could be left finishing a minute-long notebook on its one core while the other sat idle.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _torch_state(torch) -> dict:
    return {
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "dtype": torch.get_default_dtype(),
        "grad": torch.is_grad_enabled(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "rng": torch.get_rng_state(),
    }


def _restore_torch(torch, state: dict) -> None:
    torch.set_num_threads(state["threads"])
    torch.use_deterministic_algorithms(state["deterministic"], warn_only=state["deterministic_warn_only"])
    torch.set_default_dtype(state["dtype"])
    torch.set_grad_enabled(state["grad"])
    torch.backends.cudnn.benchmark = state["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = state["cudnn_deterministic"]
    torch.set_float32_matmul_precision(state["matmul_precision"])
    torch.set_rng_state(state["rng"])


@pytest.fixture(autouse=True)
def no_image_cache_disk_floor():
    """A nearly full test disk must not evict a test's cached images under it (a CI failure);
    subprocesses, Dask workers and kernels inherit the variable. The floor has its own test.

    Not through ``monkeypatch``: an autouse fixture that takes it would tear it down after
    ``restore_torch_global_state``, so a test that removes ``torch`` from ``sys.modules`` would
    still lack it when torch's state is restored."""
    from automl_nb.data.cache.evict import MIN_FREE_DISK_VARIABLE

    saved = os.environ.get(MIN_FREE_DISK_VARIABLE)
    os.environ[MIN_FREE_DISK_VARIABLE] = "0"
    yield
    if saved is None:
        os.environ.pop(MIN_FREE_DISK_VARIABLE, None)
    else:
        os.environ[MIN_FREE_DISK_VARIABLE] = saved


@pytest.fixture(autouse=True)
def restore_torch_global_state():
    """Put torch's process-wide settings back after every test: a test that trains sets the
    thread count, seeds and flags, and a later learning test must not inherit them."""
    import torch  # cheap once loaded; most tests load it anyway

    state = _torch_state(torch)
    yield
    _restore_torch(torch, state)


@pytest.fixture(scope="session")
def learning_seed() -> int:
    """The training seed of a learning test: 0, or ``AUTOML_NB_LEARNING_SEED`` when
    ``bench/learning_spread.py`` measures the tests' spread across seeds and thread counts."""
    return int(os.environ.get("AUTOML_NB_LEARNING_SEED", "0"))


@pytest.fixture
def record_learning(request):
    """``record_learning(first=..., best=...)`` appends a learning test's figures to the JSONL
    file named by ``AUTOML_NB_LEARNING_LOG`` (when set), for ``bench/learning_spread.py``."""
    import json

    def record(**figures) -> None:
        path = os.environ.get("AUTOML_NB_LEARNING_LOG")
        if path:
            row = {"test": request.node.nodeid, "seed": os.environ.get("AUTOML_NB_LEARNING_SEED", "0"),
                   "threads": len(os.sched_getaffinity(0)), **figures}
            with open(path, "a", encoding="utf-8") as log:
                log.write(json.dumps(row) + "\n")

    return record


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on 127.0.0.1 (``automl_nb.testing.moto_s3``); yields an s3fs filesystem on it.
    Each module makes (and removes) its own buckets: moto keeps buckets in this process, not in the
    server, so they would outlive the module's server."""
    pytest.importorskip("s3fs")
    from automl_nb.testing import moto_s3

    with moto_s3() as fs:
        yield fs
