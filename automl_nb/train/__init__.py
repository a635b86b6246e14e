"""One trial: ``run_trial(trial, reporter) -> TrialResult``; knows nothing of Dask."""

from automl_nb.train.setup import trial_from_job
from automl_nb.train.trainer import run_trial
from automl_nb.train.trial import NullReporter, Reporter, Trial, TrialResult

__all__ = ["NullReporter", "Reporter", "Trial", "TrialResult", "run_trial", "trial_from_job"]
