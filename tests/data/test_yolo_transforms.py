"""yolov5 augmentation: boxes stay on the objects they were drawn for through mosaic, affine,
flip and letterbox, and the advanced settings switch each one off."""

from __future__ import annotations

import pytest
import torch

from automl_nb.data.yolo_transforms import (
    FILL, IDENTITY, AffineParams, YoloTrainDataset, YoloValidDataset, affine_matrix, draw_affine, hflip,
    letterbox, letterbox_geometry, mosaic, targets_tensor, warp_boxes, warp_image, yolo_collate,
)

# One saturated colour per object; the background is grey, so colour k marks object k.
COLOURS = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0],
                        [1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.5, 0.0], [0.5, 0.0, 1.0]])


def painted(width: int, height: int, boxes: list[tuple[int, int, int, int]], first_label: int):
    """An image with filled rectangles (integer pixel edges), and its DetectionDataset-style target."""
    image = torch.full((3, height, width), 0.5)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        image[:, y1:y2, x1:x2] = COLOURS[first_label + k].view(3, 1, 1)
    labels = torch.arange(first_label, first_label + len(boxes)) + 1  # the dataset's 1..C
    return image, {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": labels,
                   "is_crowd": torch.zeros(len(boxes), dtype=torch.bool)}


# Four images of different sizes and aspect ratios, two objects each: labels 0..7.
BASE = [
    painted(80, 60, [(5, 8, 25, 30), (50, 30, 75, 55)], 0),
    painted(60, 90, [(10, 10, 40, 35), (20, 60, 50, 85)], 2),
    painted(64, 64, [(0, 0, 20, 16), (40, 44, 64, 64)], 4),  # touching the image edges
    painted(100, 50, [(30, 5, 60, 25), (70, 20, 95, 45)], 6),
]


def coloured(image: torch.Tensor, label: int, tolerance: float = 0.1) -> torch.Tensor:
    """``[H, W]`` bool: pixels of object ``label``'s colour (blended edge pixels excluded)."""
    return (image - COLOURS[label].view(3, 1, 1)).abs().amax(0) < tolerance


def extent(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    ys, xs = mask.nonzero(as_tuple=True)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# A dropped object (under 10% visible) shows fewer pixels than this: 10% of the largest object
# of BASE after resizing to 64 px (480 px) at the largest zoom (1.5 x 1.5).
MOST_PIXELS_OF_A_DROPPED_OBJECT = 108
MARGIN = 3  # the ring around a box in which its object must not continue


def check_boxes_follow_objects(image, target, size, tight: bool):
    """Every box lies in the canvas and covers its object's pixels; a clearly visible object has a box.

    An image may show two copies of an object (mosaic can draw an image twice), so each box is
    checked against its object's pixels in a window :data:`MARGIN` px around it: none of them
    may lie outside the box (more than a pixel of resampling blur). ``tight`` (no rotation,
    no shear): the box must also end within a pixel of the pixels at least half its colour.
    """
    boxes, labels = target["boxes"], target["labels"]
    assert image.shape == (3, size, size)
    assert boxes.min() >= 0 and boxes.max() <= size
    for box, label in zip(boxes.tolist(), labels.tolist()):
        left, top = max(int(box[0]) - MARGIN, 0), max(int(box[1]) - MARGIN, 0)
        window = image[:, top:int(box[3]) + MARGIN + 1, left:int(box[2]) + MARGIN + 1]
        inner = extent(coloured(window, label))
        if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
            assert inner is not None, (label, box)  # a box on nothing
        if inner is None:
            continue
        x1, y1, x2, y2 = inner[0] + left, inner[1] + top, inner[2] + left, inner[3] + top
        assert box[0] <= x1 + 1 and box[1] <= y1 + 1 and box[2] >= x2 - 1 and box[3] >= y2 - 1, (label, box)
        if tight:
            u1, v1, u2, v2 = extent(coloured(window, label, tolerance=0.5))
            assert box[0] >= u1 + left - 1 and box[1] >= v1 + top - 1, (label, box)
            assert box[2] <= u2 + left + 1 and box[3] <= v2 + top + 1, (label, box)
        else:  # a rotated rectangle's upright box is larger, but not by much at 5 degrees
            assert (box[2] - box[0]) * (box[3] - box[1]) <= 1.6 * (x2 - x1 + 2) * (y2 - y1 + 2), (label, box)
    for label in range(len(COLOURS)):
        if coloured(image, label).sum() > MOST_PIXELS_OF_A_DROPPED_OBJECT:
            assert label in labels.tolist(), label


def test_letterbox_keeps_the_aspect_ratio_and_centres_the_image():
    image, target = BASE[3]  # 100 x 50
    canvas, geometry = letterbox(image, 64)
    assert (geometry.scale_x, geometry.scale_y, geometry.pad_x, geometry.pad_y) == (0.64, 0.64, 0, 16)
    assert torch.all(canvas[:, :16] == FILL) and torch.all(canvas[:, 48:] == FILL)
    check_boxes_follow_objects(canvas, {"boxes": geometry.to_canvas(target["boxes"]),
                                        "labels": target["labels"] - 1}, 64, tight=True)


@pytest.mark.parametrize("width, height, size", [(100, 60, 64), (37, 91, 96), (640, 480, 320), (20, 20, 64)])
def test_letterbox_maps_boxes_back_to_the_original_exactly(width, height, size):
    generator = torch.Generator().manual_seed(width)
    corners = torch.rand(20, 2, generator=generator) * torch.tensor([width, height])
    boxes = torch.cat([corners, corners + torch.rand(20, 2, generator=generator) * 10], dim=1)
    boxes = torch.minimum(boxes, torch.tensor([width, height] * 2, dtype=torch.float32))
    geometry = letterbox_geometry(width, height, size)
    assert torch.allclose(geometry.to_image(geometry.to_canvas(boxes)), boxes, atol=1e-4)
    canvas_corner = geometry.to_canvas(torch.tensor([[0.0, 0.0, width, height]]))[0]
    assert canvas_corner.tolist() == pytest.approx([geometry.pad_x, geometry.pad_y, size - geometry.pad_x
                                                    - (size - 2 * geometry.pad_x - round(width * geometry.scale_x)),
                                                    geometry.pad_y + round(height * geometry.scale_y)])


def test_mosaic_keeps_every_box_on_its_object():
    items = [(image, target["boxes"], target["labels"] - 1) for image, target in BASE]
    for centre in [(64, 64), (40, 90), (90, 35), (32, 96)]:
        canvas, boxes, labels = mosaic(items, 64, centre)
        check_boxes_follow_objects(canvas, {"boxes": boxes, "labels": labels}, 128, tight=True)


def test_a_pure_translation_warp_is_an_exact_crop():
    image = BASE[2][0]
    matrix = affine_matrix(AffineParams(translate_x=-5.0, translate_y=3.0), (64, 64), 64)
    warped = warp_image(image, matrix, 64)
    assert torch.allclose(warped[:, 3:, :59], image[:, :61, 5:], atol=1e-5)
    assert torch.allclose(warped[:, :3], torch.full_like(warped[:, :3], FILL), atol=1e-5)


@pytest.mark.parametrize("seed", range(12))
def test_random_affine_keeps_boxes_on_their_objects(seed):
    generator = torch.Generator().manual_seed(seed)
    items = [(image, target["boxes"], target["labels"] - 1) for image, target in BASE]
    canvas, boxes, labels = mosaic(items, 64, (64, 64))
    params = draw_affine(64, generator=generator)
    tight = AffineParams(scale=params.scale, translate_x=params.translate_x, translate_y=params.translate_y)
    for drawn, is_tight in ((params, False), (tight, True)):
        matrix = affine_matrix(drawn, (128, 128), 64)
        warped_boxes, warped_labels = warp_boxes(boxes, labels, matrix, 64)
        check_boxes_follow_objects(warp_image(canvas, matrix, 64),
                                   {"boxes": warped_boxes, "labels": warped_labels}, 64, tight=is_tight)


def test_flip_mirrors_boxes_exactly():
    image, target = BASE[0]
    flipped, boxes = hflip(image, target["boxes"])
    check_boxes_follow_objects(torch.nn.functional.pad(flipped, (0, 0, 0, 20), value=0.5),
                               {"boxes": boxes, "labels": target["labels"] - 1}, 80, tight=True)


@pytest.mark.parametrize("use_mosaic, augment", [(True, True), (True, False), (False, True), (False, False)])
def test_training_samples_keep_boxes_on_objects_under_every_switch(use_mosaic, augment):
    torch.manual_seed(0)
    dataset = YoloTrainDataset(BASE, 64, mosaic=use_mosaic, augment=augment)
    sizes = set()
    for index in range(len(BASE)):
        for _ in range(3):
            image, target = dataset[index]
            check_boxes_follow_objects(image, target, 64, tight=not augment)
            sizes.add(tuple(image.shape))
    assert sizes == {(3, 64, 64)}


def test_the_switches_turn_the_augmentations_off():
    torch.manual_seed(0)
    plain = YoloTrainDataset(BASE, 64, mosaic=False, augment=False)
    reference = YoloValidDataset(BASE, 64)
    for index in range(len(BASE)):  # neither: exactly the validation letterbox
        assert torch.equal(plain[index][0], reference[index][0])
        assert torch.equal(plain[index][1]["boxes"], reference[index][1]["boxes"])
    augmented = YoloTrainDataset(BASE, 64, mosaic=False, augment=True)
    assert any(not torch.equal(augmented[1][0], reference[1][0]) for _ in range(3))
    # Mosaic alone: labels of several images appear in one sample.
    mosaics = YoloTrainDataset(BASE, 64, mosaic=True, augment=False)
    seen = [set((target["labels"] // 2).tolist()) for _, target in (mosaics[0] for _ in range(8))]
    assert max(len(images) for images in seen) >= 2


def test_crowd_objects_are_left_out_of_training_but_kept_for_validation():
    image, target = painted(64, 64, [(5, 5, 25, 25), (30, 30, 60, 60)], 0)
    target["is_crowd"] = torch.tensor([False, True])
    _, train_target = YoloTrainDataset([(image, target)], 64, mosaic=False, augment=False)[0]
    _, valid_target = YoloValidDataset([(image, target)], 64)[0]
    assert train_target["labels"].tolist() == [0]
    assert valid_target["labels"].tolist() == [0, 1] and valid_target["is_crowd"].tolist() == [False, True]


def test_collate_and_target_table():
    batch = [YoloValidDataset(BASE, 64)[i] for i in (0, 3)]
    images, targets = yolo_collate(batch)
    table = targets_tensor(targets)
    assert images.shape == (2, 3, 64, 64) and table.shape == (4, 6)
    assert table[:, 0].tolist() == [0, 0, 1, 1] and table[:, 1].tolist() == [0, 1, 6, 7]
    x1, y1, x2, y2 = targets[1]["boxes"][0].tolist()
    assert table[2, 2:].tolist() == pytest.approx([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
    assert targets_tensor([{"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.long)}]).shape == (0, 6)


def test_identity_params_draw_nothing():
    assert affine_matrix(IDENTITY, (64, 64), 64).equal(torch.eye(3, dtype=torch.float64))
