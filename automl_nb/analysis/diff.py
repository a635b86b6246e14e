"""Where two trials disagree on the validation images: the measure, the order and the filters.

Pure functions of two trials' prediction rows (:mod:`automl_nb.analysis.predictions`); the
:class:`~automl_nb.widgets.diff_gallery.PredictionDiff` gallery draws what they choose.

The disagreement of an image is a pair, compared in this order (most first):

- ``differs``, the decisions that differ: for classification 1 when the two top-1 classes
  differ (multilabel: the two predicted label sets), else 0; for detection and segmentation
  the number of truth objects found by exactly one of the two trials.
- ``distance``, how far apart the two answers are, in [0, 1]: for multiclass the total
  variation between the two probability vectors (half the L1 distance); for multilabel the
  mean absolute difference of the per-class probabilities; for detection 1 minus the F1
  agreement of the two trials' counted detections (each of A's matched to one of B's of the
  same class at IoU >= 0.5, by :func:`~automl_nb.analysis.predictions.match_detections`),
  0 when neither detects anything.

So images where the trials decide differently come first, the most different of them first.
"Right" is top-1 == label (multiclass), predicted set == true set (multilabel); for
detection "only A right" means A found some truth object that B missed (an image can be
both "only A right" and "only B right"). A detection is counted at ``score >= score_threshold``
(:data:`~automl_nb.analysis.predictions.SCORE_THRESHOLD` unless given).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from automl_nb.analysis.predictions import IOU_THRESHOLD, SCORE_THRESHOLD, box_array, match_detections
from automl_nb.errors import AutoMLError
from automl_nb.metrics.classification import MULTILABEL_THRESHOLD
from automl_nb.spec.tasks import CLASSIFICATION_TASKS, MULTILABEL

# What the gallery can show: every image, those the trials decide differently, those only one gets right.
ALL, DIFFERENT, ONLY_A, ONLY_B = "all images", "decided differently", "only A right", "only B right"
SHOWS = (ALL, DIFFERENT, ONLY_A, ONLY_B)


def rows_of(table: Any) -> list[dict]:
    """Prediction rows as a list of dicts, from :func:`read_predictions`' DataFrame or a list."""
    if hasattr(table, "to_dict"):
        return table.to_dict("records")
    return [dict(row) for row in table]


def predicted(probs: Sequence[float], labels: Sequence[str], multilabel: bool) -> str | frozenset:
    """The decision of a classification row: its top-1 class, or the set of classes >= the threshold."""
    if multilabel:
        return frozenset(label for label, p in zip(labels, probs) if p >= MULTILABEL_THRESHOLD)
    return labels[int(np.argmax(probs))]


def classification_disagreement(probs_a: Sequence[float], probs_b: Sequence[float], labels: Sequence[str],
                                multilabel: bool = False) -> tuple[int, float]:
    """``(differs, distance)`` of two classification rows' probabilities (see the module docstring).

    Example:
        >>> classification_disagreement([0.6, 0.4], [0.3, 0.7], ["cat", "dog"])
        (1, 0.3)
    """
    a, b = np.asarray(probs_a, float), np.asarray(probs_b, float)
    if a.shape != b.shape or a.shape != (len(labels),):
        raise ValueError(f"probs: {len(a)} and {len(b)} values for {len(labels)} classes; need one per class")
    differs = int(predicted(a, labels, multilabel) != predicted(b, labels, multilabel))
    distance = float(np.abs(a - b).mean()) if multilabel else float(np.abs(a - b).sum() / 2)
    return differs, round(distance, 12)


def counted(boxes: Sequence[Mapping], score_threshold: float = SCORE_THRESHOLD) -> list[Mapping]:
    """The detections that count as the model's answer: ``score >= score_threshold``."""
    return [box for box in boxes if box["score"] >= score_threshold]


def outcome(row: Mapping, score_threshold: float = SCORE_THRESHOLD) -> dict:
    """A detection row's matching at ``score_threshold``: the stored one at the file's threshold,
    else recomputed (``match`` per detection, ``found`` per truth object, ``tp``, ``fp``, ``fn``)."""
    if score_threshold == SCORE_THRESHOLD and "match" in row and "found" in row:
        return {key: row[key] for key in ("match", "found", "tp", "fp", "fn")}
    return match_detections(row["boxes"], row["truth"], score_threshold, IOU_THRESHOLD)


def detection_disagreement(row_a: Mapping, row_b: Mapping,
                           score_threshold: float = SCORE_THRESHOLD) -> tuple[int, float]:
    """``(differs, distance)`` of two detection rows of the same image (see the module docstring).

    Example:
        >>> box = {"topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5}
        >>> found = {"truth": [{"label": "cat", "box": box}], "boxes": [{"label": "cat", "score": 0.9, "box": box}]}
        >>> detection_disagreement(found, {**found, "boxes": []})
        (1, 1.0)
    """
    found_a = outcome(row_a, score_threshold)["found"]
    found_b = outcome(row_b, score_threshold)["found"]
    if len(found_a) != len(found_b):
        raise ValueError(f"{row_a.get('filename')}: the two rows have {len(found_a)} and {len(found_b)} truth "
                         "objects; compare rows of the same image")
    differs = sum(a != b for a, b in zip(found_a, found_b))
    mine, theirs = counted(row_a["boxes"], score_threshold), counted(row_b["boxes"], score_threshold)
    if not mine and not theirs:
        return differs, 0.0
    # B's detections stand in for the truth: A's matches to them are the detections both made.
    agreed = match_detections(mine, [{"label": b["label"], "box": b["box"]} for b in theirs], 0.0, IOU_THRESHOLD)["tp"]
    return differs, round(1 - 2 * agreed / (len(mine) + len(theirs)), 12)


def image_average_precision(row: Mapping, labels: Sequence[str]) -> float:
    """VOC AP at IoU 0.5 of one detection row: all its stored detections (score >= 0.1) ranked by
    score against its truth, by :func:`automl_nb.metrics.voc.voc_map`; nan without truth objects.

    Boxes stay normalised: IoU (and so AP) does not change when both axes are scaled.
    """
    from automl_nb.metrics.detection_types import ImageDetections, ImageTargets
    from automl_nb.metrics.voc import voc_map

    index = {label: k for k, label in enumerate(labels)}
    detections = ImageDetections(boxes=box_array(row["boxes"]), scores=[b["score"] for b in row["boxes"]],
                                 labels=[index[b["label"]] for b in row["boxes"]])
    targets = ImageTargets(boxes=box_array(row["truth"]), labels=[index[t["label"]] for t in row["truth"]],
                           width=1, height=1)
    return voc_map([detections], [targets], len(labels), IOU_THRESHOLD)["map"]


def compare(rows_a: Any, rows_b: Any, task: str, labels: Sequence[str],
            score_threshold: float = SCORE_THRESHOLD) -> list[dict]:
    """Pair two trials' rows by file name and measure each image's disagreement, most first.

    Args:
        rows_a, rows_b: each trial's prediction rows (DataFrame or list of dicts).
        task: the job's task.
        labels: the class names (labels.json), for the probabilities' order.
        score_threshold: detection: the score from which a detection counts.

    Returns:
        One dict per image both trials predicted, ordered by ``(differs, distance)`` descending
        (ties in A's order): ``filename``, ``a``, ``b`` (the two rows), ``differs``,
        ``distance``, ``a_right``, ``b_right``, ``only_a_right``, ``only_b_right``,
        ``classes`` (the classes in play: true, or predicted by either). (Each trial's AP on a
        detection image is :func:`image_average_precision`, left to the few images shown: it
        costs more than the rest together.)

    Raises:
        AutoMLError: the two trials share no validation image.

    Example:
        >>> order = compare(read_predictions(folder_a), read_predictions(folder_b), task, labels)
        >>> [item["filename"] for item in order[:3]]  # where they disagree most
    """
    rows_a, rows_b = rows_of(rows_a), rows_of(rows_b)
    by_name = {row["filename"]: row for row in rows_b}
    pairs = [(row, by_name[row["filename"]]) for row in rows_a if row["filename"] in by_name]
    if not pairs:
        raise AutoMLError(f"the two trials share no validation image ({len(rows_a)} and {len(rows_b)} images); "
                          "compare trials validated on the same data")
    items = [_classification_item(a, b, labels, task) if task in CLASSIFICATION_TASKS
             else _detection_item(a, b, score_threshold) for a, b in pairs]
    order = sorted(range(len(items)), key=lambda k: (-items[k]["differs"], -items[k]["distance"], k))
    return [items[k] for k in order]


def _classification_item(a: Mapping, b: Mapping, labels: Sequence[str], task: str) -> dict:
    multilabel = task == MULTILABEL
    truth = frozenset(a["label"]) if multilabel else a["label"]
    choice_a, choice_b = predicted(a["probs"], labels, multilabel), predicted(b["probs"], labels, multilabel)
    differs, distance = classification_disagreement(a["probs"], b["probs"], labels, multilabel)
    in_play = set(truth) | set(choice_a) | set(choice_b) if multilabel else {truth, choice_a, choice_b}
    a_right, b_right = choice_a == truth, choice_b == truth
    return {"filename": a["filename"], "a": a, "b": b, "differs": differs, "distance": distance,
            "a_right": a_right, "b_right": b_right, "only_a_right": a_right and not b_right,
            "only_b_right": b_right and not a_right, "classes": frozenset(in_play)}


def _detection_item(a: Mapping, b: Mapping, score_threshold: float) -> dict:
    differs, distance = detection_disagreement(a, b, score_threshold)
    got_a, got_b = outcome(a, score_threshold), outcome(b, score_threshold)
    in_play = {t["label"] for t in a["truth"]}
    in_play |= {d["label"] for row in (a, b) for d in counted(row["boxes"], score_threshold)}
    return {"filename": a["filename"], "a": a, "b": b, "differs": differs, "distance": distance,
            "a_right": got_a["fp"] == got_a["fn"] == 0, "b_right": got_b["fp"] == got_b["fn"] == 0,
            "only_a_right": any(x and not y for x, y in zip(got_a["found"], got_b["found"])),
            "only_b_right": any(y and not x for x, y in zip(got_a["found"], got_b["found"])),
            "classes": frozenset(in_play)}


def choose(items: Sequence[dict], label: str | None = None, show: str = ALL) -> list[dict]:
    """The compared images a filter keeps, in their order.

    Args:
        items: :func:`compare`'s output.
        label: keep images where this class is in play (true, or predicted by either trial); None: all.
        show: one of :data:`SHOWS`: every image, those decided differently (``differs > 0``),
            or those only A (only B) gets right.

    Raises:
        ValueError: an unknown ``show``.

    Example:
        >>> [item["filename"] for item in choose(order, "cat", ONLY_B)]
    """
    if show not in SHOWS:
        raise ValueError(f"show: {show!r}; allowed: {', '.join(SHOWS)}")
    keep = {ALL: lambda item: True, DIFFERENT: lambda item: item["differs"] > 0,
            ONLY_A: lambda item: item["only_a_right"], ONLY_B: lambda item: item["only_b_right"]}[show]
    return [item for item in items if keep(item) and (label is None or label in item["classes"])]
