"""ImageRecord / ObjectLabel: the Azure JSONL shape and class names."""

from __future__ import annotations

import dataclasses

import pytest

from automl_nb.data.records import ImageRecord, ObjectLabel, class_names, is_url


def test_to_json_line_classification_with_relative_path(tmp_path):
    record = ImageRecord(str(tmp_path / "img" / "1.png"), "cat", 2230, 4356, "png")
    assert record.to_json_line(tmp_path) == {
        "image_url": "img/1.png",
        "image_details": {"format": "png", "width": "2230px", "height": "4356px"},
        "label": "cat",
    }
    # outside root, or no root: the URL is kept as is and unknown details are left out
    assert ImageRecord("/elsewhere/1.png", ("a", "b")).to_json_line(tmp_path) == {
        "image_url": "/elsewhere/1.png",
        "label": ["a", "b"],
    }


def test_to_json_line_objects():
    record = ImageRecord(
        "s3://bucket/1.jpg",
        (
            ObjectLabel("cat", 0.1, 0.2, 0.3, 0.4, is_crowd=True),
            ObjectLabel("dog", 0.0, 0.0, 1.0, 1.0, polygon=((0.0, 0.0, 1.0, 0.0, 1.0, 1.0),)),
        ),
    )
    assert record.to_json_line("/data")["image_url"] == "s3://bucket/1.jpg"
    assert record.to_json_line()["label"] == [
        {"label": "cat", "topX": 0.1, "topY": 0.2, "bottomX": 0.3, "bottomY": 0.4, "isCrowd": 1},
        {"label": "dog", "topX": 0.0, "topY": 0.0, "bottomX": 1.0, "bottomY": 1.0, "isCrowd": 0,
         "polygon": [[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]]},
    ]
    assert [o.label for o in record.objects] == ["cat", "dog"]


def test_records_are_frozen_and_hashable():
    record = ImageRecord("/a.png", (ObjectLabel("cat", 0, 0, 1, 1, polygon=((0, 0, 1, 0, 1, 1),)),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.label = "dog"
    assert len({record, record}) == 1


def test_class_names_for_every_shape():
    records = [
        ImageRecord("/1.png", "dog"),
        ImageRecord("/2.png", ("cat", "bird")),
        ImageRecord("/3.png", (ObjectLabel("zebra", 0, 0, 1, 1), ObjectLabel("cat", 0, 0, 1, 1))),
        ImageRecord("/4.png", ()),
    ]
    assert class_names(records) == ["bird", "cat", "dog", "zebra"]


@pytest.mark.parametrize("url, expected", [
    ("s3://b/k", True), ("memory://x", True), ("file:///tmp/a", True), ("azureml://d/p", True),
    ("/tmp/a.png", False), ("images/a.png", False), ("C:\\data\\a.png", False), ("C://x", False),
])
def test_is_url(url, expected):
    assert is_url(url) is expected
