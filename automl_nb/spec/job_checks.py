"""Checks of a whole job that look beyond one key's value, run by ``ImageJob.validate``.

- ``checkpoint_run_id``: a local path must exist before any trial starts (the README's promise
  that every key is checked before work starts); a bare run id or a URL is left to the trial.
- ``kv_store``: SageMaker's weight-update mode of multi-machine training, refused while each
  trial trains on one machine (SageMaker: "not applicable to single-machine training").
- Warnings for what a job sets that is kept but not acted on yet: the table's ``not_acted_on``
  keys (``distributed``), ``properties.node_count_per_trial``
  above 1, ``test_data`` and ``outputs``.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, Iterator, Mapping, Sequence

from automl_nb.spec._checks import fail, show
from automl_nb.spec.distributions import Choice, Distribution
from automl_nb.spec.properties import NODE_COUNT_PER_TRIAL, misspelt_properties, node_count_per_trial
from automl_nb.spec.table import PARAMETERS

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_local_path(value: str) -> bool:
    """Whether a ``checkpoint_run_id`` is a local path rather than a bare run id or a URL.

    A path has a folder separator, starts with ``.`` or ``~``, or ends in a checkpoint suffix;
    ``target_checkpoint_run_id`` (seed 002's example) is a run id.
    """
    if _URL.match(value) or value.startswith("azureml:"):
        return False
    return ("/" in value or os.sep in value or value.startswith((".", "~"))
            or value.lower().endswith(CHECKPOINT_SUFFIXES))


def check_checkpoint_run_id(where: str, value: str) -> None:
    """Raise when a local-path ``checkpoint_run_id`` names nothing; warn for a bare run id not found.

    The path is looked up as the trial will look it up (relative to the working directory).

    Raises:
        SpecError: ``where: 'path' does not exist; allowed: ...``.
    """
    if os.path.exists(value):
        return
    if is_local_path(value):
        fail(where, f"{show(value)} does not exist; allowed: a trial folder of an earlier run or a checkpoint "
             f"file ({', '.join(CHECKPOINT_SUFFIXES)})")
    if not _URL.match(value):
        warnings.warn(f"{where}: {show(value)} is not a local trial folder or checkpoint file; a bare Azure run id "
                      "cannot be fetched here, so a trial fails unless it exists in the workers' working directory",
                      UserWarning, stacklevel=4)


def fixed_values(key: str, training_parameters: Mapping[str, Any],
                 search_space: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Where a job gives ``key`` a value, and each value: fixed, in a subspace, or a choice's values."""
    if training_parameters.get(key) is not None:
        yield f"training_parameters.{key}", training_parameters[key]
    for index, subspace in enumerate(search_space):
        value = subspace.get(key)
        where = f"search_space[{index}].{key}"
        if isinstance(value, Choice):
            for item in value.values:
                yield where, item
        elif value is not None and not isinstance(value, Distribution):
            yield where, value


def check_checkpoints(training_parameters: Mapping[str, Any], search_space: Sequence[Mapping[str, Any]]) -> None:
    """Check every fixed ``checkpoint_run_id`` (a choice's values are left to their trials).

    Raises:
        SpecError: a local path that does not exist.
    """
    places = [("training_parameters", training_parameters)]
    places += [(f"search_space[{index}]", subspace) for index, subspace in enumerate(search_space)]
    for where, values in places:
        value = values.get("checkpoint_run_id")
        if isinstance(value, str):
            check_checkpoint_run_id(f"{where}.checkpoint_run_id", value)


def check_kv_store(training_parameters: Mapping[str, Any], search_space: Sequence[Mapping[str, Any]],
                   properties: Mapping[str, Any]) -> None:
    """Refuse ``kv_store`` while each trial trains on one machine.

    Raises:
        SpecError: ``...kv_store: 'dist_sync' ...; leave kv_store out``.
    """
    if node_count_per_trial(properties) > 1:
        return
    for where, value in fixed_values("kv_store", training_parameters, search_space):
        fail(where, f"{show(value)} sets how machines share weight updates in multi-machine training, but this "
             f"job trains each trial on one machine (SageMaker: not applicable to single-machine training); "
             f"leave kv_store out, or set properties.{NODE_COUNT_PER_TRIAL}")


def warn_not_acted_on(training_parameters: Mapping[str, Any], search_space: Sequence[Mapping[str, Any]],
                      properties: Mapping[str, Any], test_data: Any, outputs: Mapping[str, Any]) -> None:
    """Warn, once per key, about what the job sets that is kept but not acted on yet."""
    for param in PARAMETERS.values():
        if not param.not_acted_on:
            continue
        for where, value in fixed_values(param.name, training_parameters, search_space):
            if param.kind != "bool" or value is True:
                _warn(f"{where}: {show(value)} is accepted but not acted on yet: {param.not_acted_on}")
                break
    nodes = node_count_per_trial(properties)
    if nodes > 1:
        _warn(f"properties.{NODE_COUNT_PER_TRIAL}: {show(properties[NODE_COUNT_PER_TRIAL])} is accepted but not "
              f"acted on yet: each trial trains on one machine (kv_store has no effect either); the trials of a "
              f"sweep still run side by side on the cluster's workers")
    for found in misspelt_properties(properties):
        _warn(f"{found} (kept as a plain property; AutoML reads only {NODE_COUNT_PER_TRIAL})")
    if test_data is not None:
        _warn("test_data: kept with the job and written by dump, but no trial reads it yet; score the best model "
              "on it with automl_nb.infer.Predictor")
    if outputs:
        _warn(f"outputs: {', '.join(outputs)} kept with the job and written by dump; a run writes its models and "
              "metrics to its run folder (submit(output=...), %%automl --output), not to these")


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)
