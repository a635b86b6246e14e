"""From a job to a driver: which sampler, which policy, how many trials, how much time."""

from __future__ import annotations

import time
from typing import Callable

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


def make_sampler(job, device: str):
    """The sampler for the job's run mode: single trial, AutoMode portfolio, or its search space."""
    mode = job.run_mode
    if mode == "single":
        return SingleTrialSampler()
    if mode == "automode":
        from automl_nb.sweep.automode import automode_sampler

        return automode_sampler(job.task, job.training_parameters, n_images=count_images(job), device=device,
                                seed=sweep_seed(job), max_trials=job.limits.max_trials)
    from automl_nb.sweep.samplers import make_sampler as make_space_sampler

    return make_space_sampler(job.sweep.sampling_algorithm, job.task, job.search_space, job.training_parameters,
                              seed=sweep_seed(job), max_trials=job.limits.max_trials)


def count_images(job) -> int:
    """Training images of the job (validation ones too when given): AutoMode sizes models by it."""
    from automl_nb.data.mltable import load_records

    total = 0
    for data in (job.training_data, job.validation_data):
        if data is not None:
            total += len(load_records(job.resolve_data_path(data), job.task, job.target_column_name,
                                      check_images=False))
    return total


def make_driver(job, store: RunStore, executor: Executor, *, time_budget_seconds: float | None = None,
                listeners: list[Callable[[dict], None]] | None = None) -> SweepDriver:
    """A driver for the next session of ``job``'s sweep in ``store``.

    The time budget is the job's ``timeout_minutes`` less what earlier sessions used.
    """
    from automl_nb.sweep.policies import make_policy

    sampler = make_sampler(job, "cuda" if executor.uses_gpus else "cpu")
    capacity = sampler.capacity if sampler.capacity is not None else job.limits.max_trials
    if time_budget_seconds is None:
        used = store.run_info().get("elapsed_seconds", 0.0)
        time_budget_seconds = job.limits.timeout_minutes * 60 - used
    policy = make_policy(job.sweep.early_termination) if job.sweep is not None else None
    store.write_run(max_trials=min(job.limits.max_trials, capacity), started=time.time(),
                    primary_metric=job.primary_metric, run_mode=job.run_mode)
    return SweepDriver(job, store, executor, sampler, max_trials=min(job.limits.max_trials, capacity), policy=policy,
                       time_budget_seconds=time_budget_seconds, listeners=listeners)

