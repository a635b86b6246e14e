"""``automl-nb`` on bad inputs, in-process: data (``run``, ``resume``), job YAML and converters.

Each case exits 2 with the file (and line, or key) and the offending value on stderr, makes no
run folder or output file, and never gets as far as making an executor (a cluster) for trials.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from automl_nb import cli
from automl_nb.spec import load_job
from automl_nb.sweep.store import RunStore


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(12):
        Image.new("RGB", (8, 8), (20 * i, 90, 160)).save(folder / f"{i:02d}.png")
        paths.append(folder / f"{i:02d}.png")
    return paths


@pytest.fixture(autouse=True)
def no_executor(monkeypatch, tmp_path):
    """Work in ``tmp_path`` (a default run folder would land in ./runs) and fail if an executor is made.

    The sweep estimate (which times training steps) is turned off: these jobs never get to train.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOML_NB_NO_ESTIMATE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("an executor was made for a job that should have been refused")

    monkeypatch.setattr("automl_nb.sweep.run._dask_executor", refuse)


def labels_file(path: Path, images, bad: dict[int, object] | None = None, count: int = 12) -> Path:
    """A multiclass JSONL of ``count`` good lines (cat, dog alternating); ``bad`` replaces lines (1-based)."""
    rows = [{"image_url": str(images[i % len(images)]), "label": ("cat", "dog")[i % 2]} for i in range(count)]
    for line, row in (bad or {}).items():
        rows[line - 1] = row
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def job_file(tmp_path: Path, training: str, validation: str | None = None) -> Path:
    text = (f"task: image_classification\ntarget_column_name: label\n"
            f"training_data: {{path: {training}, type: uri_file}}\n")
    if validation:
        text += f"validation_data: {{path: {validation}, type: uri_file}}\n"
    path = tmp_path / "job.yml"
    path.write_text(text + "training_parameters: {model_name: resnet18, number_of_epochs: 1}\n")
    return path


def stderr_lines(capsys) -> list[str]:
    captured = capsys.readouterr()
    return captured.err.splitlines()


def no_run_made(tmp_path: Path) -> bool:
    return not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


# ---- data -------------------------------------------------------------------------------------

def test_run_prints_one_stderr_line_per_problem_exits_2_and_makes_no_run_folder(tmp_path, images, capsys):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    labels = labels_file(tmp_path / "data" / "train.jsonl", images,
                         {3: {"image_url": str(images[2]), "label": ["cat"]}, 5: {"image_url": str(empty), "label": "dog"}})
    assert cli.main(["run", str(job_file(tmp_path, "data/train.jsonl"))]) == 2
    assert stderr_lines(capsys) == [
        "error: the data check found 2 problems; nothing was started:",
        f'{labels}:3: label for image_classification must be a class name string, got a list ["cat"] (a list is '
        f"the image_classification_multilabel or detection shape; check the task)",
        f"{labels}:5: cannot read image {empty}: the file is empty (0 bytes)",
    ]
    assert no_run_made(tmp_path)


def test_run_refuses_missing_training_data_naming_the_path(tmp_path, capsys):
    assert cli.main(["run", str(job_file(tmp_path, "data/nowhere.jsonl")), "--output", "out"]) == 2
    assert stderr_lines(capsys) == ["error: the data check found 1 problem; nothing was started:",
                                    f"training/validation data not found: {tmp_path}/data/nowhere.jsonl"]
    assert no_run_made(tmp_path)


DATA_MISTAKES = [
    # (training lines replaced, validation lines or None, what stderr must say)
    ({7: '{"image_url": "x.png", "label": cat}'}, None,
     r"train\.jsonl:7: malformed JSON: Expecting value \(column 33\) near '\{\"image_url\": \"x\.png\", \"label\": cat\}'"),
    ({2: {"image_url": "gone.png", "label": "cat"}}, None, r"train\.jsonl:2: image not found: \S*/data/gone\.png$"),
    ({}, {1: {"image_url": "IMAGE", "label": "zebra"}},
     r"valid\.jsonl:1: validation label 'zebra' is in no training image \(1 validation image carries it\); "
     r"training classes: cat, dog$"),
]


@pytest.mark.parametrize("training_bad, validation_bad, said", DATA_MISTAKES,
                         ids=["malformed-json", "missing-image", "unseen-validation-class"])
def test_run_refuses_a_data_mistake_before_any_run_folder(tmp_path, images, capsys, training_bad, validation_bad,
                                                           said):
    labels_file(tmp_path / "data" / "train.jsonl", images, training_bad)
    validation = None
    if validation_bad is not None:
        rows = {n: {**row, "image_url": str(images[0])} for n, row in validation_bad.items()}
        labels_file(tmp_path / "data" / "valid.jsonl", images, rows, count=3)
        validation = "data/valid.jsonl"
    assert cli.main(["run", str(job_file(tmp_path, "data/train.jsonl", validation)), "--output", "out"]) == 2
    lines = stderr_lines(capsys)
    assert lines[0] == "error: the data check found 1 problem; nothing was started:" and len(lines) == 2
    assert re.search(said, lines[1]), lines
    assert no_run_made(tmp_path)


def test_run_shows_the_first_20_problems_and_the_total(tmp_path, images, capsys):
    nulls = {n: {"image_url": str(images[0]), "label": None} for n in range(2, 41, 2)}  # 20 lines
    labels = labels_file(tmp_path / "data" / "train.jsonl", images, nulls, count=44)
    labels.write_text(labels.read_text() + '{"image_url": 1}\n' * 5)  # 5 more
    assert cli.main(["run", str(job_file(tmp_path, "data/train.jsonl"))]) == 2
    lines = stderr_lines(capsys)
    assert lines[0] == "error: the data check found 25 problems; nothing was started:"
    assert [line.split(": ", 1)[0] for line in lines[1:21]] == [f"{labels}:{n}" for n in range(2, 41, 2)]
    assert all(line.endswith("must be a class name string, got null") for line in lines[1:21])
    assert lines[21:] == ["... and 5 more (25 problems)"]
    assert no_run_made(tmp_path)


def test_resume_refuses_data_that_broke_since_and_leaves_the_run_folder_alone(tmp_path, images, capsys):
    labels = labels_file(tmp_path / "data" / "train.jsonl", images)
    folder = tmp_path / "previous-run"
    RunStore(folder).create(load_job(job_file(tmp_path, "data/train.jsonl")))
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    labels_file(labels, images, {12: {"image_url": str(images[0]), "label": "cat", "image_details": {"height": 0}}})
    assert cli.main(["resume", str(folder)]) == 2
    assert stderr_lines(capsys)[1] == (f"{labels}:12: image_details height must be a positive size like '640px', "
                                       f"got 0")
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


# ---- job YAML ---------------------------------------------------------------------------------

JOB_HEAD = "task: image_classification\ntarget_column_name: label\ntraining_data: {path: ./shapes, type: mltable}\n"

BAD_JOBS = [
    ("unknown-key", JOB_HEAD + "training_parameter:\n  learning_rate: 0.1\n",
     "job.yml:4: training_parameter: unknown job key; did you mean 'training_parameters'?"),
    ("out-of-range", JOB_HEAD + "training_parameters:\n  learning_rate: -1\n",
     "job.yml:5: learning_rate: -1 is out of range; allowed: float in [0, 1]"),
    ("not-a-task", JOB_HEAD.replace("image_classification", "image_regression"),
     "job.yml:1: task: 'image_regression' is not a task; allowed: one of image_classification"),
    ("yaml-syntax", JOB_HEAD + "training_parameters: {learning_rate: 0.1\n",
     "job.yml:5:1: YAML syntax error: expected ',' or '}'"),
    ("yaml-tab", JOB_HEAD + "training_parameters:\n\tlearning_rate: 0.1\n",
     "job.yml:5:1: YAML syntax error: found character '\\t' that cannot start any token"),
    ("no-training-data", "task: image_classification\ntarget_column_name: label\n",
     "job.yml:1: training_data: missing; allowed: an Input"),
    ("unknown-model", JOB_HEAD + "training_parameters:\n  model_name: resnet1800\n",
     "job.yml:5: model_name: 'resnet1800' is not a model for image_classification; allowed: one of"),
    ("not-an-int", JOB_HEAD + "limits:\n  max_trials: zero\n",
     "job.yml:5: max_trials: 'zero' is not an int; allowed: int in [1, 1000]"),
    ("fractional-epochs", JOB_HEAD + "training_parameters:\n  number_of_epochs: 2.5\n",
     "job.yml:5: number_of_epochs: 2.5 is not an int; allowed: int > 0"),
    ("empty-range", JOB_HEAD + "sweep: {sampling_algorithm: random}\nlimits: {max_trials: 2}\nsearch_space:\n"
                               "  - learning_rate: {type: uniform, min_value: 0.1, max_value: 0.01}\n",
     "job.yml:7: search_space[0].learning_rate: uniform: min_value 0.1 must be less than max_value 0.01"),
    ("input-type", JOB_HEAD.replace("type: mltable", "type: csv"),
     "job.yml:3: training_data.type: 'csv' is not an input type; allowed: one of mltable, uri_file, uri_folder"),
]


@pytest.mark.parametrize("text, said", [case[1:] for case in BAD_JOBS], ids=[case[0] for case in BAD_JOBS])
def test_run_refuses_a_bad_job_file_naming_its_line_key_and_value(tmp_path, capsys, text, said):
    (tmp_path / "job.yml").write_text(text)
    assert cli.main(["run", "job.yml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {said}"), err
    assert no_run_made(tmp_path)


# ---- converters -------------------------------------------------------------------------------

COCO = {"images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
        "categories": [{"id": 1, "name": "cat"}]}


def _coco(**changes) -> str:
    return json.dumps({**COCO, **changes})


def _voc_xml(box: str) -> str:
    return (f"<annotation><filename>a.png</filename><size><width>20</width><height>10</height></size>"
            f"<object><name>cat</name><bndbox>{box}</bndbox></object></annotation>")


BAD_CONVERSIONS = [
    # (format, file name, its text, what stderr must say)
    ("coco", "ann.json", '{"images": [\n  {"id": 1,\n}', "ann.json:3: malformed JSON: Expecting property name"),
    ("coco", "ann.json", json.dumps({"annotations": []}), "ann.json: not a COCO annotations file (no 'images' list)"),
    ("coco", "ann.json", _coco(annotations=[{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]}]),
     "ann.json: annotation 1 (a.png): unknown category_id 7"),
    ("coco", "ann.json", _coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5]}]),
     "ann.json: annotation 1 (a.png): bbox must be [x, y, width, height], got [1, 1, 5]"),
    ("coco", "ann.json", _coco(images=[{"id": 1, "width": 20, "height": 10}]), "ann.json: image 1: missing file_name"),
    ("voc", "xml/a.xml", "<annotation><filename>a.png</filename>\n<size><width>20</width>\n</annotation",
     "xml/a.xml:3: malformed XML: unclosed token"),
    ("voc", "xml/a.xml", _voc_xml("<xmin>one</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"),
     "xml/a.xml: object 1: <bndbox><xmin> must be a number, got 'one'"),
    ("voc", "xml/a.xml", _voc_xml("<xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"),
     "xml/a.xml: object 1: <bndbox><ymax> must be a number, got None"),
]


@pytest.mark.parametrize("kind, name, text, said", BAD_CONVERSIONS,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_CONVERSIONS)])
def test_convert_refuses_a_bad_annotation_file_naming_it_and_the_value(tmp_path, capsys, kind, name, text, said):
    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text(text)
    source = name if kind == "coco" else str(Path(name).parent)
    assert cli.main(["convert", kind, source, "--images-dir", ".", "-o", "out.jsonl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {said}"), err
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("argv, said", [
    (["coco", "nope.json"], "COCO file not found: nope.json"),
    (["voc", "empty"], "no .xml annotation files under empty"),
    (["folder", "nofolder"], "image folder not found: nofolder"),
    (["folder", "empty"], "empty: no images found in class folders (expected empty/<class>/<image>)"),
], ids=["coco-missing", "voc-no-xml", "folder-missing", "folder-no-images"])
def test_convert_refuses_a_missing_or_empty_source(tmp_path, capsys, argv, said):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    assert cli.main(["convert", *argv, "-o", "out.jsonl"]) == 2
    assert capsys.readouterr().err == f"error: {said}\n"
    assert not (tmp_path / "out.jsonl").exists()
