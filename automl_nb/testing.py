"""Shared fakes for tests of this package and of code built on it (no test framework needed)."""

from __future__ import annotations

from typing import Mapping

# A classification trial that takes seconds on a CPU: small crops, random weights (no
# network), and a higher learning rate than the defaults meant for pretrained models.
FAST_CLASSIFICATION = {
    "model_name": "resnet18", "use_pretrained_model": False, "number_of_epochs": 8,
    "training_batch_size": 16, "validation_batch_size": 64, "learning_rate": 0.05,
    "warmup_cosine_lr_warmup_epochs": 1, "training_crop_size": 28,
    "validation_resize_size": 32, "validation_crop_size": 28, "random_seed": 0,
    "early_stopping": False,
}


class RecordingReporter:
    """A reporter that keeps every row it is sent and asks to stop after ``stop_after`` epochs."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.rows: list[dict] = []

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.rows.append(dict(metrics))

    def should_stop(self) -> bool:
        return self.stop_after is not None and bool(self.rows) and self.rows[-1]["epoch"] >= self.stop_after


class OutOfMemoryAbove:
    """A trial function for sweep tests: raises torch's OutOfMemoryError when the trial's
    training batch is above ``max_batch``, else runs the trial (CPUs never run out of GPU memory)."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch

    def __call__(self, trial, reporter):
        import torch

        from automl_nb.train import run_trial

        batch = trial.parameters.get("training_batch_size")
        if batch is not None and batch > self.max_batch:
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated: batch {batch} > {self.max_batch})")
        return run_trial(trial, reporter)
