"""The records that cross the train/ boundary: a trial to run, its reporter, its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME


@dataclass(frozen=True)
class Trial:
    """Everything one training run needs; plain and picklable so a Dask worker can take it.

    Attributes:
        trial_id: unique within the job, e.g. ``"0"``.
        task: one of the four task names.
        parameters: training parameters as given (sampled or set); defaults are filled
            in by ``automl_nb.spec.resolve_parameters`` when the trial starts.
        training_data: resolved path or URL of a JSONL file or MLTable folder.
        validation_data: the same for validation, or None to split the training data.
        validation_data_size: fraction held out when ``validation_data`` is None
            (None: the job's default).
        target_column_name: the JSONL key holding labels.
        output_dir: the trial's folder; created if missing.
        resume: continue from ``output_dir/last.pt`` when it exists.
        image_cache_url: the shared image cache the trial streams through unless its parameters
            or its machine name another (a run on a URL sets its ``image-cache/``); None: none.
    """

    trial_id: str
    task: str
    parameters: Mapping[str, Any]
    training_data: str
    output_dir: str
    validation_data: str | None = None
    validation_data_size: float | None = None
    target_column_name: str = DEFAULT_TARGET_COLUMN_NAME
    resume: bool = False
    image_cache_url: str | None = None


@runtime_checkable
class Reporter(Protocol):
    """How a sweep (or a test) watches a trial and stops it."""

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Called once per evaluation with a flat row of metrics."""

    def should_stop(self) -> bool:
        """Polled after each report; True ends the trial as Canceled."""


class NullReporter:
    """A reporter that records nothing and never stops the trial."""

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        pass

    def should_stop(self) -> bool:
        return False


@dataclass(frozen=True)
class TrialResult:
    """How a trial ended.

    ``status`` is Completed, Failed or Canceled (stopped by its reporter). A trial ended
    by early stopping is Completed with ``stopped_early`` True.
    """

    trial_id: str
    status: str
    primary_metric: str
    best_metric: float | None
    best_epoch: int | None
    epochs_completed: int
    output_dir: str
    stopped_early: bool = False
    last_metrics: Mapping[str, float] = field(default_factory=dict)
