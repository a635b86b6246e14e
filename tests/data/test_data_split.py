"""split_records, label_counts, check_minimum_images, warn_small_labels."""

from __future__ import annotations

from collections import Counter

import pytest

from automl_nb.data.records import ImageRecord, ObjectLabel
from automl_nb.data.split import check_minimum_images, label_counts, split_records, warn_small_labels
from automl_nb.errors import DataError

MULTICLASS = "image_classification"
DETECTION = "image_object_detection"


def _multiclass(counts: dict[str, int]) -> list[ImageRecord]:
    records = []
    for name, count in counts.items():
        records += [ImageRecord(f"/{name}/{i}.png", name) for i in range(count)]
    return records


def test_split_is_deterministic_per_seed_and_differs_across_seeds():
    records = _multiclass({"a": 30, "b": 30})
    first = split_records(records, MULTICLASS, 0.2, seed=7)
    assert split_records(records, MULTICLASS, 0.2, seed=7) == first
    assert split_records(records, MULTICLASS, 0.2, seed=8)[1] != first[1]
    train, validation = first
    assert len(validation) == 12 and len(train) == 48
    assert set(train).isdisjoint(validation) and set(train) | set(validation) == set(records)
    assert train == [r for r in records if r in set(train)]  # input order kept


def test_split_is_stratified():
    records = _multiclass({"a": 50, "b": 30, "c": 20})
    train, validation = split_records(records, MULTICLASS, 0.2, seed=0)
    assert Counter(r.label for r in validation) == {"a": 10, "b": 6, "c": 4}
    assert Counter(r.label for r in train) == {"a": 40, "b": 24, "c": 16}


def test_largest_remainder_rounding_keeps_the_total():
    records = _multiclass({"a": 7, "b": 7, "c": 7})  # 21 * 0.25 = 5.25 -> 5, each class 1.75
    _, validation = split_records(records, MULTICLASS, 0.25, seed=3)
    counts = Counter(r.label for r in validation)
    assert sum(counts.values()) == 5 and sorted(counts.values()) == [1, 2, 2]


def test_every_class_keeps_a_training_image():
    records = _multiclass({"a": 2, "b": 2, "c": 2, "single": 1})
    train, validation = split_records(records, MULTICLASS, 0.5, seed=0)
    assert {r.label for r in train} == {"a", "b", "c", "single"}
    assert Counter(r.label for r in validation) == {"a": 1, "b": 1, "c": 1}


def test_both_sides_get_an_image_even_at_extremes():
    records = _multiclass({"a": 1, "b": 1, "c": 1})
    train, validation = split_records(records, MULTICLASS, 0.01, seed=0)
    assert len(validation) == 1 and len(train) == 2
    records = _multiclass({"a": 2, "b": 2})  # 0.99 asks for 3; each class keeps one
    train, validation = split_records(records, MULTICLASS, 0.99, seed=0)
    assert len(validation) == 2 and {r.label for r in train} == {"a", "b"}


def test_other_tasks_shuffle():
    records = [ImageRecord(f"/{i}.png", (ObjectLabel("x", 0, 0, 1, 1),)) for i in range(10)]
    train, validation = split_records(records, DETECTION, 0.3, seed=1)
    assert len(validation) == 3 and len(train) == 7
    assert split_records(records, DETECTION, 0.3, seed=1) == (train, validation)
    others = {tuple(split_records(records, DETECTION, 0.3, seed=s)[1]) for s in range(5)}
    assert len(others) > 1


@pytest.mark.parametrize("size", [0, 1, -0.1, 1.5, True])
def test_validation_size_must_be_a_fraction(size):
    with pytest.raises(DataError, match="validation_data_size must be between 0 and 1"):
        split_records(_multiclass({"a": 5, "b": 5}), MULTICLASS, size)


def test_too_few_records_to_split():
    with pytest.raises(DataError, match="need at least 2"):
        split_records(_multiclass({"a": 1}), MULTICLASS, 0.2)


def test_check_minimum_images():
    records = _multiclass({"a": 7})
    with pytest.raises(DataError) as error:
        check_minimum_images(records, "data/train.jsonl")
    assert str(error.value) == (
        "needs at least 10 training images, found 7 (data/train.jsonl); 10-15 per label are recommended"
    )
    check_minimum_images(_multiclass({"a": 10}), "x")
    check_minimum_images(records, "x", minimum=5)


def test_label_counts_count_images_not_objects():
    records = [
        ImageRecord("/1.png", (ObjectLabel("cat", 0, 0, 1, 1), ObjectLabel("cat", 0, 0, 1, 1))),
        ImageRecord("/2.png", (ObjectLabel("dog", 0, 0, 1, 1),)),
        ImageRecord("/3.png", ("cat", "bird")),
    ]
    assert label_counts(records) == {"bird": 1, "cat": 2, "dog": 1}


def test_warn_small_labels():
    records = _multiclass({"a": 12, "b": 3})
    with pytest.warns(UserWarning, match=r"train\.jsonl: labels with fewer than 10 images: b \(3\)"):
        assert warn_small_labels(records, "train.jsonl") == ["b"]
