"""DetectionDataset and the detection transforms: targets equal the JSONL's boxes in pixels, and
boxes, masks and pixels stay aligned through every random draw of the training transform."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import tv_tensors

from automl_nb.data.detection import DetectionDataset, detection_collate, polygon_to_mask
from automl_nb.data.detection_transforms import detection_train_transform, detection_valid_transform
from automl_nb.data.jsonl import read_jsonl
from automl_nb.data.records import ImageRecord, ObjectLabel, class_names
from automl_nb.data.synthetic import make_dataset
from automl_nb.data.tiling import ImageTile
from automl_nb.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from automl_nb.errors import DataError
from automl_nb.spec import resolve_parameters

DETECTION = "image_object_detection"
SEGMENTATION = "image_instance_segmentation"
SIZE = 64
MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


@pytest.fixture(scope="module")
def toy_records(tmp_path_factory):
    """Records of both tasks read back from synthetic JSONL (square 64 px images)."""
    records = {}
    for task in (DETECTION, SEGMENTATION):
        folder = tmp_path_factory.mktemp(task)
        records[task] = read_jsonl(make_dataset(task, 12, SIZE, folder, seed=7), task)
    return records


def _params(augment: bool = True) -> dict:
    return resolve_parameters(SEGMENTATION, {"advanced_settings": {"apply_automl_train_augmentations": augment}})


def _coloured(image: torch.Tensor, normalised: bool) -> torch.Tensor:
    """Strongly coloured pixels: the synthetic shapes (backgrounds are low in saturation)."""
    pixels = (image * STD + MEAN if normalised else image) * 255
    return pixels.max(0).values - pixels.min(0).values > 90


def _check_aligned(image: torch.Tensor, target: dict, normalised: bool = False) -> None:
    """Boxes inside the image, one label/flag/mask per box, each mask inside its box (1 px)
    and over shape-coloured pixels of the image."""
    height, width = image.shape[-2:]
    boxes = target["boxes"]
    assert isinstance(boxes, tv_tensors.BoundingBoxes) and tuple(boxes.canvas_size) == (height, width)
    count = len(boxes)
    assert target["labels"].shape == target["is_crowd"].shape == (count,)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    assert (boxes[:, 2] - boxes[:, 0] >= 1).all() and (boxes[:, 3] - boxes[:, 1] >= 1).all()
    if "masks" not in target:
        return
    masks = target["masks"]
    assert isinstance(masks, tv_tensors.Mask) and masks.dtype == torch.uint8
    assert masks.shape == (count, height, width)
    coloured = _coloured(image, normalised)
    for mask, box in zip(masks, boxes):
        rows, columns = torch.nonzero(mask, as_tuple=True)
        if len(rows) == 0:
            continue  # a crop may keep only an empty corner of a box
        assert columns.min() >= box[0] - 1 and columns.max() + 1 <= box[2] + 1, (box, columns)
        assert rows.min() >= box[1] - 1 and rows.max() + 1 <= box[3] + 1, (box, rows)
        assert coloured[mask.bool()].float().mean() >= 0.8


@pytest.mark.parametrize("task", [DETECTION, SEGMENTATION])
def test_targets_are_the_jsonl_boxes_in_pixels(toy_records, task):
    records = toy_records[task]
    classes = class_names(records)
    dataset = DetectionDataset(records, classes, transform=None, with_masks=task == SEGMENTATION)
    assert len(dataset) == len(records)
    for index, record in enumerate(records):
        image, target = dataset[index]
        assert image.shape == (3, SIZE, SIZE) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        expected = torch.tensor(
            [[o.top_x * SIZE, o.top_y * SIZE, o.bottom_x * SIZE, o.bottom_y * SIZE] for o in record.label]
        )
        assert torch.equal(target["boxes"].as_subclass(torch.Tensor), expected)
        assert target["labels"].tolist() == [classes.index(o.label) + 1 for o in record.label]
        assert target["labels"].min() >= 1 and target["labels"].max() <= len(classes)
        assert target["labels"].dtype == torch.int64 and target["is_crowd"].dtype == torch.bool
        assert not target["is_crowd"].any()
        assert target["image_id"] == index and target["orig_size"] == (SIZE, SIZE)
        assert ("masks" in target) == (task == SEGMENTATION)
        if task == SEGMENTATION:
            assert all(mask.any() for mask in target["masks"])
        _check_aligned(image, target)


def test_boxes_scale_by_width_and_height_separately(tmp_path, image_file):
    path = image_file(tmp_path / "wide.png", size=(80, 40))
    triangle = ((0.25, 0.5, 0.75, 0.5, 0.5, 1.0),)
    record = ImageRecord(str(path), (ObjectLabel("a", 0.25, 0.5, 0.75, 1.0, is_crowd=True, polygon=triangle),))
    image, target = DetectionDataset([record], ["a"], with_masks=True)[0]
    assert image.shape == (3, 40, 80) and target["orig_size"] == (40, 80)
    assert target["boxes"].tolist() == [[20.0, 20.0, 60.0, 40.0]]
    assert target["is_crowd"].tolist() == [True]
    rows, columns = torch.nonzero(target["masks"][0], as_tuple=True)
    assert columns.min() >= 19 and columns.max() <= 60 and rows.min() >= 19 and rows.max() <= 40


def test_polygon_to_mask_fills_the_union_of_rings():
    square = (0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0)
    assert polygon_to_mask([square], 5, 3).tolist() == [[1] * 5] * 3
    left = (0.0, 0.0, 0.5, 0.0, 0.5, 1.0, 0.0, 1.0)
    right = (0.75, 0.0, 1.0, 0.0, 1.0, 1.0, 0.75, 1.0)
    mask = polygon_to_mask([left, right], 8, 2)
    assert mask.dtype == torch.uint8 and mask.shape == (2, 8)
    assert mask[0].tolist() == [1, 1, 1, 1, 0, 0, 1, 1]  # pixels 0-3 and 6-7: [0, 4) and [6, 8)


def test_polygon_to_mask_fills_the_pixels_whose_centres_are_inside():
    """A square over pixels [2, 6) fills rows and columns 2-5, no extra row or column on any side."""
    mask = polygon_to_mask([(0.25, 0.25, 0.75, 0.25, 0.75, 0.75, 0.25, 0.75)], 8, 8)
    rows, columns = torch.nonzero(mask, as_tuple=True)
    assert rows.unique().tolist() == columns.unique().tolist() == [2, 3, 4, 5] and mask.sum() == 16


def test_an_image_without_objects_has_empty_targets(tmp_path, image_file):
    path = image_file(tmp_path / "empty.png", size=(30, 20))
    dataset = DetectionDataset([ImageRecord(str(path), ())], ["a", "b"], with_masks=True)
    _, target = dataset[0]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    assert target["masks"].shape == (0, 20, 30)
    train = DetectionDataset([ImageRecord(str(path), ())], ["a"], detection_train_transform(_params()), True)
    for seed in range(5):
        torch.manual_seed(seed)
        image, target = train[0]
        assert target["boxes"].shape == (0, 4) and target["masks"].shape[0] == 0
        assert image.dtype == torch.float32


def test_bad_records_are_rejected_by_name(toy_records, tmp_path, image_file):
    records = toy_records[SEGMENTATION]
    with pytest.raises(DataError, match="not one of"):
        DetectionDataset(records, ["only_this"], with_masks=True)
    path = image_file(tmp_path / "a.png")
    no_polygon = ImageRecord(str(path), (ObjectLabel("a", 0.1, 0.1, 0.5, 0.5),), source="x.jsonl:3")
    with pytest.raises(DataError, match="x.jsonl:3.*no polygon"):
        DetectionDataset([no_polygon], ["a"], with_masks=True)
    DetectionDataset([no_polygon], ["a"], with_masks=False)  # detection needs no polygon
    with pytest.raises(ValueError, match="tiling is not supported for instance segmentation"):
        DetectionDataset([ImageTile(records[0], (0, 0, 32, 32))], class_names(records), with_masks=True)


def test_collate_keeps_images_and_targets_as_lists(toy_records):
    records = toy_records[DETECTION]
    dataset = DetectionDataset(records, class_names(records), detection_valid_transform(_params()))
    images, targets = next(iter(DataLoader(dataset, batch_size=3, collate_fn=detection_collate)))
    assert isinstance(images, list) and isinstance(targets, list)
    assert len(images) == len(targets) == 3
    assert [t["image_id"] for t in targets] == [0, 1, 2]


def test_train_transform_moves_boxes_masks_and_pixels_together(toy_records):
    records = toy_records[SEGMENTATION]
    classes = class_names(records)
    # Mark one class as crowd, so a crowd flag filtered apart from its box would show.
    crowd_class = classes[0]
    records = [
        dataclasses.replace(r, label=tuple(dataclasses.replace(o, is_crowd=o.label == crowd_class) for o in r.label))
        for r in records
    ]
    dataset = DetectionDataset(records, classes, detection_train_transform(_params()), with_masks=True)
    normalised = DetectionDataset(records, classes, detection_train_transform(_params(), normalize=True), True)
    sizes, counts = set(), []
    for seed in range(60):
        torch.manual_seed(seed)
        image, target = dataset[seed % len(dataset)]
        assert 0 <= image.min() and image.max() <= 1 and image.dtype == torch.float32
        _check_aligned(image, target)
        torch.manual_seed(seed)
        _check_aligned(*normalised[seed % len(dataset)], normalised=True)
        assert target["is_crowd"].tolist() == (target["labels"] == 1).tolist()
        sizes.add(tuple(image.shape[-2:]))
        counts.append(len(target["boxes"]) - len(records[seed % len(dataset)].label))
    assert len(sizes) > 10  # crops and expands did happen
    assert min(counts) < 0  # and some crop dropped a box with its label, flag and mask


def test_without_augmentations_the_targets_are_unchanged(toy_records):
    records = toy_records[SEGMENTATION]
    classes = class_names(records)
    plain = DetectionDataset(records, classes, with_masks=True)
    for builder in (detection_train_transform, detection_valid_transform):
        dataset = DetectionDataset(records, classes, builder(_params(augment=False)), with_masks=True)
        for seed in range(len(records)):
            torch.manual_seed(seed)
            image, target = dataset[seed]
            raw_image, raw_target = plain[seed]
            assert torch.equal(image, raw_image)
            for key in ("boxes", "labels", "is_crowd", "masks"):
                assert torch.equal(target[key], raw_target[key]), key


@pytest.mark.parametrize("builder", [detection_train_transform, detection_valid_transform])
def test_imagenet_normalisation_on_request(toy_records, builder):
    records = toy_records[DETECTION]
    plain = DetectionDataset(records, class_names(records))
    dataset = DetectionDataset(records, class_names(records), builder(_params(augment=False), normalize=True))
    image, target = dataset[0]
    assert torch.allclose(image, (plain[0][0] - MEAN) / STD, atol=1e-5)
    assert torch.equal(target["boxes"], plain[0][1]["boxes"])
