"""One trial's errors (automl_nb.analysis.errors) on hand-made rows, and the ErrorAnalysis panel
built from a run folder written by hand (no model, no training)."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from automl_nb.analysis import errors
from automl_nb.analysis.predictions import write_predictions
from prediction_rows import box, cls, det, obj  # tests/analysis/prediction_rows.py

LABELS = ["cat", "dog"]


LEFT, RIGHT, MIDDLE = box(0.0, 0.0, 0.4, 0.4), box(0.6, 0.6, 1.0, 1.0), box(0.3, 0.3, 0.7, 0.7)


def write_run(folder, task, labels, trials, images=()):
    """A run folder as a sweep leaves it, by hand: run.json, and per trial its record, params.json,
    labels.json and predictions.jsonl; ``images`` are (path, size) PNGs to write."""
    for path, size in images:
        Image.new("RGB", size, (90, 120, 150)).save(path)
    (folder / "run.json").parent.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"status": "Completed"}))
    for index, (trial_id, (metric, rows)) in enumerate(trials.items()):
        trial = folder / "trials" / trial_id
        trial.mkdir(parents=True)
        (trial / "trial.json").write_text(json.dumps({"trial_id": trial_id, "index": index, "status": "Completed",
                                                      "best_metric": metric}))
        (trial / "params.json").write_text(json.dumps({"trial_id": trial_id, "task": task, "parameters": {}}))
        (trial / "labels.json").write_text(json.dumps(labels))
        write_predictions(trial, rows)
    return folder


def test_confusion_cells_list_their_images():
    rows = [cls("0", "cat", [0.9, 0.1]), cls("1", "cat", [0.3, 0.7]), cls("2", "dog", [0.2, 0.8]),
            cls("3", "cat", [0.4, 0.6])]
    matrix = errors.confusion(rows, "image_classification", LABELS)
    assert matrix.counts.tolist() == [[1, 2], [0, 1]]
    assert matrix.cell("cat", "dog") == [1, 3] and matrix.cell("dog", "cat") == []
    with pytest.raises(KeyError, match="'cow'; allowed: cat, dog"):
        matrix.cell("cow", "dog")
    multilabel = errors.confusion([cls("0", ["cat"], [0.9, 0.6]), cls("1", ["cat", "dog"], [0.2, 0.7])],
                                  "image_classification_multilabel", LABELS)
    assert multilabel.cell("cat", "predicted, true") == [0] and multilabel.cell("cat", "missed") == [1]
    assert multilabel.cell("dog", "predicted, not true") == [0] and multilabel.cell("dog", "predicted, true") == [1]


def test_detection_confusion_puts_class_mix_ups_off_the_diagonal():
    rows = [{"filename": "0", "truth": [obj("cat", LEFT), obj("dog", RIGHT)],
             "boxes": [det("dog", 0.9, LEFT), det("dog", 0.8, RIGHT), det("cat", 0.7, MIDDLE), det("cat", 0.2, RIGHT)]},
            {"filename": "1", "truth": [obj("cat", MIDDLE)], "boxes": []}]
    matrix = errors.confusion(rows, "image_object_detection", LABELS)
    assert matrix.rows == ("cat", "dog", "background") and matrix.columns == ("cat", "dog", "missed")
    # the dog on the dog: right; the dog on the cat: a mix-up; the cat on nothing: background; image 1: a miss
    assert matrix.counts.tolist() == [[0, 1, 1], [0, 1, 0], [1, 0, 0]]
    assert matrix.cell("cat", "dog") == [0] and matrix.cell("cat", "missed") == [1]
    assert errors.class_errors(rows, "cat", "fp") == [(0, 1)]          # the 0.2 cat does not count
    assert errors.class_errors(rows, "cat", "fn") == [(0, 1), (1, 1)]
    assert errors.top_losses(rows, "image_object_detection", 1) == [0]  # 2 false positives + 1 miss
    assert errors.counts(rows) == {"tp": 1, "fp": 2, "fn": 2}


def test_top_losses_and_precision_recall_curves():
    rows = [cls("0", "cat", [0.9, 0.1], 0.1), cls("1", "dog", [0.8, 0.2], 1.6), cls("2", "cat", [0.7, 0.3], 0.4)]
    assert errors.top_losses(rows, "image_classification", 2) == [1, 2]
    cat, dog = errors.precision_recall(rows, "image_classification", LABELS)
    # cat by score: right, wrong, right -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 (VOC AP 5/6)
    assert cat.precision.tolist() == pytest.approx([1, 0.5, 2 / 3]) and cat.recall.tolist() == [0.5, 0.5, 1]
    assert cat.average_precision == pytest.approx(5 / 6) and cat.positives == 2
    assert dog.average_precision == pytest.approx(0.5)  # the one dog ranked second of three
    boxes = [{"filename": "0", "truth": [obj("cat", LEFT)], "boxes": [det("cat", 0.9, RIGHT), det("cat", 0.3, LEFT)]}]
    found, = (c for c in errors.precision_recall(boxes, "image_object_detection", LABELS) if c.label == "cat")
    assert found.average_precision == pytest.approx(0.5)  # matched with no score cut: the 0.3 box finds it


def test_ap_by_size_uses_cocos_areas_in_pixels():
    # a 200 x 200 image: 20 px (400 px², small), 60 px (3600, medium), 120 px (14400, large) squares
    small, medium, large = box(0, 0, 0.1, 0.1), box(0.5, 0, 0.8, 0.3), box(0, 0.4, 0.6, 1.0)
    rows = [{"filename": "0", "truth": [obj("cat", small), obj("cat", medium), obj("dog", large)],
             "boxes": [det("cat", 0.9, small), det("dog", 0.8, large)]}]
    by_size = errors.ap_by_size(rows, LABELS, [(200, 200)])
    assert {name: part["objects"] for name, part in by_size.items()} == {"small": 1, "medium": 1, "large": 1}
    assert by_size["small"]["ap"] == pytest.approx(1) and by_size["large"]["ap"] == pytest.approx(1)
    assert by_size["medium"]["ap"] == 0
    # the same boxes in a 40 px image are all small
    tiny = errors.ap_by_size(rows, LABELS, [(40, 40)])
    assert tiny["small"]["objects"] == 3 and math.isnan(tiny["large"]["ap"])


def test_panel_from_a_run_folder_alone(tmp_path):
    from automl_nb.widgets.error_analysis import ErrorAnalysis

    images = [(tmp_path / f"{k}.png", (32, 24)) for k in range(3)]
    rows = [cls(str(path), label, probs, loss) for (path, _), label, probs, loss in
            zip(images, ["cat", "cat", "dog"], [[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]], [0.1, 1.2, 0.2])]
    run = write_run(tmp_path / "run", "image_classification", LABELS, {"0": (0.6, rows), "1": (0.9, rows)}, images)
    panel = ErrorAnalysis(str(run))
    assert panel.trial.trial_id == "1"  # the best by default
    assert panel.open_cell("cat", "dog") == [1]
    assert len(panel.cell_gallery.children) == 1 and "1.png" in panel.cell_gallery.children[0].children[1].value
    assert "2 right (66.7%)" in panel.summary.value
    html = panel._repr_mimebundle_()["text/html"]
    assert html.count("data:image/png;base64") == 4  # three worst images and the curves


def test_detection_panel_shows_class_errors_and_sizes(tmp_path):
    from automl_nb.widgets.error_analysis import ErrorAnalysis

    path = tmp_path / "a.png"
    rows = [{"filename": str(path), "truth": [obj("cat", LEFT), obj("dog", RIGHT)],
             "boxes": [det("cat", 0.9, LEFT), det("cat", 0.8, MIDDLE)]}]
    run = write_run(tmp_path / "run", "image_object_detection", LABELS, {"0": (0.5, rows)}, [(path, (200, 100))])
    panel = ErrorAnalysis(run, "0")
    assert panel.tabs.titles == ("confusion", "worst images", "precision-recall", "errors by class", "AP by size")
    assert panel.show_class_errors() == [(0, 1)]  # the cat in the middle
    panel.error_class.value, panel.error_kind.value = "dog", "missed objects"
    assert "dog: 1 missed objects in 1 image" in panel.error_title.value
    assert "<td>medium</td><td>1024 – 9216</td><td>2</td>" in panel.tabs.children[4].value  # 80 x 40 px boxes
    np.testing.assert_array_equal(panel.matrix.counts, errors.confusion(rows, "image_object_detection", LABELS).counts)


def test_panel_names_a_missing_trial_and_file(tmp_path):
    from automl_nb.errors import AutoMLError, RunFolderError
    from automl_nb.widgets.error_analysis import ErrorAnalysis

    run = write_run(tmp_path / "run", "image_classification", LABELS, {"0": (0.5, [cls("x.png", "cat", [1, 0])])})
    with pytest.raises(AutoMLError, match="trial '7': no such trial in .*; allowed: 0"):
        ErrorAnalysis(run, "7")
    (run / "trials" / "0" / "predictions.jsonl").unlink()
    with pytest.raises(RunFolderError, match="predictions.jsonl: no predictions file"):
        ErrorAnalysis(run, "0")
