"""predictions.jsonl: the rows of each task from the validation pass, the matching, the file."""

import json
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from automl_nb.analysis.predictions import (
    PREDICTIONS, match_detections, prediction_rows, read_predictions, row_from_output, write_predictions,
)
from automl_nb.data.mltable import load_records
from automl_nb.data.records import class_names
from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import RunFolderError
from automl_nb.spec import DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION, resolve_parameters
from automl_nb.testing import FAST_CLASSIFICATION
from automl_nb.train.evaluate import evaluate_model


def entry(label, x1, y1, x2, y2, score=None):
    item = {"label": label, "box": {"topX": x1, "topY": y1, "bottomX": x2, "bottomY": y2}}
    return item if score is None else {**item, "score": score}


# -- matching on hand-made boxes ---------------------------------------------------------------
def test_matching_takes_detections_by_score_and_counts_only_confident_ones():
    truth = [entry("cat", 0.0, 0.0, 0.4, 0.4), entry("dog", 0.5, 0.5, 0.9, 0.9), entry("cat", 0.6, 0.0, 0.9, 0.3)]
    boxes = [entry("cat", 0.01, 0.0, 0.4, 0.4, score=0.6),   # a second hit on the first cat: a duplicate
             entry("cat", 0.0, 0.0, 0.4, 0.4, score=0.9),    # the best: takes the first cat
             entry("cat", 0.5, 0.5, 0.9, 0.9, score=0.95),   # right place, wrong class
             entry("cat", 0.6, 0.0, 0.9, 0.3, score=0.3)]    # would match, but below the threshold
    result = match_detections(boxes, truth)
    assert result["match"] == [False, True, False, False]
    assert result["found"] == [True, False, False]
    assert (result["tp"], result["fp"], result["fn"]) == (1, 2, 2)
    lower = match_detections(boxes, truth, score_threshold=0.2)
    assert lower["match"][3] and lower["found"] == [True, False, True] and lower["fp"] == 2


def test_matching_needs_the_iou_asked_for():
    truth = [entry("cat", 0.0, 0.0, 0.4, 0.4)]
    half = [entry("cat", 0.2, 0.0, 0.6, 0.4, score=0.9)]  # IoU 1/3
    assert match_detections(half, truth)["tp"] == 0
    assert match_detections(half, truth, iou=0.3)["tp"] == 1
    assert match_detections([], truth) == {"match": [], "found": [False], "tp": 0, "fp": 0, "fn": 1}
    with pytest.raises(ValueError, match="iou"):
        match_detections(half, truth, iou=0)


# -- the file ----------------------------------------------------------------------------------
def test_written_rows_read_back_as_a_frame_and_damage_names_the_file(tmp_path):
    with pytest.raises(RunFolderError, match=str(tmp_path / PREDICTIONS)):
        read_predictions(tmp_path)
    write_predictions(tmp_path, [{"filename": "a.png", "label": "cat", "probs": [0.9, 0.1], "loss": 0.1},
                                 {"filename": "b.png", "label": "dog", "probs": [0.2, 0.8], "loss": 0.2}])
    frame = read_predictions(tmp_path)
    assert frame["filename"].tolist() == ["a.png", "b.png"] and frame["probs"][1] == [0.2, 0.8]
    (tmp_path / PREDICTIONS).write_text('{"filename": "a.png"}\n{"filename": "b.p')
    with pytest.raises(RunFolderError, match=f"{PREDICTIONS}:2: damaged"):
        read_predictions(tmp_path)


def test_rows_from_a_predictor_output_have_the_loss_of_the_label_on_file():
    row = row_from_output("a.png", "dog", {"probs": [0.2, 0.8], "labels": ["cat", "dog"]})
    assert row["loss"] == pytest.approx(-math.log(0.8), abs=1e-6)
    tags = row_from_output("a.png", ("cat",), {"probs": [0.9, 0.3], "labels": ["cat", "dog"]})
    assert tags["label"] == ["cat"] and tags["loss"] == pytest.approx(-(math.log(0.9) + math.log(0.7)) / 2, abs=1e-6)


# -- the validation pass of each task ----------------------------------------------------------
@pytest.mark.slow
def test_a_trial_keeps_the_predictions_of_its_best_evaluation(tmp_path):
    from automl_nb.train import Trial, run_trial

    data = make_dataset(MULTICLASS, 24, 32, tmp_path / "data", seed=0)
    params = {**FAST_CLASSIFICATION, "number_of_epochs": 2, "training_batch_size": 8, "learning_rate": 0.001}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        run_trial(Trial("0", MULTICLASS, params, str(data), str(tmp_path / "trial")))
    finally:
        torch.set_num_threads(threads)
    frame = read_predictions(tmp_path / "trial")
    evaluation = json.loads((tmp_path / "trial" / "evaluation.json").read_text())
    classes = evaluation["labels"]
    assert len(frame) == np.sum(evaluation["confusion_matrix"])  # one row per validation image
    probs = np.array(frame["probs"].tolist())
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    truth = [classes.index(label) for label in frame["label"]]
    # The file and evaluation.json come from the same (best) evaluation.
    assert np.mean(probs.argmax(1) == truth) == pytest.approx(evaluation["accuracy"])
    true_probs = probs[np.arange(len(truth)), truth]
    assert true_probs.min() > 1e-3  # not saturated: the loss below is meaningful
    assert np.allclose(frame["loss"], -np.log(true_probs), rtol=1e-3, atol=1e-4)


class FixedLogits(torch.nn.Module):
    """A classifier whose logits come from the image's mean colour: cheap and image-dependent."""

    def __init__(self, classes):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(3, classes)

    def forward(self, images):
        return self.linear(images.mean((2, 3)))


def test_multilabel_rows_carry_tags_sigmoid_probabilities_and_the_mean_bce(tmp_path):
    from automl_nb.train.classification import ClassificationAdapter

    make_dataset(MULTILABEL, 10, 32, tmp_path, seed=0)
    records = load_records(str(tmp_path), MULTILABEL)
    classes = class_names(records)
    params = resolve_parameters(MULTILABEL, {k: v for k, v in FAST_CLASSIFICATION.items() if k != "early_stopping"})
    adapter = ClassificationAdapter(MULTILABEL, params, records, records, classes)
    kept = []
    loader = DataLoader(adapter.valid_dataset, batch_size=4)
    evaluate_model(FixedLogits(len(classes)), loader, adapter, torch.device("cpu"), keep=kept)
    write_predictions(tmp_path, prediction_rows(kept, classes))
    frame = read_predictions(tmp_path)
    assert frame["filename"].tolist() == [r.image_url for r in records]
    assert frame["label"].tolist() == [list(r.label) for r in records]
    probs = np.array(frame["probs"].tolist())
    truth = np.array([[name in r.label for name in classes] for r in records])
    bce = -np.where(truth, np.log(probs), np.log(1 - probs)).mean(1)
    assert ((probs > 0) & (probs < 1)).all() and np.allclose(frame["loss"], bce, atol=1e-4)


class Replay(torch.nn.Module):
    """A fake detector that predicts the validation targets, in loader order (class shifted by ``shift``)."""

    def __init__(self, targets, classes, shift=0):
        super().__init__()
        self.targets, self.classes, self.shift, self.seen = targets, classes, shift, 0

    def forward(self, images, targets=None):
        if self.training:
            return {"loss": torch.tensor(0.5)}
        outputs = []
        for _ in images:
            target = self.targets[self.seen]
            self.seen += 1
            count = len(target["labels"])
            output = {"boxes": target["boxes"].float(), "scores": torch.full((count,), 0.8),
                      "labels": (target["labels"] - 1 + self.shift) % self.classes + 1}
            if "masks" in target:
                output["masks"] = target["masks"].float()[:, None]
            outputs.append(output)
        return outputs


@pytest.mark.parametrize("task, shift", [(DETECTION, 0), (DETECTION, 1), (SEGMENTATION, 0)])
def test_detection_rows_match_the_boxes_on_file(tmp_path, task, shift):
    from automl_nb.train.detection import DetectionAdapter

    make_dataset(task, 4, 64, tmp_path, seed=0)
    records = load_records(str(tmp_path), task)
    classes = class_names(records)
    model_name = "maskrcnn_resnet18_fpn" if task == SEGMENTATION else "fasterrcnn_resnet18_fpn"
    params = resolve_parameters(task, {"model_name": model_name, "log_validation_loss": False})
    adapter = DetectionAdapter(task, params, records, records, classes)
    targets = [adapter.valid_dataset[i][1] for i in range(len(records))]
    kept = []
    loader = DataLoader(adapter.valid_dataset, batch_size=3, collate_fn=adapter.collate)
    evaluate_model(Replay(targets, len(classes), shift).eval(), loader, adapter, torch.device("cpu"), keep=kept)
    write_predictions(tmp_path, prediction_rows(kept, classes))
    frame = read_predictions(tmp_path)
    assert frame["filename"].tolist() == [r.image_url for r in records]
    objects = [len(r.label) for r in records]
    assert [len(truth) for truth in frame["truth"]] == objects
    assert [row[0]["label"] for row in frame["truth"]] == [r.label[0].label for r in records]
    first = frame["boxes"][0][0]["box"]
    on_file = records[0].label[0]
    assert first["topX"] == pytest.approx(on_file.top_x, abs=0.02)
    assert first["bottomY"] == pytest.approx(on_file.bottom_y, abs=0.02)
    if shift == 0:
        assert frame["tp"].tolist() == objects and frame["fp"].sum() == 0 and frame["fn"].sum() == 0
        assert all(all(found) for found in frame["found"])
    else:  # the right places with the wrong classes
        assert frame["tp"].sum() == 0 and frame["fp"].tolist() == objects and frame["fn"].tolist() == objects
    if task == SEGMENTATION:
        polygon = np.array(frame["boxes"][0][0]["polygon"][0]).reshape(-1, 2)
        assert polygon[:, 0].min() == pytest.approx(first["topX"], abs=0.03)
        assert "polygon" in frame["truth"][0][0]


class Blind(torch.nn.Module):
    def forward(self, images):
        return None


def test_yolo_rows_are_in_the_original_images_pixels(tmp_path, monkeypatch):
    import automl_nb.train.yolo as yolo_adapter
    from automl_nb.train.yolo import YoloAdapter

    make_dataset(DETECTION, 3, 64, tmp_path, seed=0)
    records = load_records(str(tmp_path), DETECTION)
    classes = class_names(records)
    params = resolve_parameters(DETECTION, {"model_name": "yolov5", "model_size": "small", "image_size": 96,
                                            "use_pretrained_model": False, "log_validation_loss": False})
    adapter = YoloAdapter(DETECTION, params, records, records, classes)
    pending = [adapter.valid_dataset[i][1] for i in range(len(records))]

    def replay(model, outputs, letterboxes, score_threshold, iou_threshold):
        replayed = []
        for geometry in letterboxes:
            target = pending.pop(0)
            boxes = geometry.to_image(target["boxes"])
            replayed.append({"boxes": boxes, "scores": torch.full((len(boxes),), 0.7), "labels": target["labels"]})
        return replayed

    monkeypatch.setattr(yolo_adapter, "postprocess", replay)
    kept = []
    loader = DataLoader(adapter.valid_dataset, batch_size=2, collate_fn=adapter.collate)
    evaluate_model(Blind(), loader, adapter, torch.device("cpu"), keep=kept)  # postprocess replays the truth
    rows = prediction_rows(kept, classes)
    assert [row["filename"] for row in rows] == [r.image_url for r in records]
    assert [row["tp"] for row in rows] == [len(r.label) for r in records]
    on_file = records[1].label[0]
    assert rows[1]["boxes"][0]["box"]["topX"] == pytest.approx(on_file.top_x, abs=0.02)
