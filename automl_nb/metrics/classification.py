"""Classification metrics: accuracy and per-class scores (multiclass), IoU (multilabel).

Pure numpy on whole-epoch arrays, so the same functions score a trial, a notebook
prediction or a test fixture.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]`` over ``num_classes`` classes."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return matrix


def _precision_recall_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    # A class never predicted (or never present) scores 0, not NaN, as scikit-learn's
    # zero_division=0 does, so averages stay finite.
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1}


def multiclass_metrics(y_true, y_pred, num_classes: int) -> dict:
    """Accuracy, macro precision/recall/F1, the same per class, and the confusion matrix.

    Args:
        y_true: true class indices, shape [N].
        y_pred: predicted class indices, shape [N].
        num_classes: number of classes.

    Returns:
        A flat dict of floats plus ``per_class`` (lists) and ``confusion_matrix`` (nested list).
    """
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(matrix).astype(float)
    scores = _precision_recall_f1(tp, matrix.sum(0) - tp, matrix.sum(1) - tp)
    total = matrix.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "precision_macro": float(scores["precision"].mean()),
        "recall_macro": float(scores["recall"].mean()),
        "f1_macro": float(scores["f1"].mean()),
        "per_class": {k: v.round(6).tolist() for k, v in scores.items()},
        "confusion_matrix": matrix.tolist(),
    }


# A label is predicted for a multilabel image when its probability reaches this (validation,
# the viewers, the analysis panels).
MULTILABEL_THRESHOLD = 0.5


def multilabel_metrics(y_true, scores, threshold: float = MULTILABEL_THRESHOLD) -> dict:
    """IoU of label sets (the primary metric), and per-class precision/recall/F1.

    IoU is averaged over images: |true ∩ predicted| / |true ∪ predicted|, counting an
    image with both sets empty as 1.

    Args:
        y_true: multi-hot targets, shape [N, C].
        scores: probabilities, shape [N, C]; a label is predicted when score >= threshold.
        threshold: decision threshold.
    """
    truth = np.asarray(y_true) >= 0.5
    predicted = np.asarray(scores) >= threshold
    intersection = (truth & predicted).sum(1)
    union = (truth | predicted).sum(1)
    iou = np.where(union > 0, intersection / np.maximum(union, 1), 1.0)
    tp = (truth & predicted).sum(0).astype(float)
    per_class = _precision_recall_f1(tp, (~truth & predicted).sum(0), (truth & ~predicted).sum(0))
    return {
        "iou": float(iou.mean()) if len(iou) else 0.0,
        "accuracy": float((truth == predicted).all(1).mean()) if len(iou) else 0.0,
        "precision_macro": float(per_class["precision"].mean()),
        "recall_macro": float(per_class["recall"].mean()),
        "f1_macro": float(per_class["f1"].mean()),
        "per_class": {k: v.round(6).tolist() for k, v in per_class.items()},
    }
