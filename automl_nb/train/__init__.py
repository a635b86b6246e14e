"""One trial: ``run_trial(trial, reporter) -> TrialResult``; knows nothing of Dask.

Names are imported on first use: the sweep's side of a trial (``Trial``, ``TrialResult``,
``Reporter``) is plain data, so the notebook kernel that submits a job never loads torch.
"""

from __future__ import annotations

from automl_nb.lazy_exports import lazy_exports

__all__ = ["NullReporter", "Reporter", "Trial", "TrialResult", "run_trial", "trial_from_job"]

_HOMES = {
    "NullReporter": "automl_nb.train.trial",
    "Reporter": "automl_nb.train.trial",
    "Trial": "automl_nb.train.trial",
    "TrialResult": "automl_nb.train.trial",
    "run_trial": "automl_nb.train.trainer",
    "trial_from_job": "automl_nb.train.setup",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
