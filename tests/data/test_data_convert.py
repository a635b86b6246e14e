"""COCO, Pascal VOC and ImageFolder converters: exact coordinates, real sizes, kept folders."""

from __future__ import annotations

import argparse
import json

import pytest

from automl_nb.cli.convert import add_convert_arguments, run_convert
from automl_nb.data.convert import coco_to_jsonl, folder_to_jsonl, voc_to_jsonl
from automl_nb.data.jsonl import read_jsonl
from automl_nb.data.mltable import load_records
from automl_nb.data.records import ObjectLabel
from automl_nb.errors import DataError

DETECTION = "image_object_detection"
SEGMENTATION = "image_instance_segmentation"
MULTICLASS = "image_classification"


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- COCO ----------------------------------------------------------------------------

@pytest.fixture
def coco(tmp_path, image_file):
    """Two 1.jpg in different folders (b's COCO size is wrong) and an image with no annotations."""
    images = tmp_path / "images"
    image_file(images / "a" / "1.jpg", size=(200, 100))
    image_file(images / "b" / "1.jpg", size=(100, 50))
    image_file(images / "c" / "empty.png", size=(64, 64))
    annotations = {
        "images": [
            {"id": 1, "file_name": "a/1.jpg", "width": 200, "height": 100},
            {"id": 2, "file_name": "b/1.jpg", "width": 200, "height": 100},
            {"id": 3, "file_name": "c/empty.png", "width": 64, "height": 64},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [20, 10, 50, 40], "iscrowd": 0,
             "segmentation": [[20, 10, 70, 10, 70, 50]]},
            {"id": 11, "image_id": 1, "category_id": 2, "bbox": [0, 0, 200, 100], "iscrowd": 1,
             "segmentation": [[0, 0, 200, 0, 200, 100, 0, 100]]},
            {"id": 12, "image_id": 2, "category_id": 2, "bbox": [10, 5, 20, 10], "iscrowd": 0,
             "segmentation": [[10, 5, 30, 5, 30, 15]]},
        ],
    }
    return images, annotations


def test_coco_detection_exact_boxes_and_real_sizes(coco):
    images, annotations = coco
    with pytest.warns(UserWarning, match=r"1 image size\(s\) in the annotations disagree.*b/1\.jpg is 100x50"):
        out = coco_to_jsonl(annotations, images, images / "labels.jsonl")
    lines = _lines(out)
    assert [line["image_url"] for line in lines] == ["a/1.jpg", "b/1.jpg", "c/empty.png"]
    assert [line["image_details"] for line in lines] == [
        {"format": "jpeg", "width": "200px", "height": "100px"},
        {"format": "jpeg", "width": "100px", "height": "50px"},
        {"format": "png", "width": "64px", "height": "64px"},
    ]
    assert lines[0]["label"] == [
        {"label": "cat", "topX": 0.1, "topY": 0.1, "bottomX": 0.35, "bottomY": 0.5, "isCrowd": 0},
        {"label": "dog", "topX": 0.0, "topY": 0.0, "bottomX": 1.0, "bottomY": 1.0, "isCrowd": 1},
    ]
    # normalised by the real 100x50, not the COCO entry's 200x100
    assert lines[1]["label"] == [{"label": "dog", "topX": 0.1, "topY": 0.1, "bottomX": 0.3, "bottomY": 0.3, "isCrowd": 0}]
    assert lines[2]["label"] == []
    records = read_jsonl(out, DETECTION)
    assert records[1].image_url == str(images / "b" / "1.jpg")


def test_coco_segmentation_polygons_from_a_file(coco, tmp_path):
    images, annotations = coco
    (tmp_path / "instances.json").write_text(json.dumps(annotations))
    with pytest.warns(UserWarning):
        out = coco_to_jsonl(tmp_path / "instances.json", images, tmp_path / "out" / "train.jsonl", task=SEGMENTATION)
    records = read_jsonl(out, SEGMENTATION)
    assert records[0].label[0] == ObjectLabel("cat", 0.1, 0.1, 0.35, 0.5, False, ((0.1, 0.1, 0.35, 0.1, 0.35, 0.5),))
    assert records[1].label[0].polygon == ((0.1, 0.1, 0.3, 0.1, 0.3, 0.3),)
    # images outside the output folder are written as absolute paths
    assert _lines(out)[0]["image_url"] == str(images / "a" / "1.jpg")


def test_coco_rle_is_rejected_for_segmentation_but_fine_for_detection(coco):
    images, annotations = coco
    annotations["annotations"][1]["segmentation"] = {"counts": "abc", "size": [100, 200]}
    with pytest.raises(DataError, match=r"annotation 11 \(a/1\.jpg\): RLE segmentation is not supported"):
        coco_to_jsonl(annotations, images, images / "labels.jsonl", task=SEGMENTATION)
    with pytest.warns(UserWarning):
        out = coco_to_jsonl(annotations, images, images / "labels.jsonl")
    assert len(_lines(out)[0]["label"]) == 2


def test_coco_zero_area_annotation_is_skipped_with_a_warning(coco):
    images, annotations = coco
    annotations["images"][1].update(width=100, height=50)
    annotations["annotations"][0]["bbox"] = [20, 10, 0, 40]
    with pytest.warns(UserWarning, match=r"skipped 1 annotation"):
        out = coco_to_jsonl(annotations, images, images / "labels.jsonl")
    assert [o["label"] for o in _lines(out)[0]["label"]] == ["dog"]


def test_coco_boxes_far_past_the_border_are_clipped_with_one_warning(coco):
    images, annotations = coco
    annotations["images"][1].update(width=100, height=50)
    annotations["annotations"][0]["bbox"] = [150, 10, 100, 40]  # reaches x = 250 in a 200 px wide image
    annotations["annotations"][1]["bbox"] = [-1, 0, 201, 100]  # one pixel past: an annotation tool's habit
    with pytest.warns(UserWarning, match=r"1 box\(es\) reach more than 2% of the image past its border.*"
                                         r"annotation 10 .*bbox \[150, 10, 100, 40\] in a 200x100 image"):
        out = coco_to_jsonl(annotations, images, images / "labels.jsonl")
    boxes = _lines(out)[0]["label"]
    assert boxes[0]["bottomX"] == 1.0 and boxes[1]["topX"] == 0.0


def test_coco_errors(coco, tmp_path):
    images, annotations = coco
    bad = json.loads(json.dumps(annotations))
    bad["annotations"][0]["category_id"] = 9
    with pytest.raises(DataError, match=r"annotation 10 \(a/1\.jpg\): unknown category_id 9"):
        coco_to_jsonl(bad, images, tmp_path / "x.jsonl")
    bad = json.loads(json.dumps(annotations))
    bad["annotations"][0]["image_id"] = 99
    with pytest.raises(DataError, match=r"annotation 10: unknown image_id 99"):
        coco_to_jsonl(bad, images, tmp_path / "x.jsonl")
    (tmp_path / "broken.json").write_text('{"images": [\n{"id": 1,}\n]}')
    with pytest.raises(DataError, match=r"broken\.json:2: malformed JSON"):
        coco_to_jsonl(tmp_path / "broken.json", images, tmp_path / "x.jsonl")
    with pytest.raises(DataError, match="not a COCO annotations file"):
        coco_to_jsonl({"annotations": []}, images, tmp_path / "x.jsonl")
    with pytest.raises(DataError, match="COCO converts to"):
        coco_to_jsonl(annotations, images, tmp_path / "x.jsonl", task=MULTICLASS)


def test_coco_missing_image_uses_entry_size_or_fails(coco, tmp_path):
    images, annotations = coco
    annotations["images"][1].update(width=100, height=50)
    annotations["images"].append({"id": 4, "file_name": "d/gone.jpg", "width": 10, "height": 20})
    with pytest.warns(UserWarning, match=r"1 image\(s\) not found, sizes taken from the annotations"):
        out = coco_to_jsonl(annotations, images, images / "labels.jsonl")
    assert _lines(out)[3]["image_details"] == {"format": "jpeg", "width": "10px", "height": "20px"}
    annotations["images"][-1] = {"id": 4, "file_name": "d/gone.jpg"}
    with pytest.raises(DataError, match=r"image 4: image not found at .*gone\.jpg and the annotation gives no width/height"):
        coco_to_jsonl(annotations, images, images / "labels.jsonl")


# ---- Pascal VOC ----------------------------------------------------------------------

def _voc_xml(filename, size, objects):
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    objects_xml = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{box[0]}</xmin>"
        f"<ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>"
        for name, box, difficult in objects
    )
    return f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>{size_xml}{objects_xml}</annotation>"


@pytest.fixture
def voc(tmp_path, image_file):
    images, xml = tmp_path / "images", tmp_path / "annotations"
    image_file(images / "a" / "1.jpg", size=(100, 50))
    image_file(images / "b" / "1.jpg", size=(60, 40))
    (xml / "a").mkdir(parents=True)
    (xml / "b").mkdir(parents=True)
    (xml / "a" / "1.xml").write_text(_voc_xml("1.jpg", (100, 50), [
        ("cat", (1, 1, 50, 25), 0), ("dog", (51, 26, 100, 50), 1)]))
    (xml / "b" / "1.xml").write_text(_voc_xml("1.jpg", (120, 80), [("cat", (7, 5, 30, 20), 0)]))
    return xml, images


def test_voc_one_based_coordinates_difficult_and_kept_folders(voc):
    xml, images = voc
    with pytest.warns(UserWarning, match=r"disagree.*b/1\.jpg is 60x40"):
        out = voc_to_jsonl(xml, images, images / "labels.jsonl")
    lines = _lines(out)
    assert [line["image_url"] for line in lines] == ["a/1.jpg", "b/1.jpg"]
    assert lines[0]["label"] == [
        {"label": "cat", "topX": 0.0, "topY": 0.0, "bottomX": 0.5, "bottomY": 0.5, "isCrowd": 0},
        {"label": "dog", "topX": 0.5, "topY": 0.5, "bottomX": 1.0, "bottomY": 1.0, "isCrowd": 1},
    ]
    # the real 60x40 image wins over <size> 120x80
    assert lines[1]["label"] == [{"label": "cat", "topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5, "isCrowd": 0}]
    assert lines[1]["image_details"] == {"format": "jpeg", "width": "60px", "height": "40px"}
    assert len(read_jsonl(out, DETECTION)) == 2


def test_voc_malformed_xml_names_the_file(voc):
    xml, images = voc
    (xml / "b" / "1.xml").write_text("<annotation><filename>1.jpg</filename>\n<object>")
    with pytest.raises(DataError, match=r"annotations/b/1\.xml:2: malformed XML"):
        voc_to_jsonl(xml, images, images / "labels.jsonl")


@pytest.mark.parametrize("objects, message", [
    ([("cat", (30, 5, 7, 20), 0)], r"b/1\.xml: object 1: box corners swapped"),
    ([("cat", ("x", 5, 7, 20), 0)], r"b/1\.xml: object 1: <bndbox><xmin> must be a number"),
    ([("", (1, 1, 5, 5), 0)], r"b/1\.xml: object 1: missing <name>"),
])
def test_voc_bad_objects(voc, objects, message):
    xml, images = voc
    (xml / "b" / "1.xml").write_text(_voc_xml("1.jpg", (60, 40), objects))
    with pytest.raises(DataError, match=message):
        voc_to_jsonl(xml, images, images / "labels.jsonl")


def test_voc_missing_image_uses_size_element(voc):
    xml, images = voc
    (xml / "b" / "1.xml").write_text(_voc_xml("1.jpg", (60, 40), [("cat", (7, 5, 30, 20), 0)]))
    (xml / "c.xml").write_text(_voc_xml("gone.png", (10, 20), [("cat", (1, 1, 10, 10), 0)]))
    with pytest.warns(UserWarning, match="not found, sizes taken from the annotations"):
        out = voc_to_jsonl(xml, images, images / "labels.jsonl")
    last = _lines(out)[-1]
    assert last["image_url"] == "gone.png"
    assert last["label"][0]["bottomY"] == 0.5
    (xml / "c.xml").write_text(_voc_xml("gone.png", None, [("cat", (1, 1, 10, 10), 0)]))
    with pytest.raises(DataError, match=r"c\.xml: image not found"):
        voc_to_jsonl(xml, images, images / "labels.jsonl")


# ---- ImageFolder ---------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path, image_file):
    root = tmp_path / "pets"
    image_file(root / "cat" / "x" / "1.png", size=(8, 6))
    image_file(root / "cat" / "y" / "1.png", size=(9, 7))
    image_file(root / "dog" / "1.jpg", size=(10, 5))
    image_file(root / "dog" / ".hidden.png")
    image_file(root / ".git" / "1.png")
    image_file(root / "top-level.png")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def test_folder_keeps_nested_names(tree):
    out = folder_to_jsonl(tree, tree / "labels.jsonl")
    lines = _lines(out)
    assert [(line["image_url"], line["label"]) for line in lines] == [
        ("cat/x/1.png", "cat"), ("cat/y/1.png", "cat"), ("dog/1.jpg", "dog")]
    assert lines[1]["image_details"] == {"format": "png", "width": "9px", "height": "7px"}
    assert [r.label for r in read_jsonl(out, MULTICLASS)] == ["cat", "cat", "dog"]


def test_folder_errors(tmp_path, tree):
    with pytest.raises(DataError, match="image folder not found"):
        folder_to_jsonl(tmp_path / "none", tmp_path / "x.jsonl")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found in class folders"):
        folder_to_jsonl(tmp_path / "empty", tmp_path / "x.jsonl")
    (tree / "cat" / "broken.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"cannot read image .*broken\.png"):
        folder_to_jsonl(tree, tmp_path / "x.jsonl")


# ---- command line --------------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(prog="automl-nb convert")
    add_convert_arguments(parser.add_subparsers(dest="format", required=True))
    return parser


def test_cli_folder_writes_an_mltable_folder_and_refuses_to_overwrite(tree):
    args = _parser().parse_args(["folder", str(tree), "--mltable"])
    assert args.func is run_convert
    assert run_convert(args) == tree / "labels.jsonl"
    assert (tree / "MLTable").is_file()
    assert [r.label for r in load_records(tree, MULTICLASS)] == ["cat", "cat", "dog"]
    with pytest.raises(DataError, match="already exists; pass --overwrite"):
        run_convert(args)
    run_convert(_parser().parse_args(["folder", str(tree), "--overwrite"]))


def test_cli_coco_and_voc(coco, voc, tmp_path):
    images, annotations = coco
    (images / "instances.json").write_text(json.dumps(annotations))
    args = _parser().parse_args(["coco", str(images / "instances.json"), "--task", SEGMENTATION, "-o", str(images / "seg.jsonl")])
    with pytest.warns(UserWarning):
        out = run_convert(args)
    assert read_jsonl(out, SEGMENTATION)[0].label[0].polygon is not None
    xml, voc_images = voc
    args = _parser().parse_args(["voc", str(xml), "--images-dir", str(voc_images)])
    with pytest.warns(UserWarning):
        assert run_convert(args) == voc_images / "labels.jsonl"


def test_cli_help_lists_the_formats(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    help_text = capsys.readouterr().out
    assert "coco" in help_text and "voc" in help_text and "folder" in help_text
