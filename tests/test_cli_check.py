"""``automl-nb check JOB.yml``: the data-health report on a synthetic detection set with injected
problems (issue 14's done-when), on a clean one, and on a job that cannot be read."""

import json
import shutil

from automl_nb import cli
from automl_nb.data.synthetic import make_dataset

JOB = """\
task: image_object_detection
training_data: {path: ./train, type: mltable}
validation_data: {path: ./valid, type: mltable}
"""
TINY = 0.03  # a 2 px box in a 64 px image: 18 px at the default min_size 600 (COCO small is < 32)


def detection_job(folder, inject: bool):
    """A detection job with 40 training and 12 validation images of 64 px; with ``inject``: one
    training image copied into validation, one image no label line names, and tiny boxes added
    until they are 30% of all objects."""
    make_dataset("image_object_detection", 40, 64, folder / "train", seed=0)
    make_dataset("image_object_detection", 12, 64, folder / "valid", seed=1)
    (folder / "job.yml").write_text(JOB)
    if not inject:
        return folder / "job.yml"
    labels = folder / "train" / "labels.jsonl"
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    validation = [json.loads(line) for line in (folder / "valid" / "labels.jsonl").read_text().splitlines()]
    leaked = {**rows[3], "image_url": "images/leaked.png"}  # training line 4, copied into validation
    total = sum(len(row["label"]) for row in rows + validation + [leaked])
    tiny = round(0.3 * total / 0.7)  # tiny / (total + tiny) = 30% of the objects of both splits
    for k in range(tiny):
        x = 0.05 + 0.1 * (k // len(rows))
        rows[k % len(rows)]["label"] = rows[k % len(rows)]["label"] + [
            {"label": "circle", "topX": x, "topY": 0.9, "bottomX": x + TINY, "bottomY": 0.9 + TINY}]
    labels.write_text("".join(json.dumps(row) + "\n" for row in rows))
    shutil.copy(folder / "train" / "images" / "00003.png", folder / "valid" / "images" / "leaked.png")
    with open(folder / "valid" / "labels.jsonl", "a") as handle:
        handle.write(json.dumps(leaked) + "\n")  # line 13
    shutil.copy(folder / "valid" / "images" / "00000.png", folder / "train" / "images" / "forgotten.png")
    return folder / "job.yml"


def test_check_reports_each_injected_problem_with_its_fix(tmp_path, capsys):
    job = detection_job(tmp_path, inject=True)
    assert cli.main(["check", str(job)]) == 1  # leakage is an error
    out = capsys.readouterr().out
    train, valid = tmp_path / "train" / "labels.jsonl", tmp_path / "valid" / "labels.jsonl"
    lines = out.splitlines()

    leak = lines.index(next(line for line in lines if line.startswith("ERROR leakage:")))
    assert f"{train}:4 = {valid}:13" in lines[leak]
    assert lines[leak + 1].startswith("    -> remove these images from validation_data")

    small = lines.index(next(line for line in lines if line.startswith("WARNING small_objects:")))
    assert "(30%) are smaller than 32x32 px" in lines[small] and "1.9x1.9 px in a 64x64 image" in lines[small]
    assert "0% stay small" in lines[small + 1]
    assert lines[small + 2:small + 4] == ["    paste under training_parameters:", "        tile_grid_size: 3x2"]

    unlabelled = next(line for line in lines if line.startswith("WARNING unlabelled_images:"))
    assert unlabelled.endswith(str(tmp_path / "train" / "images" / "forgotten.png"))
    assert "training_parameters:\n      tile_grid_size: 3x2" in out  # the merged YAML block
    assert out.rstrip().endswith("1 error, 2 warnings, 0 notes")


def test_check_of_a_clean_set_finds_nothing_and_exits_0(tmp_path, capsys):
    job = detection_job(tmp_path, inject=False)
    assert cli.main(["check", str(job), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "40 training images" in out and "12 validation images" in out
    assert "0 small (0%)" in out and out.rstrip().endswith("no problems found")


def test_check_of_a_missing_job_file_exits_2(tmp_path, capsys):
    assert cli.main(["check", str(tmp_path / "nope.yml")]) == 2
    assert f"{tmp_path / 'nope.yml'}: no such job file" in capsys.readouterr().err
