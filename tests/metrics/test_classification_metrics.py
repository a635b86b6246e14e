import numpy as np
import pytest

from automl_nb.metrics import confusion_matrix, multiclass_metrics, multilabel_metrics


def test_confusion_matrix_counts_true_by_predicted():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_multiclass_metrics_hand_computed():
    scores = multiclass_metrics([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    # class 0: tp 1, fp 1, fn 1; class 1: tp 1, fp 1, fn 0; class 2: tp 2, fp 0, fn 1
    assert scores["per_class"]["precision"] == pytest.approx([0.5, 0.5, 1.0])
    assert scores["per_class"]["recall"] == pytest.approx([0.5, 1.0, 2 / 3])
    assert scores["per_class"]["f1"] == pytest.approx([0.5, 2 / 3, 0.8])
    assert scores["f1_macro"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_class_never_predicted_scores_zero_not_nan():
    scores = multiclass_metrics([0, 1], [0, 0], 3)
    assert scores["per_class"]["precision"] == [0.5, 0.0, 0.0]
    assert np.isfinite(scores["precision_macro"])


def test_multilabel_iou_averages_over_images():
    truth = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]])
    probs = np.array([[0.9, 0.6, 0.2], [0.1, 0.7, 0.1], [0.1, 0.2, 0.3]])
    scores = multilabel_metrics(truth, probs, threshold=0.5)
    # image 1: {0,2} vs {0,1} -> 1/3; image 2: exact -> 1; image 3: both empty -> 1
    assert scores["iou"] == pytest.approx((1 / 3 + 1 + 1) / 3)
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["per_class"]["recall"] == pytest.approx([1.0, 1.0, 0.0])


def test_multilabel_threshold_moves_predictions():
    truth = np.array([[1, 0]])
    probs = np.array([[0.4, 0.1]])
    assert multilabel_metrics(truth, probs, 0.5)["iou"] == 0.0
    assert multilabel_metrics(truth, probs, 0.3)["iou"] == 1.0
