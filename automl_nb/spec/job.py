"""AutoML image jobs: the Python API mirroring Azure ML SDK v2 (SPEC section 5).

A job holds what the user asked for (data, limits, fixed training parameters, search space,
sweep) in canonical form; setters check their arguments at once and :meth:`ImageJob.validate`
checks the whole job before any trial starts. ``job.dump()`` writes the Azure CLI v2 YAML and
``load_job(job.dump()) == job``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, ClassVar, ContextManager, Iterator, Mapping

from automl_nb._atomic import atomic_write_text
from automl_nb.errors import SpecError
from automl_nb.spec._checks import fail, show, snake_case, to_float, unknown_key
from automl_nb.spec._yaml_dump import flow, to_yaml_text
from automl_nb.spec.inputs import (
    DEFAULT_TARGET_COLUMN_NAME, DEFAULT_VALIDATION_DATA_SIZE, Input, Output, as_input, as_outputs,
)
from automl_nb.spec.job_checks import (
    TLS_FILES, check_checkpoints, check_cluster, check_kv_store, is_scheduler_address, resolve_path, warn_not_acted_on,
    warn_rungs_out_of_reach,
)
from automl_nb.spec.limits import Limits
from automl_nb.spec.parameter import MODEL_NAME
from automl_nb.spec.properties import check_properties
from automl_nb.spec.resolve import check_parameters, check_required, resolve_parameters
from automl_nb.spec.search_space import (
    check_grid, check_search_space, parse_search_space, search_space_to_list,
)
from automl_nb.spec.sweep_settings import Sweep
from automl_nb.spec.tasks import (
    DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION, TASKS, check_task, normalize_primary_metric,
)

LOG_VERBOSITIES = ("not_set", "debug", "info", "warning", "error", "critical")
JOB_TYPE = "automl"
# Top-level YAML keys, in the order ``dump`` writes them.
JOB_KEYS = (
    "$schema", "type", "name", "display_name", "description", "experiment_name", "task",
    "log_verbosity", "compute", "cluster", "target_column_name", "primary_metric",
    "training_data", "validation_data", "validation_data_size", "test_data", "limits", "training_parameters",
    "search_space", "sweep", "tags", "properties", "outputs",
)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


class DumpTargetExistsError(SpecError, FileExistsError):
    """``job.dump(dest)`` refuses to overwrite an existing file."""


@contextmanager
def _prefixed(prefix: str) -> Iterator[None]:
    """Prefix the key of a SpecError raised inside with ``prefix.``."""
    try:
        yield
    except SpecError as error:
        raise SpecError(f"{prefix}.{error}") from None


def _optional_text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        fail(key, f"{show(value)} is not allowed; allowed: a non-empty string")
    return value


class ImageJob:
    """An AutoML image job; use a task subclass or a factory such as :func:`image_classification`.

    Attributes:
        task, name, display_name, description, experiment_name, target_column_name,
        training_data, validation_data, validation_data_size (None: 0.2 held out when there is
        no validation_data), primary_metric, limits, training_parameters (what the user set,
        canonical values), search_space (list of subspaces), sweep, cluster, compute, tags,
        log_verbosity, schema, status ("NotStarted"), base_dir (relative data paths resolve
        against it: the YAML file's folder, else the working directory at creation).
        Azure SDK v2 attributes: ``task_type`` and ``type`` (read-only), ``inputs`` (the data
        inputs by name, read-only), ``test_data`` (an Input kept and dumped; no trial reads it
        yet), ``outputs`` (Outputs by name, kept and dumped; a run writes to its run folder),
        ``properties`` (kept and dumped; ``node_count_per_trial`` is checked).
    """

    task: ClassVar[str] = ""

    def __init__(self, *, training_data: Any = None, validation_data: Any = None,
                 target_column_name: str = DEFAULT_TARGET_COLUMN_NAME, primary_metric: str | None = None,
                 validation_data_size: float | None = None, name: str | None = None,
                 display_name: str | None = None, description: str | None = None,
                 experiment_name: str | None = None, cluster: str | Mapping[str, str] | None = None,
                 compute: str | None = None, tags: Mapping[str, Any] | None = None,
                 log_verbosity: str | None = None, schema: str | None = None,
                 limits: Limits | Mapping[str, Any] | None = None,
                 training_parameters: Mapping[str, Any] | None = None,
                 search_space: Any = None, sweep: Sweep | Mapping[str, Any] | None = None,
                 base_dir: str | os.PathLike | None = None, test_data: Any = None,
                 properties: Mapping[str, Any] | None = None, outputs: Mapping[str, Any] | None = None) -> None:
        if self.task not in TASKS:
            raise TypeError("use a task subclass (ImageClassificationJob...) or a factory (image_classification...)")
        self.status = "NotStarted"
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.name = _optional_text("name", name)
        self.display_name = _optional_text("display_name", display_name)
        self.description = _optional_text("description", description)
        self.experiment_name = _optional_text("experiment_name", experiment_name)
        self.schema = _optional_text("$schema", schema)
        self.log_verbosity = self._check_log_verbosity(log_verbosity)
        self.primary_metric = normalize_primary_metric(self.task, primary_metric)
        self.tags = self._check_tags(tags)
        self.cluster = check_cluster(cluster, self.base_dir)
        self.compute = _optional_text("compute", compute)
        self._check_compute()
        self.set_data(training_data=training_data, target_column_name=target_column_name,
                      validation_data=validation_data, validation_data_size=validation_data_size)
        self.test_data = test_data
        self.properties = properties
        self.outputs = outputs
        self.limits = Limits() if limits is None else (limits if isinstance(limits, Limits) else Limits.from_dict(limits))
        self.training_parameters: dict[str, Any] = {}
        self.search_space: list[dict[str, Any]] = []
        self.sweep: Sweep | None = None
        if training_parameters:
            self._set_training_parameters(training_parameters)
        if search_space:
            self.extend_search_space(search_space)
        if sweep is not None:
            self.sweep = sweep if isinstance(sweep, Sweep) else Sweep.from_dict(sweep)

    # ----- checks of single fields
    @staticmethod
    def _check_log_verbosity(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str) and snake_case(value) in LOG_VERBOSITIES:
            return snake_case(value)
        fail("log_verbosity", f"{show(value)} is not allowed; allowed: one of {', '.join(LOG_VERBOSITIES)}")

    @staticmethod
    def _check_tags(tags: Any) -> dict[str, Any]:
        if tags is None:
            return {}
        if not isinstance(tags, Mapping):
            fail("tags", f"{show(tags)} is not a mapping of names to values")
        for key, value in tags.items():
            if not isinstance(key, str) or not (value is None or isinstance(value, (str, int, float, bool))):
                fail(f"tags.{key}", f"{show(value)} is not allowed; allowed: a string name with a scalar value")
        return dict(tags)

    def _check_compute(self) -> None:
        if self.compute is not None and not is_scheduler_address(self.compute):
            warnings.warn(f"compute {self.compute!r} is not a Dask scheduler address and is ignored; "
                          "set cluster: tcp://host:8786 to use a cluster (else a local one is made)",
                          UserWarning, stacklevel=3)
        self._check_addresses()

    # ----- Azure SDK v2 attributes
    @property
    def task_type(self) -> str:
        """The task, as the Azure SDK's ``job.task_type`` (e.g. ``image_object_detection``)."""
        return self.task

    @property
    def type(self) -> str:
        """The job type, as the Azure SDK's ``job.type``: ``automl``."""
        return JOB_TYPE

    @property
    def test_data(self) -> Input | None:
        """Optional test data, kept with the job and dumped; no trial or run reads it yet.

        Set it to an Input, a ``{path, type}`` mapping, a path, or None.
        """
        return self._test_data

    @test_data.setter
    def test_data(self, value: Any) -> None:
        self._test_data = as_input(value, "test_data")

    @property
    def outputs(self) -> dict[str, Output]:
        """Named outputs (Azure's ``Output``), kept and dumped; a run writes to its run folder, not to these.

        Set it to a mapping of names to Outputs, ``{type, path, mode}`` mappings or paths.
        """
        return self._outputs

    @outputs.setter
    def outputs(self, value: Any) -> None:
        self._outputs = as_outputs(value)

    @property
    def properties(self) -> dict[str, Any]:
        """Azure's free-form job properties, kept and dumped; ``node_count_per_trial`` is checked."""
        return self._properties

    @properties.setter
    def properties(self, value: Any) -> None:
        self._properties = check_properties(value)

    @property
    def inputs(self) -> dict[str, Input]:
        """The job's data inputs by name (``training_data``, ``validation_data``, ``test_data``), those set."""
        named = {"training_data": self.training_data, "validation_data": self.validation_data,
                 "test_data": self.test_data}
        return {name: value for name, value in named.items() if value is not None}

    def _check_addresses(self) -> None:
        address = self.scheduler_address()
        if self.cluster is not None and is_scheduler_address(self.compute) and self.compute != address:
            fail("cluster", f"{show(address)} differs from compute {show(self.compute)}; give one scheduler address")

    # ----- Azure SDK v2 setters
    def set_data(self, *, training_data: Any, target_column_name: str, validation_data: Any = None,
                 validation_data_size: float | None = None) -> None:
        """Set the data inputs.

        Args:
            training_data: an Input, a ``{path, type}`` mapping or a path (required to run).
            target_column_name: the label column, usually ``label``.
            validation_data: optional validation Input.
            validation_data_size: fraction of training data held out when there is no
                validation_data, in (0, 1); None means 0.2.

        Raises:
            SpecError: invalid input, empty column name, size out of range, or both
                validation_data and validation_data_size.
        """
        training = as_input(training_data, "training_data")
        validation = as_input(validation_data, "validation_data")
        if not isinstance(target_column_name, str) or not target_column_name.strip():
            fail("target_column_name", f"{show(target_column_name)} is not allowed; allowed: a non-empty column name")
        size = None
        if validation_data_size is not None:
            try:
                size = to_float(validation_data_size)
            except ValueError:
                size = -1.0
            if not 0 < size < 1:
                fail("validation_data_size", f"{show(validation_data_size)} is out of range; allowed: float in (0, 1)")
            if validation is not None:
                fail("validation_data_size", f"{show(validation_data_size)} is given with validation_data; "
                     "it only sizes the hold-out when there is no validation_data, give one of them")
        self.training_data: Input | None = training
        self.validation_data: Input | None = validation
        self.target_column_name = target_column_name
        self.validation_data_size: float | None = size

    def set_limits(self, *, max_trials: int | None = None, max_concurrent_trials: int | None = None,
                   timeout_minutes: int | timedelta | None = None) -> None:
        """Set the limits; arguments left as None keep their current values.

        ``max_concurrent_trials`` is capped to ``max_trials`` when set, so set both together.
        ``timeout_minutes`` may be a ``timedelta`` of whole minutes, as the Azure SDK takes.

        Raises:
            SpecError: a value out of range (max_trials 1..1000, max_concurrent_trials 1..100,
                timeout_minutes 1..86400).

        Example:
            >>> job.set_limits(max_trials=10, timeout_minutes=timedelta(hours=2))
        """
        given = {"max_trials": max_trials, "max_concurrent_trials": max_concurrent_trials,
                 "timeout_minutes": timeout_minutes}
        current = self.limits.to_dict()
        self.limits = Limits(**{**current, **{k: v for k, v in given.items() if v is not None}})

    def set_training_parameters(self, **kwargs: Any) -> None:
        """Set fixed training parameters (applied to every trial); a None value unsets a key.

        Values are checked at once against the parameter table for the task (and for the model
        when ``model_name`` is set here or before); the full check is :meth:`validate`.

        Raises:
            SpecError: unknown key (with a suggestion), wrong type, out of range, a key that
                does not apply to the task or model, a SageMaker key contradicting ours.

        Example:
            >>> job = image_object_detection(training_data="train.jsonl")
            >>> job.set_training_parameters(model_name="yolov5", model_size="small")
        """
        self._set_training_parameters(kwargs)

    def _set_training_parameters(self, values: Mapping[str, Any]) -> None:
        if not isinstance(values, Mapping):
            fail("training_parameters", f"{show(values)} is not a mapping of parameter names to values")
        merged = dict(self.training_parameters)
        for key, value in values.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        self.training_parameters = check_parameters(self.task, merged)

    def extend_search_space(self, value: Any) -> None:
        """Add subspaces: a mapping, a list of mappings, or objects with attributes.

        Values are distributions (``Uniform(...)``, ``{type: uniform, ...}``) or fixed values.

        Raises:
            SpecError: ``search_space[i].key: ...`` for any invalid key or distribution.

        Example:
            >>> from automl_nb.spec import Choice, Uniform
            >>> job = image_object_detection(training_data="train.jsonl")
            >>> job.extend_search_space([{"model_name": Choice(["yolov5"]), "learning_rate": Uniform(1e-4, 1e-2)}])
        """
        start = len(self.search_space)
        subspaces = parse_search_space(value, start)
        self.search_space = self.search_space + check_search_space(self.task, subspaces, self.training_parameters, start)

    def set_sweep(self, *, sampling_algorithm: str, early_termination: Any = None) -> None:
        """Set the sampling algorithm (random, grid, bayesian) and optional early-termination policy.

        Args:
            sampling_algorithm: ``random``, ``grid`` or ``bayesian`` in any casing (``"Random"``).
            early_termination: a ``BanditPolicy``, ``MedianStoppingPolicy`` or
                ``TruncationSelectionPolicy`` (from ``automl_nb.sweep``, as from ``azure.ai.ml.sweep``),
                its YAML mapping, or None.

        Raises:
            SpecError: unknown algorithm or invalid policy.

        Example:
            >>> from automl_nb.sweep import BanditPolicy
            >>> job.set_sweep(sampling_algorithm="Random",
            ...               early_termination=BanditPolicy(evaluation_interval=2, slack_factor=0.2))
        """
        self.sweep = Sweep(sampling_algorithm, early_termination)

    # ----- whole-job checks and derived values
    @property
    def run_mode(self) -> str:
        """``"sweep"`` with a search space, ``"automode"`` with max_trials > 1 and none, else ``"single"``."""
        if self.search_space:
            return "sweep"
        return "automode" if self.limits.max_trials > 1 else "single"

    def validate(self) -> None:
        """Check the whole job before any trial starts.

        Warns about keys kept but not acted on yet, and about an asha or hyperband policy whose
        first rung no trial reaches before its last report (see :mod:`automl_nb.spec.job_checks`).

        Raises:
            SpecError: missing training_data; any invalid training parameter for the task and
                each model a trial may use (``training_parameters.key: ...``); a key its mode
                requires (SageMaker's SSD: ``num_classes``, ``num_training_samples``); a
                ``checkpoint_run_id`` path that does not exist; ``kv_store`` on one machine;
                search-space errors (``search_space[i].key: ...``); a search space without a
                sweep; grid sampling with a non-choice distribution or without a search space;
                ``validation_metric_type: none`` in a sweep; two different scheduler addresses.
        """
        if self.training_data is None:
            fail("training_data", "missing; allowed: an Input, e.g. {path: data/training-mltable-folder, type: mltable}")
        self.set_data(training_data=self.training_data, target_column_name=self.target_column_name,
                      validation_data=self.validation_data, validation_data_size=self.validation_data_size)
        with _prefixed("training_parameters"):
            fixed = check_parameters(self.task, self.training_parameters)
            if not self.search_space and (self.run_mode == "single" or MODEL_NAME in fixed):
                resolve_parameters(self.task, fixed)
            # AutoMode names the models of its trials, so no trial of it trains SageMaker's SSD.
            for subspace in self.search_space or ([{}] if self.run_mode == "single" else []):
                check_required(self.task, {**fixed, **subspace})
        if self.search_space:
            if self.sweep is None:
                fail("search_space", "needs a sweep, which is missing; add sweep: {sampling_algorithm: random | grid | bayesian}")
            check_search_space(self.task, self.search_space, fixed)
            if self.sweep.sampling_algorithm == "grid":
                check_grid(self.search_space)
        elif self.sweep is not None and self.sweep.sampling_algorithm == "grid":
            fail("sweep", "grid sampling needs a search_space to enumerate; add one or use random sampling")
        self._check_metric_for_comparison(fixed)
        self._check_addresses()
        check_checkpoints(fixed, self.search_space)
        check_kv_store(fixed, self.search_space, self.properties)
        warn_not_acted_on(fixed, self.search_space, self.properties, self.test_data, self.outputs)
        policy = self.sweep.early_termination if self.sweep else None
        warn_rungs_out_of_reach(self.task, fixed, self.search_space, policy, planned_epochs=self.run_mode == "automode")

    def _check_metric_for_comparison(self, fixed: Mapping[str, Any]) -> None:
        """Trials of a sweep are compared by the primary metric, which ``validation_metric_type: none`` leaves out."""
        if self.run_mode == "single":
            return
        key = "validation_metric_type"
        swept = [s[key] for s in self.search_space if key in s]
        if fixed.get(key) == "none" or any("none" in getattr(dist, "values", (dist,)) for dist in swept):
            where = "training_parameters" if fixed.get(key) == "none" else "search_space"
            fail(f"{where}.{key}", f"'none' computes no {self.primary_metric}, so the trials of this "
                 f"{self.run_mode} cannot be compared; allowed: coco, voc or coco_voc (none only with a single trial)")

    def submit(self, output: str | os.PathLike | None = None, **options: Any):
        """Validate the job and start it as a sweep in the background; return its ``Run``.

        See :func:`automl_nb.sweep.submit` for ``output`` and ``options`` (``cluster``, ``client``).
        """
        # The one call from this bottom layer upward: jobs submit themselves as Azure's do.
        from automl_nb.sweep import submit

        return submit(self, output, **options)

    def resolved_training_parameters(self) -> dict[str, Any]:
        """Every parameter of a single trial: the fixed ones plus defaults for the task and model.

        Raises:
            SpecError: as :func:`resolve_parameters`.
        """
        return resolve_parameters(self.task, self.training_parameters)

    def trial_parameters(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter of one sweep trial: fixed ones, the sampled ones, defaults for the rest.

        Raises:
            SpecError: as :func:`resolve_parameters` (e.g. ViT crops sampled unequal).
        """
        return resolve_parameters(self.task, {**self.training_parameters, **sampled})

    def effective_validation_data_size(self) -> float | None:
        """The hold-out fraction used without validation_data (default 0.2); None with it."""
        if self.validation_data is not None:
            return None
        return self.validation_data_size if self.validation_data_size is not None else DEFAULT_VALIDATION_DATA_SIZE

    def scheduler_address(self) -> str | None:
        """The Dask scheduler to use: ``cluster`` (its address), else a scheduler address in ``compute``,
        else None (local)."""
        if self.cluster is not None:
            return self.cluster["address"] if isinstance(self.cluster, dict) else self.cluster
        return self.compute if is_scheduler_address(self.compute) else None

    def cluster_connection(self) -> str | dict | None:
        """What :func:`automl_nb.cluster.connect` takes: the scheduler address, or with TLS a mapping
        of it and its TLS files (absolute paths); None: a local cluster.

        Example:
            >>> job.cluster_connection()
            {'address': 'tls://10.0.0.5:8786', 'tls_ca_file': '/home/me/certs/ca.pem', ...}
        """
        if not isinstance(self.cluster, dict):
            return self.scheduler_address()
        return {key: resolve_path(value, self.base_dir) if key in TLS_FILES else value
                for key, value in self.cluster.items()}

    def resolve_data_path(self, value: Input | str | os.PathLike) -> str:
        """Resolve a data path: URLs and absolute paths as they are, relative ones against base_dir.

        Args:
            value: an Input or a path.

        Returns:
            The path or URL as a string.
        """
        path = value.path if isinstance(value, Input) else os.fspath(value)
        if _URL.match(path) or path.startswith("azureml:"):
            return path
        expanded = os.path.expanduser(path)
        if os.path.isabs(expanded):
            return expanded
        return str(Path(self.base_dir) / expanded)

    # ----- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Return the job as plain YAML-ready data, keys in the order of ``JOB_KEYS``."""
        data: dict[str, Any] = {
            "$schema": self.schema, "type": JOB_TYPE, "name": self.name, "display_name": self.display_name,
            "description": self.description, "experiment_name": self.experiment_name, "task": self.task,
            "log_verbosity": self.log_verbosity, "compute": self.compute,
            "cluster": dict(self.cluster) if isinstance(self.cluster, dict) else self.cluster,
            "target_column_name": self.target_column_name, "primary_metric": self.primary_metric,
            "training_data": flow(self.training_data.to_dict()) if self.training_data else None,
            "validation_data": flow(self.validation_data.to_dict()) if self.validation_data else None,
            "validation_data_size": self.validation_data_size,
            "test_data": flow(self.test_data.to_dict()) if self.test_data else None,
            "limits": self.limits.to_dict(),
            "training_parameters": _training_parameters_to_yaml(self.training_parameters) or None,
            "search_space": [{key: flow(value) if isinstance(value, dict) and "type" in value else value
                              for key, value in subspace.items()}
                             for subspace in search_space_to_list(self.search_space)] or None,
            "sweep": _sweep_to_yaml(self.sweep),
            "tags": dict(self.tags) or None,
            "properties": dict(self.properties) or None,
            "outputs": {name: flow(output.to_dict()) for name, output in self.outputs.items()} or None,
        }
        return {key: value for key, value in data.items() if value is not None}

    def dump(self, dest: str | os.PathLike | Any = None) -> str:
        """Return the job as Azure CLI v2 YAML; with ``dest`` also write it there.

        Args:
            dest: a path (must not exist yet) or an open text file; None only returns the text.

        Returns:
            The YAML text.

        Raises:
            DumpTargetExistsError: (a SpecError and FileExistsError) if a file exists at ``dest``.
        """
        text = to_yaml_text(self.to_dict())
        if dest is None:
            return text
        if hasattr(dest, "write"):
            dest.write(text)
            return text
        path = Path(dest)
        if path.exists():
            raise DumpTargetExistsError(f"dest: {str(path)!r} already exists; choose a new path or remove it")
        atomic_write_text(path, text)
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageJob):
            return NotImplemented
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, task={self.task!r}, status={self.status!r})"


def _training_parameters_to_yaml(values: Mapping[str, Any]) -> dict[str, Any]:
    result = {}
    for key, value in values.items():
        # Azure's schema takes advanced_settings as a JSON string.
        result[key] = json.dumps(value) if isinstance(value, dict) else value
    return result


def _sweep_to_yaml(sweep: Sweep | None) -> dict[str, Any] | None:
    if sweep is None:
        return None
    data = sweep.to_dict()
    if "early_termination" in data:
        data["early_termination"] = flow(data["early_termination"])
    return data


class ImageClassificationJob(ImageJob):
    """Multiclass image classification (primary metric: accuracy)."""

    task = MULTICLASS


class ImageClassificationMultilabelJob(ImageJob):
    """Multilabel image classification (primary metric: iou)."""

    task = MULTILABEL


class ImageObjectDetectionJob(ImageJob):
    """Object detection (primary metric: mean_average_precision)."""

    task = DETECTION


class ImageInstanceSegmentationJob(ImageJob):
    """Instance segmentation (primary metric: mean_average_precision of masks)."""

    task = SEGMENTATION


JOB_CLASSES: Mapping[str, type[ImageJob]] = {
    cls.task: cls for cls in (ImageClassificationJob, ImageClassificationMultilabelJob,
                              ImageObjectDetectionJob, ImageInstanceSegmentationJob)
}


def _factory(cls: type[ImageJob]) -> Callable[..., ImageJob]:
    def make(*, training_data: Any = None, validation_data: Any = None,
             target_column_name: str = DEFAULT_TARGET_COLUMN_NAME, primary_metric: str | None = None,
             validation_data_size: float | None = None,
             name: str | None = None, experiment_name: str | None = None,
             cluster: str | Mapping[str, str] | None = None,
             compute: str | None = None, tags: Mapping[str, Any] | None = None, **kwargs: Any) -> ImageJob:
        return cls(training_data=training_data, validation_data=validation_data,
                   target_column_name=target_column_name, primary_metric=primary_metric,
                   validation_data_size=validation_data_size, name=name, experiment_name=experiment_name,
                   cluster=cluster, compute=compute, tags=tags, **kwargs)

    make.__name__ = make.__qualname__ = cls.task
    make.__doc__ = f"""Create an {cls.__name__} ({cls.task}).

    Args:
        training_data: an Input, ``{{path, type}}`` mapping or path; required to run.
        validation_data: optional validation Input.
        target_column_name: the label column (default ``label``).
        primary_metric: optional; the task has one ({cls.task}: see PRIMARY_METRICS).
        validation_data_size: hold-out fraction without validation_data, in (0, 1); None: 0.2.
        name, experiment_name, tags: job metadata.
        cluster: a Dask scheduler address (``tcp://host:8786``), or for TLS a mapping
            ``{{address: tls://host:8786, tls_ca_file, tls_client_cert, tls_client_key}}``; None: a local cluster.
        compute: Azure's compute; a scheduler address is used, anything else ignored with a notice.
        **kwargs: further ImageJob keywords (limits, training_parameters, search_space, sweep...).

    Returns:
        The job.

    Raises:
        SpecError: for any invalid argument.
    """
    return make


image_classification = _factory(ImageClassificationJob)
image_classification_multilabel = _factory(ImageClassificationMultilabelJob)
image_object_detection = _factory(ImageObjectDetectionJob)
image_instance_segmentation = _factory(ImageInstanceSegmentationJob)


# ----- building a job from its YAML data
@contextmanager
def _no_location(section: tuple) -> Iterator[None]:
    """The default ``located`` of :func:`job_from_dict`: errors pass through unchanged."""
    yield


def job_from_dict(data: Any, *, base_dir: str | os.PathLike | None = None,
                  located: Callable[[tuple], ContextManager[None]] = _no_location) -> ImageJob:
    """Build a job from the YAML data of an Azure CLI v2 AutoML image job.

    Args:
        data: the parsed YAML mapping.
        base_dir: folder relative data paths resolve against (None: the working directory).
        located: ``located(section_path)`` wraps the building of each section so a YAML
            loader can point errors at lines.

    Returns:
        The job, validated.

    Raises:
        SpecError: for any unknown key or invalid value.
    """
    with located(()):
        if not isinstance(data, Mapping):
            fail("job", f"{show(data)} is not a mapping; an AutoML image job has keys such as task, training_data")
        for key in data:
            if key not in JOB_KEYS:
                unknown_key(key, "job key", JOB_KEYS, data[key])
        if data.get("type", JOB_TYPE) != JOB_TYPE:
            fail("type", f"{show(data['type'])} is not allowed; allowed: {JOB_TYPE}")
        if "task" not in data:
            fail("task", f"missing; allowed: one of {', '.join(TASKS)}")
        task = check_task(data["task"])
        job = JOB_CLASSES[task](
            target_column_name=data.get("target_column_name", DEFAULT_TARGET_COLUMN_NAME),
            primary_metric=data.get("primary_metric"), name=data.get("name"),
            display_name=data.get("display_name"), description=data.get("description"),
            experiment_name=data.get("experiment_name"), cluster=data.get("cluster"),
            compute=data.get("compute"), tags=data.get("tags"), log_verbosity=data.get("log_verbosity"),
            schema=data.get("$schema"), base_dir=base_dir,
            training_data=data.get("training_data"), validation_data=data.get("validation_data"),
            validation_data_size=data.get("validation_data_size"), test_data=data.get("test_data"),
            properties=data.get("properties"), outputs=data.get("outputs"),
        )
    with located(("limits",)):
        job.limits = Limits.from_dict(data.get("limits"))
    with located(("training_parameters",)):
        if data.get("training_parameters") is not None:
            job._set_training_parameters(data["training_parameters"])
    with located(()):
        if data.get("search_space") is not None:
            job.extend_search_space(data["search_space"])
    with located(("sweep",)):
        if data.get("sweep") is not None:
            job.sweep = Sweep.from_dict(data["sweep"])
    with located(()):
        job.validate()
    return job
