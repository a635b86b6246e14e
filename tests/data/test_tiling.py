"""Tiling for small objects: tiles cover the image with the asked overlap, boxes move between a
tile and its image exactly, and merging removes duplicates across tile borders only."""

from __future__ import annotations

import pytest
import torch

from automl_nb.data.detection import DetectionDataset
from automl_nb.data.jsonl import read_jsonl
from automl_nb.data.records import class_names
from automl_nb.data.synthetic import make_dataset
from automl_nb.data.tiling import (
    ImageTile,
    boxes_in_tile,
    crop_image,
    map_to_image,
    merge_predictions,
    tile_boxes,
    tile_records,
)
from automl_nb.errors import SpecError
from automl_nb.spec.grid import parse_grid

DETECTION = "image_object_detection"


@pytest.mark.parametrize("overlap", [-0.1, 1.0, 1.5, "0.2", True])
def test_overlap_must_be_in_zero_to_one(overlap):
    with pytest.raises(SpecError, match=r"tile_overlap_ratio.*\[0, 1\)"):
        tile_boxes(100, 100, "2x2", overlap)


def test_an_image_smaller_than_the_grid_is_an_error():
    with pytest.raises(ValueError, match="3x1 px is too small for a 4x1"):
        tile_boxes(3, 1, "4x1", 0.25)


@pytest.mark.parametrize(
    "width, height, grid, overlap",
    [(640, 480, "3x2", 0.25), (101, 37, "4x3", 0.5), (50, 50, "1x1", 0.0), (1000, 200, "5x1", 0.1), (7, 9, "7x2", 0.3)],
)
def test_tiles_cover_the_image_with_the_requested_overlap(width, height, grid, overlap):
    cols, rows = parse_grid(grid)
    tiles = tile_boxes(width, height, grid, overlap)
    assert len(tiles) == cols * rows
    covered = torch.zeros(height, width, dtype=torch.bool)
    for x1, y1, x2, y2 in tiles:
        assert all(isinstance(v, int) for v in (x1, y1, x2, y2))
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    # Row by row, left to right; neighbours overlap by `overlap` of a tile, up to 1 px rounding.
    for index, (x1, y1, x2, y2) in enumerate(tiles):
        column, row = index % cols, index // cols
        if column + 1 < cols:
            right = tiles[index + 1]
            assert right[1:4:2] == (y1, y2)
            assert abs((x2 - right[0]) - overlap * (x2 - x1)) <= 1
        if row + 1 < rows:
            below = tiles[index + cols]
            assert below[0:3:2] == (x1, x2)
            assert abs((y2 - below[1]) - overlap * (y2 - y1)) <= 1


def test_zero_overlap_partitions_the_image():
    tiles = tile_boxes(640, 480, (3, 2), 0.0)
    assert sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in tiles) == 640 * 480
    assert tile_boxes(100, 50, "2x1", 0.25) == [(0, 0, 57, 50), (43, 0, 100, 50)]


def test_a_box_moved_into_a_tile_and_back_is_unchanged_exactly():
    generator = torch.Generator().manual_seed(0)
    for tile in tile_boxes(1920, 1080, "3x2", 0.25):
        x1, y1, x2, y2 = tile
        corners = torch.rand(50, 2, 2, generator=generator)
        xs = x1 + corners[..., 0] * (x2 - x1)
        ys = y1 + corners[..., 1] * (y2 - y1)
        boxes = torch.stack([xs.min(1).values, ys.min(1).values, xs.max(1).values, ys.max(1).values], 1)
        inside, keep = boxes_in_tile(boxes, tile)
        assert keep.all()
        assert (inside >= 0).all() and (inside[:, 2] <= x2 - x1).all() and (inside[:, 3] <= y2 - y1).all()
        assert torch.equal(map_to_image(inside, tile), boxes)
    assert torch.equal(map_to_image(boxes, None), boxes)


def test_boxes_are_clipped_to_the_tile_and_slivers_dropped():
    tile = (100, 50, 200, 150)
    boxes = torch.tensor(
        [
            [90.0, 60.0, 110.0, 70.0],  # half inside: kept, clipped
            [80.0, 60.0, 105.0, 70.0],  # 20% inside: dropped
            [0.0, 0.0, 50.0, 40.0],  # outside: dropped
            [150.0, 140.0, 250.0, 160.0],  # 25% inside: kept
        ]
    )
    inside, keep = boxes_in_tile(boxes, tile)
    assert keep.tolist() == [True, False, False, True]
    assert inside.tolist() == [[0.0, 10.0, 10.0, 20.0], [50.0, 90.0, 100.0, 100.0]]


def _prediction(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def test_merge_collapses_one_object_seen_by_two_tiles_and_the_full_image():
    tiles = tile_boxes(200, 100, "2x1", 0.25)  # (0, 0, 114, 100) and (86, 0, 200, 100)
    obj = [90.0, 40.0, 110.0, 60.0]  # in the overlap, so both tiles see it whole
    left = _prediction([obj], [0.8], [1])
    right = _prediction([[obj[0] - 86 + 0.5, obj[1], obj[2] - 86 + 1.0, obj[3] - 0.5]], [0.7], [1])
    full = _prediction([[obj[0] - 1.0, obj[1] + 0.5, obj[2], obj[3]]], [0.9], [1])
    merged = merge_predictions([full, left, right], [None, *tiles], iou_threshold=0.25)
    assert merged["labels"].tolist() == [1]
    assert merged["scores"].tolist() == pytest.approx([0.9])
    assert merged["boxes"].tolist() == [[89.0, 40.5, 110.0, 60.0]]


def test_merge_keeps_nearby_objects_of_different_classes_and_maps_tile_boxes():
    tiles = tile_boxes(200, 100, "2x1", 0.25)
    cat, dog = [120.0, 20.0, 160.0, 60.0], [125.0, 25.0, 165.0, 65.0]  # IoU about 0.6
    right = _prediction([[v - o for v, o in zip(box, (86, 0, 86, 0))] for box in (cat, dog)], [0.8, 0.6], [1, 2])
    full = _prediction([cat], [0.5], [1])
    merged = merge_predictions([full, right], [None, tiles[1]], iou_threshold=0.25)
    assert merged["labels"].tolist() == [1, 2]
    assert merged["scores"].tolist() == pytest.approx([0.8, 0.6])
    assert merged["boxes"].tolist() == [cat, dog]
    # The same two boxes with one class are one object.
    same = _prediction(right["boxes"].tolist(), [0.8, 0.6], [1, 1])
    assert merge_predictions([same], [tiles[1]], 0.25)["labels"].tolist() == [1]
    assert len(merge_predictions([full, right], [None, tiles[1]], 0.25, max_detections=1)["boxes"]) == 1


def test_merge_checks_its_arguments():
    empty = _prediction([], [], [])
    assert merge_predictions([empty, empty], [None, (0, 0, 5, 5)], 0.5)["boxes"].shape == (0, 4)
    assert merge_predictions([], [], 0.5)["labels"].shape == (0,)
    with pytest.raises(ValueError, match="2 predictions for 1 tiles"):
        merge_predictions([empty, empty], [None], 0.5)
    with pytest.raises(ValueError, match="tile_predictions_nms_threshold"):
        merge_predictions([empty], [None], 1.5)


def test_crop_image_cuts_a_tensor_to_its_tile():
    image = torch.arange(2 * 4 * 6).reshape(2, 4, 6)
    assert crop_image(image, None) is image
    assert torch.equal(crop_image(image, (1, 2, 4, 4)), image[:, 2:4, 1:4])


def test_a_tiled_dataset_gives_each_tile_its_own_targets(tmp_path):
    records = read_jsonl(make_dataset(DETECTION, 4, 96, tmp_path, seed=2), DETECTION)
    classes = class_names(records)
    samples = tile_records(records, "3x2", 0.25)
    assert len(samples) == 4 * (1 + 6)
    assert samples[0] == ImageTile(records[0], None) and samples[1].tile == tile_boxes(96, 96, "3x2", 0.25)[0]
    assert len(tile_records(records, "3x2", 0.25, include_full_image=False)) == 4 * 6
    whole = DetectionDataset(records, classes)
    tiled = DetectionDataset(samples, classes)
    for index, sample in enumerate(samples):
        image, target = tiled[index]
        full_image, full_target = whole[records.index(sample.record)]
        if sample.tile is None:
            assert torch.equal(image, full_image)
            continue
        x1, y1, x2, y2 = sample.tile
        assert image.shape == (3, y2 - y1, x2 - x1) and target["orig_size"] == (y2 - y1, x2 - x1)
        assert torch.equal(image, crop_image(full_image, sample.tile))
        # Every object wholly inside the tile is there, at its place in the tile.
        boxes = full_target["boxes"]
        wholly = (boxes[:, 0] >= x1) & (boxes[:, 1] >= y1) & (boxes[:, 2] <= x2) & (boxes[:, 3] <= y2)
        found = {tuple(b) for b in map_to_image(target["boxes"], sample.tile).tolist()}
        assert {tuple(b) for b in boxes[wholly].tolist()} <= found
        assert len(target["labels"]) == len(target["boxes"]) <= len(boxes)
