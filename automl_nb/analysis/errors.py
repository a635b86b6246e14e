"""The errors of one trial, from its prediction rows: confusion, worst images, precision-recall
curves per class, and for detection the errors per class and the AP by object size.

Pure functions of the rows of :mod:`automl_nb.analysis.predictions` (a DataFrame or a list of
dicts); the :class:`~automl_nb.widgets.error_analysis.ErrorAnalysis` panel draws them. Image
indices are positions in the rows (the validation set's order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from automl_nb.analysis.diff import outcome, predicted, rows_of
from automl_nb.analysis.predictions import IOU_THRESHOLD, SCORE_THRESHOLD, box_array, match_detections
from automl_nb.spec.tasks import CLASSIFICATION_TASKS, MULTILABEL

# The extra row and column of a detection's confusion matrix.
BACKGROUND, MISSED = "background", "missed"
# A multilabel confusion: per class, the images where it was rightly predicted, wrongly, or missed.
MULTILABEL_COLUMNS = ("predicted, true", "predicted, not true", "missed")


@dataclass(frozen=True)
class Confusion:
    """A confusion matrix whose every cell knows its images.

    Attributes:
        rows: the row names (true classes; ``background`` for detections that match nothing).
        columns: the column names (predicted classes; ``missed`` for undetected objects).
        counts: ``[len(rows), len(columns)]`` counts (objects for detection, images otherwise).
        images: ``{(row, column): [image index, ...]}`` for every non-empty cell, each image once.
    """

    rows: tuple
    columns: tuple
    counts: np.ndarray
    images: dict

    def cell(self, row: str, column: str) -> list[int]:
        """The images of the cell at ``row``, ``column`` (names); [] when empty.

        Raises:
            KeyError: no such row or column (the message lists the names).
        """
        for name, names in ((row, self.rows), (column, self.columns)):
            if name not in names:
                raise KeyError(f"{name!r}; allowed: {', '.join(map(str, names))}")
        return list(self.images.get((self.rows.index(row), self.columns.index(column)), []))


def confusion(table: Any, task: str, labels: Sequence[str], score_threshold: float = SCORE_THRESHOLD) -> Confusion:
    """The trial's confusion matrix, each cell with its images.

    - multiclass: true class by predicted (top-1) class; counts images
      (:func:`automl_nb.metrics.classification.confusion_matrix`).
    - multilabel: per class, the images where it was predicted and true, predicted but not
      true, or true but not predicted (:data:`MULTILABEL_COLUMNS`).
    - detection and segmentation: objects. A detection counted at ``score_threshold`` that
      matches a truth object of its class (``match``) sits on the diagonal; each detection left
      over then takes, by descending score, the left-over truth object of any class it overlaps
      most at IoU >= 0.5 (a confusion of classes); detections still left are ``background`` (a
      false positive on nothing), truth objects still left are ``missed``.

    Example:
        >>> matrix = confusion(read_predictions(folder), "image_classification", labels)
        >>> matrix.cell("cat", "dog")    # the cats taken for dogs
        [4, 17]
    """
    rows = rows_of(table)
    labels = list(labels)
    if task == MULTILABEL:
        counts, images = np.zeros((len(labels), len(MULTILABEL_COLUMNS)), np.int64), {}
        for n, row in enumerate(rows):
            chosen, truth = predicted(row["probs"], labels, True), set(row["label"])
            for k, label in enumerate(labels):
                if label not in chosen and label not in truth:
                    continue
                column = 0 if label in chosen and label in truth else 1 if label in chosen else 2
                counts[k, column] += 1
                images.setdefault((k, column), []).append(n)
        return Confusion(tuple(labels), MULTILABEL_COLUMNS, counts, images)
    if task in CLASSIFICATION_TASKS:
        from automl_nb.metrics.classification import confusion_matrix

        pairs = [(labels.index(row["label"]), labels.index(predicted(row["probs"], labels, False))) for row in rows]
        images = {}
        for n, pair in enumerate(pairs):
            images.setdefault(pair, []).append(n)
        counts = confusion_matrix([t for t, _ in pairs], [p for _, p in pairs], len(labels))
        return Confusion(tuple(labels), tuple(labels), counts, images)
    names = labels + [BACKGROUND]
    counts, images = np.zeros((len(names), len(names)), np.int64), {}
    for n, row in enumerate(rows):
        for pair in _object_pairs(row, labels, score_threshold):
            counts[pair] += 1
            if n not in images.setdefault(pair, []):
                images[pair].append(n)
    return Confusion(tuple(names), tuple(labels + [MISSED]), counts, images)


def _object_pairs(row: Mapping, labels: list, score_threshold: float) -> list[tuple[int, int]]:
    """``(true class, predicted class)`` index pairs of one detection row (see :func:`confusion`)."""
    from automl_nb.metrics.detection_types import box_iou

    got = outcome(row, score_threshold)
    edge = len(labels)  # background row, missed column
    truth, boxes = row["truth"], row["boxes"]
    pairs = [(labels.index(box["label"]),) * 2 for box, hit in zip(boxes, got["match"]) if hit]
    left = [d for d in sorted(range(len(boxes)), key=lambda d: -boxes[d]["score"])
            if boxes[d]["score"] >= score_threshold and not got["match"][d]]
    open_truth = [t for t, found in enumerate(got["found"]) if not found]
    overlaps = box_iou(box_array(boxes), box_array(truth)).reshape(len(boxes), len(truth))
    for d in left:
        best = max(open_truth, key=lambda t: overlaps[d, t], default=None)
        if best is not None and overlaps[d, best] >= IOU_THRESHOLD:
            open_truth.remove(best)
            pairs.append((labels.index(truth[best]["label"]), labels.index(boxes[d]["label"])))
        else:
            pairs.append((edge, labels.index(boxes[d]["label"])))
    pairs += [(labels.index(truth[t]["label"]), edge) for t in open_truth]
    return pairs


def top_losses(table: Any, task: str, count: int, score_threshold: float = SCORE_THRESHOLD) -> list[int]:
    """The ``count`` worst images, worst first: by ``loss`` (classification), or by errors
    (false positives + missed objects at ``score_threshold``) for detection, which has no per-image loss.

    Example:
        >>> top_losses(read_predictions(folder), "image_classification", 3)
        [12, 40, 3]
    """
    rows = rows_of(table)
    if task in CLASSIFICATION_TASKS:
        worst = [-float(row["loss"]) for row in rows]
    else:
        worst = [-(got["fp"] + got["fn"]) for got in (outcome(row, score_threshold) for row in rows)]
    return sorted(range(len(rows)), key=lambda n: (worst[n], n))[:count]


@dataclass(frozen=True)
class Curve:
    """One class's precision-recall curve: detections (or images) by descending score.

    Attributes:
        label: the class.
        precision, recall: one point per scored item.
        average_precision: all-point interpolated AP (:func:`automl_nb.metrics.voc.average_precision`);
            nan when the class has no positives.
        positives: true images (classification) or truth objects (detection) of the class.
    """

    label: str
    precision: np.ndarray
    recall: np.ndarray
    average_precision: float
    positives: int


def precision_recall(table: Any, task: str, labels: Sequence[str]) -> list[Curve]:
    """Per-class precision-recall curves.

    Classification: one class against the rest, its probability as the score. Detection: every
    stored detection of the class (score >= 0.1) matched by
    :func:`~automl_nb.analysis.predictions.match_detections` with no score cut, as VOC's AP
    pools them over the images.

    Example:
        >>> {c.label: round(c.average_precision, 3) for c in precision_recall(rows, task, labels)}
        {'cat': 0.912, 'dog': 0.874}
    """
    from automl_nb.metrics.voc import average_precision

    rows = rows_of(table)
    labels = list(labels)
    scored: list[list] = [[] for _ in labels]  # per class: (score, positive) pairs
    positives = np.zeros(len(labels), np.int64)
    for row in rows:
        if task in CLASSIFICATION_TASKS:
            truth = set(row["label"]) if task == MULTILABEL else {row["label"]}
            for k, label in enumerate(labels):
                scored[k].append((row["probs"][k], label in truth))
                positives[k] += label in truth
        else:
            got = match_detections(row["boxes"], row["truth"], 0.0, IOU_THRESHOLD)
            for box, hit in zip(row["boxes"], got["match"]):
                scored[labels.index(box["label"])].append((box["score"], hit))
            for obj in row["truth"]:
                positives[labels.index(obj["label"])] += 1
    curves = []
    for k, label in enumerate(labels):
        ranked = sorted(scored[k], key=lambda pair: -pair[0])
        hits = np.cumsum([positive for _, positive in ranked]) if ranked else np.zeros(0)
        precision = hits / np.arange(1, len(ranked) + 1) if ranked else np.zeros(0)
        recall = hits / positives[k] if positives[k] else np.zeros(len(ranked))
        ap = average_precision(recall, precision) if positives[k] else float("nan")
        curves.append(Curve(label, precision, recall, ap, int(positives[k])))
    return curves


def class_errors(table: Any, label: str, kind: str, score_threshold: float = SCORE_THRESHOLD) -> list[tuple[int, int]]:
    """Detection: the images with false positives (``kind="fp"``) or missed objects (``"fn"``)
    of class ``label`` at ``score_threshold``, as ``(image index, how many)``, most first.

    Raises:
        ValueError: ``kind`` is not ``fp`` or ``fn``.

    Example:
        >>> class_errors(rows, "cat", "fn")   # the images where cats were missed
        [(7, 2), (1, 1)]
    """
    if kind not in ("fp", "fn"):
        raise ValueError(f"kind: {kind!r}; allowed: fp (false positives), fn (missed objects)")
    found = []
    for n, row in enumerate(rows_of(table)):
        got = outcome(row, score_threshold)
        if kind == "fp":
            many = sum(1 for box, hit in zip(row["boxes"], got["match"])
                       if box["label"] == label and box["score"] >= score_threshold and not hit)
        else:
            many = sum(1 for obj, hit in zip(row["truth"], got["found"]) if obj["label"] == label and not hit)
        if many:
            found.append((n, many))
    return sorted(found, key=lambda pair: (-pair[1], pair[0]))


def size_ranges() -> dict[str, tuple[float, float]]:
    """COCO's object sizes by area in pixels of the original image, from pycocotools itself:
    small up to 32², medium to 96², large above (bounds belong to both sides, as COCOeval)."""
    from pycocotools.cocoeval import Params

    params = Params(iouType="bbox")
    return {name: tuple(bounds) for name, bounds in zip(params.areaRngLbl, params.areaRng) if name != "all"}


def ap_by_size(table: Any, labels: Sequence[str], sizes: Sequence[tuple[int, int]]) -> dict:
    """Detection: COCO's AP@[.5:.95] of small, medium and large objects, with how many there are.

    The rows' normalised boxes are put in pixels of each image (``sizes``, its width and height)
    and scored by :func:`automl_nb.metrics.coco.coco_map` (pycocotools' COCOeval; areas are box
    areas, for segmentation too); every stored detection (score >= 0.1) takes part.

    Args:
        table: the trial's rows.
        labels: class names (labels.json).
        sizes: ``(width, height)`` of each row's image, in order.

    Returns:
        ``{"small": {"ap", "objects"}, "medium": {...}, "large": {...}}``; ap is nan where COCO
        has no truth objects of that size.

    Example:
        >>> ap_by_size(rows, labels, [image_size(r["filename"]) for r in rows])["small"]
        {'ap': 0.41, 'objects': 12}
    """
    from automl_nb.metrics.coco import coco_map
    from automl_nb.metrics.detection_types import ImageDetections, ImageTargets

    rows = rows_of(table)
    if len(sizes) != len(rows):
        raise ValueError(f"sizes: {len(sizes)} for {len(rows)} images; need one (width, height) per image")
    labels = list(labels)
    detections, targets, areas = [], [], []
    for row, (width, height) in zip(rows, sizes):
        scale = np.array([width, height, width, height], float)
        truth = box_array(row["truth"]) * scale
        areas += list((truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1]))
        targets.append(ImageTargets(boxes=truth, labels=[labels.index(o["label"]) for o in row["truth"]],
                                    width=width, height=height))
        boxes = box_array(row["boxes"]) * scale
        detections.append(ImageDetections(boxes=boxes, scores=[b["score"] for b in row["boxes"]],
                                          labels=[labels.index(b["label"]) for b in row["boxes"]]))
    scores = coco_map(detections, targets, len(labels))
    return {name: {"ap": scores[f"map_{name}"], "objects": sum(low <= area <= high for area in areas)}
            for name, (low, high) in size_ranges().items()}


def counts(table: Any, score_threshold: float = SCORE_THRESHOLD) -> dict:
    """Detection: total ``tp``, ``fp``, ``fn`` over the images at ``score_threshold``."""
    total = {"tp": 0, "fp": 0, "fn": 0}
    for row in rows_of(table):
        got = outcome(row, score_threshold)
        for key in total:
            total[key] += got[key]
    return total

