"""The label audit: images where the trials that learned all disagree with the label on file.

From a run's chosen trials (by default the better half of those with a metric, at least
:data:`MIN_TRIALS`), each image's predictions are compared with its labels:

- ``wrong_label`` (classification): every trial predicts the same class (multilabel: the same
  change of a tag), not the one on file, with a mean confidence >= ``confidence``.
- ``missing_box`` (detection, segmentation): every trial detects an object of the same class
  at the same place (IoU >= 0.5 with the first trial's box), their mean score >= ``confidence``,
  and no box on file, of any class, overlaps it at IoU >= :data:`NEAR_IOU` (a detection that
  does is a badly placed box of a labelled object, not a missing one).
- ``spurious_box``: a box on file that no trial finds: the mean over trials of one minus the best
  score of a detection (any class) overlapping it at IoU >= 0.5 is >= ``confidence``.

Validation images come from each trial's ``predictions.jsonl`` (no model). With
``include_training``, each trial's model also predicts the images it trained on, once: the rows
are cached in the run folder (``audit/predictions_<trial>.jsonl``, redone when the trial's
``model_best.pt`` is newer), so reopening the audit after a restart loads no model. A model
tends to agree with the labels it was trained on, so findings on training images are fewer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from automl_nb.analysis.predictions import (
    IOU_THRESHOLD, PREDICTIONS, box_array, read_rows, row_from_output, write_rows,
)
from automl_nb.errors import AutoMLError
from automl_nb.metrics.classification import MULTILABEL_THRESHOLD
from automl_nb.metrics.detection_types import box_iou

if TYPE_CHECKING:
    import pandas

# An analysis setting, not a hyperparameter: the mean confidence with which the trials must
# contradict a label for it to be a finding. Lower finds more errors and more false alarms.
DEFAULT_CONFIDENCE = 0.9
# The trials chosen by default: this fraction of those with a metric, the best first...
TOP_FRACTION = 0.5
# ...and never fewer than this: one model alone cannot "agree".
MIN_TRIALS = 2
# A detection overlapping a box on file this much is taken as that object, badly placed. Measured
# on bench/label_audit.py's detection part: 0.5 let the trials' shared misplaced boxes through
# (110 candidates for 14 removed boxes), 0.2 kept the removed ones and few others (16 for 14).
NEAR_IOU = 0.2
AUDIT_FOLDER = "audit"
WRONG_LABEL, MISSING_BOX, SPURIOUS_BOX = "wrong_label", "missing_box", "spurious_box"
COLUMNS = ("image", "split", "kind", "label", "agreed", "confidence", "box", "polygon", "source")


@dataclass(frozen=True)
class AuditFindings:
    """What :func:`audit_labels` found, one row of :attr:`frame` per finding.

    Attributes:
        frame: a pandas DataFrame with columns ``image`` (the image URL), ``split``
            (``validation`` for every chosen trial, ``training`` for every one, else ``mixed``),
            ``kind``, ``label`` (on file: the class, tags, or the box's class), ``agreed`` (what
            the trials agree on), ``confidence`` (their mean), ``box`` (normalised
            ``{"topX", ...}`` or None), ``polygon`` (a missing object's outline, segmentation) and
            ``source`` (``file:line`` of the image's labels).
        trials: the trial ids that were compared.
        task: the run's task.
        target_column_name: the label key of the labels files.
        confidence: the confidence asked for.
    """

    frame: "pandas.DataFrame"
    trials: tuple[str, ...]
    task: str
    target_column_name: str
    confidence: float

    def __len__(self) -> int:
        return len(self.frame)

    def counts(self) -> dict[str, int]:
        """Findings per kind."""
        return {kind: int(n) for kind, n in self.frame["kind"].value_counts().items()}

    def _repr_html_(self) -> str:
        head = (f"<p>label audit of trials {', '.join(self.trials)} at confidence {self.confidence}: "
                f"{len(self)} findings</p>")
        return head + self.frame.drop(columns=["polygon"])._repr_html_()


def audit_labels(run: Any, *, trials: Sequence[str | int] | None = None, confidence: float = DEFAULT_CONFIDENCE,
                 include_training: bool = True, progress: bool = True) -> AuditFindings:
    """Find likely label errors where the chosen trials all contradict the labels on file.

    Args:
        run: a :class:`~automl_nb.sweep.Run` or its folder.
        trials: trial ids to compare (at least :data:`MIN_TRIALS`); default: the better half of
            the trials with a metric, at least :data:`MIN_TRIALS`.
        confidence: the mean confidence the trials need to contradict a label, in (0.5, 1).
        include_training: also audit the images each trial trained on (runs each model once,
            then reads its cache in the run folder).
        progress: show a progress bar while models predict.

    Returns:
        The findings, most confident first.

    Raises:
        ValueError: ``confidence`` out of range.
        AutoMLError: fewer than :data:`MIN_TRIALS` trials with a metric (or given), or an unknown trial.
        RunFolderError: a trial has no (or a damaged) ``predictions.jsonl``.

    Example:
        >>> findings = audit_labels(run)
        >>> findings.frame[["image", "kind", "label", "agreed", "confidence"]].head(3)
    """
    import pandas

    from automl_nb.data.mltable import load_records
    from automl_nb.sweep.run import as_run
    from automl_nb.train.folder import LABELS, TrialFolder

    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.5 < confidence < 1:
        raise ValueError(f"confidence: {confidence!r} is not a number in (0.5, 1)")
    run = as_run(run)
    folders = [TrialFolder(run.store.trial_folder(trial_id)) for trial_id in chosen_trials(run, trials)]
    description = folders[0].description()
    task, column = description["task"], description["target_column_name"]
    classes = folders[0].read_json(LABELS)
    different = [f.path.name for f in folders if f.read_json(LABELS) != classes]
    if different:
        raise AutoMLError(f"trials {different} have other classes than trial {folders[0].path.name} ({classes}); "
                          "audit trials of the same data")
    records = {}
    for data in (description["training_data"], description["validation_data"]):
        if data:
            records.update((r.image_url, r) for r in load_records(data, task, column, check_images=False))
    rows_by_trial, validation = [], []
    for folder in folders:
        rows = {row["filename"]: row for row in read_rows(folder.path / PREDICTIONS)}
        validation.append(set(rows))
        if include_training:
            others = [r for name, r in records.items() if name not in rows]
            rows.update((row["filename"], row) for row in training_rows(run, folder, others, progress))
        rows_by_trial.append(rows)
    findings = find_label_errors(task, classes, rows_by_trial, confidence)
    for finding in findings:
        seen = sum(finding["image"] in names for names in validation)
        finding["split"] = "validation" if seen == len(folders) else "training" if seen == 0 else "mixed"
        finding["source"] = records[finding["image"]].source if finding["image"] in records else None
    frame = pandas.DataFrame(findings, columns=list(COLUMNS))
    frame = frame.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)
    return AuditFindings(frame, tuple(f.path.name for f in folders), task, column, float(confidence))


def chosen_trials(run: Any, trials: Sequence[str | int] | None = None) -> list[str]:
    """The trial ids to audit with: ``trials`` checked, or the better half of those with a metric.

    Raises:
        AutoMLError: fewer than :data:`MIN_TRIALS` of them, or a trial the run does not have.
    """
    records = run.trials()
    scored = sorted((r for r in records if r.best_metric is not None), key=lambda r: -r.best_metric)
    if trials is None:
        if len(scored) < MIN_TRIALS:
            raise AutoMLError(f"{run.folder}: the label audit compares at least {MIN_TRIALS} trials with a metric; "
                              f"this run has {len(scored)}: run more trials (max_trials >= {MIN_TRIALS})")
        return [r.trial_id for r in scored[:max(MIN_TRIALS, int(np.ceil(len(scored) * TOP_FRACTION)))]]
    ids = [str(trial) for trial in trials]
    known = {r.trial_id for r in records}
    unknown = [trial for trial in ids if trial not in known]
    if unknown:
        raise AutoMLError(f"trials: {', '.join(unknown)} not in {run.folder}; it has {', '.join(sorted(known))}")
    if len(set(ids)) < MIN_TRIALS:
        raise AutoMLError(f"trials: {ids} are {len(set(ids))}; the label audit compares at least {MIN_TRIALS}")
    return list(dict.fromkeys(ids))


def training_rows(run: Any, folder, records: Sequence, progress: bool = True) -> list[dict]:
    """The trial's model's prediction rows for ``records`` (the images it trained on), cached.

    The cache ``audit/predictions_<trial>.jsonl`` in the run folder is used when it holds every
    image asked for and is newer than the trial's ``model_best.pt`` (or that is gone); else the
    model predicts.
    """
    cache = Path(run.folder) / AUDIT_FOLDER / f"predictions_{folder.path.name}.jsonl"
    names = [r.image_url for r in records]
    model = folder.best_checkpoint
    if cache.is_file() and (not model.exists() or os.path.getmtime(cache) >= os.path.getmtime(model)):
        cached = {row["filename"]: row for row in read_rows(cache)}
        if all(name in cached for name in names):
            return [cached[name] for name in names]
    if not names:
        return []
    from tqdm.auto import tqdm

    from automl_nb.infer import Predictor

    predictor = Predictor.from_trial(folder.path)
    rows = []
    with tqdm(total=len(records), desc=f"trial {folder.path.name}", unit="image", disable=not progress) as bar:
        for start in range(0, len(records), predictor.batch_size):
            batch = records[start:start + predictor.batch_size]
            outputs = predictor.predict([r.image_url for r in batch])
            rows += [row_from_output(r.image_url, r.label, output) for r, output in zip(batch, outputs)]
            bar.update(len(batch))
    write_rows(cache, rows)
    return rows


# -- the comparison (pure: rows in, findings out) ----------------------------------------------
def find_label_errors(task: str, classes: Sequence[str], rows_by_trial: Sequence[Mapping[str, Mapping]],
                      confidence: float) -> list[dict]:
    """Findings from each trial's prediction rows by image (the images all trials have).

    Args:
        task: the task name.
        classes: the class names, in the order of the rows' ``probs``.
        rows_by_trial: per trial, ``{filename: row}`` in the format of
            :mod:`automl_nb.analysis.predictions`.
        confidence: the mean confidence a finding needs.

    Returns:
        Dicts with the keys of :data:`COLUMNS` but ``split`` and ``source``.
    """
    from automl_nb.spec.tasks import DETECTION_TASKS, MULTILABEL

    common = [name for name in rows_by_trial[0] if all(name in rows for rows in rows_by_trial[1:])]
    findings = []
    for name in common:
        rows = [trial_rows[name] for trial_rows in rows_by_trial]
        if task in DETECTION_TASKS:
            findings += _box_findings(name, rows, confidence)
        elif task == MULTILABEL:
            findings += _multilabel_findings(name, classes, rows, confidence)
        else:
            findings += _multiclass_findings(name, classes, rows, confidence)
    return findings


def _finding(image: str, kind: str, label: Any, agreed: Any, confidence: float, box=None, polygon=None) -> dict:
    return {"image": image, "kind": kind, "label": label, "agreed": agreed, "confidence": round(float(confidence), 4),
            "box": box, "polygon": polygon}


def _multiclass_findings(image: str, classes: Sequence[str], rows: Sequence[Mapping], confidence: float) -> list[dict]:
    """``wrong_label`` when every trial's top class is the same one, not the label, at mean confidence."""
    tops = {int(np.argmax(row["probs"])) for row in rows}
    if len(tops) != 1:
        return []
    top = tops.pop()
    mean = float(np.mean([row["probs"][top] for row in rows]))
    if classes[top] == rows[0]["label"] or mean < confidence:
        return []
    return [_finding(image, WRONG_LABEL, rows[0]["label"], classes[top], mean)]


def _multilabel_findings(image: str, classes: Sequence[str], rows: Sequence[Mapping], confidence: float) -> list[dict]:
    """``wrong_label`` when every trial adds (or removes) the same tags, each at mean confidence."""
    label = list(rows[0]["label"])
    probs = np.array([row["probs"] for row in rows], np.float64)  # [trials, classes]
    agreed, sure = [], []
    for k, name in enumerate(classes):
        if name in label and (probs[:, k] < MULTILABEL_THRESHOLD).all() and np.mean(1 - probs[:, k]) >= confidence:
            sure.append(np.mean(1 - probs[:, k]))  # every trial drops the tag
        elif name not in label and (probs[:, k] >= MULTILABEL_THRESHOLD).all() and np.mean(probs[:, k]) >= confidence:
            sure.append(np.mean(probs[:, k]))  # every trial adds it
            agreed.append(name)
        elif name in label:
            agreed.append(name)
    if not sure:
        return []
    return [_finding(image, WRONG_LABEL, label, agreed, float(np.mean(sure)))]


def _box_findings(image: str, rows: Sequence[Mapping], confidence: float) -> list[dict]:
    """``missing_box`` for objects every trial detects with no box on file; ``spurious_box`` for
    boxes on file no trial detects."""
    truth = rows[0]["truth"]
    truth_boxes = box_array(truth)
    findings, missing = [], np.zeros((0, 4))
    for anchor in rows[0]["boxes"]:
        anchor_box = box_array([anchor])
        if len(truth) and box_iou(anchor_box, truth_boxes).max() >= NEAR_IOU:
            continue  # an object on file is there (of whichever class), maybe badly boxed
        same = [_best_overlap(row["boxes"], anchor_box, anchor["label"]) for row in rows]
        if any(found is None for found in same):
            continue
        mean = float(np.mean([found["score"] for found in same]))
        box = box_array(same).mean(axis=0, keepdims=True)
        if mean < confidence or (len(missing) and box_iou(box, missing).max() >= IOU_THRESHOLD):
            continue  # not sure enough, or that object is a finding already
        missing = np.concatenate([missing, box])
        polygon = max(same, key=lambda found: found["score"]).get("polygon")
        findings.append(_finding(image, MISSING_BOX, None, anchor["label"], mean,
                                 dict(zip(("topX", "topY", "bottomX", "bottomY"), box[0].round(6).tolist())), polygon))
    for k, obj in enumerate(truth):
        doubt = [1 - _best_score(row["boxes"], truth_boxes[k:k + 1]) for row in rows]
        if np.mean(doubt) >= confidence:
            findings.append(_finding(image, SPURIOUS_BOX, obj["label"], None, float(np.mean(doubt)), obj["box"],
                                     obj.get("polygon")))
    return findings


def _best_overlap(boxes: Sequence[Mapping], box: np.ndarray, label: str) -> Mapping | None:
    """The highest-scoring detection of ``label`` overlapping ``box`` at the IoU threshold."""
    same = [b for b in boxes if b["label"] == label]
    if not same:
        return None
    overlaps = box_iou(box_array(same), box)[:, 0]
    candidates = [b for b, iou in zip(same, overlaps) if iou >= IOU_THRESHOLD]
    return max(candidates, key=lambda b: b["score"], default=None)


def _best_score(boxes: Sequence[Mapping], box: np.ndarray) -> float:
    """The best score of a detection of any class overlapping ``box`` at the IoU threshold (0 if none)."""
    if not boxes:
        return 0.0
    overlaps = box_iou(box_array(boxes), box)[:, 0]
    return max((b["score"] for b, iou in zip(boxes, overlaps) if iou >= IOU_THRESHOLD), default=0.0)
