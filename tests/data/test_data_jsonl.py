"""read_jsonl / write_jsonl: the four label shapes, paths, image checks and every bad input."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from automl_nb.data.jsonl import read_jsonl, record_from_json, resolve_url, write_jsonl
from automl_nb.data.records import ImageRecord, ObjectLabel
from automl_nb.errors import DataError, SpecError

MULTICLASS = "image_classification"
MULTILABEL = "image_classification_multilabel"
DETECTION = "image_object_detection"
SEGMENTATION = "image_instance_segmentation"


@pytest.fixture
def folder(tmp_path, image_file):
    """A folder with images/a.png (40x30) and images/b.jpg (20x10)."""
    image_file(tmp_path / "images" / "a.png", size=(40, 30))
    image_file(tmp_path / "images" / "b.jpg", size=(20, 10))
    return tmp_path


def test_multiclass_resolves_relative_paths_and_fills_sizes(folder, jsonl_file):
    path = jsonl_file(folder / "train.jsonl", [
        {"image_url": "images/a.png", "label": "cat"},
        {"image_url": "images/b.jpg", "image_details": {"format": "jpeg", "width": "20px", "height": "10px"}, "label": "dog"},
    ])
    records = read_jsonl(path, MULTICLASS)
    assert [r.label for r in records] == ["cat", "dog"]
    assert records[0].image_url == str(folder / "images" / "a.png")
    assert (records[0].width, records[0].height, records[0].image_format) == (40, 30, "png")
    assert (records[1].width, records[1].height, records[1].image_format) == (20, 10, "jpeg")
    assert records[1].source == f"{path}:2"


def test_without_image_check_sizes_come_from_details_only(folder, jsonl_file):
    path = jsonl_file(folder / "train.jsonl", [
        {"image_url": "missing.png", "image_details": {"width": 640, "height": "480"}, "label": "cat"},
    ])
    [record] = read_jsonl(path, MULTICLASS, check_images=False)
    assert (record.width, record.height) == (640, 480)


def test_multilabel_lists_and_json_strings(folder, jsonl_file):
    path = jsonl_file(folder / "train.jsonl", [
        {"image_url": "images/a.png", "label": ["cat", "dog", "cat"]},
        {"image_url": "images/b.jpg", "label": '["dog"]'},
        {"image_url": "images/a.png", "label": []},
    ])
    assert [r.label for r in read_jsonl(path, MULTILABEL)] == [("cat", "dog"), ("dog",), ()]


def test_multilabel_rejects_a_plain_string(folder, jsonl_file):
    path = jsonl_file(folder / "train.jsonl", [{"image_url": "images/a.png", "label": "cat,dog"}])
    with pytest.raises(DataError, match=r"train\.jsonl:1: label for image_classification_multilabel must be a list"):
        read_jsonl(path, MULTILABEL)


def test_detection_string_coordinates_and_crowd_forms(folder, jsonl_file):
    box = {"topX": "0.1", "topY": "0.2", "bottomX": "0.5", "bottomY": 0.75}
    path = jsonl_file(folder / "train.jsonl", [
        {"image_url": "images/a.png", "label": [
            {"label": "cat", **box, "isCrowd": "true"},
            {"label": "dog", **box, "isCrowd": "0"},
            {"label": "dog", **box, "isCrowd": 1},
            {"label": "dog", **box, "isCrowd": False},
            {"label": "cat", **box},
        ]},
        # a single object (the seed's example form) is a list of one
        {"image_url": "images/b.jpg", "label": {"label": "cat", **box, "isCrowd": "1"}},
        {"image_url": "images/b.jpg", "label": []},
    ])
    first, second, third = read_jsonl(path, DETECTION)
    assert [o.is_crowd for o in first.label] == [True, False, True, False, False]
    assert first.label[0] == ObjectLabel("cat", 0.1, 0.2, 0.5, 0.75, True)
    assert second.label == (ObjectLabel("cat", 0.1, 0.2, 0.5, 0.75, True),)
    assert third.label == ()


def test_segmentation_derives_box_from_polygon(folder, jsonl_file):
    path = jsonl_file(folder / "train.jsonl", [
        {"image_url": "images/a.png", "label": [
            {"label": "can", "isCrowd": 0, "polygon": [[0.2, 0.3, "0.6", 0.3, 0.4, 0.9]]},
            {"label": "can", "isCrowd": 0, "polygon": [0.1, 0.1, 0.2, 0.1, 0.2, 0.2],
             "topX": 0.05, "topY": 0.05, "bottomX": 0.25, "bottomY": 0.25},
        ]},
    ])
    [record] = read_jsonl(path, SEGMENTATION)
    first, second = record.label
    assert (first.top_x, first.top_y, first.bottom_x, first.bottom_y) == (0.2, 0.3, 0.6, 0.9)
    assert first.polygon == ((0.2, 0.3, 0.6, 0.3, 0.4, 0.9),)
    assert (second.top_x, second.bottom_x) == (0.05, 0.25)  # a given box is kept
    assert second.polygon == ((0.1, 0.1, 0.2, 0.1, 0.2, 0.2),)


def test_coordinates_within_tolerance_are_clipped(folder, jsonl_file):
    path = jsonl_file(folder / "train.jsonl", [
        {"image_url": "images/a.png", "label": [
            {"label": "cat", "topX": -1e-7, "topY": 0, "bottomX": 1.0000004, "bottomY": 1}]},
    ])
    [record] = read_jsonl(path, DETECTION)
    assert (record.label[0].top_x, record.label[0].bottom_x) == (0.0, 1.0)


def test_absolute_paths_and_urls_are_kept(folder, jsonl_file):
    absolute = str(folder / "images" / "a.png")
    path = jsonl_file(folder / "sub" / "train.jsonl", [
        {"image_url": absolute, "label": "cat"},
        {"image_url": "https://example.com/x/1.jpg", "label": "dog"},
        {"image_url": "azureml://datastores/d/paths/image_data/Image_01.png", "label": "dog"},
        {"image_url": "../images/b.jpg", "label": "dog"},
    ])
    # remote images are not fetched by the check (no network needed here)
    records = read_jsonl(path, MULTICLASS, check_images=True)
    assert [r.image_url for r in records] == [
        absolute,
        "https://example.com/x/1.jpg",
        "azureml://datastores/d/paths/image_data/Image_01.png",
        str(folder / "images" / "b.jpg"),
    ]
    assert records[1].width is None and records[3].width == 20


def test_memory_url_jsonl_and_images(memory_fs):
    image = Image.new("RGB", (12, 8), (1, 2, 3))
    with memory_fs.open("/ds/imgs/1.png", "wb") as f:
        image.save(f, format="PNG")
    with memory_fs.open("/ds/train.jsonl", "wb") as f:
        f.write(b'{"image_url": "imgs/1.png", "label": "cat"}\n')
    [record] = read_jsonl("memory://ds/train.jsonl", MULTICLASS)
    assert record.image_url == "memory://ds/imgs/1.png"
    assert (record.width, record.height, record.image_format) == (12, 8, "png")

    with memory_fs.open("/ds/bad.jsonl", "wb") as f:
        f.write(b'{"image_url": "imgs/none.png", "label": "cat"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1: .*memory://ds/imgs/none\.png"):
        read_jsonl("memory://ds/bad.jsonl", MULTICLASS)


def test_details_that_disagree_with_the_image_warn_and_real_size_wins(folder, jsonl_file):
    path = jsonl_file(folder / "train.jsonl", [
        {"image_url": "images/a.png", "image_details": {"width": "400px", "height": "300px"}, "label": "cat"},
    ])
    with pytest.warns(UserWarning, match="disagree"):
        [record] = read_jsonl(path, MULTICLASS)
    assert (record.width, record.height) == (40, 30)


def test_pretty_printed_stream_as_in_the_seed_is_read(folder):
    path = folder / "pretty.jsonl"
    path.write_text(
        '{\n"image_url": "images/a.png",\n"image_details":\n{\n"format": "png",\n"width": "40px",\n'
        '"height": "30px"\n},\n"label": "cat"\n}\n{\n"image_url": "images/b.jpg",\n"label": "dog"\n}\n'
    )
    records = read_jsonl(path, MULTICLASS)
    assert [r.label for r in records] == ["cat", "dog"]
    assert records[1].source.endswith("pretty.jsonl:11")


def _pretty_detection(second_box: dict) -> str:
    """Two detection records pretty-printed as the seed prints them; the second's second box given."""
    box = {"label": "cat", "topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5, "isCrowd": 0}
    first = {"image_url": "images/a.png", "image_details": {"format": "png", "width": "40px", "height": "30px"},
             "label": [box]}
    return json.dumps(first, indent=4) + "\n" + json.dumps({**first, "label": [box, second_box]}, indent=4) + "\n"


@pytest.mark.parametrize("second_box, line, message", [
    # Lines 19-43 hold the second record; its second box opens on line 35, its "label" on 36.
    ({"label": "dog", "topX": 0.2, "topY": 0.1, "bottomX": 15, "bottomY": 0.5}, 39, "object 2: bottomX=15 is outside"),
    ({"label": "dog", "topX": 0.2, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5, "isCrowd": "maybe"}, 41,
     "object 2: isCrowd must be"),
    ({"label": "", "topX": 0.2, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5}, 36, "object 2: missing or empty 'label'"),
])
def test_an_error_in_a_pretty_printed_record_names_the_line_at_fault(folder, second_box, line, message):
    path = folder / "pretty.jsonl"
    path.write_text(_pretty_detection(second_box))
    with pytest.raises(DataError, match=rf"pretty\.jsonl:{line}: {message}"):
        read_jsonl(path, DETECTION)


def test_malformed_json_in_a_pretty_printed_file_names_its_line_and_keeps_the_records_before(folder):
    path = folder / "pretty.jsonl"
    text = _pretty_detection({"label": "dog", "topX": 0.2, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5})
    path.write_text(text.replace('"topX": 0.2,', '"topX": 0.2', 1))  # line 37 loses its comma
    with pytest.raises(DataError, match=r"pretty\.jsonl:38: malformed JSON: Expecting ',' delimiter"):
        read_jsonl(path, DETECTION)
    problems = []
    records = read_jsonl(path, DETECTION, problems=problems)
    assert len(records) == 1 and len(problems) == 1 and "pretty.jsonl:38: malformed JSON" in problems[0]


BOX = {"label": "cat", "topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5}
GOOD_LABEL = {
    MULTICLASS: "cat",
    DETECTION: [BOX],
    SEGMENTATION: [{"label": "c", "polygon": [[0.1, 0.1, 0.5, 0.1, 0.3, 0.5]]}],
}


@pytest.mark.parametrize(
    "task, line, message",
    [
        (MULTICLASS, '{"image_url": "images/a.png", "label": "cat"', r"train\.jsonl:3: malformed JSON"),
        (MULTICLASS, {"label": "cat"}, r"train\.jsonl:3: missing image_url"),
        (MULTICLASS, {"image_url": "images/a.png", "tag": "cat"}, r"train\.jsonl:3: missing target column 'label'"),
        (MULTICLASS, {"image_url": "images/a.png", "label": ["cat"]}, r"train\.jsonl:3: label for image_classification must be a class name string, got a list"),
        (MULTICLASS, {"image_url": "images/missing.png", "label": "cat"}, r"train\.jsonl:3: image not found: .*missing\.png"),
        (MULTICLASS, {"image_url": "images/garbage.png", "label": "cat"}, r"train\.jsonl:3: cannot read image .*garbage\.png"),
        (DETECTION, {"image_url": "images/a.png", "label": "cat"}, r"train\.jsonl:3: label for image_object_detection must be a list of objects"),
        (DETECTION, {"image_url": "images/a.png", "label": ["cat"]}, r"train\.jsonl:3: object 1: expected an object"),
        (DETECTION, {"image_url": "images/a.png", "label": [{**BOX, "bottomX": 1.2}]}, r"train\.jsonl:3: object 1: bottomX=1\.2 is outside \[0, 1\]"),
        (DETECTION, {"image_url": "images/a.png", "label": [{**BOX, "topX": -0.01}]}, r"train\.jsonl:3: object 1: topX=-0\.01 is outside"),
        (DETECTION, {"image_url": "images/a.png", "label": [BOX, {**BOX, "topX": 0.3, "bottomX": "0.3"}]}, r"train\.jsonl:3: object 2: box has zero area: topX=0\.3 bottomX=0\.3"),
        (DETECTION, {"image_url": "images/a.png", "label": [{**BOX, "topY": 0.6}]}, r"train\.jsonl:3: object 1: box has zero area: topY=0\.6 bottomY=0\.5"),
        (DETECTION, {"image_url": "images/a.png", "label": [{**BOX, "topY": "abc"}]}, r"train\.jsonl:3: object 1: topY must be a number"),
        (DETECTION, {"image_url": "images/a.png", "label": [{k: v for k, v in BOX.items() if k != "bottomY"}]}, r"missing box coordinate\(s\) bottomY"),
        (DETECTION, {"image_url": "images/a.png", "label": [{**BOX, "isCrowd": "maybe"}]}, r"train\.jsonl:3: object 1: isCrowd must be"),
        (SEGMENTATION, {"image_url": "images/a.png", "label": [BOX]}, r"train\.jsonl:3: object 1: .*needs a 'polygon'"),
        (SEGMENTATION, {"image_url": "images/a.png", "label": [{"label": "c", "polygon": [[0.1, 0.1, 0.2, 0.2]]}]}, r"train\.jsonl:3: object 1: polygon ring 1 has 2 points, needs at least 3"),
        (SEGMENTATION, {"image_url": "images/a.png", "label": [{"label": "c", "polygon": [[0.1, 0.1, 0.2, 0.2, 0.3]]}]}, r"train\.jsonl:3: object 1: polygon ring 1 has an odd number"),
        (SEGMENTATION, {"image_url": "images/a.png", "label": [{"label": "c", "polygon": [[0.1, 0.1, 0.2, 0.1, 0.3, 0.1]]}]}, r"train\.jsonl:3: object 1: box has zero area: topY=0\.1 bottomY=0\.1"),
        (MULTICLASS, {"image_url": "images/a.png", "image_details": {"width": "wide"}, "label": "cat"}, r"train\.jsonl:3: image_details width must be a positive size"),
    ],
)
def test_bad_input_names_file_and_line(folder, jsonl_file, task, line, message):
    (folder / "images" / "garbage.png").write_bytes(b"this is not a png at all" * 10)
    good = {"image_url": "images/a.png", "label": GOOD_LABEL[task]}
    path = jsonl_file(folder / "train.jsonl", [good, good, line])
    with pytest.raises(DataError, match=message):
        read_jsonl(path, task)


def test_target_column_name_is_used_and_named(folder, jsonl_file):
    path = jsonl_file(folder / "train.jsonl", [{"image_url": "images/a.png", "category": "cat"}])
    assert read_jsonl(path, MULTICLASS, target_column_name="category")[0].label == "cat"
    with pytest.raises(DataError, match=r"train\.jsonl:1: missing target column 'label'.*keys present: image_url, category"):
        read_jsonl(path, MULTICLASS)


def test_truncated_image_is_caught_by_verify(folder, jsonl_file):
    data = (folder / "images" / "a.png").read_bytes()
    (folder / "images" / "cut.png").write_bytes(data[: len(data) // 2 + 20])
    path = jsonl_file(folder / "train.jsonl", [{"image_url": "images/cut.png", "label": "cat"}])
    with pytest.raises(DataError, match=r"train\.jsonl:1: cannot read image .*cut\.png"):
        read_jsonl(path, MULTICLASS)


def test_empty_and_missing_files(folder):
    (folder / "empty.jsonl").write_text("\n  \n")
    with pytest.raises(DataError, match=r"empty\.jsonl: no records"):
        read_jsonl(folder / "empty.jsonl", MULTICLASS)
    with pytest.raises(DataError, match=r"JSONL file not found: .*nope\.jsonl"):
        read_jsonl(folder / "nope.jsonl", MULTICLASS)


def test_unknown_task(folder, jsonl_file):
    path = jsonl_file(folder / "train.jsonl", [{"image_url": "images/a.png", "label": "cat"}])
    with pytest.raises(SpecError, match="'image_regression' is not a task"):
        read_jsonl(path, "image_regression")


@pytest.mark.parametrize("task", [MULTICLASS, MULTILABEL, DETECTION, SEGMENTATION])
def test_write_then_read_is_identity(folder, task):
    polygon = ((0.1, 0.1, 0.5, 0.1, 0.3, 0.5),)
    labels = {
        MULTICLASS: "cat",
        MULTILABEL: ("cat", "dog"),
        DETECTION: (ObjectLabel("cat", 0.1, 0.1, 0.5, 0.5, True), ObjectLabel("dog", 0.2, 0.3, 0.4, 0.9)),
        SEGMENTATION: (ObjectLabel("cat", 0.1, 0.1, 0.5, 0.5, False, polygon),),
    }
    records = [
        ImageRecord(str(folder / "images" / "a.png"), labels[task], 40, 30, "png"),
        ImageRecord(str(folder / "images" / "b.jpg"), labels[task], 20, 10, "jpeg"),
    ]
    out = write_jsonl(records, folder / "out.jsonl")
    first_line = json.loads(out.read_text().splitlines()[0])
    assert first_line["image_url"] == "images/a.png"
    assert first_line["image_details"] == {"format": "png", "width": "40px", "height": "30px"}
    back = read_jsonl(out, task)
    assert [(r.image_url, r.label, r.width, r.height, r.image_format) for r in back] == [
        (r.image_url, r.label, r.width, r.height, r.image_format) for r in records
    ]


def test_write_keeps_paths_outside_the_folder_absolute(folder, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere")
    records = [ImageRecord(str(folder / "images" / "a.png"), "cat")]
    out = write_jsonl(records, other / "out.jsonl")
    assert json.loads(out.read_text())["image_url"] == str(folder / "images" / "a.png")


def test_resolve_url_and_record_from_json():
    assert resolve_url("a/../b.png", "memory://root/x") == "memory://root/x/b.png"
    assert resolve_url("s3://bucket/k.png", "/data") == "s3://bucket/k.png"
    assert resolve_url("b.png", "/data/set") == os.path.normpath("/data/set/b.png")
    record = record_from_json({"image_url": "x.png", "label": "cat"}, MULTICLASS, source="req:1")
    assert record == ImageRecord("x.png", "cat", source="req:1")
