"""Estimate a sweep before it trains: time per epoch and per trial, peak memory, wall-clock.

Every distinct configuration the job's trials can draw (model, image size, batch size: the
step parameters of :mod:`automl_nb.train.estimate`) is timed once on this machine, as the
sweep's workers will run it: on the GPU when there is one, else with the CPU threads each
concurrent trial gets (``automl_nb.cluster``), as many copies side by side as trials will share
the cores (they share memory bandwidth too). From the timings and the data:

- per epoch: training steps (training images after the validation split, divided by the batch)
  times a step, plus validation batches times a validation step;
- per trial: building the model, then ``number_of_epochs`` epochs, validating and writing
  checkpoints at each evaluation (``evaluation_frequency``);
- the sweep: ``max_trials`` trials, ``max_concurrent_trials`` at a time (one per GPU at most),
  plus the workers' start (loading torch). Early stopping and early termination are ignored, so
  this is an upper bound.

A configuration whose peak memory exceeds its share (a GPU's memory, or the machine's RAM split
between the concurrent trials) is reported with the batch size that would fit.

Example:
    >>> estimate = estimate_sweep(load_job("job.yml"))
    >>> print("\\n".join(estimate.lines()))
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from html import escape
from typing import Any, Callable, Mapping, Sequence

from automl_nb.errors import AutoMLError, DataCheckError, SpecError
from automl_nb.spec import MODEL_NAME, Choice, Distribution, get_parameter
from automl_nb.spec.job_checks import trial_reports
from automl_nb.train.estimate import STEP_KEYS, StepTiming, TimingCache, make_request, time_requests, timing_key

# The resolved parameters whose values give a trial a different duration: the step's, and how
# many epochs and evaluations it runs.
CONFIGURATION_KEYS = STEP_KEYS + ("number_of_epochs", "evaluation_frequency")
MAX_CONFIGURATIONS = 12  # timed at most; a larger sweep is estimated from these
# Dask pauses a worker at 80% of its memory limit (the machine's RAM split between workers).
CPU_MEMORY_SHARE = 0.8
# On a GPU, torch's caching allocator and fragmentation take about a tenth beyond what is allocated.
GPU_MEMORY_SHARE = 0.9
# Set (to anything but "" or "0") to skip the estimate in `automl-nb run` and %%automl, e.g. in CI.
NO_ESTIMATE_VARIABLE = "AUTOML_NB_NO_ESTIMATE"


def estimate_wanted(no_estimate: bool = False) -> bool:
    """False when ``--no-estimate`` was given or ``$AUTOML_NB_NO_ESTIMATE`` is set."""
    return not no_estimate and os.environ.get(NO_ESTIMATE_VARIABLE, "") in ("", "0")


@dataclass(frozen=True)
class ConfigurationEstimate:
    """One configuration's timing, scaled to the job's data and epochs.

    Attributes:
        parameters: the configuration's resolved training parameters.
        timing: what timing it measured (None when it could not run: see ``error``).
        error: why it could not be timed.
        train_images, validation_images: images per epoch on each side.
        memory_limit_bytes: the memory one trial may use.
        slowdown: how much slower a trial runs because concurrent trials share the cores (>= 1).
    """

    parameters: Mapping[str, Any]
    timing: StepTiming | None
    error: str | None
    train_images: int
    validation_images: int
    memory_limit_bytes: float | None = None
    slowdown: float = 1.0

    @property
    def label(self) -> str:
        """E.g. ``resnet18 (crop 56, batch 32)``."""
        p = self.parameters
        name = p[MODEL_NAME] + (f" {p['model_size']}" if "model_size" in p else "")
        if "training_crop_size" in p:
            size = f"crop {p['training_crop_size']}"
        elif "image_size" in p:
            size = f"image_size {p['image_size']}"
        elif "base_network" in p:
            name, size = f"ssd {p['base_network']}", f"image_shape {p['image_shape']}"
        else:
            size = f"min_size {p['min_size']}, max_size {p['max_size']}"
        return f"{name} ({size}, batch {p['training_batch_size']})"

    @property
    def epochs(self) -> int:
        return int(self.parameters["number_of_epochs"])

    def evaluations(self, epochs: int | None = None) -> int:
        """Epochs of ``epochs`` (default: all) that validate: every ``evaluation_frequency``-th and the last."""
        epochs = self.epochs if epochs is None else epochs
        return trial_reports(epochs, int(self.parameters["evaluation_frequency"]))

    @property
    def train_steps(self) -> float:
        """Training steps per epoch (a last, smaller batch counts as its share of a step)."""
        return self.train_images * self.timing.samples_per_image / self.timing.training_batch_size

    @property
    def validation_steps(self) -> float:
        return self.validation_images / self.timing.validation_batch_size

    @property
    def epoch_seconds(self) -> float | None:
        """One epoch that validates, in seconds."""
        if self.timing is None:
            return None
        t = self.timing
        return self.slowdown * (self.train_steps * t.train_step_seconds + self.validation_steps
                                * t.validation_step_seconds + t.checkpoint_seconds)

    @property
    def trial_seconds(self) -> float | None:
        """One trial, start to end, in seconds (its worker already started)."""
        return self.seconds(self.epochs)

    def seconds(self, epochs: int) -> float | None:
        """A trial that runs ``epochs`` epochs (e.g. one stopped early), in seconds."""
        if self.timing is None:
            return None
        t = self.timing
        training = epochs * self.train_steps * t.train_step_seconds
        validation = self.evaluations(epochs) * (self.validation_steps * t.validation_step_seconds
                                                 + t.checkpoint_seconds)
        return self.slowdown * (t.build_seconds + training + validation)

    @property
    def fits(self) -> bool:
        """Its peak memory fits in the trial's share (True when unknown)."""
        if self.timing is None:
            return True
        if self.timing.out_of_memory_batch_size is not None:
            return False
        return self.memory_limit_bytes is None or self.timing.peak_memory_bytes <= self.memory_limit_bytes

    @property
    def batch_that_fits(self) -> int | None:
        """For a configuration that does not fit: the largest halved batch that would (None: not even 1)."""
        if self.fits:
            return self.parameters["training_batch_size"]
        if self.timing.out_of_memory_batch_size is not None:
            return self.timing.training_batch_size
        return self.timing.batch_that_fits(self.memory_limit_bytes)


@dataclass(frozen=True)
class SweepEstimate:
    """How long a job's sweep will take and whether its configurations fit in memory.

    Attributes:
        run_mode: ``single``, ``automode`` or ``sweep``.
        device: ``cpu`` or ``cuda``: where the trials will train.
        configurations: each distinct configuration the trials can draw.
        trials: trials the sweep will run (``max_trials``, or fewer when the sampler has fewer).
        concurrent: trials at once.
        threads_per_trial: CPU threads of each trial.
        train_images, validation_images: per epoch, after the validation split.
        timeout_seconds: the job's ``timeout_minutes``.
        startup_seconds: a worker's start before its first trial (loading torch), when known.
        measured: configurations timed now (the others came from the cache).
        notes: what the figures leave out or assume.
        skipped: why there is no estimate (e.g. the data cannot be read); the rest is then empty.
    """

    run_mode: str
    device: str = "cpu"
    configurations: tuple[ConfigurationEstimate, ...] = ()
    trials: int = 0
    concurrent: int = 1
    threads_per_trial: int = 1
    train_images: int = 0
    validation_images: int = 0
    timeout_seconds: float = math.inf
    startup_seconds: float | None = None
    measured: int = 0
    notes: tuple[str, ...] = ()
    skipped: str | None = None

    @property
    def timed(self) -> list[ConfigurationEstimate]:
        return [c for c in self.configurations if c.timing is not None]

    @property
    def trial_seconds(self) -> float | None:
        """A trial's mean duration over the configurations (each equally likely)."""
        timed = self.timed
        return sum(c.trial_seconds for c in timed) / len(timed) if timed else None

    @property
    def slowest_trial_seconds(self) -> float | None:
        return max((c.trial_seconds for c in self.timed), default=None)

    def configuration_of(self, parameters: Mapping[str, Any]) -> ConfigurationEstimate | None:
        """The estimate of the configuration a trial's resolved ``parameters`` belong to, if timed."""
        wanted = [repr(parameters.get(key)) for key in CONFIGURATION_KEYS]
        for configuration in self.configurations:
            if [repr(configuration.parameters.get(key)) for key in CONFIGURATION_KEYS] == wanted:
                return configuration
        return None

    def wall_seconds(self, per_trial: float | None = None) -> float | None:
        """The sweep's wall-clock: waves of ``concurrent`` trials, plus the workers' start.

        Args:
            per_trial: seconds of each trial (default: :attr:`trial_seconds`).
        """
        per_trial = self.trial_seconds if per_trial is None else per_trial
        if per_trial is None:
            return None
        return (self.startup_seconds or 0.0) + math.ceil(self.trials / self.concurrent) * per_trial

    def lines(self) -> list[str]:
        """The estimate as short lines of text: a heading, one line per configuration, the sweep,
        memory advice and notes."""
        if self.skipped is not None:
            return [f"estimate: skipped ({self.skipped})"]
        lines = [self._heading()]
        for c in self.configurations:
            if c.timing is None:
                lines.append(f"  {c.label}: not timed ({c.error})")
                continue
            t = c.timing
            lines.append(f"  {c.label}: step {t.train_step_seconds:.2f} s, validation step "
                         f"{t.validation_step_seconds:.2f} s; epoch {duration(c.epoch_seconds)}, trial "
                         f"{duration(c.trial_seconds)} ({c.epochs} epochs); peak memory "
                         f"{size(t.peak_memory_bytes)}{' (GPU)' if t.memory_kind == 'cuda' else ''}")
        return lines + [f"  {line}" for line in self._summary()]

    def _heading(self) -> str:
        timed = self.timed
        where = timed[0].timing.device if timed else self.device
        if self.device == "cpu":
            where += f", {self.threads_per_trial} thread{'s' if self.threads_per_trial > 1 else ''} per trial"
        return (f"estimate, timed on this machine ({where}; {self.train_images} training and "
                f"{self.validation_images} validation images per epoch):")

    def _summary(self) -> list[str]:
        """The sweep's line, memory advice and notes."""
        lines = [self._sweep_line()] if self.timed else []
        lines += [_memory_advice(c) for c in self.configurations if not c.fits]
        return lines + list(self.notes)

    def _sweep_line(self) -> str:
        mean, slowest = self.wall_seconds(), self.wall_seconds(self.slowest_trial_seconds)
        text = f"{'sweep' if self.trials > 1 else 'run'}: {self.trials} trial{'s' if self.trials > 1 else ''}"
        if self.trials > 1:
            text += f", {self.concurrent} at a time"
        text += f": about {duration(mean)}"
        if slowest - mean > 0.05 * mean:
            text += f" (up to {duration(slowest)} if every trial draws the slowest configuration)"
        if self.startup_seconds:
            text += f", {self.startup_seconds:.0f} s of it starting the workers (loading torch)"
        if mean > self.timeout_seconds:
            text += f"; timeout_minutes ({self.timeout_seconds / 60:g}) ends it first"
        return text

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        if self.skipped is not None or not self.configurations:
            return f'<div class="automl-estimate">{escape(self.lines()[0])}</div>'
        rows = []
        for c in self.configurations:
            t = c.timing
            cells = ([c.label, f"{t.train_step_seconds:.2f} s", f"{t.validation_step_seconds:.2f} s",
                      duration(c.epoch_seconds), f"{duration(c.trial_seconds)} ({c.epochs} epochs)",
                      size(t.peak_memory_bytes), "yes" if c.fits else "no"]
                     if t is not None else [c.label, f"not timed ({c.error})", "", "", "", "", ""])
            rows.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")
        head = "".join(f"<th>{h}</th>" for h in ("configuration", "step", "validation step", "epoch", "trial",
                                                 "peak memory", "fits"))
        items = "".join(f"<li>{escape(line)}</li>" for line in self._summary())
        return (f'<div class="automl-estimate"><b>{escape(self._heading())}</b>'
                f'<table style="font-size:12px"><tr>{head}</tr>{"".join(rows)}</table><ul>{items}</ul></div>')


def _memory_advice(c: ConfigurationEstimate) -> str:
    t = c.timing
    if t.out_of_memory_batch_size is not None:
        return (f"will not fit: {c.label} ran out of GPU memory at batch {t.out_of_memory_batch_size}; "
                f"training_batch_size: {t.training_batch_size} fits")
    need = f"will not fit: {c.label} needs about {size(t.peak_memory_bytes)} of {size(c.memory_limit_bytes)}"
    batch = c.batch_that_fits
    if batch is None:
        return f"{need}, even at batch 1; choose a smaller model or image size"
    return f"{need}; training_batch_size: {batch} would fit (about {size(t.memory_at(batch))})"


def duration(seconds: float | None) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def size(count: float) -> str:
    """``310 MiB``, ``14.2 GiB``."""
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


# -- the estimate -------------------------------------------------------------------------------
def estimate_sweep(job, *, cluster: str | None = None, device: str | None = None, memory_limit: float | None = None,
                   cache: TimingCache | None = None, isolated: bool = True, check_data: bool = True,
                   announce: Callable[[str], None] | None = None) -> SweepEstimate:
    """Time each configuration the job's trials can draw, and scale the timings to its sweep.

    Args:
        job: a validated job.
        cluster: the scheduler address the sweep will use (overrides the job's); the timing
            still runs on this machine, and the estimate says so.
        device: ``cpu`` or ``cuda`` (default: cuda when this machine has a GPU, as the sweep).
        memory_limit: bytes one trial may use (default: a GPU's memory, or the machine's RAM split
            between the concurrent trials; see ``GPU_MEMORY_SHARE`` and ``CPU_MEMORY_SHARE``).
        cache: the timing cache (default: ``~/.cache/automl_nb/step_timings.json``).
        isolated: time in a fresh process (default), so this one never loads torch; False times here.
        check_data: first check the data as ``submit`` does (:func:`automl_nb.data.check.check_job_data`)
            and time on the records it read; False reads the label files alone. Either way, data
            that fails is not timed: the estimate is skipped, saying why.
        announce: called with a line of text before configurations are timed (e.g. ``print``), as
            that takes seconds, or minutes for large models on a CPU.

    Returns:
        A :class:`SweepEstimate`; ``skipped`` says why when the data fails its check or cannot be
        read (it is None when the data passed), and a configuration that cannot run carries its
        error.

    Raises:
        SpecError: the job's parameters do not resolve (a job that did not validate).

    Example:
        >>> estimate_sweep(load_job("job.yml")).trial_seconds
        41.5
    """
    from automl_nb.data.records import class_names
    from automl_nb.sweep.automode_plan import data_profile

    try:
        train, valid, images = _split(job, check_data)
    except DataCheckError as error:  # nothing is timed on data a trial would refuse; submit() says why
        more = f" and {len(error.problems) - 1} more" if len(error.problems) > 1 else ""
        return SweepEstimate(job.run_mode, skipped=f"the data check found {error.problems[0]}{more}")
    except (AutoMLError, OSError, ImportError, ValueError) as error:
        return SweepEstimate(job.run_mode, skipped=f"the data cannot be read: {str(error).splitlines()[0]}")
    layout = trial_layout(job.limits.max_concurrent_trials, device)
    profile = data_profile(list(train) + list(valid)) if job.run_mode == "automode" else None
    configurations, capacity, notes = sweep_configurations(job, n_images=images, device=layout.device, profile=profile)
    classes = class_names(list(train) + list(valid))
    as_run = [_batches_as_run(params, len(train), len(valid)) for params in configurations]
    keys = [timing_key(job.task, params, len(classes), layout.device, layout.threads) for params in as_run]
    unique = list(dict.fromkeys(keys))  # configurations that differ only in epochs are timed once
    requests = [make_request(job.task, as_run[keys.index(key)], classes, train, valid) for key in unique]

    def starting(count: int) -> None:
        if announce is not None:
            announce(f"estimate: timing {count} configuration{'s' if count > 1 else ''} on this machine "
                     "(a few training steps each: seconds, or a minute for a large model on a CPU; cached for "
                     "next time; --no-estimate skips this)")

    timed = time_requests(requests, device=layout.device, threads=layout.threads, copies=layout.copies, cache=cache,
                          isolated=isolated, announce=starting)
    by_key = dict(zip(unique, timed.results))
    estimates = []
    for params, key in zip(configurations, keys):
        result = by_key[key]
        timing = result if isinstance(result, StepTiming) else None
        limit = memory_limit
        if limit is None and timing is not None:
            limit = (timing.device_memory_bytes * GPU_MEMORY_SHARE if timing.memory_kind == "cuda"
                     else timing.device_memory_bytes / layout.workers * CPU_MEMORY_SHARE)
        estimates.append(ConfigurationEstimate(params, timing, None if timing else result, len(train), len(valid),
                                               limit, layout.slowdown))
    limits = job.limits
    trials = min(limits.max_trials, capacity) if capacity is not None else limits.max_trials
    notes.append("early stopping and early termination are ignored: an upper bound")
    if layout.slowdown > 1:
        notes.append(f"{layout.concurrent} concurrent trials share {layout.cpus} CPU cores: each runs "
                     f"{layout.slowdown:.1f}x slower")
    address = cluster or job.scheduler_address()
    if address:
        notes.append(f"the workers of {address} may be faster or slower than this machine")
    return SweepEstimate(job.run_mode, layout.device, tuple(estimates), trials, min(layout.concurrent, trials),
                         layout.threads, len(train), len(valid), limits.timeout_minutes * 60.0, timed.startup_seconds,
                         timed.measured, tuple(notes))


@dataclass(frozen=True)
class TrialLayout:
    """How a local cluster places a sweep's trials on this machine (as ``automl_nb.cluster.local_cluster``).

    Attributes:
        device: ``cpu`` or ``cuda``.
        cpus: the CPU cores this process may use.
        workers: one per GPU, else one per concurrent trial.
        concurrent: trials at once (at most one per GPU).
        threads: CPU threads of each trial (the cores split evenly between the workers).
        copies: trials that fit side by side on the cores: timed side by side, as they share the
            cores' memory bandwidth (1 on GPUs).
        slowdown: how much slower each trial runs when more trials than cores share them (>= 1).
    """

    device: str
    cpus: int
    workers: int
    concurrent: int
    threads: int
    copies: int
    slowdown: float


def trial_layout(max_concurrent_trials: int, device: str | None = None) -> TrialLayout:
    """The :class:`TrialLayout` of ``max_concurrent_trials`` on this machine (``device`` ``cpu`` ignores its GPUs)."""
    from automl_nb.cluster import gpu_count, split_threads, usable_cpus

    gpus = 0 if device == "cpu" else gpu_count()
    cpus = usable_cpus()
    workers = gpus or max_concurrent_trials
    concurrent = min(max_concurrent_trials, gpus) if gpus else max_concurrent_trials
    threads = split_threads(cpus, workers)
    if gpus:
        return TrialLayout(device or "cuda", cpus, workers, concurrent, threads, 1, 1.0)
    return TrialLayout("cpu", cpus, workers, concurrent, threads, min(concurrent, max(1, cpus // threads)),
                       max(1.0, concurrent * threads / cpus))


def _batches_as_run(params: Mapping[str, Any], train_images: int, validation_images: int) -> dict:
    """The parameters with the batches a trial really gets: a batch larger than the data is all of it."""
    return {**params, "training_batch_size": min(params["training_batch_size"], max(train_images, 1)),
            "validation_batch_size": min(params["validation_batch_size"], max(validation_images, 1))}


def _split(job, check_data: bool) -> tuple[list, list, int]:
    """Training and validation records as a trial splits them, and the images AutoMode counts.

    With ``check_data`` the data check reads them (raising its DataCheckError), else the label
    files alone are read.
    """
    from automl_nb.data.split import split_records

    if check_data:
        from automl_nb.data.check import check_job_data

        checked = check_job_data(job)
        records, valid = list(checked.training), list(checked.validation)
    else:
        from automl_nb.data.mltable import load_records

        def load(data) -> list:
            return load_records(job.resolve_data_path(data), job.task, job.target_column_name, check_images=False)

        records = load(job.training_data)
        valid = load(job.validation_data) if job.validation_data is not None else []
    if job.validation_data is not None:
        return records, valid, len(records) + len(valid)
    train, valid = split_records(records, job.task, job.effective_validation_data_size(), seed=0)
    return train, valid, len(records)


def sweep_configurations(job, *, n_images: int, device: str,
                         profile=None) -> tuple[list[dict], int | None, list[str]]:
    """The distinct resolved parameters the job's trials can have (by ``CONFIGURATION_KEYS``).

    Choices are enumerated; a continuous distribution of a step parameter (e.g. a quniform
    ``training_batch_size``) contributes its smallest and largest value. Parameters that do not
    change a step (learning rate, optimizer...) keep their defaults.

    Args:
        job: a validated job.
        n_images: the images AutoMode sizes its portfolio by.
        device: ``cpu`` or ``cuda`` (AutoMode picks models by it).
        profile: the data's :class:`~automl_nb.sweep.automode_plan.DataProfile` (AutoMode fits
            small images' sizes to it).

    Returns:
        ``(configurations, capacity, notes)``: at most ``MAX_CONFIGURATIONS`` resolved parameter
        dicts; how many trials the sampler can give (None: any number); notes on what was left out.
    """
    notes: list[str] = []
    capacity: int | None = None
    if job.run_mode == "single":
        return [job.resolved_training_parameters()], 1, notes
    if job.run_mode == "automode":
        from automl_nb.sweep.automode import automode_portfolio

        sides = {"side": profile.side, "object_side": profile.object_side} if profile else {}
        baselines, subspaces = automode_portfolio(job.task, job.training_parameters, n_images=n_images, device=device,
                                                  **sides)
        if not subspaces:
            subspaces, capacity = [{k: Choice([v]) for k, v in point.items()} for point in baselines], len(baselines)
    else:
        subspaces = job.search_space
        if job.sweep.sampling_algorithm == "grid":
            capacity = sum(math.prod(len(v.values) if isinstance(v, Choice) else 1 for v in s.values())
                           for s in subspaces)
    found: dict[tuple, dict] = {}
    for subspace in subspaces:
        for point in _points(subspace):
            try:
                params = job.trial_parameters(point)
            except SpecError:
                continue  # a combination the sampler cannot draw either (e.g. unequal ViT crops)
            found.setdefault(tuple(repr(params.get(k)) for k in CONFIGURATION_KEYS), params)
    configurations = list(found.values())
    if len(configurations) > MAX_CONFIGURATIONS:
        notes.append(f"{len(configurations)} configurations; the first {MAX_CONFIGURATIONS} were timed")
        configurations = configurations[:MAX_CONFIGURATIONS]
    return configurations, capacity, notes


def _points(subspace: Mapping[str, Any]) -> list[dict]:
    """The combinations of a subspace's configuration keys (other keys are left to their defaults)."""
    keys, options = [], []
    for key, value in subspace.items():
        if (get_parameter(key).maps_to or key) in CONFIGURATION_KEYS:
            keys.append(key)
            options.append(_values(value))
    return [dict(zip(keys, combination)) for combination in itertools.product(*options)]


def _values(value: Any) -> Sequence[Any]:
    """A choice's values; the extremes of a bounded distribution; the centre of an unbounded one."""
    if isinstance(value, Choice):
        return value.values
    if not isinstance(value, Distribution):
        return (value,)
    support = value.support()
    points = support if support is not None else (value.centre(),)
    return tuple(dict.fromkeys(round(p) if value.gives_ints() else p for p in points))
