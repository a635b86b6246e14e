"""A trial's folder on disk: the one truth about the trial, written atomically.

:class:`TrialFolder` is the one reader and writer of these files; everything else (restore, the
predictor, the widgets, the magics, the sweep's store) goes through it. Layout::

    params.json              the trial's record (task, data) and its resolved training parameters
    labels.json              class names, in the model's output order
    settings.json            inference settings (SPEC section 9)
    metrics.jsonl            one row per evaluation
    status.json              Running / Completed / Failed / Canceled, best metric, error
    evaluation.json          the scores of the best evaluation
    predictions.jsonl        the validation predictions of the best evaluation, one row per image
                             (written and read by :mod:`automl_nb.analysis.predictions`)
    model_best.pt            weights at the best primary metric
    last.pt                  everything needed to resume from the last evaluation (while unfinished)
    checkpoint_epoch_<n>.pt  weights at epoch n (with checkpoint_frequency)
    onnx/                    an ONNX export (automl-nb export): model.onnx, its files and parity.json

torch is imported only by the methods that save or load a checkpoint, so the sweep's side (a
notebook kernel) can read a trial folder without loading it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from automl_nb._atomic import (append_jsonl, atomic_write_bytes, atomic_write_json, atomic_writer, read_json,
                               read_jsonl_rows)
from automl_nb.errors import RunFolderError

if TYPE_CHECKING:
    import torch

    from automl_nb.train.trial import Trial

PARAMS = "params.json"
LABELS = "labels.json"
SETTINGS = "settings.json"
METRICS = "metrics.jsonl"
STATUS = "status.json"
EVALUATION = "evaluation.json"
BEST_CHECKPOINT = "model_best.pt"
LAST_CHECKPOINT = "last.pt"
# automl_nb.export writes here by default; parity.json is its check against PyTorch.
EXPORT_FOLDER = "onnx"
PARITY_FILE = "parity.json"
# The leaderboard's columns for a trial exported to ONNX (TrialFolder.parity_columns).
EXPORT_COLUMNS = ("onnx_parity", "onnx_max_abs_diff", "onnx_speedup_batch1")
# The fields of a Trial that params.json records (``parameters`` holds the resolved ones).
_TRIAL_FIELDS = ("trial_id", "task", "parameters", "training_data", "validation_data", "validation_data_size",
                 "target_column_name")


EPOCH_CHECKPOINT_PREFIX = "checkpoint_epoch_"


def epoch_checkpoint(epoch: int) -> str:
    """The file name of the checkpoint kept at ``epoch`` (``checkpoint_frequency``)."""
    return f"{EPOCH_CHECKPOINT_PREFIX}{epoch}.pt"


class TrialFolder:
    """Reads and writes the files of one trial folder.

    Example:
        >>> folder = TrialFolder("runs/shapes/trials/0")
        >>> folder.params()["learning_rate"], folder.trial().task, folder.best_checkpoint.name
        (0.01, 'image_classification', 'model_best.pt')
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- any file --------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.path / name, obj)

    def read_json(self, name: str) -> Any:
        """A JSON file of this folder (RunFolderError, naming it, when it is damaged)."""
        return read_json(self.path / name)

    def export_parity(self) -> dict | None:
        """The parity report of the trial's ONNX export at its default place (``onnx/parity.json``);
        None when it was not exported there."""
        name = f"{EXPORT_FOLDER}/{PARITY_FILE}"
        return self.read_json(name) if self.has(name) else None

    def parity_columns(self) -> dict:
        """The export's parity as the leaderboards show it (:data:`EXPORT_COLUMNS`): ``onnx_parity``
        passed / FAILED, ``onnx_max_abs_diff``, ``onnx_speedup_batch1`` (PyTorch latency over ONNX
        Runtime's at batch 1); empty when the trial was not exported or its report cannot be read."""
        try:
            report = self.export_parity()
            if report is None:
                return {}
            latency = report["latency_ms"]
            return {"onnx_parity": "passed" if report["passed"] else "FAILED", "onnx_max_abs_diff": report["max_abs_diff"],
                    "onnx_speedup_batch1": round(latency["pytorch"]["1"] / latency["onnxruntime"]["1"], 2)}
        except (RunFolderError, KeyError, TypeError, ZeroDivisionError):  # a report we cannot read: no columns
            return {}

    # -- params.json: the trial and its parameters -------------------------------------------
    def write_description(self, trial: "Trial", parameters: Mapping[str, Any]) -> None:
        """Record the trial and its resolved ``parameters`` in params.json (see :meth:`trial`)."""
        record = {name: getattr(trial, name) for name in _TRIAL_FIELDS}
        self.write_json(PARAMS, {**record, "parameters": dict(parameters)})

    def description(self) -> dict:
        """params.json: ``trial_id``, ``task``, ``parameters`` (resolved), the data and its split.

        Raises:
            TrialError: the folder has no params.json (not a trial folder, or not started).
        """
        if not self.has(PARAMS):
            from automl_nb.errors import TrialError

            raise TrialError(f"{self.path}: not a trial folder (no {PARAMS})")
        return self.read_json(PARAMS)

    def params(self) -> dict:
        """The trial's resolved training parameters (every default filled in, the seed used)."""
        return self.description()["parameters"]

    def trial(self) -> "Trial":
        """The :class:`~automl_nb.train.trial.Trial` this folder was written by, rebuilt from params.json.

        Its parameters are the resolved ones, so running it again (same seed) splits and trains
        the same way; its ``output_dir`` is this folder.
        """
        from automl_nb.train.trial import Trial

        description = self.description()
        return Trial(output_dir=str(self.path), **{name: description[name] for name in _TRIAL_FIELDS})

    # -- labels.json, settings.json ----------------------------------------------------------
    def write_labels(self, labels: Sequence[str]) -> None:
        self.write_json(LABELS, list(labels))

    def write_settings(self, settings: Mapping[str, Any]) -> None:
        self.write_json(SETTINGS, dict(settings))

    def settings(self) -> dict:
        """settings.json (inference settings, maybe edited by the user); ``{}`` when there is none."""
        return self.read_json(SETTINGS) if self.has(SETTINGS) else {}

    # -- metrics.jsonl, evaluation.json, status.json -----------------------------------------
    def append_metrics(self, row: Mapping[str, Any]) -> None:
        append_jsonl(self.path / METRICS, dict(row))

    def metrics(self) -> list[dict]:
        """The complete rows of metrics.jsonl (none when it does not exist yet)."""
        return read_jsonl_rows(self.path / METRICS)

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop rows after ``last_epoch`` (rows written after the checkpoint we resume from)."""
        rows = [r for r in self.metrics() if r["epoch"] <= last_epoch]
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        atomic_write_bytes(self.path / METRICS, text.encode())

    def clear_metrics(self) -> None:
        """Remove metrics.jsonl (a trial that starts over)."""
        (self.path / METRICS).unlink(missing_ok=True)

    def write_evaluation(self, scores: Mapping[str, Any]) -> None:
        """Record the scores of the best evaluation so far."""
        self.write_json(EVALUATION, dict(scores))

    def write_status(self, status: str, **fields: Any) -> None:
        self.write_json(STATUS, {"status": status, "updated": time.time(), **fields})

    # -- checkpoints -------------------------------------------------------------------------
    @property
    def best_checkpoint(self) -> Path:
        """Where the weights at the best primary metric are (``model_best.pt``; maybe not written yet)."""
        return self.path / BEST_CHECKPOINT

    def has_best_model(self) -> bool:
        """The trial has evaluated at least once, so a trained model is here."""
        return self.best_checkpoint.exists()

    def has_resume_point(self) -> bool:
        """An unfinished run of the trial left its last checkpoint here."""
        return self.has(LAST_CHECKPOINT)

    def remove_resume_point(self) -> None:
        """Remove the last checkpoint (a trial that completed needs none)."""
        (self.path / LAST_CHECKPOINT).unlink(missing_ok=True)

    def save_checkpoint(self, name: str, state: Mapping[str, Any]) -> Path:
        """``torch.save`` through an atomic write: no half checkpoint after a crash.

        ``state`` holds only tensors, numbers, strings, lists, tuples and dicts (numpy numbers
        are turned into Python ones), so :func:`load_checkpoint_file` reads it back without
        unpickling any other object.
        """
        import torch

        with atomic_writer(self.path / name) as f:
            torch.save(_plain(dict(state)), f)
        return self.path / name

    def load_checkpoint(self, name: str, device: "str | torch.device" = "cpu") -> dict:
        """A checkpoint of this folder, e.g. :data:`BEST_CHECKPOINT`, its tensors on ``device``.

        Raises:
            RunFolderError: see :func:`load_checkpoint_file`.
        """
        return load_checkpoint_file(self.path / name, device)


def load_checkpoint_file(path: str | Path, device: "str | torch.device" = "cpu") -> dict:
    """Read a checkpoint that a user may have handed us, running none of its code.

    ``torch.load(weights_only=True)`` rebuilds only tensors, numbers, strings, lists, tuples and
    dicts; a pickled object of any other kind (a whole model, a numpy array, a crafted
    ``__reduce__``) is refused rather than unpickled.

    Raises:
        RunFolderError: the file is missing, damaged, not a torch checkpoint, not a dict, or
            holds other objects; the message names the file.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise RunFolderError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))  # weights_only met a class or function to call
        if found:
            raise RunFolderError(f"{path}: refused: it holds a Python object ({found.group(1)}) other than tensors, "
                                 "numbers, strings, lists and dicts, and loading it could run code; automl_nb reads "
                                 "only checkpoints of plain data (its own, or a state dict)") from None
        raise RunFolderError(f"{path}: damaged or not a torch checkpoint (not a pickle torch can read)") from None
    except Exception as error:  # torch raises RuntimeError, EOFError, KeyError... on a damaged file
        raise RunFolderError(f"{path}: damaged or not a torch checkpoint ({type(error).__name__}: "
                             f"{_gist(error)})") from None
    if not isinstance(state, dict):
        raise RunFolderError(f"{path}: not a checkpoint: expected a dict of tensors and settings, "
                             f"found {type(state).__name__}")
    return state


def _gist(error: BaseException) -> str:
    """The first sentence of torch's long messages."""
    return str(error).strip().split(". ")[0].splitlines()[0][:160] if str(error).strip() else ""


def _plain(value: Any) -> Any:
    """``value`` with numpy numbers and arrays made Python numbers and lists (torch.save-able as plain data)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if type(value).__module__ == "numpy":  # np.float64, np.int64, np.ndarray... without importing numpy
        return value.tolist()
    return value
