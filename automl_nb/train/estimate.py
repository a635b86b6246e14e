"""Time one training configuration on this hardware: seconds per step, and peak memory.

Before a sweep starts, :mod:`automl_nb.sweep.estimate` asks how long one training step and one
validation step of each configuration it can draw take here, and how much memory a trial of it
needs. A configuration is set up as :mod:`automl_nb.train.trainer` sets up a trial: the task
adapter's datasets over a sample of the job's records (read, decoded and augmented as in
training), the model with random weights (pretrained weights change no timing, and there may be
no network), frozen layers, the optimizer, and the device's mixed precision and memory format.
One warm-up step, then the median of a few; validation and checkpoint writes are timed too.

Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA, and on CPU the growth of the
process's resident set (Linux's VmHWM, reset for each configuration); never less than the bytes
of the weights, gradients and optimizer state, which do not depend on the batch.

Timings are cached per configuration, device and thread count in a small JSON file
(:class:`TimingCache`). ``python -m automl_nb.train.estimate REQUESTS.json RESULTS.json`` times
requests in a fresh process, as :func:`time_requests` does by default: the notebook kernel never
loads torch, and the resident-set growth is the configuration's own. Several such processes time
side by side when a sweep's concurrent trials will share the CPU.

Example:
    >>> request = make_request("image_classification", params, classes, train_records, valid_records)
    >>> timing = measure_steps(request, device="cpu", threads=1)
    >>> timing.train_step_seconds, timing.batch_that_fits(2 * 2**30)
"""

from __future__ import annotations

import gc
import glob
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields, replace
from importlib import metadata
from itertools import cycle, islice
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from automl_nb._atomic import atomic_write_json
from automl_nb.cluster import thread_environment
from automl_nb.data.jsonl import record_from_json
from automl_nb.data.records import ImageRecord
from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME

# The resolved training parameters that change the time or memory of a step (the spec table's
# names). The learning rate, optimizer and schedule barely do, so a sweep over them is timed once.
STEP_KEYS = ("model_name", "model_size", "training_crop_size", "validation_crop_size", "validation_resize_size",
             "min_size", "max_size", "image_size", "multi_scale", "tile_grid_size", "tile_overlap_ratio",
             "training_batch_size", "validation_batch_size", "gradient_accumulation_step", "layers_to_freeze",
             "freeze_layer_pattern", "use_pretrained_model", "box_detections_per_image", "log_validation_loss",
             "validation_metric_type", "number_of_workers", "advanced_settings", "base_network", "image_shape")
TRAINING_STEPS = 3  # timed after one warm-up step
VALIDATION_STEPS = 2  # timed after one warm-up batch
# Once one step is timed, a configuration stops after this long: a large model on a CPU takes
# seconds per step, and the median of fewer steps is still an estimate.
TIME_BUDGET_SECONDS = 20.0
CACHE_FILE = "step_timings.json"
CACHE_VERSION = 1
MAX_CACHE_ENTRIES = 500  # the oldest go first


@dataclass(frozen=True)
class TimingRequest:
    """One configuration to time: a trial's resolved parameters and a sample of its data.

    Attributes:
        task: the job's task.
        parameters: the trial's resolved training parameters.
        classes: every class name of the data (the head's size).
        train_records: enough training records for the warm-up and timed steps.
        valid_records: enough validation records for the warm-up and timed batches.
    """

    task: str
    parameters: Mapping[str, Any]
    classes: tuple[str, ...]
    train_records: tuple[ImageRecord, ...]
    valid_records: tuple[ImageRecord, ...]

    def to_json(self) -> dict:
        """A JSON-able form (records as Azure JSONL rows), read back by :meth:`from_json`."""
        def rows(records: Sequence[ImageRecord]) -> list[dict]:
            return [{"line": r.to_json_line(), "source": r.source} for r in records]

        return {"task": self.task, "parameters": dict(self.parameters), "classes": list(self.classes),
                "train_records": rows(self.train_records), "valid_records": rows(self.valid_records)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TimingRequest":
        def records(rows) -> tuple[ImageRecord, ...]:
            return tuple(record_from_json(row["line"], data["task"], DEFAULT_TARGET_COLUMN_NAME, source=row["source"])
                         for row in rows)

        return cls(data["task"], dict(data["parameters"]), tuple(data["classes"]), records(data["train_records"]),
                   records(data["valid_records"]))


def make_request(task: str, parameters: Mapping[str, Any], classes: Sequence[str], train_records: Sequence[ImageRecord],
                 valid_records: Sequence[ImageRecord], seed: int = 0) -> TimingRequest:
    """A request with a seeded sample of the records, repeated when the data has fewer.

    Args:
        task: the job's task.
        parameters: the trial's resolved training parameters.
        classes: every class name of the data.
        train_records, valid_records: the split data (the validation side may be empty only
            when the training side is not).
        seed: seed of the sample.

    Returns:
        A :class:`TimingRequest` with ``training_batch_size x (TRAINING_STEPS + 1)`` training and
        ``validation_batch_size x (VALIDATION_STEPS + 1)`` validation records.
    """
    rng = random.Random(seed)

    def sample(records: Sequence[ImageRecord], count: int) -> tuple[ImageRecord, ...]:
        records = list(records)
        rng.shuffle(records)
        return tuple(islice(cycle(records), count))

    valid = valid_records or train_records
    return TimingRequest(task, dict(parameters), tuple(classes),
                         sample(train_records, parameters["training_batch_size"] * (TRAINING_STEPS + 1)),
                         sample(valid, parameters["validation_batch_size"] * (VALIDATION_STEPS + 1)))


@dataclass(frozen=True)
class StepTiming:
    """What timing one configuration measured.

    Attributes:
        train_step_seconds: median seconds of one training step (loading the batch included).
        validation_step_seconds: seconds of one validation batch (loading and scoring included).
        training_batch_size: the batch timed (half the asked one, or less, after running out of
            GPU memory, as a sweep retries such a trial).
        validation_batch_size: the validation batch timed.
        build_seconds: seconds to build the datasets and the model and move it to the device.
        checkpoint_seconds: seconds to write the best checkpoint and the resume point once.
        peak_memory_bytes: peak memory of the steps (see the module docstring).
        static_memory_bytes: bytes of weights, buffers, gradients and optimizer state.
        memory_kind: ``"cuda"`` (allocated GPU memory) or ``"rss"`` (resident-set growth).
        device_memory_bytes: the GPU's memory, or the machine's RAM.
        samples_per_image: training samples per image (more than 1 with ``tile_grid_size``).
        out_of_memory_batch_size: the asked batch when it ran out of GPU memory, else None.
        device: ``cpu`` or ``cuda`` with the device's name.
        threads: torch's intra-op threads while timing.
    """

    train_step_seconds: float
    validation_step_seconds: float
    training_batch_size: int
    validation_batch_size: int
    build_seconds: float
    checkpoint_seconds: float
    peak_memory_bytes: int
    static_memory_bytes: int
    memory_kind: str
    device_memory_bytes: int
    samples_per_image: float = 1.0
    out_of_memory_batch_size: int | None = None
    device: str = "cpu"
    threads: int | None = None

    def memory_at(self, batch: int) -> float:
        """Predicted peak memory at another batch size: the static part plus activations that grow
        with the batch."""
        per_image = max(self.peak_memory_bytes - self.static_memory_bytes, 0) / self.training_batch_size
        return self.static_memory_bytes + per_image * batch

    def batch_that_fits(self, limit_bytes: float) -> int | None:
        """The largest of the timed batch, its half, its quarter... whose predicted peak fits in
        ``limit_bytes`` (halves, as a sweep retries a trial that ran out of memory); None when not
        even a batch of 1 fits.

        Example:
            >>> timing.training_batch_size, timing.batch_that_fits(timing.memory_at(20))
            (64, 16)
        """
        batch = self.training_batch_size
        while True:
            if self.memory_at(batch) <= limit_bytes:
                return batch
            if batch == 1:
                return None
            batch = max(1, batch // 2)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "StepTiming":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# -- measuring ----------------------------------------------------------------------------------
def measure_steps(request: TimingRequest, *, device: str | None = None, threads: int | None = None,
                  steps: int = TRAINING_STEPS, validation_steps: int = VALIDATION_STEPS) -> StepTiming:
    """Time one configuration in this process (see the module docstring).

    Args:
        request: the configuration and its data sample.
        device: ``cpu`` or ``cuda`` (default: cuda when available, as a trial).
        threads: torch's intra-op threads while timing (default: as they are); restored after.
        steps: training steps timed after the warm-up step.
        validation_steps: validation batches timed after the warm-up batch.

    Returns:
        The :class:`StepTiming`. On CUDA, a batch that runs out of memory is halved (the
        validation batch too) until it fits, as the sweep retries such a trial.

    Raises:
        DataError, SpecError, TrialError: as a trial of this configuration would.
    """
    import torch

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    saved_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    params, out_of_memory_at = dict(request.parameters), None
    try:
        while True:
            try:
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    torch.manual_seed(0)
                    timing = _Bench(request, params, device).measure(steps, validation_steps)
                return replace(timing, out_of_memory_batch_size=out_of_memory_at, threads=torch.get_num_threads())
            except torch.OutOfMemoryError:
                batch = params["training_batch_size"]
                if batch < 2:
                    raise
                out_of_memory_at = out_of_memory_at or batch
                params = {**params, "training_batch_size": batch // 2,
                          "validation_batch_size": max(1, params["validation_batch_size"] // 2)}
                _release(device)
    finally:
        torch.set_num_threads(saved_threads)
        _release(device)


class _Bench:
    """One configuration set up as ``automl_nb.train.trainer`` sets up a trial, for timing."""

    def __init__(self, request: TimingRequest, params: dict, device) -> None:
        import torch

        from automl_nb.train.optim import build_optimizer
        from automl_nb.train.setup import adapter_for, freeze_layers

        self.params, self.device = params, device
        self.cuda = device.type == "cuda"
        self.memory = _PeakMemory(device)
        started = time.perf_counter()
        self.adapter = adapter_for(request.task, params, list(request.train_records), list(request.valid_records),
                                   request.classes)
        self.adapter.to(device)
        # Tiling (tile_grid_size) makes several training samples of each image.
        self.samples_per_image = len(self.adapter.train_dataset) / len(request.train_records)
        self.model = self.adapter.build_model(False)
        self.frozen = freeze_layers(self.model, params)
        self.memory_format = torch.channels_last if self.cuda else torch.contiguous_format
        self.model.to(device, memory_format=self.memory_format)
        self.optimizer = build_optimizer(self.model.parameters(), params)
        self.amp_dtype = None
        if self.cuda:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.build_seconds = time.perf_counter() - started

    def measure(self, steps: int, validation_steps: int) -> StepTiming:
        train_seconds = self._train_steps(steps)
        validation_seconds = self._validation_steps(validation_steps)
        checkpoint_seconds = self._checkpoints()
        return StepTiming(
            train_step_seconds=train_seconds, validation_step_seconds=validation_seconds,
            training_batch_size=self.params["training_batch_size"],
            validation_batch_size=self.params["validation_batch_size"], build_seconds=self.build_seconds,
            checkpoint_seconds=checkpoint_seconds,
            peak_memory_bytes=max(self.memory.peak(), self._static_bytes()),
            static_memory_bytes=self._static_bytes(), memory_kind="cuda" if self.cuda else "rss",
            device_memory_bytes=_device_memory(self.device),
            samples_per_image=self.samples_per_image, device=device_name(self.device.type))

    def _loader(self, dataset, batch: int, shuffle: bool):
        import torch
        from torch.utils.data import DataLoader

        workers = self.params["number_of_workers"]
        if workers is None:  # as the trainer: loader processes only beside a GPU
            workers = min(4, os.cpu_count() or 1) if self.cuda else 0
        return DataLoader(dataset, batch_size=batch, shuffle=shuffle, num_workers=workers, pin_memory=self.cuda,
                          collate_fn=self.adapter.collate, generator=torch.Generator().manual_seed(0))

    def _autocast(self):
        import torch

        return torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype is not None else nullcontext()

    def _synchronize(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def _train_steps(self, steps: int) -> float:
        """The median seconds of ``steps`` training steps after a warm-up (as ``_train_epoch``)."""
        self.model.train()
        for name, module in self.model.named_modules():
            if name and (name + ".").startswith(self.frozen):
                module.eval()
        accumulate = self.params["gradient_accumulation_step"]
        loader = self._loader(self.adapter.train_dataset, self.params["training_batch_size"], shuffle=True)
        self.optimizer.zero_grad(set_to_none=True)
        times, started = [], time.perf_counter()
        tick = started
        for i, batch in enumerate(islice(loader, steps + 1)):
            with self._autocast():
                loss, _, _ = self.adapter.forward_loss(self.model, batch, self.device, self.memory_format)
            self.scaler.scale(loss / accumulate).backward()
            if (i + 1) % accumulate == 0:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
            self._synchronize()
            self.memory.sample()
            now = time.perf_counter()
            times.append(now - tick)
            tick = now
            if len(times) >= 2 and now - started > TIME_BUDGET_SECONDS:
                break
        return statistics.median(times[1:] or times)

    def _validation_steps(self, steps: int) -> float:
        """Seconds per validation batch over ``steps`` batches after a warm-up one (scoring included)."""
        from automl_nb.train.evaluate import evaluate_model

        batch = self.params["validation_batch_size"]
        records = len(self.adapter.valid_dataset)
        steps = max(1, min(steps, records // batch - 1))
        batches = iter(self._loader(self.adapter.valid_dataset, batch, shuffle=False))
        evaluate_model(self.model, islice(batches, 1), self.adapter, self.device, self.memory_format, self._autocast)
        self._synchronize()
        started = time.perf_counter()
        evaluate_model(self.model, islice(batches, steps), self.adapter, self.device, self.memory_format,
                       self._autocast)
        self._synchronize()
        self.memory.sample()
        return (time.perf_counter() - started) / steps

    def _checkpoints(self) -> float:
        """Seconds to write the best checkpoint and the resume point, as a trial does at an evaluation."""
        from automl_nb.train.folder import BEST_CHECKPOINT, LAST_CHECKPOINT, TrialFolder

        with tempfile.TemporaryDirectory(prefix="automl-nb-estimate-") as path:
            folder = TrialFolder(path)
            started = time.perf_counter()
            folder.save_checkpoint(BEST_CHECKPOINT, {"model": self.model.state_dict(), "epoch": 1})
            folder.save_checkpoint(LAST_CHECKPOINT, {"model": self.model.state_dict(), "epoch": 1,
                                                     "optimizer": self.optimizer.state_dict()})
            return time.perf_counter() - started

    def _static_bytes(self) -> int:
        import torch

        def size(tensor) -> int:
            return tensor.numel() * tensor.element_size()

        total = sum(size(t) for t in self.model.parameters()) + sum(size(t) for t in self.model.buffers())
        total += sum(size(p) for p in self.model.parameters() if p.requires_grad)  # their gradients
        for state in self.optimizer.state.values():
            total += sum(size(v) for v in state.values() if torch.is_tensor(v))
        return total


class _PeakMemory:
    """Peak memory from here on: allocated GPU memory on CUDA, resident-set growth on CPU."""

    def __init__(self, device) -> None:
        import torch

        self.device, self.cuda = device, device.type == "cuda"
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
            self.base = torch.cuda.memory_allocated(device)
            return
        gc.collect(1)  # young cycles only: a full collection of a large process takes a third of a second
        _trim_heap()  # freed memory of an earlier configuration would hide this one's growth
        self.base = _resident_bytes()
        self.sampled = self.base
        # Linux resets the high-water mark (VmHWM) on request; elsewhere we sample after each step.
        self.high_water = _reset_high_water()

    def sample(self) -> None:
        if not self.cuda:
            self.sampled = max(self.sampled, _resident_bytes())

    def peak(self) -> int:
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated(self.device) - self.base)
        top = _high_water_bytes() if self.high_water else self.sampled
        return int(max(top, self.sampled) - self.base)


def _resident_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _reset_high_water() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _high_water_bytes() > 0
    except OSError:
        return False


def _high_water_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _trim_heap() -> None:
    """Hand freed heap memory back to the OS (glibc), so the resident set starts from what is in use."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _device_memory(device) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    import psutil

    return int(psutil.virtual_memory().total)


def _release(device) -> None:
    """Hand the cached GPU memory of a measured configuration back (its tensors are freed already)."""
    if device.type == "cuda":
        import torch

        gc.collect()
        torch.cuda.empty_cache()


def device_name(device: str) -> str:
    """``cpu <model>`` or ``cuda <GPU model>``, read without torch (part of a timing's cache key)."""
    if device.startswith("cuda"):
        for path in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
            with open(path) as f:
                for line in f:
                    if line.startswith("Model:"):
                        return f"cuda {line.split(':', 1)[1].strip()}"
        return "cuda"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"cpu {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"cpu {platform.processor() or platform.machine()}"


# -- the cache ----------------------------------------------------------------------------------
def timing_key(task: str, parameters: Mapping[str, Any], num_classes: int, device: str, threads: int,
               copies: int = 1) -> str:
    """The cache key of a configuration: its step parameters, classes, device, threads, copies timed side
    by side (see :func:`time_requests`) and torch version.

    Example:
        >>> timing_key("image_classification", {"model_name": "resnet18", ...}, 3, "cpu", 2, 1)
        '{"classes": 3, "device": "cpu AMD EPYC...", ...}'
    """
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    step = {key: parameters[key] for key in STEP_KEYS if key in parameters}
    return json.dumps({"version": CACHE_VERSION, "task": task, "parameters": step, "classes": num_classes,
                       "device": device_name(device), "threads": threads, "copies": copies, "torch": torch_version},
                      sort_keys=True)


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/automl_nb/step_timings.json`` (``~/.cache/automl_nb/...``), beside the image cache."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "automl_nb" / CACHE_FILE


class TimingCache:
    """Step timings by :func:`timing_key`, in one JSON file written atomically.

    The cache only saves time: a missing, damaged or unwritable file counts as empty.

    Args:
        path: the JSON file (default :func:`default_cache_path`).
        max_age_seconds: timings measured longer ago than this count as missing (None: any age).
            A timing does not record how busy the machine was: an old one may come from other load.
    """

    def __init__(self, path: str | os.PathLike | None = None, max_age_seconds: float | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.max_age_seconds = max_age_seconds

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"version": CACHE_VERSION, "timings": {}, "startup": {}}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return {"version": CACHE_VERSION, "timings": {}, "startup": {}}
        data.setdefault("timings", {})
        data.setdefault("startup", {})
        return data

    def get(self, key: str) -> StepTiming | None:
        """The cached timing of ``key``, or None (also when older than ``max_age_seconds``)."""
        entry = self._read()["timings"].get(key)
        try:
            if not entry or (self.max_age_seconds is not None
                             and time.time() - float(entry.get("measured", 0)) > self.max_age_seconds):
                return None
            return StepTiming.from_json(entry["timing"])
        except (KeyError, TypeError, ValueError):
            return None

    def startup_seconds(self, device: str) -> float | None:
        """Seconds a fresh process took to load torch and the trainer, as last measured on ``device``."""
        return self._read()["startup"].get(_startup_key(device))

    def put(self, timings: Mapping[str, StepTiming], startup_seconds: float | None = None, device: str = "cpu") -> None:
        """Add ``timings`` (and the startup time on ``device``), keeping the newest entries."""
        data = self._read()  # read again just before writing: another process may have added some
        now = time.time()
        for key, timing in timings.items():
            data["timings"][key] = {"measured": now, "timing": timing.to_json()}
        if startup_seconds is not None:
            data["startup"][_startup_key(device)] = startup_seconds
        newest = sorted(data["timings"].items(), key=lambda item: item[1].get("measured", 0))[-MAX_CACHE_ENTRIES:]
        data["timings"] = dict(newest)
        try:
            atomic_write_json(self.path, data)
        except OSError:
            pass  # a read-only home: the next estimate times again


def _startup_key(device: str) -> str:
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return f"{device_name(device)}; {sys.executable}; torch {torch_version}"


# -- timing many, cached, in a fresh process ----------------------------------------------------
@dataclass(frozen=True)
class TimedRequests:
    """What :func:`time_requests` found.

    Attributes:
        results: per request, its :class:`StepTiming`, or a one-line reason it could not be timed.
        measured: how many were timed now (the others came from the cache).
        startup_seconds: seconds a fresh process takes to load torch and the trainer (what a
            sweep's worker pays before its first trial), when known.
    """

    results: tuple[StepTiming | str, ...]
    measured: int
    startup_seconds: float | None


def time_requests(requests: Sequence[TimingRequest], *, device: str, threads: int, copies: int = 1,
                  cache: TimingCache | None = None, isolated: bool = True,
                  announce: Callable[[int], None] | None = None) -> TimedRequests:
    """Time each request once, taking what the cache knows and caching what is measured.

    Args:
        requests: the configurations.
        device: ``cpu`` or ``cuda``.
        threads: torch's intra-op threads of one trial (as the sweep's workers set them).
        copies: processes timing side by side, as concurrent trials share the machine's cores and
            memory bandwidth (isolated only; in this process, one).
        cache: the timing cache (default: the file of :func:`default_cache_path`).
        isolated: time in a fresh process with the worker's thread settings (the default: the
            caller never loads torch); False times in this process.
        announce: called with the number of requests the cache lacks, before timing them.

    Returns:
        A :class:`TimedRequests`.
    """
    cache = cache if cache is not None else TimingCache()
    copies = copies if isolated else 1
    keys = [timing_key(r.task, r.parameters, len(r.classes), device, threads, copies) for r in requests]
    results: list[StepTiming | str | None] = [cache.get(key) for key in keys]
    missing = [i for i, result in enumerate(results) if result is None]
    startup = None
    if missing:
        if announce is not None:
            announce(len(missing))
        todo = [requests[i] for i in missing]
        if isolated:
            measured, startup = _time_in_child(todo, device, threads, copies)
        else:
            measured = [_time_here(request, device, threads) for request in todo]
        for i, result in zip(missing, measured):
            results[i] = result
        timings = {keys[i]: results[i] for i in missing if isinstance(results[i], StepTiming)}
        if timings or startup is not None:
            cache.put(timings, startup, device)
    if startup is None:
        startup = cache.startup_seconds(device)
    return TimedRequests(tuple(results), len(missing), startup)


def _time_here(request: TimingRequest, device: str, threads: int) -> StepTiming | str:
    try:
        return measure_steps(request, device=device, threads=threads)
    except Exception as error:  # a configuration that cannot run is reported, not raised
        return _reason(error)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")


def _time_in_child(requests: Sequence[TimingRequest], device: str, threads: int,
                   copies: int) -> tuple[list, float | None]:
    """Time ``requests`` in ``copies`` processes at once (``python -m automl_nb.train.estimate``), each
    with a sweep worker's thread settings; each request's timing is the copies' mean."""
    env = {**os.environ, **thread_environment(threads)}
    env.pop("MALLOC_TRIM_THRESHOLD_", None)  # as automl_nb.cluster keeps it out of the workers
    with tempfile.TemporaryDirectory(prefix="automl-nb-estimate-") as folder:
        request_file = Path(folder) / "requests.json"
        request_file.write_text(json.dumps({"device": device, "threads": threads,
                                            "requests": [r.to_json() for r in requests]}), encoding="utf-8")
        result_files = [Path(folder) / f"results-{copy}.json" for copy in range(copies)]
        processes = []
        for copy, result_file in enumerate(result_files):
            with open(Path(folder) / f"stderr-{copy}.txt", "w") as stderr:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "automl_nb.train.estimate", str(request_file), str(result_file)],
                    env=env, stdout=subprocess.DEVNULL, stderr=stderr))
        failures = [f"the timing process ended with code {p.wait()}: "
                    f"{_last_line((Path(folder) / f'stderr-{copy}.txt').read_text(errors='replace'))}"
                    for copy, p in enumerate(processes)]
        written = [json.loads(f.read_text(encoding="utf-8")) if f.exists() else {} for f in result_files]
    results = []
    for index in range(len(requests)):
        rows = [w["results"][index] if index < len(w.get("results", ())) else {"error": failure}
                for w, failure in zip(written, failures)]
        errors = [row["error"] for row in rows if "error" in row]
        results.append(errors[0] if errors else _mean_timing([StepTiming.from_json(row["timing"]) for row in rows]))
    startups = [w["startup_seconds"] for w in written if "startup_seconds" in w]
    return results, (sum(startups) / len(startups) if startups else None)


def _mean_timing(timings: Sequence[StepTiming]) -> StepTiming:
    """One timing of copies timed side by side: the mean of the seconds, the largest memory."""
    def mean(name: str) -> float:
        return statistics.fmean(getattr(t, name) for t in timings)

    return replace(timings[0], train_step_seconds=mean("train_step_seconds"),
                   validation_step_seconds=mean("validation_step_seconds"), build_seconds=mean("build_seconds"),
                   checkpoint_seconds=mean("checkpoint_seconds"),
                   peak_memory_bytes=max(t.peak_memory_bytes for t in timings))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m automl_nb.train.estimate REQUESTS.json RESULTS.json``: time each request, writing
    the results file after each one (so a process killed for memory keeps the earlier ones)."""
    request_file, result_file = sys.argv[1:] if argv is None else argv
    started = time.perf_counter()
    import automl_nb.train.trainer  # noqa: F401  what a sweep worker loads before its first trial

    startup = time.perf_counter() - started
    payload = json.loads(Path(request_file).read_text(encoding="utf-8"))
    results: list[dict] = []
    for item in payload["requests"]:
        result = _time_here(TimingRequest.from_json(item), payload["device"], payload["threads"])
        results.append({"timing": result.to_json()} if isinstance(result, StepTiming) else {"error": result})
        atomic_write_json(result_file, {"startup_seconds": startup, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
