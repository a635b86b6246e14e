"""Scores: classification accuracy and per-class metrics, multilabel IoU."""

from automl_nb.metrics.classification import confusion_matrix, multiclass_metrics, multilabel_metrics

__all__ = ["confusion_matrix", "multiclass_metrics", "multilabel_metrics"]
