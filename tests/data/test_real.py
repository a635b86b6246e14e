"""Real datasets from installed packages: they read back, splits are fixed and disjoint, labels make sense."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from automl_nb.data.jsonl import read_jsonl
from automl_nb.data.mltable import load_records
from automl_nb.data.real import REAL_DATASETS, make_real_dataset
from automl_nb.data.real.coins import CUT_LOWER, CUT_ROW, CUT_UPPER, coin_masks, make_coins
from automl_nb.data.real.digits import _digits, make_digit_pairs
from automl_nb.data.real._common import require
from automl_nb.data.real.nuclei import make_nuclei
from automl_nb.errors import DataError


def _pixels(record) -> str:
    return hashlib.sha1(np.asarray(Image.open(record.image_url)).tobytes()).hexdigest()


def _folder_bytes(jsonl) -> dict[str, bytes]:
    return {p.relative_to(jsonl.parent).as_posix(): p.read_bytes() for p in sorted(jsonl.parent.rglob("*")) if p.is_file()}


def test_digits_split_is_stratified_and_disjoint(tmp_path):
    pytest.importorskip("sklearn")
    images, _, parts = _digits("valid", 0)
    assert (len(parts["train"]), len(parts["valid"])) == (1200, 597)
    records = read_jsonl(make_real_dataset("digits", tmp_path, "valid"), "image_classification")
    assert len(records) == 597 and all((r.width, r.height) == (32, 32) for r in records)
    counts = Counter(r.label for r in records)
    assert set(counts) == {str(d) for d in range(10)} and min(counts.values()) >= 55  # 1/3 of each class
    train = {hashlib.sha1(images[i].tobytes()).hexdigest() for i in parts["train"]}
    written = {hashlib.sha1(np.asarray(Image.open(r.image_url))[..., 0].tobytes()).hexdigest() for r in records}
    assert len(written) == 597 and not written & train


def test_faces_split_disjoint_and_same_bytes_for_same_arguments(tmp_path):
    train = make_real_dataset("faces", tmp_path / "train", "train")
    valid = make_real_dataset("faces", tmp_path / "valid", "valid")
    train_records = load_records(train.parent, "image_classification")
    valid_records = load_records(valid.parent, "image_classification")
    assert Counter(r.label for r in train_records) == {"face": 70, "not_face": 70}
    assert Counter(r.label for r in valid_records) == {"face": 30, "not_face": 30}
    assert not {_pixels(r) for r in train_records} & {_pixels(r) for r in valid_records}
    again = make_real_dataset("faces", tmp_path / "again", "valid")
    assert _folder_bytes(again) == _folder_bytes(valid)
    other = make_real_dataset("faces", tmp_path / "other", "valid", seed=1)
    assert _folder_bytes(other) != _folder_bytes(valid)


def test_digit_pairs_hold_two_or_three_different_digits(tmp_path):
    pytest.importorskip("sklearn")
    records = read_jsonl(make_digit_pairs(tmp_path, "valid", n=60), "image_classification_multilabel")
    assert len(records) == 60
    assert all((r.width, r.height) == (64, 64) for r in records)
    sizes = Counter(len(r.label) for r in records)
    assert set(sizes) == {2, 3} and sizes[2] > sizes[3]
    assert all(len(set(r.label)) == len(r.label) and set(r.label) <= {str(d) for d in range(10)} for r in records)
    assert len({_pixels(r) for r in records}) == 60


def test_coins_are_found_and_none_crosses_the_cut():
    photo, masks = coin_masks()
    assert photo.shape == (303, 384) and len(masks) == 24
    sides = set()
    for mask in masks:
        rows, columns = np.nonzero(mask)
        assert 800 < mask.sum() < 4000  # a coin, not a speck or two coins merged
        sides.add(bool((columns < np.where(rows < CUT_ROW, CUT_UPPER, CUT_LOWER)).all()))
    assert sides == {True, False}


def test_coin_crops_have_boxes_inside_and_differ_between_splits(tmp_path):
    made = {split: make_coins(tmp_path / split, split, n=12) for split in ("train", "valid")}
    records = {split: read_jsonl(path, "image_object_detection") for split, path in made.items()}
    for split, rows in records.items():
        assert len(rows) == 12
        assert all(88 <= r.width == r.height <= 128 for r in rows)
        assert all(1 <= len(r.label) <= 6 for r in rows)
        for obj in (o for r in rows for o in r.label):
            assert obj.label == "coin"
            assert 0 <= obj.top_x < obj.bottom_x <= 1 and 0 <= obj.top_y < obj.bottom_y <= 1
            assert obj.bottom_x - obj.top_x > 0.1  # coins are 40-65 px across
    assert not {_pixels(r) for r in records["train"]} & {_pixels(r) for r in records["valid"]}
    assert _folder_bytes(make_coins(tmp_path / "again", "valid", n=12)) == _folder_bytes(made["valid"])


def test_nuclei_tiles_have_polygons_and_sensible_counts(tmp_path):
    made = {split: make_nuclei(tmp_path / split, split, n=6) for split in ("train", "valid")}
    for path in made.values():
        rows = read_jsonl(path, "image_instance_segmentation")
        assert len(rows) == 6 and all((r.width, r.height) == (96, 96) for r in rows)
        assert all(5 <= len(r.label) <= 50 for r in rows), [len(r.label) for r in rows]
        for obj in (o for r in rows for o in r.label):
            assert obj.label == "nucleus" and len(obj.polygon) == 1 and len(obj.polygon[0]) >= 6
            xs, ys = obj.polygon[0][0::2], obj.polygon[0][1::2]
            assert 0 <= obj.top_x < obj.bottom_x <= 1 and 0 <= obj.top_y < obj.bottom_y <= 1
            assert obj.top_x <= min(xs) and max(xs) <= obj.bottom_x and obj.top_y <= min(ys) and max(ys) <= obj.bottom_y
    assert _folder_bytes(make_nuclei(tmp_path / "again", "train", n=6)) == _folder_bytes(made["train"])


def test_registry_names_tasks_and_unknown_names_fail_clearly(tmp_path):
    assert {name: task for name, (task, _, _) in REAL_DATASETS.items()} == {
        "digits": "image_classification",
        "faces": "image_classification",
        "digit_pairs": "image_classification_multilabel",
        "coins": "image_object_detection",
        "nuclei": "image_instance_segmentation",
    }
    with pytest.raises(DataError, match=r"unknown real dataset 'mnist'.*'coins'.*'nuclei'"):
        make_real_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match=r"split must be one of \['train', 'valid'\]"):
        make_real_dataset("faces", tmp_path, "test")
    assert not any(tmp_path.iterdir())


def test_a_missing_package_names_the_install_command():
    with pytest.raises(DataError, match=r"pip install scikit-learn \(or pip install automl_nb\[dev\]\)"):
        require("sklearn_that_is_not_installed", "scikit-learn")
