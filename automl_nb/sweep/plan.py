"""From a job to a driver: which sampler, which policy, how many trials, how much time."""

from __future__ import annotations

import time
from typing import Callable

from automl_nb.errors import AutoMLError
from automl_nb.sweep.driver import SweepDriver
from automl_nb.sweep.executor import Executor
from automl_nb.sweep.store import RunStore


class SingleTrialSampler:
    """The sampler of a job without a search space or AutoMode: one trial, nothing sampled."""

    capacity = 1

    def suggest(self, index: int) -> dict | None:
        return {} if index == 0 else None

    def state(self, index: int) -> dict:
        return {}

    def restore(self, index: int, state: dict, value: float | None, finished: bool) -> None:
        pass

    def tell(self, index: int, value: float | None) -> None:
        pass


def sweep_seed(job) -> int:
    """The sampler's seed: the job's fixed ``random_seed``, else 0 (sweeps repeat by default)."""
    seed = job.training_parameters.get("random_seed")
    return int(seed) if seed is not None else 0


def make_sampler(job, device: str, plan: dict | None = None):
    """The sampler for the job's run mode: single trial, AutoMode portfolio, or its search space.

    ``plan`` is AutoMode's (:func:`automode_plan`); the other modes take none.
    """
    mode = job.run_mode
    if mode == "single":
        return SingleTrialSampler()
    if mode == "automode":
        from automl_nb.sweep.automode import automode_sampler

        return automode_sampler(job.task, job.training_parameters, n_images=plan["n_images"], device=device,
                                seed=sweep_seed(job), max_trials=job.limits.max_trials, side=plan["side"],
                                object_side=plan.get("object_side"), epochs=plan["epochs"])
    from automl_nb.sweep.samplers import make_sampler as make_space_sampler

    return make_space_sampler(job.sweep.sampling_algorithm, job.task, job.search_space, job.training_parameters,
                              seed=sweep_seed(job), max_trials=job.limits.max_trials)


def job_records(job) -> list:
    """The job's training records, and its validation records when given (label files only)."""
    from automl_nb.data.mltable import load_records

    records = []
    for data in (job.training_data, job.validation_data):
        if data is not None:
            records += load_records(job.resolve_data_path(data), job.task, job.target_column_name,
                                    check_images=False)
    return records


def automode_plan(job, store: RunStore, device: str, budget_seconds: float, *, can_focus: bool = False,
                  no_estimate: bool = False) -> dict:
    """AutoMode's plan: the data's size (count, median sides of images and objects), epochs per model, trials at once.

    Made once per run and kept in ``run.json`` (``automode_plan``), so a resumed sweep draws the
    same trials. Epochs are planned only for a job with a time budget (``timeout_minutes`` below
    the default) and the estimate on (:func:`automl_nb.sweep.estimate.estimate_wanted`): they come
    from the estimate's timing of each portfolio model (cached, so a CLI or magic estimate just
    before makes it free). Otherwise every model keeps the spec's epochs. ``can_focus``: the
    executor can give one trial all the cores (a local CPU cluster), so a short budget runs one
    trial at a time (:func:`automl_nb.sweep.automode_plan.planned_concurrency`).
    """
    saved = store.run_info().get("automode_plan")
    if saved is not None:
        return saved
    plan = new_automode_plan(job, device, budget_seconds, can_focus=can_focus, no_estimate=no_estimate)
    store.write_run(automode_plan=plan)
    return plan


def new_automode_plan(job, device: str, budget_seconds: float, *, can_focus: bool = False,
                      no_estimate: bool = False) -> dict:
    """AutoMode's plan for ``job`` made now (see :func:`automode_plan`, which keeps it with the run);
    ``no_estimate``: time no models (every model keeps the spec's epochs), as ``--no-estimate``."""
    from automl_nb.sweep.automode_plan import data_profile

    profile = data_profile(job_records(job))
    epochs, concurrency = _planned_schedule(job, device, budget_seconds, can_focus, no_estimate)
    return {"n_images": profile.n_images, "side": profile.side, "object_side": profile.object_side,
            "epochs": epochs, "concurrency": concurrency}


def automode_plan_lines(job, cluster: str | None = None, device: str | None = None, *,
                        no_estimate: bool = False) -> list[str]:
    """What an AutoMode job would run (for a dry run): its plan, its first trials (the portfolio's
    baselines, in order) and what TPE draws from after them.

    Planned as the sweep would plan it on this machine's local cluster (``device``: cuda when this
    machine has a GPU); with a ``cluster`` (or the job's), whose workers may have other devices, it
    assumes this machine's. ``no_estimate``: see :func:`new_automode_plan`.
    """
    from automl_nb.cluster import gpu_count
    from automl_nb.spec import MODEL_NAME, Choice
    from automl_nb.sweep.automode import automode_portfolio

    device = device or ("cuda" if gpu_count() else "cpu")
    can_focus = device == "cpu" and not (cluster or job.cluster)  # a local CPU cluster can focus
    try:
        plan = new_automode_plan(job, device, job.limits.timeout_minutes * 60, can_focus=can_focus,
                                 no_estimate=no_estimate)
    except (AutoMLError, OSError) as error:  # a dry run in a notebook does not stop on the data
        return [f"AutoMode plan: not made, the data cannot be read here: {str(error).splitlines()[0]}"]
    baselines, subspaces = automode_portfolio(job.task, job.training_parameters, n_images=plan["n_images"],
                                              device=device, side=plan["side"], object_side=plan.get("object_side"),
                                              epochs=plan["epochs"])
    epochs = ", ".join(f"{model} {count}" for model, count in plan["epochs"].items())
    side = f", median side {plan['side']} px" if plan["side"] else ""
    lines = [f"AutoMode plan on {device}: {plan['n_images']} training images{side}; "
             f"{plan['concurrency']} trial(s) at a time; epochs "
             + (f"planned for the {job.limits.timeout_minutes}-minute budget: {epochs}" if epochs else
                "as each model's defaults (planned only for a timeout_minutes below the default, from the "
                "models' timings)")]
    trials = job.limits.max_trials
    for index, point in enumerate(baselines[:trials]):
        lines.append(f"  trial {index}: " + ", ".join(f"{key} {value}" for key, value in point.items()))
    if subspaces and trials > len(baselines):
        models = [value for subspace in subspaces for choice in [subspace.get(MODEL_NAME)]
                  if isinstance(choice, Choice) for value in choice.values]
        among = f" from {', '.join(dict.fromkeys(models))}" if models else ""
        lines.append(f"  then {trials - len(baselines)} trial(s) drawn by TPE (bayesian){among}, steered by the results")
    return lines


def _planned_schedule(job, device: str, budget_seconds: float, can_focus: bool,
                      no_estimate: bool = False) -> tuple[dict[str, int], int]:
    """Epochs per portfolio model and trials at once, from the estimate's timings (none: spec epochs)."""
    from automl_nb.spec import get_parameter
    from automl_nb.spec.limits import DEFAULT_TIMEOUT_MINUTES
    from automl_nb.sweep.automode_plan import (
        TIMING_MAX_AGE_SECONDS, epoch_cap, planned_concurrency, planned_epochs, with_threads,
    )
    from automl_nb.sweep.estimate import estimate_sweep, estimate_wanted, trial_layout

    concurrency = job.limits.max_concurrent_trials
    fixed = {get_parameter(key).maps_to or key for key in job.training_parameters}
    if "number_of_epochs" in fixed or job.limits.timeout_minutes >= DEFAULT_TIMEOUT_MINUTES or \
            not estimate_wanted(no_estimate):
        return {}, concurrency
    from automl_nb.train.estimate import TimingCache

    # Timings older than TIMING_MAX_AGE_SECONDS are taken again: they may come from other load.
    estimate = estimate_sweep(job, device=device, check_data=False,
                              cache=TimingCache(max_age_seconds=TIMING_MAX_AGE_SECONDS))
    seconds: dict[str, float] = {}  # in portfolio order: the first model is AutoMode's first trial
    for configuration in estimate.configurations:
        model = configuration.parameters["model_name"]
        if configuration.epoch_seconds is not None and model not in seconds:
            seconds[model] = configuration.epoch_seconds
    if can_focus and device == "cpu" and seconds:
        focused = planned_concurrency(next(iter(seconds.values())), budget_seconds=budget_seconds,
                                      concurrency=concurrency)
        threads, more = trial_layout(concurrency, device).threads, trial_layout(focused, device).threads
        seconds = {model: with_threads(value, threads, more) for model, value in seconds.items()}
        concurrency = focused
    epochs = {model: planned_epochs(value, budget_seconds=budget_seconds, concurrency=concurrency,
                                    max_trials=job.limits.max_trials,
                                    most=epoch_cap(job.task, model, job.training_parameters))
              for model, value in seconds.items()}
    return epochs, concurrency


def make_driver(job, store: RunStore, executor: Executor, *, time_budget_seconds: float | None = None,
                listeners: list[Callable[[dict], None]] | None = None, no_estimate: bool = False) -> SweepDriver:
    """A driver for the next session of ``job``'s sweep in ``store``.

    The time budget is the job's ``timeout_minutes`` less what earlier sessions used; ``no_estimate``:
    see :func:`new_automode_plan`.
    """
    from automl_nb.sweep.policies import make_policy

    device = "cuda" if executor.uses_gpus else "cpu"
    if time_budget_seconds is None:
        used = store.run_info().get("elapsed_seconds", 0.0)
        time_budget_seconds = job.limits.timeout_minutes * 60 - used
    planning = time.monotonic()
    plan = None
    if job.run_mode == "automode":
        plan = automode_plan(job, store, device, time_budget_seconds, can_focus=executor.can_focus,
                             no_estimate=no_estimate)
    time_budget_seconds -= time.monotonic() - planning  # the timing behind the plan is part of the budget
    concurrency = plan.get("concurrency", job.limits.max_concurrent_trials) if plan else job.limits.max_concurrent_trials
    if concurrency < job.limits.max_concurrent_trials:
        executor.focus(concurrency)
    sampler = make_sampler(job, device, plan)
    capacity = sampler.capacity if sampler.capacity is not None else job.limits.max_trials
    policy = make_policy(job.sweep.early_termination) if job.sweep is not None else None
    if policy is None and plan is not None:
        policy = make_policy(_automode_policy(job, plan))
    store.write_run(max_trials=min(job.limits.max_trials, capacity), started=time.time(),
                    primary_metric=job.primary_metric, run_mode=job.run_mode,
                    early_termination=repr(policy) if policy else None)
    return SweepDriver(job, store, executor, sampler, max_trials=min(job.limits.max_trials, capacity), policy=policy,
                       time_budget_seconds=time_budget_seconds, listeners=listeners, max_concurrent=concurrency)


def _automode_policy(job, plan: dict):
    """AutoMode's default early termination, paced by the fewest epochs it planned."""
    from automl_nb.spec import default_value
    from automl_nb.sweep.automode_plan import automode_policy

    epochs = min(plan["epochs"].values(), default=None)
    if epochs is None:
        epochs = job.training_parameters.get("number_of_epochs") or default_value("number_of_epochs", job.task)
    return automode_policy(int(epochs))
