"""Checks of a whole job that look beyond one key's value, run by ``ImageJob.validate``.

- ``checkpoint_run_id``: a local path must exist before any trial starts (the README's promise
  that every key is checked before work starts); a bare run id or a URL is left to the trial.
- ``kv_store``: SageMaker's weight-update mode of multi-machine training, refused while each
  trial trains on one machine (SageMaker: "not applicable to single-machine training").
- ``cluster``: a scheduler address, or a mapping with an address and the TLS files that
  Dask's ``Security`` takes (:func:`check_cluster`); the files must exist.
- Warnings for what a job sets that is kept but not acted on yet: the table's ``not_acted_on``
  keys (``distributed``), ``properties.node_count_per_trial``
  above 1, ``test_data`` and ``outputs``.
- A warning for ``asha`` or ``hyperband`` early termination whose first rung no trial reaches
  before its last report (:func:`warn_rungs_out_of_reach`): it would stop nothing.
"""

from __future__ import annotations

import itertools
import os
import re
import warnings
from typing import Any, Iterator, Mapping, Sequence

from automl_nb.errors import SpecError
from automl_nb.spec._checks import fail, show, unknown_key
from automl_nb.spec.distributions import Choice, Distribution
from automl_nb.spec.parameter import MODEL_NAME
from automl_nb.spec.properties import NODE_COUNT_PER_TRIAL, misspelt_properties, node_count_per_trial
from automl_nb.spec.resolve import resolve_parameters, resolve_with_sampled
from automl_nb.spec.search_space import own_name
from automl_nb.spec.sweep_settings import AshaPolicy
from automl_nb.spec.table import PARAMETERS

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
SCHEDULER_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://")
# The TLS files of a ``cluster:`` mapping, named as ``distributed.security.Security`` names them.
TLS_FILES = ("tls_ca_file", "tls_client_cert", "tls_client_key")
CLUSTER_KEYS = ("address", *TLS_FILES)
_CLUSTER_ALLOWED = ("a Dask scheduler address (tcp://host:8786), or a mapping {address: tls://host:8786, "
                    "tls_ca_file, tls_client_cert, tls_client_key}")
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


def is_scheduler_address(value: Any) -> bool:
    """True for a Dask scheduler address such as ``tcp://host:8786``."""
    return isinstance(value, str) and value.strip().lower().startswith(SCHEDULER_SCHEMES)


def check_cluster(value: Any, base_dir: str | os.PathLike) -> str | dict | None:
    """Check a job's ``cluster``: None (a local cluster), an address, or an address with TLS files.

    The mapping form names Dask's ``Security`` arguments; its TLS files are looked up against
    ``base_dir`` (the job file's folder) and must exist. A ``tls://`` mapping needs the CA file and
    the client certificate (Dask's TLS is mutual); TLS files with an unencrypted address are
    refused. A plain ``tls://`` address is left to Dask's own TLS configuration.

    Returns:
        The address (stripped), or the mapping with its keys in :data:`CLUSTER_KEYS` order.

    Raises:
        SpecError: naming the key, the value and what is allowed.

    Example:
        >>> check_cluster({"address": "tls://10.0.0.5:8786", "tls_ca_file": "ca.pem",
        ...                "tls_client_cert": "client.pem", "tls_client_key": "client.key"}, ".")
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not is_scheduler_address(value):
            fail("cluster", f"{show(value)} is not allowed; allowed: {_CLUSTER_ALLOWED}")
        return value.strip()
    if not isinstance(value, Mapping):
        fail("cluster", f"{show(value)} is not allowed; allowed: {_CLUSTER_ALLOWED}")
    for key in value:
        if key not in CLUSTER_KEYS:
            unknown_key(f"cluster.{key}", "cluster key", CLUSTER_KEYS, value[key])
    address = value.get("address")
    if not is_scheduler_address(address):
        fail("cluster.address", f"{'missing' if address is None else show(address) + ' is not allowed'}; "
             "allowed: a Dask scheduler address such as tls://host:8786")
    for key in TLS_FILES:
        path = value.get(key)
        if path is None:
            continue
        if not isinstance(path, str) or not path.strip():
            fail(f"cluster.{key}", f"{show(path)} is not allowed; allowed: the path of a PEM file")
        if not os.path.isfile(resolve_path(path, base_dir)):
            fail(f"cluster.{key}", f"{show(path)} does not exist (looked for {resolve_path(path, base_dir)}); "
                 "allowed: the path of a PEM file, relative to the job file's folder or absolute")
    given = [key for key in TLS_FILES if value.get(key) is not None]
    if address.strip().lower().startswith("tls://"):
        missing = [key for key in TLS_FILES[:2] if key not in given]
        if missing:
            fail(f"cluster.{missing[0]}", f"missing for the encrypted address {show(address)}; allowed: set "
                 f"{' and '.join('cluster.' + key for key in missing)} (PEM files; the key too unless the "
                 "certificate file holds it)")
    elif given:
        fail("cluster.address", f"{show(address)} is not encrypted, but cluster.{given[0]} is set; allowed: a "
             "tls://host:port address with TLS files, or no TLS files")
    return {key: value[key].strip() if isinstance(value[key], str) else value[key]
            for key in CLUSTER_KEYS if value.get(key) is not None}


def resolve_path(path: str, base_dir: str | os.PathLike) -> str:
    """``path`` with ``~`` expanded, made absolute against ``base_dir`` when relative."""
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else os.path.join(os.fspath(base_dir), expanded)


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
              f"acted on yet: each trial trains on one machine (kv_store has no effect either), so submitting the "
              f"job is refused; set it to 1 or leave it out (distributed: true trains a trial on every GPU of its "
              f"Dask worker)")
    for found in misspelt_properties(properties):
        _warn(f"{found} (kept as a plain property; AutoML reads only {NODE_COUNT_PER_TRIAL})")
    if test_data is not None:
        _warn("test_data: kept with the job and written by dump, but no trial reads it yet; score the best model "
              "on it with automl_nb.infer.Predictor")
    if outputs:
        _warn(f"outputs: {', '.join(outputs)} kept with the job and written by dump; a run writes its models and "
              "metrics to its run folder (submit(output=...), %%automl --output), not to these")


# What decides how many times a trial reports (its model names its default number_of_epochs).
_REPORT_KEYS = (MODEL_NAME, "number_of_epochs", "evaluation_frequency")


def trial_reports(number_of_epochs: int, evaluation_frequency: int) -> int:
    """How many times a trial reports its metric: once per validation, at every ``evaluation_frequency``-th
    epoch and at the last (as ``automl_nb.train.trainer`` validates); a policy's report ``k`` is the k-th.

    Example:
        >>> trial_reports(15, 1), trial_reports(10, 3), trial_reports(2, 5)
        (15, 4, 1)
    """
    return number_of_epochs // evaluation_frequency + (1 if number_of_epochs % evaluation_frequency else 0)


def warn_rungs_out_of_reach(task: str, training_parameters: Mapping[str, Any],
                            search_space: Sequence[Mapping[str, Any]], early_termination: Any, *,
                            planned_epochs: bool = False) -> None:
    """Warn when ``asha``'s or ``hyperband``'s first rung comes at or after every trial's last report.

    Rungs count reports, from ``min_resource`` up and below ``max_resource`` (unset: the job's
    ``number_of_epochs``), as :class:`automl_nb.sweep.policies.Asha` counts them; a rung at a trial's
    last report stops nothing. Nothing is said when a trial's number of reports is not known here: a
    range (not a choice) of ``number_of_epochs`` or ``evaluation_frequency``, or AutoMode
    (``planned_epochs``) planning the epochs of its models because ``number_of_epochs`` is not fixed.

    Args:
        task: the job's task.
        training_parameters: its fixed (checked) training parameters.
        search_space: its checked subspaces (empty without a sweep).
        early_termination: the sweep's policy record, or None.
        planned_epochs: AutoMode picks the trials' models and, unless fixed, their epochs.
    """
    if not isinstance(early_termination, AshaPolicy):  # HyperbandPolicy is one too
        return
    if planned_epochs and "number_of_epochs" not in {own_name(key) for key in training_parameters}:
        return
    counts = []
    for given, sampled in _trial_settings(training_parameters, search_space):
        if given is None:  # a range of epochs or frequency: not known here
            return
        count = _reports(task, given, sampled)
        if count is not None:
            counts.append(count)
    if not counts:
        return
    reports, epochs, frequency = max(counts)  # the trials that report the most
    first = early_termination.min_resource
    where = f"early_termination: {early_termination.type} will stop no trial: its first rung is at report {first} " \
            f"(min_resource)"
    if reports <= first:
        times = f"{reports} time{'s' if reports > 1 else ''}"
        fewer = " or lower evaluation_frequency" if frequency > 1 else ""
        lower = f", or min_resource below {reports}" if reports > 1 else ""
        _warn(f"{where}, but the trials report at most {times} (once per validation: number_of_epochs {epochs}, "
              f"evaluation_frequency {frequency}), and a rung at a trial's last report stops nothing; set "
              f"number_of_epochs above {first * frequency}{fewer}{lower}")
        return
    try:  # unset, max_resource is how many times the job's fixed parameters report, as the driver gives it
        fixed = resolve_parameters(task, training_parameters)
        bound = early_termination.max_resource or trial_reports(fixed["number_of_epochs"], fixed["evaluation_frequency"])
    except SpecError:
        return
    if bound <= first:
        _warn(f"{where}, but rungs come only below max_resource, which is unset and so the number of times the "
              f"job's own training_parameters report ({bound}), though trials report up to {reports} times; set "
              f"max_resource above {first} (e.g. {reports}), or number_of_epochs in training_parameters")


def _trial_settings(training_parameters: Mapping[str, Any],
                    search_space: Sequence[Mapping[str, Any]]) -> Iterator[tuple[dict | None, frozenset]]:
    """Each set of the values that decide a trial's reports, with the keys left to sampling: per subspace,
    one per combination of its choices of :data:`_REPORT_KEYS`; None for a subspace that samples one of
    them from a range."""
    for subspace in search_space or [{}]:
        fixed = {**training_parameters, **{key: value for key, value in subspace.items()
                                           if not isinstance(value, Distribution)}}
        sampled = frozenset(key for key, value in subspace.items() if isinstance(value, Distribution))
        choices = {key: subspace[key] for key in sampled if own_name(key) in _REPORT_KEYS}
        if any(not isinstance(choice, Choice) for choice in choices.values()):
            yield None, sampled
            continue
        for values in itertools.product(*(choice.values for choice in choices.values())):
            yield {**fixed, **dict(zip(choices, values))}, sampled - set(choices)


def _reports(task: str, given: Mapping[str, Any], sampled: frozenset) -> tuple[int, int, int] | None:
    """``(reports, number_of_epochs, evaluation_frequency)`` of a trial with ``given``; None when these values
    do not resolve (such a trial fails before it reports)."""
    try:
        resolved = resolve_with_sampled(task, given, sampled=sampled)
    except SpecError:
        return None
    epochs, frequency = resolved["number_of_epochs"], resolved["evaluation_frequency"]
    return trial_reports(epochs, frequency), epochs, frequency


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)
