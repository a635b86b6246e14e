"""Shared test set-up: no network, tiny synthetic datasets made once per session."""

import os

# timm otherwise retries hub downloads for about 50 s before failing.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


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
def restore_torch_global_state():
    """Put torch's process-wide settings back after every test: a test that trains sets the
    thread count, seeds and flags, and a later learning test must not inherit them."""
    import torch  # cheap once loaded; most tests load it anyway

    state = _torch_state(torch)
    yield
    _restore_torch(torch, state)
