"""MLTable folders: writing one, finding its JSONL files, loading records from every form."""

from __future__ import annotations

import pytest
import yaml
from PIL import Image

from automl_nb.data.mltable import is_mltable_folder, jsonl_paths, load_records, write_mltable
from automl_nb.errors import DataError

MULTICLASS = "image_classification"

SEED_MLTABLE = """\
paths:
- file: ./train_annotations.jsonl
transformations:
- read_json_lines:
    encoding: utf8
    invalid_lines: error
    include_path_column: false
- convert_column_types:
  - columns: image_url
    column_type: stream_info
"""


@pytest.fixture
def dataset(tmp_path, image_file, jsonl_file):
    """tmp_path/ds with images/ and train_annotations.jsonl (two lines)."""
    folder = tmp_path / "ds"
    image_file(folder / "images" / "1.png")
    image_file(folder / "images" / "2.png")
    jsonl_file(folder / "train_annotations.jsonl", [
        {"image_url": "images/1.png", "label": "cat"},
        {"image_url": "images/2.png", "label": "dog"},
    ])
    return folder


def test_write_mltable_matches_the_seed_format(dataset):
    path = write_mltable(dataset, "train_annotations.jsonl")
    assert path == dataset / "MLTable"
    assert yaml.safe_load(path.read_text()) == yaml.safe_load(SEED_MLTABLE)
    assert is_mltable_folder(dataset)


def test_load_records_from_folder_file_and_mltable_file(dataset):
    (dataset / "MLTable").write_text(SEED_MLTABLE)
    expected = ["cat", "dog"]
    assert [r.label for r in load_records(dataset, MULTICLASS)] == expected
    assert [r.label for r in load_records(dataset / "MLTable", MULTICLASS)] == expected
    assert [r.label for r in load_records(dataset / "train_annotations.jsonl", MULTICLASS)] == expected
    assert jsonl_paths(str(dataset)) == [str(dataset / "train_annotations.jsonl")]


def test_folder_with_exactly_one_jsonl_and_no_mltable(dataset, jsonl_file):
    assert not is_mltable_folder(dataset)
    assert [r.label for r in load_records(dataset, MULTICLASS)] == ["cat", "dog"]
    jsonl_file(dataset / "other.jsonl", [{"image_url": "images/1.png", "label": "cat"}])
    with pytest.raises(DataError, match=r"folder has 2 \.jsonl files and no MLTable"):
        load_records(dataset, MULTICLASS)


def test_folder_and_pattern_entries_concatenate(dataset, jsonl_file):
    jsonl_file(dataset / "parts" / "a.jsonl", [{"image_url": "../images/1.png", "label": "a"}])
    jsonl_file(dataset / "parts" / "b.jsonl", [{"image_url": "../images/2.png", "label": "b"}])
    (dataset / "MLTable").write_text(
        "paths:\n- file: ./train_annotations.jsonl\n- folder: ./parts\n- pattern: ./parts/b*.jsonl\n"
    )
    assert [r.label for r in load_records(dataset, MULTICLASS)] == ["cat", "dog", "a", "b", "b"]


@pytest.mark.parametrize("text, message", [
    ("transformations: []\n", r"MLTable: no 'paths' listed"),
    ("paths: [\n", r"MLTable: malformed YAML"),
    ("paths:\n- file: ./missing.jsonl\n", r"MLTable: listed file ./missing.jsonl not found"),
    ("paths:\n- url: ./x.jsonl\n", r"MLTable: unknown paths entry 'url'"),
    ("paths:\n- pattern: ./*.csv\n", r"MLTable: its paths match no JSONL file"),
    ("paths:\n- file: ./train_annotations.jsonl\ntransformations:\n- read_delimited: {delimiter: ','}\n",
     r"must be JSON lines \(read_json_lines\), found read_delimited"),
])
def test_bad_mltables(dataset, text, message):
    (dataset / "MLTable").write_text(text)
    with pytest.raises(DataError, match=message):
        load_records(dataset, MULTICLASS)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match=r"data not found: .*nowhere"):
        load_records(tmp_path / "nowhere", MULTICLASS)
    with pytest.raises(DataError, match=r"folder has no \.jsonl files"):
        load_records(tmp_path, MULTICLASS)


def test_mltable_folder_on_a_memory_url(memory_fs):
    with memory_fs.open("/remote/images/1.png", "wb") as f:
        Image.new("RGB", (5, 6)).save(f, format="PNG")
    with memory_fs.open("/remote/labels.jsonl", "wb") as f:
        f.write(b'{"image_url": "images/1.png", "label": "cat"}\n')
    with memory_fs.open("/remote/MLTable", "wb") as f:
        f.write(b"paths:\n- file: ./labels.jsonl\n")
    assert is_mltable_folder("memory://remote")
    [record] = load_records("memory://remote", MULTICLASS)
    assert record.image_url == "memory://remote/images/1.png"
    assert (record.width, record.height) == (5, 6)
    assert [r.label for r in load_records("memory://remote/labels.jsonl", MULTICLASS)] == ["cat"]


@pytest.mark.parametrize("url, message", [
    # s3fs is in the dev extra (runs on s3://); Azure's adlfs is not.
    ("abfs://container/train", r"cannot open abfs://container/train: Install adlfs"),
    ("nosuch://bucket/train", r"cannot open nosuch://bucket/train: Protocol not known"),
])
def test_a_url_whose_filesystem_is_not_installed_is_a_data_error(url, message):
    with pytest.raises(DataError, match=message):
        load_records(url, "image_classification")
