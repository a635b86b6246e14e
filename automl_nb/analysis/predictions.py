"""Each trial's validation predictions, kept in its folder as ``predictions.jsonl``.

A trial rewrites the file (atomically) at each new best evaluation, the moment it writes
``evaluation.json`` and ``model_best.pt``: one JSON row per validation image, in the
validation set's order, in Azure's output shapes (:mod:`automl_nb.infer.outputs`). Fields:

- every task: ``filename``, the image's ``image_url`` as the trial read it (resolved).
- ``image_classification``: ``label`` (true class name), ``probs`` (softmax, labels.json order)
  and ``loss`` (the image's cross-entropy).
- ``image_classification_multilabel``: ``label`` (list of true class names), ``probs`` (sigmoid
  per class) and ``loss`` (the image's mean binary cross-entropy).
- ``image_object_detection`` / ``image_instance_segmentation``: ``truth`` (the objects on
  file: ``{"label", "box"}``, plus ``"polygon"`` for segmentation), ``boxes`` (the model's
  detections with score >= :data:`KEEP_SCORE`, at most :data:`MAX_BOXES`, as
  ``{"label", "score", "box"}`` plus ``"polygon"``), and the matching at
  :data:`SCORE_THRESHOLD` (:func:`match_detections`): ``match`` per detection, ``found`` per
  truth object, and the counts ``tp``, ``fp``, ``fn``. For segmentation, the detections at or
  above :data:`SCORE_THRESHOLD` carry their mask's ``"polygon"`` (tracing a mask costs
  milliseconds, so the unsure ones below it go without).

Boxes are normalised ``{"topX", "topY", "bottomX", "bottomY"}``; IoU is scale-free, so matching
on normalised boxes equals matching in pixels. Segmentation rows are matched on their boxes
too (the file keeps polygons, not masks).

This module is imported by the trainer in the worker: it must not import the sweep or widgets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from automl_nb._atomic import atomic_write_text
from automl_nb.errors import RunFolderError
from automl_nb.infer.outputs import box_output, normalise_polygon
from automl_nb.metrics.detection_types import box_iou
from automl_nb.metrics.voc import DEFAULT_IOU_THRESHOLD

if TYPE_CHECKING:
    import pandas

    from automl_nb.data.records import ObjectLabel
    from automl_nb.metrics.detection_types import ImageDetections

PREDICTIONS = "predictions.jsonl"
# A display and analysis cut-off (not a hyperparameter): detections at or above it count as
# the model's answer in ``match``/``tp``/``fp``/``fn``. Viewers may recolour at another one.
SCORE_THRESHOLD = 0.5
# IoU a detection needs to match a truth object: the validation's default (VOC's AP@0.5).
IOU_THRESHOLD = DEFAULT_IOU_THRESHOLD
# What the file keeps of each image's detections, so that every trial can keep its file (a size
# bound of the file, not the model's score threshold or box cap).
KEEP_SCORE = 0.1
MAX_BOXES = 100
# Decimals kept of probabilities, scores and coordinates (1e-6 of an image is far below a pixel).
_DECIMALS = 6


def box_array(boxes: Sequence[Mapping]) -> np.ndarray:
    """``[N, 4]`` x1, y1, x2, y2 of Azure box entries (``{"box": {"topX", ...}}``)."""
    return np.array([[b["box"]["topX"], b["box"]["topY"], b["box"]["bottomX"], b["box"]["bottomY"]]
                     for b in boxes], np.float64).reshape(-1, 4)


def match_detections(boxes: Sequence[Mapping], truth: Sequence[Mapping], score_threshold: float = SCORE_THRESHOLD,
                     iou: float = IOU_THRESHOLD) -> dict:
    """Match one image's detections to its truth objects, COCO's greedy way.

    Detections with ``score >= score_threshold`` are taken by descending score; each takes the
    unmatched truth object of its class that it overlaps most, if that IoU is >= ``iou`` (a true
    positive), else it is a false positive. Detections below the threshold are not counted.
    (The same rule as :func:`automl_nb.metrics.voc` uses for AP, kept here per row because the
    viewers need which truth object each detection found.)

    Args:
        boxes: detections in Azure's shape, ``{"label", "score", "box": {"topX", ...}}``.
        truth: truth objects, ``{"label", "box": {...}}``.
        score_threshold: the score from which a detection counts.
        iou: the IoU a match needs, in (0, 1].

    Returns:
        ``{"match": [bool per detection], "found": [bool per truth object], "tp", "fp", "fn"}``.

    Example:
        >>> box = {"topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5}
        >>> match_detections([{"label": "cat", "score": 0.9, "box": box}], [{"label": "cat", "box": box}])
        {'match': [True], 'found': [True], 'tp': 1, 'fp': 0, 'fn': 0}
    """
    if not 0 < iou <= 1:
        raise ValueError(f"iou: {iou!r} is not in (0, 1]")
    overlaps = box_iou(box_array(boxes), box_array(truth))
    match, found = [False] * len(boxes), [False] * len(truth)
    counted = [d for d in sorted(range(len(boxes)), key=lambda d: -boxes[d]["score"])
               if boxes[d]["score"] >= score_threshold]
    for d in counted:
        best, best_iou = None, iou
        for t, obj in enumerate(truth):
            # As COCOeval, IoU exactly at the threshold matches.
            if not found[t] and obj["label"] == boxes[d]["label"] and overlaps[d, t] >= best_iou:
                best, best_iou = t, overlaps[d, t]
        if best is not None:
            match[d] = found[best] = True
    tp = sum(match)
    return {"match": match, "found": found, "tp": tp, "fp": len(counted) - tp, "fn": len(truth) - tp}


# -- rows --------------------------------------------------------------------------------------
def classification_row(filename: str, label: str | Sequence[str], probs: Sequence[float], loss: float) -> dict:
    """One classification row: ``label`` is a class name (multiclass) or a list of them (multilabel).

    Example:
        >>> classification_row("a.png", "cat", [0.25, 0.75], 0.2877)
        {'filename': 'a.png', 'label': 'cat', 'probs': [0.25, 0.75], 'loss': 0.2877}
    """
    label = label if isinstance(label, str) else list(label)
    return {"filename": filename, "label": label, "probs": [round(float(p), _DECIMALS) for p in probs],
            "loss": round(float(loss), _DECIMALS)}


def detection_row(filename: str, truth: Sequence[Mapping], boxes: Sequence[Mapping]) -> dict:
    """One detection or segmentation row, with its matching at :data:`SCORE_THRESHOLD`."""
    return {"filename": filename, "truth": list(truth), "boxes": list(boxes), **match_detections(boxes, truth)}


def truth_objects(objects: Sequence["ObjectLabel"]) -> list[dict]:
    """The objects on file (:class:`~automl_nb.data.records.ObjectLabel`, normalised) in the row's shape."""
    out = []
    for obj in objects:
        item = {"label": obj.label, "box": {"topX": obj.top_x, "topY": obj.top_y,
                                            "bottomX": obj.bottom_x, "bottomY": obj.bottom_y}}
        if obj.polygon is not None:
            item["polygon"] = [list(ring) for ring in obj.polygon]
        out.append(item)
    return out


def detection_boxes(detections: "ImageDetections", classes: Sequence[str], width: int, height: int,
                    max_polygon_points: int | None = None) -> list[dict]:
    """A model's detections of one image (pixels of a ``width`` x ``height`` image) in Azure's shape.

    Keeps those with score >= :data:`KEEP_SCORE`, at most :data:`MAX_BOXES` (highest first); with
    ``max_polygon_points`` and masks, each box scoring at least :data:`SCORE_THRESHOLD` gets the
    ``"polygon"`` of its mask.
    """
    order = [int(i) for i in np.argsort(-detections.scores, kind="mergesort")
             if detections.scores[i] >= KEEP_SCORE][:MAX_BOXES]
    out = []
    for i in order:
        item = box_output(detections.boxes[i], classes[int(detections.labels[i])], detections.scores[i], width, height)
        if max_polygon_points is not None and detections.masks is not None and item["score"] >= SCORE_THRESHOLD:
            from automl_nb.infer.polygons import mask_to_polygons

            rings = mask_to_polygons(detections.masks[i], max_polygon_points)
            item["polygon"] = normalise_polygon(rings, width, height)
        out.append(_rounded(item))
    return out


def _rounded(item: Mapping) -> dict:
    """An Azure box entry with its numbers rounded to :data:`_DECIMALS` (the file's size halves)."""
    out = {"label": item["label"], "score": round(float(item["score"]), _DECIMALS),
           "box": {key: round(float(value), _DECIMALS) for key, value in item["box"].items()}}
    if "polygon" in item:
        out["polygon"] = [[round(float(v), _DECIMALS) for v in ring] for ring in item["polygon"]]
    return out


def row_from_output(filename: str, label: Any, output: Mapping[str, Any]) -> dict:
    """A row from a :class:`~automl_nb.infer.Predictor` output for an image labelled ``label`` (as on file).

    Classification: ``label`` is a class name, or a tuple of them (multilabel, told by the
    tuple); the loss comes from the probabilities. Detection: ``label`` is the
    :class:`~automl_nb.data.records.ObjectLabel` objects, and the boxes are kept as
    :func:`detection_boxes` keeps them.

    Example:
        >>> row_from_output("a.png", "cat", {"probs": [0.5, 0.5], "labels": ["cat", "dog"]})["loss"]
        0.693147
    """
    if "boxes" in output:
        boxes = sorted(output["boxes"], key=lambda b: -b["score"])
        boxes = [_rounded(b) for b in boxes if b["score"] >= KEEP_SCORE][:MAX_BOXES]
        return detection_row(filename, truth_objects(label), boxes)
    probs = np.clip(np.asarray(output["probs"], np.float64), 1e-12, 1 - 1e-12)
    names = list(output["labels"])
    if isinstance(label, str):
        loss = -np.log(probs[names.index(label)])
    else:
        truth = np.isin(names, list(label))
        loss = -np.mean(np.where(truth, np.log(probs), np.log1p(-probs)))
    return classification_row(filename, label, output["probs"], loss)


def prediction_rows(images: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> list[dict]:
    """The file's rows from what a validation pass kept of each image (the adapters' ``per_image``).

    Args:
        images: per image, ``{"filename", "label", "probs", "loss"}`` (classification) or
            ``{"filename", "objects", "detections", "width", "height", "max_polygon_points"}``
            (detection: :class:`~automl_nb.data.records.ObjectLabel` objects on file and an
            :class:`~automl_nb.metrics.detection_types.ImageDetections` in pixels).
        classes: class names, in the model's output order.
    """
    rows = []
    for image in images:
        if "detections" in image:
            boxes = detection_boxes(image["detections"], classes, image["width"], image["height"],
                                    image.get("max_polygon_points"))
            rows.append(detection_row(image["filename"], truth_objects(image["objects"]), boxes))
        else:
            rows.append(classification_row(image["filename"], image["label"], image["probs"], image["loss"]))
    return rows


# -- the file ----------------------------------------------------------------------------------
def write_predictions(trial_folder: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``rows`` (one per validation image) as the trial's ``predictions.jsonl``, atomically.

    Example:
        >>> write_predictions("runs/shapes/trials/0", [classification_row("a.png", "cat", [0.3, 0.7], 0.36)])
        PosixPath('runs/shapes/trials/0/predictions.jsonl')
    """
    return write_rows(Path(trial_folder) / PREDICTIONS, rows)


def write_rows(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write prediction rows to any JSONL file, atomically (compact JSON, one row a line)."""
    text = "".join(json.dumps(dict(row), separators=(",", ":")) + "\n" for row in rows)
    return atomic_write_text(path, text)


def read_predictions(trial_folder: str | Path) -> "pandas.DataFrame":
    """The trial's validation predictions, one row per image (columns as the module docstring says).

    Raises:
        RunFolderError: the file is missing (the trial has not evaluated yet, or ran before
            predictions were kept) or a line is damaged; the message names the file.

    Example:
        >>> read_predictions("runs/shapes/trials/0")[["filename", "label", "loss"]].head(1)
              filename label    loss
        0  .../a.png   cat  0.3567
    """
    import pandas

    path = Path(trial_folder) / PREDICTIONS
    if not path.is_file():
        raise RunFolderError(f"{path}: no predictions file; a trial writes it at its best evaluation "
                             "(this one has not evaluated yet, or was trained before predictions were kept)")
    return pandas.DataFrame(read_rows(path))


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a prediction file (see :func:`write_rows`).

    Raises:
        RunFolderError: the file is missing, or a line is not a JSON row with a ``filename``.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RunFolderError(f"{path}: no such predictions file") from None
    except UnicodeDecodeError as error:
        raise RunFolderError(f"{path}: damaged, not UTF-8 text ({error})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except ValueError as error:
            raise RunFolderError(f"{path}:{number}: damaged line, not JSON ({error}): {line[:60]!r}") from None
        if not isinstance(row, dict) or "filename" not in row:
            raise RunFolderError(f"{path}:{number}: damaged line, not a prediction row with a filename: {line[:60]!r}")
        rows.append(row)
    return rows
