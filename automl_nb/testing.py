"""Shared fakes for tests of this package and of code built on it (no test framework needed).

:class:`ScriptedTrial` is the one to reach for in tests of scheduling (samplers, policies,
limits, stops, timeouts, retries, resume, live displays): its metric per epoch is given, so
"stopped at report 4" is a fact of the script, not of floating-point training on one CPU.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

# A classification trial that takes seconds on a CPU: small crops, random weights (no
# network), and a higher learning rate than the defaults meant for pretrained models.
FAST_CLASSIFICATION = {
    "model_name": "resnet18", "use_pretrained_model": False, "number_of_epochs": 8,
    "training_batch_size": 16, "validation_batch_size": 64, "learning_rate": 0.05,
    "warmup_cosine_lr_warmup_epochs": 1, "training_crop_size": 28,
    "validation_resize_size": 32, "validation_crop_size": 28, "random_seed": 0,
    "early_stopping": False,
}

Curve = Sequence[float] | Callable[[dict], Sequence[float]]


class ScriptedTrial:
    """A trial function whose primary metric at each epoch is given: nothing trains.

    It goes through everything a real trial does outside the training loop: the parameters
    are resolved by the spec, the trial folder gets ``params.json``, ``metrics.jsonl``,
    ``status.json``, ``model_best.pt`` and ``last.pt`` (so ``resume`` continues from the last
    evaluation), each evaluation is reported, and the reporter's stop ends it Canceled. Being
    a plain picklable object, it runs on Dask workers like ``run_trial``.

    Args:
        curve: the primary metric per epoch (epoch 1 first), or a function of the trial's
            resolved parameters giving it; the function may raise to make the trial fail.
            A trial runs ``number_of_epochs`` epochs; a curve shorter than that repeats its
            last value.
        seconds_per_epoch: wall-clock time each epoch takes (a sleep).

    Example:
        >>> by_rate = ScriptedTrial(lambda p: [0.9] * 5 if p["learning_rate"] > 0.01 else [0.1] * 5)
        >>> run = job.submit(trial_function=by_rate)
    """

    def __init__(self, curve: Curve, seconds_per_epoch: float = 0.0) -> None:
        self.curve = curve
        self.seconds_per_epoch = seconds_per_epoch

    def __call__(self, trial, reporter):
        from automl_nb.spec import resolve_parameters
        from automl_nb.spec.tasks import PRIMARY_METRICS
        from automl_nb.train.folder import BEST_CHECKPOINT, LAST_CHECKPOINT, TrialFolder
        from automl_nb.train.trial import TrialResult

        folder = TrialFolder(trial.output_dir)
        folder.path.mkdir(parents=True, exist_ok=True)
        params = dict(resolve_parameters(trial.task, trial.parameters))
        epochs = params["number_of_epochs"]
        values = list(self.curve(params) if callable(self.curve) else self.curve)
        metric = PRIMARY_METRICS[trial.task]
        start, best, best_epoch = 1, None, None
        if trial.resume and folder.has_resume_point():
            state = folder.load_checkpoint(LAST_CHECKPOINT)
            start, best, best_epoch = state["epoch"] + 1, state["best_metric"], state["best_epoch"]
            folder.truncate_metrics(state["epoch"])
        else:
            folder.clear_metrics()
        folder.write_description(trial, params)
        status, epoch = "Completed", start - 1
        for epoch in range(start, epochs + 1):
            time.sleep(self.seconds_per_epoch)
            value = float(values[min(epoch, len(values)) - 1])
            row = {"epoch": epoch, metric: value, "train_loss": 1.0 - value, "validation_loss": 1.0 - value}
            folder.append_metrics(row)
            reporter.report(epoch, row)
            if math.isfinite(value) and (best is None or value > best):
                best, best_epoch = value, epoch
                folder.save_checkpoint(BEST_CHECKPOINT, {"epoch": epoch, "metric": value, "scripted": True})
            if epoch == epochs:
                break
            folder.save_checkpoint(LAST_CHECKPOINT, {"epoch": epoch, "best_metric": best, "best_epoch": best_epoch})
            if reporter.should_stop():
                status = "Canceled"
                break
        if status == "Completed":
            folder.remove_resume_point()
        folder.write_status(status, epoch=epoch, best_metric=best, best_epoch=best_epoch)
        return TrialResult(trial_id=trial.trial_id, status=status, primary_metric=metric, best_metric=best,
                           best_epoch=best_epoch, epochs_completed=epoch, output_dir=str(folder.path))


class FailingCurve:
    """A :class:`ScriptedTrial` curve whose trial fails: it waits ``seconds``, then raises
    ``RuntimeError(message)`` (on the worker, as a real trial's error would be).

    Example:
        >>> run = job.submit(trial_function=ScriptedTrial(FailingCurve("CUDA out of memory")))
    """

    def __init__(self, message: str, seconds: float = 0.0) -> None:
        self.message = message
        self.seconds = seconds

    def __call__(self, params: dict) -> Sequence[float]:
        time.sleep(self.seconds)
        raise RuntimeError(self.message)


class ThreadCountCurve:
    """A :class:`ScriptedTrial` curve reading ``torch.get_num_threads() / 100`` where the trial runs.

    A test learns from the metric how many CPU threads its trial was given, and with
    ``seconds`` per call (a sleep) it can see which trials overlapped.
    """

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds

    def __call__(self, params: dict) -> Sequence[float]:
        import torch

        time.sleep(self.seconds)
        return [torch.get_num_threads() / 100]


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
    training batch is above ``max_batch``, else runs ``inner`` (default ``run_trial``; CPUs never
    run out of GPU memory)."""

    def __init__(self, max_batch: int, inner: Callable | None = None) -> None:
        self.max_batch = max_batch
        self.inner = inner

    def __call__(self, trial, reporter):
        import torch

        batch = trial.parameters.get("training_batch_size")
        if batch is not None and batch > self.max_batch:
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated: batch {batch} > {self.max_batch})")
        if self.inner is None:
            from automl_nb.train import run_trial

            return run_trial(trial, reporter)
        return self.inner(trial, reporter)


def png_bytes(seed: int, size: tuple[int, int] = (48, 40)) -> bytes:
    """A PNG of random pixels (``size`` is width, height), the same for the same seed."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def scoring_request(*entries) -> dict:
    """Azure's scoring request body holding ``entries`` (base64 images or JSON entries)."""
    return {"input_data": {"columns": ["image"], "data": list(entries)}}


@contextmanager
def moto_s3() -> Iterator[Any]:
    """moto's S3 server on 127.0.0.1 for the block, with the environment every process reads it by
    (the endpoint through fsspec's configuration, credentials as for any S3: moto takes any);
    yields an s3fs filesystem on it. The environment is put back after.

    Example:
        >>> with moto_s3() as fs:
        ...     fs.mkdir("bucket")
    """
    import os
    import socket

    from moto.server import ThreadedMotoServer

    from automl_nb.object_store import RemoteFolder

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    settings = {"FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield RemoteFolder("s3://any").fs
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()
