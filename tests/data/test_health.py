"""The data-health report: duplicates and leakage, classes, sizes against what the model sees,
objects and polygons, each finding with its YAML fix, and no false alarm on clean data."""

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from automl_nb.data.health import check
from automl_nb.data.phash import fingerprint, near_pairs
from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import SpecError
from automl_nb.spec import load_job, resolve_parameters


def write_job(folder, text):
    (folder / "job.yml").write_text(text)
    return folder / "job.yml"


def read_rows(labels):
    return [json.loads(line) for line in labels.read_text().splitlines()]


def write_rows(labels, rows):
    labels.write_text("".join(json.dumps(row) + "\n" for row in rows))


def by_kind(health):
    return {finding.kind: finding for finding in health.findings}


def resized_jpeg_copy(source, target, side):
    """A re-encoded, resized copy: the same picture, other bytes."""
    buffer = io.BytesIO()
    Image.open(source).convert("RGB").resize((side, side), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=80)
    target.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("task, size", [("image_classification", 32), ("image_classification_multilabel", 32),
                                        ("image_object_detection", 32), ("image_instance_segmentation", 32)])
def test_a_clean_set_raises_no_alarm(tmp_path, task, size):
    make_dataset(task, 60, size, tmp_path / "data", seed=0)
    health = check(write_job(tmp_path, f"task: {task}\ntraining_data: {{path: ./data, type: mltable}}\n"
                                       "training_parameters: {random_seed: 1}\n"))
    assert health.findings == () and not health.has_errors
    assert health.images == {"training": 48, "validation": 12}
    assert health.validation_source == "20% of training_data held out, seed 1" and health.notes == ()
    assert health.text().endswith("no problems found")


@pytest.mark.parametrize("all_pairs", [True, False])
def test_copies_across_splits_are_leakage_and_a_relabelled_copy_a_conflict(tmp_path, monkeypatch, all_pairs):
    if not all_pairs:  # a large set: near copies only between validation and the rest
        monkeypatch.setattr("automl_nb.data.health.duplicates.ALL_PAIRS_LIMIT", 10)
    make_dataset("image_classification", 40, 64, tmp_path / "train", seed=0)
    make_dataset("image_classification", 12, 64, tmp_path / "valid", seed=1)
    train, valid = tmp_path / "train" / "labels.jsonl", tmp_path / "valid" / "labels.jsonl"
    resized_jpeg_copy(tmp_path / "train" / "images" / "00005.png", tmp_path / "valid" / "images" / "copy.jpg", 48)
    rows = read_rows(valid)
    write_rows(valid, rows + [{"image_url": "images/copy.jpg", "label": read_rows(train)[5]["label"]}])
    training = read_rows(train)
    other = next(name for name in ("circle", "square") if name != training[7]["label"])
    write_rows(train, training + [{**training[7], "label": other}])  # line 41: the same file, another label
    health = check(write_job(tmp_path, "task: image_classification\ntraining_data: {path: ./train}\n"
                                       "validation_data: {path: ./valid}\n"))
    found = by_kind(health)
    leak = found["leakage"]
    assert leak.severity == "error" and health.has_errors
    assert f"(0 identical, 1 near): {train}:6 ~ {valid}:13" in leak.message
    assert leak.recommendation.startswith("remove these images from validation_data")
    group = next(g for g in health.duplicates if g.leaks)
    assert group.kind == "near" and 0 <= group.distance <= 10
    copies = found["duplicates"]
    assert copies.severity == "warning" and f"(1 with different labels): {train}:8 = {train}:41" in copies.message
    assert set(found) == {"leakage", "duplicates"}
    assert health.notes == (() if all_pairs else ("53 distinct pictures: near copies were searched only between "
                                                  "validation and training (leakage); identical files everywhere",))


def test_imbalance_and_a_small_validation_share_get_their_yaml(tmp_path):
    make_dataset("image_classification", 60, 32, tmp_path / "data", seed=0)
    labels = tmp_path / "data" / "labels.jsonl"
    rows = read_rows(labels)
    triangles = [r for r in rows if r["label"] == "triangle"]
    write_rows(labels, [r for r in rows if r["label"] != "triangle"] + triangles[:3])  # 20 : 20 : 3
    job = ("task: image_classification\ntraining_data: {path: ./data}\nvalidation_data_size: 0.1\n"
           "training_parameters: {random_seed: 0, model_name: resnet18, use_pretrained_model: false%s}\n")
    found = by_kind(check(write_job(tmp_path, job % "")))
    assert found["class_imbalance"].yaml == "weighted_loss: 1" and "circle (18) / triangle (3)" in \
        found["class_imbalance"].message
    assert found["class_imbalance"].section == "training_parameters"
    assert "triangle (3)" in found["rare_classes"].message
    assert "validation has 4 images" in found["small_validation_set"].message
    assert found["small_validation_set"].yaml == "validation_data_size: 0.25"
    assert found["small_validation_set"].section is None  # a top-level key
    crop = found["images_upscaled"]  # 32 px images, a 224 crop, no pretrained weights
    assert crop.yaml == "training_crop_size: 32\nvalidation_crop_size: 32\nvalidation_resize_size: 37"
    assert set(found) == {"class_imbalance", "rare_classes", "small_validation_set", "unlabelled_images",
                          "images_upscaled", "classes_missing_from_validation"}
    assert "validation images: triangle" in found["classes_missing_from_validation"].message
    assert len(found["unlabelled_images"].examples) == 17  # the triangles whose lines were dropped
    # Already weighted: no YAML. seresnext takes only its 224 crop: no crop advice at all.
    found = by_kind(check(write_job(tmp_path, job.replace("resnet18", "seresnext") % ", weighted_loss: 1")))
    assert found["class_imbalance"].severity == "info" and found["class_imbalance"].yaml is None
    assert "images_upscaled" not in found


def test_segmentation_small_objects_get_a_larger_min_size_and_bad_polygons_are_named(tmp_path):
    make_dataset("image_instance_segmentation", 30, 64, tmp_path / "data", seed=0)
    labels = tmp_path / "data" / "labels.jsonl"
    rows = read_rows(labels)
    dot = [0.5, 0.5, 0.52, 0.5, 0.51, 0.52]  # about a 1 px triangle in a 64 px image
    for row in rows:
        row["label"].append({"label": "circle", "polygon": [dot]})
    rows[2]["label"][0]["polygon"] = [[0.1, 0.1, 0.2, 0.2, 0.3, 0.3]]  # three points on a line
    rows[4]["label"] = []
    rows[6]["label"][0]["topX"] = 0.0
    write_rows(labels, rows)
    health = check(write_job(tmp_path, "task: image_instance_segmentation\ntraining_data: {path: ./data}\n"
                                       "validation_data: {path: ./data}\n"))
    found = by_kind(health)
    small = found["small_objects"]
    assert "tile_grid_size" not in small.yaml  # the spec allows tiling for object detection only
    assert small.yaml.startswith("min_size: ") and "\nmax_size: " in small.yaml
    values = dict(line.split(": ") for line in small.yaml.splitlines())
    resolve_parameters("image_instance_segmentation", {k: int(v) for k, v in values.items()})
    assert found["degenerate_polygons"].examples == (f"{labels}:3 object 1 ring 1",)
    assert found["empty_images"].examples == (f"{labels}:5",) and found["empty_images"].severity == "info"
    assert found["boxes_touch_border"].examples == (f"{labels}:7 object 1",)
    assert found["leakage"].severity == "error"  # validation_data is the training data itself


def test_detector_upscaling_is_noted_only_where_objects_stay_big_without_it(tmp_path):
    make_dataset("image_object_detection", 8, 192, tmp_path / "data", seed=0)  # objects of 38-108 px
    job = "task: image_object_detection\ntraining_data: {path: ./data}\ntraining_parameters: {random_seed: 0%s}\n"
    upscaled = by_kind(check(write_job(tmp_path, job % "")))["images_upscaled"]
    assert upscaled.severity == "info" and upscaled.yaml == "min_size: 192"
    assert upscaled.message.startswith("images are scaled up 3.1x (typical) to min_size 600 / max_size 1333")
    assert "images_upscaled" not in by_kind(check(write_job(tmp_path, job % ", min_size: 384")))


def test_an_unreadable_image_is_an_error_finding_not_a_crash(tmp_path):
    make_dataset("image_classification", 60, 32, tmp_path / "data", seed=0)
    (tmp_path / "data" / "images" / "00002.png").write_bytes(b"not a png")
    health = check(write_job(tmp_path, "task: image_classification\ntraining_data: {path: ./data}\n"
                                       "training_parameters: {random_seed: 0}\n"))
    bad = by_kind(health)["unreadable_images"]
    assert bad.severity == "error" and bad.examples[0].startswith(f"{tmp_path / 'data' / 'labels.jsonl'}:3: ")
    assert "00002.png" in bad.examples[0] and len(health.image_sizes) == 59


def test_a_sweep_is_judged_at_its_fixed_values_with_a_note(tmp_path):
    make_dataset("image_object_detection", 60, 32, tmp_path / "data", seed=0)
    health = check(write_job(tmp_path, (
        "task: image_object_detection\ntraining_data: {path: ./data}\nlimits: {max_trials: 2}\n"
        "sweep: {sampling_algorithm: random}\ntraining_parameters: {min_size: 320}\n"
        "search_space:\n  - model_name: {type: choice, values: [fasterrcnn_resnet18_fpn, retinanet_resnet50_fpn]}\n"
        "    max_size: {type: choice, values: [800, 1000]}\n")))
    assert health.parameters["model_name"] == "fasterrcnn_resnet18_fpn" and health.parameters["min_size"] == 320
    assert health.notes[0].startswith("max_size, model_name swept: sizes are judged at fasterrcnn_resnet18_fpn")
    assert "without random_seed" in health.notes[1]
    with pytest.raises(SpecError, match="training_data: missing"):
        check(load_job("task: image_object_detection\n"))


def test_the_perceptual_hash_pairs_copies_and_nothing_else(tmp_path):
    make_dataset("image_object_detection", 20, 64, tmp_path, seed=3)
    originals = sorted((tmp_path / "images").glob("*.png"))
    for path in originals:
        resized_jpeg_copy(path, tmp_path / f"{path.stem}.jpg", 48)
    prints = [fingerprint(p) for p in originals] + [fingerprint(tmp_path / f"{p.stem}.jpg") for p in originals]
    assert prints[0].width == 64 and prints[20].image_format == "jpeg" and prints[0].thumbnail.shape == (8, 8, 3)
    pairs = near_pairs([p.phash for p in prints], [p.thumbnail for p in prints])
    assert [(i, j) for i, j, _ in pairs] == [(i, i + 20) for i in range(20)]
    assert near_pairs([p.phash for p in prints], [p.thumbnail for p in prints], rows=range(20, 40)) == pairs
    assert near_pairs(np.array([0, 0], dtype=np.uint64), [np.zeros((8, 8, 3))] * 2) == [(0, 1, 0)]
    shutil.rmtree(tmp_path / "images")
