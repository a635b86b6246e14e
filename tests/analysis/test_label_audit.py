"""The label audit on hand-made prediction files (no training), and the corrected labels file."""

import json
import os

import pytest

from automl_nb.analysis.audit import (
    AUDIT_FOLDER, MISSING_BOX, SPURIOUS_BOX, WRONG_LABEL, audit_labels, chosen_trials,
)
from automl_nb.analysis.corrections import corrected_path, log_path, write_corrected
from automl_nb.analysis.predictions import (
    classification_row, detection_row, truth_objects, write_predictions, write_rows,
)
from automl_nb.data.mltable import load_records
from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import AutoMLError
from automl_nb.spec import DETECTION, MULTICLASS, MULTILABEL
from automl_nb.sweep.run import Run
from automl_nb.sweep.store import RunStore, TrialRecord
from automl_nb.train.folder import BEST_CHECKPOINT, TrialFolder

CLASSES = ["circle", "square", "triangle"]


def make_run(folder, task, data, metrics, rows_of):
    """A run folder whose trials (with these best metrics) wrote ``rows_of(trial index)``."""
    store = RunStore(folder)
    store.write_run(status="Completed")
    for index, metric in enumerate(metrics):
        trial_id = str(index)
        store.write_trial(TrialRecord(trial_id, index, status="Completed", best_metric=metric))
        trial = TrialFolder(store.trial_folder(trial_id))
        trial.write_json("params.json", {"trial_id": trial_id, "task": task, "parameters": {},
                                         "training_data": str(data), "validation_data": None,
                                         "validation_data_size": None, "target_column_name": "label"})
        trial.write_labels(CLASSES)
        write_predictions(trial.path, rows_of(index))
    return Run(folder)


def probs(top, p):
    rest = (1 - p) / (len(CLASSES) - 1)
    return [p if name == top else rest for name in CLASSES]


@pytest.fixture
def multiclass(tmp_path):
    data = make_dataset(MULTICLASS, 6, 32, tmp_path / "data", seed=0)
    return data, load_records(str(data), MULTICLASS)


def multiclass_rows(records, trial):
    """Image 0: everyone says another class, surely. 1: everyone agrees with the file. 2: one trial
    disagrees with the others. 3: all say another class, not surely. Trial 3 (the worst) says
    random things: were it chosen, nothing would be found."""
    other = {name: CLASSES[(CLASSES.index(name) + 1) % 3] for name in CLASSES}
    rows = []
    for k, record in enumerate(records[:4]):
        label = record.label
        top, p = {0: (other[label], 0.93 + 0.01 * trial), 1: (label, 0.97),
                  2: (other[label] if trial else label, 0.95), 3: (other[label], 0.7)}[k]
        if trial == 3:
            top, p = label, 0.99
        rows.append(classification_row(record.image_url, label, probs(top, p), 0.0))
    return rows


def test_the_audit_finds_a_flipped_label_and_nothing_where_trials_agree_with_it(tmp_path, multiclass):
    data, records = multiclass
    run = make_run(tmp_path / "run", MULTICLASS, data, [0.9, 0.8, 0.85, 0.1], lambda t: multiclass_rows(records, t))
    assert chosen_trials(run) == ["0", "2"]  # the better half
    findings = audit_labels(run, include_training=False)
    frame = findings.frame
    assert findings.trials == ("0", "2") and len(findings) == 1
    found = frame.loc[0]
    assert found["image"] == records[0].image_url and found["kind"] == WRONG_LABEL
    assert found["label"] == records[0].label and found["agreed"] != records[0].label
    assert found["confidence"] == pytest.approx(0.94) and found["split"] == "validation"
    assert found["source"] == records[0].source
    # With the random trial in, the trials no longer agree.
    assert len(audit_labels(run, trials=[0, 2, 3], include_training=False)) == 0
    # A lower bar finds image 3 too.
    assert len(audit_labels(run, confidence=0.6, include_training=False)) == 2


def test_the_audit_needs_two_trials_with_a_metric(tmp_path, multiclass):
    data, records = multiclass
    run = make_run(tmp_path / "run", MULTICLASS, data, [0.9, None], lambda t: multiclass_rows(records, t))
    with pytest.raises(AutoMLError, match="at least 2 trials with a metric; this run has 1"):
        audit_labels(run)
    with pytest.raises(AutoMLError, match="7 not in"):
        audit_labels(run, trials=["0", "7"])
    with pytest.raises(ValueError, match="confidence: 1.5"):
        audit_labels(run, trials=["0", "1"], confidence=1.5)


def test_training_images_come_from_the_cache_without_a_model(tmp_path, multiclass):
    data, records = multiclass
    run = make_run(tmp_path / "run", MULTICLASS, data, [0.9, 0.8], lambda t: multiclass_rows(records, t))
    for trial in ("0", "1"):
        (run.folder / "trials" / trial / BEST_CHECKPOINT).write_bytes(b"not loaded: the cache is newer")
        os.utime(run.folder / "trials" / trial / BEST_CHECKPOINT, (1, 1))
        # Images 4 and 5 were trained on; both trials are sure image 5 is a triangle.
        rows = [classification_row(r.image_url, r.label, probs("triangle" if k == 1 else r.label, 0.96), 0.0)
                for k, r in enumerate(records[4:])]
        write_rows(run.folder / AUDIT_FOLDER / f"predictions_{trial}.jsonl", rows)
    findings = audit_labels(str(run.folder), progress=False)
    training = findings.frame[findings.frame["split"] == "training"]
    assert records[5].label != "triangle"
    assert training["image"].tolist() == [records[5].image_url] and training["agreed"].tolist() == ["triangle"]


def test_multilabel_findings_add_and_remove_the_tags_all_trials_agree_on(tmp_path):
    data = make_dataset(MULTILABEL, 3, 32, tmp_path / "data", seed=0)
    records = load_records(str(data), MULTILABEL)
    record = records[0]
    missing = next(name for name in CLASSES if name not in record.label)
    present = record.label[0]

    def rows(trial):
        p = [0.97 if name == missing else 0.02 if name == present else 0.96 if name in record.label else 0.03
             for name in CLASSES]
        sure = [0.99 if name in r.label else 0.01 for r in records[1:] for name in CLASSES]
        return [classification_row(record.image_url, record.label, p, 0.0)] + [
            classification_row(r.image_url, r.label, sure[3 * k:3 * k + 3], 0.0) for k, r in enumerate(records[1:])]

    run = make_run(tmp_path / "run", MULTILABEL, data, [0.9, 0.8], rows)
    frame = audit_labels(run, include_training=False).frame
    assert frame["image"].tolist() == [record.image_url]
    assert set(frame.loc[0, "agreed"]) == (set(record.label) - {present}) | {missing}


def box(x1, y1, x2, y2):
    return {"topX": x1, "topY": y1, "bottomX": x2, "bottomY": y2}


@pytest.fixture
def detection(tmp_path):
    data = make_dataset(DETECTION, 3, 64, tmp_path / "data", seed=0)
    records = load_records(str(data), DETECTION)
    free = box(0.0, 0.0, 0.08, 0.08)  # a corner no object of the synthetic images covers

    def rows(trial):
        out = []
        for k, record in enumerate(records):
            truth = truth_objects(record.label)
            boxes = [{"label": t["label"], "score": 0.9, "box": t["box"]} for t in truth]
            if k == 0:  # every trial finds an object with no box on file
                boxes.append({"label": "square", "score": 0.95 - 0.02 * trial, "box": free})
            if k == 1:  # no trial finds the first box on file
                boxes = boxes[1:]
            if k == 2 and trial == 0:  # only one trial sees this one
                boxes.append({"label": "circle", "score": 0.99, "box": free})
            if k == 2:  # every trial also boxes a labelled object badly (IoU 1/3): not a missing object
                b = truth[0]["box"]
                shift = (b["bottomX"] - b["topX"]) / 2
                boxes.append({"label": truth[0]["label"], "score": 0.97,
                              "box": {**b, "topX": b["topX"] + shift, "bottomX": b["bottomX"] + shift}})
            out.append(detection_row(record.image_url, truth, boxes))
        return out

    return data, records, rows


def test_the_audit_finds_a_missing_box_and_a_spurious_one(tmp_path, detection):
    data, records, rows = detection
    run = make_run(tmp_path / "run", DETECTION, data, [0.5, 0.6], rows)
    frame = audit_labels(run, include_training=False).frame
    kinds = dict(zip(frame["kind"], frame["image"]))
    assert sorted(frame["kind"]) == [MISSING_BOX, SPURIOUS_BOX]
    assert kinds[MISSING_BOX] == records[0].image_url and kinds[SPURIOUS_BOX] == records[1].image_url
    missing = frame[frame["kind"] == MISSING_BOX].iloc[0]
    assert missing["agreed"] == "square" and missing["confidence"] == pytest.approx(0.94)
    assert missing["box"]["bottomX"] == pytest.approx(0.08)
    spurious = frame[frame["kind"] == SPURIOUS_BOX].iloc[0]
    assert spurious["label"] == records[1].label[0].label and spurious["box"]["topX"] == records[1].label[0].top_x


def test_decisions_write_a_corrected_file_beside_the_original_and_a_log(tmp_path, detection):
    data, records, rows = detection
    run = make_run(tmp_path / "run", DETECTION, data, [0.5, 0.6], rows)
    findings = audit_labels(run, include_training=False)
    original = data.read_bytes()
    number = {kind: k for k, kind in enumerate(findings.frame["kind"])}
    written = write_corrected(findings, {number[MISSING_BOX]: "fix", number[SPURIOUS_BOX]: "fix"})
    assert written == [corrected_path(data)] and written[0].parent == data.parent and written[0] != data
    assert data.read_bytes() == original
    corrected = [json.loads(line) for line in written[0].read_text().splitlines()]
    assert len(corrected) == len(records)
    assert len(corrected[0]["label"]) == len(records[0].label) + 1 and corrected[0]["label"][-1]["label"] == "square"
    assert len(corrected[1]["label"]) == len(records[1].label) - 1
    assert corrected[2] == json.loads(original.decode().splitlines()[2])
    log = [json.loads(line) for line in log_path(data).read_text().splitlines()]
    assert {entry["decision"] for entry in log} == {"fix"} and len(log) == 2
    assert all(entry["before"] != entry["after"] and entry["time"] for entry in log)
    # The corrected file reads as labels; dropping an image leaves it out.
    assert len(load_records(str(written[0]), DETECTION)) == len(records)
    write_corrected(findings, {number[SPURIOUS_BOX]: "drop"})
    assert len(corrected_path(data).read_text().splitlines()) == len(records) - 1
    with pytest.raises(ValueError, match="'maybe' is not one of keep, fix, drop"):
        write_corrected(findings, {0: "maybe"})


def test_the_panel_records_decisions_and_writes_through_its_button(tmp_path, multiclass):
    from automl_nb.widgets.label_audit import LabelAudit

    data, records = multiclass
    run = make_run(tmp_path / "run", MULTICLASS, data, [0.9, 0.8], lambda t: multiclass_rows(records, t))
    panel = LabelAudit(run, include_training=False)
    assert len(panel.cards.children) == 1 and "wrong_label" in panel.to_html()
    choice = panel.cards.children[0].children[1].children[1]
    choice.value = "fix"
    assert panel.decisions == {0: "fix"}
    panel.write.click()
    corrected = [json.loads(line) for line in corrected_path(data).read_text().splitlines()]
    assert corrected[0]["label"] == panel.findings.frame.loc[0, "agreed"] != records[0].label
    assert "Wrote" in panel.message.value and "decision: fix" in panel.to_html()
