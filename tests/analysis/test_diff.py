"""Where two trials disagree (automl_nb.analysis.diff): the measure, the order and the filters, on hand-made rows."""

import math

import pytest

from automl_nb.analysis.diff import (
    ALL, DIFFERENT, ONLY_A, ONLY_B, choose, classification_disagreement, compare, detection_disagreement,
    image_average_precision, outcome,
)
from automl_nb.errors import AutoMLError
from prediction_rows import box, cls, det, obj  # tests/analysis/prediction_rows.py

LABELS = ["cat", "dog", "fox"]


LEFT, RIGHT, TOP = box(0.0, 0.0, 0.4, 0.4), box(0.6, 0.6, 1.0, 1.0), box(0.6, 0.0, 1.0, 0.4)


def test_classification_orders_different_decisions_first_then_by_distance():
    rows_a = [cls("same.png", "cat", [0.9, 0.1, 0.0]), cls("far.png", "dog", [0.6, 0.3, 0.1]),
              cls("near.png", "cat", [0.4, 0.6, 0.0]), cls("equal.png", "fox", [0.1, 0.1, 0.8])]
    rows_b = [cls("same.png", "cat", [0.8, 0.2, 0.0]), cls("far.png", "dog", [0.2, 0.7, 0.1]),
              cls("near.png", "cat", [0.6, 0.4, 0.0]), cls("equal.png", "fox", [0.1, 0.1, 0.8])]
    items = compare(rows_a, list(reversed(rows_b)), "image_classification", LABELS)  # paired by name, not order
    assert [item["filename"] for item in items] == ["far.png", "near.png", "same.png", "equal.png"]
    assert [(item["differs"], item["distance"]) for item in items] == [(1, 0.4), (1, 0.2), (0, 0.1), (0, 0.0)]
    far, near = items[0], items[1]
    assert far["only_b_right"] and not far["only_a_right"]      # B says dog, the truth
    assert near["only_b_right"] and not near["a_right"]          # A says dog, B cat (true)
    assert [i["filename"] for i in choose(items, show=ONLY_B)] == ["far.png", "near.png"]
    assert choose(items, show=ONLY_A) == []
    assert [i["filename"] for i in choose(items, show=DIFFERENT)] == ["far.png", "near.png"]
    # a class is in play when it is true or either trial's answer
    assert [i["filename"] for i in choose(items, "dog")] == ["far.png", "near.png"]
    assert [i["filename"] for i in choose(items, "fox", ALL)] == ["equal.png"]


def test_multilabel_compares_label_sets_and_mean_probability_gaps():
    labels = ["a", "b"]
    assert classification_disagreement([0.7, 0.2], [0.7, 0.6], labels, multilabel=True) == (1, 0.2)
    assert classification_disagreement([0.7, 0.2], [0.9, 0.4], labels, multilabel=True) == (0, 0.2)
    items = compare([cls("x", ["a"], [0.7, 0.2])], [cls("x", ["a"], [0.7, 0.6])], "image_classification_multilabel",
                    labels)
    assert items[0]["only_a_right"] and items[0]["classes"] == {"a", "b"}


def test_detection_orders_by_objects_found_by_one_trial_then_by_detection_agreement():
    truth = [obj("cat", LEFT), obj("dog", RIGHT)]
    both_find = {"filename": "agree.png", "truth": truth, "boxes": [det("cat", 0.9, LEFT), det("dog", 0.8, RIGHT)]}
    extra = {**both_find, "filename": "extra.png",
             "boxes": both_find["boxes"] + [det("fox", 0.7, TOP)]}          # the same finds, one false positive more
    misses = {**both_find, "filename": "misses.png", "boxes": [det("cat", 0.9, LEFT)]}  # no dog
    low = {**both_find, "filename": "low.png", "boxes": [det("cat", 0.9, LEFT), det("dog", 0.3, RIGHT)]}
    rows_a = [both_find, extra, both_find | {"filename": "misses.png"}, both_find | {"filename": "low.png"}]
    rows_b = [both_find, both_find | {"filename": "extra.png"}, misses, low]
    items = compare(rows_a, rows_b, "image_object_detection", LABELS)
    assert [item["filename"] for item in items] == ["misses.png", "low.png", "extra.png", "agree.png"]
    assert [item["differs"] for item in items] == [1, 1, 0, 0]
    # B's dog at 0.3 does not count: A 2 detections, B 1, 1 agreed -> 1 - 2*1/3; extra: 1 - 2*2/5
    assert items[1]["distance"] == pytest.approx(1 / 3) and items[2]["distance"] == pytest.approx(0.2)
    assert [i["filename"] for i in choose(items, show=ONLY_A)] == ["misses.png", "low.png"]
    assert choose(items, show=ONLY_B) == [] and [i["filename"] for i in choose(items, "fox")] == ["extra.png"]
    assert image_average_precision(rows_a[2], LABELS) == 1.0 and image_average_precision(misses, LABELS) == 0.5
    # recoloured at 0.25, B's dog counts and the images agree again
    again = compare(rows_a, rows_b, "image_object_detection", LABELS, score_threshold=0.25)
    assert {i["filename"]: i["differs"] for i in again}["low.png"] == 0


def test_detection_disagreement_and_per_image_ap_on_known_boxes():
    row = {"filename": "x", "truth": [obj("cat", LEFT)], "boxes": [det("cat", 0.9, RIGHT), det("cat", 0.8, LEFT)]}
    assert outcome(row)["match"] == [False, True] and outcome(row)["fp"] == 1
    assert image_average_precision(row, LABELS) == pytest.approx(0.5)  # a false positive ranked first
    nothing = {"filename": "x", "truth": [obj("cat", LEFT)], "boxes": []}
    assert detection_disagreement(nothing, nothing) == (0, 0.0)
    assert detection_disagreement(row, nothing) == (1, 1.0)
    assert math.isnan(image_average_precision({"filename": "y", "truth": [], "boxes": []}, LABELS))


def test_mistakes_are_named():
    with pytest.raises(AutoMLError, match="share no validation image"):
        compare([cls("a", "cat", [1, 0, 0])], [cls("b", "cat", [1, 0, 0])], "image_classification", LABELS)
    with pytest.raises(ValueError, match="show: 'mine'; allowed: all images"):
        choose([], show="mine")
