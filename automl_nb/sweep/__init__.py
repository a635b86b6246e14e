"""Sweeps: sample trials, run them through Dask, stop poor ones early, keep a run folder.

    >>> from automl_nb.sweep import Choice, LogUniform, submit
    >>> job.extend_search_space({"model_name": Choice(["resnet18", "mobilenetv2"]),
    ...                          "learning_rate": LogUniform(-7, -2)})
    >>> job.set_sweep(sampling_algorithm="bayesian", early_termination={"type": "bandit", "slack_factor": 0.2})
    >>> run = submit(job)          # returns at once; the sweep runs in the background
    >>> run.leaderboard()          # live, from the run folder

Layers: ``samplers`` and ``policies`` are small classes with no I/O; ``driver`` feeds them
and the ``store``; ``worker`` is the Dask task; ``run`` is the user's handle.
"""

from automl_nb.spec.distributions import (
    Choice, LogNormal, LogUniform, Normal, QLogNormal, QLogUniform, QNormal, QUniform, Randint, Uniform,
)
from automl_nb.spec.sweep_settings import (
    AshaPolicy, BanditPolicy, HyperbandPolicy, MedianStoppingPolicy, TruncationSelectionPolicy,
)
from automl_nb.sweep.run import Run, load_run, submit

__all__ = [
    "Choice", "Randint", "Uniform", "LogUniform", "QUniform", "QLogUniform", "Normal", "LogNormal", "QNormal",
    "QLogNormal", "BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy", "AshaPolicy", "HyperbandPolicy",
    "Run", "submit", "load_run",
]
