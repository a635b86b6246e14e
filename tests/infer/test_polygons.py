"""mask_to_polygons: bounded rings that rasterise back to the mask."""

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from automl_nb.data.detection import polygon_to_mask
from automl_nb.infer.polygons import mask_to_polygons

SIZE = 64


def _drawn(draw_shape) -> np.ndarray:
    image = Image.new("L", (SIZE, SIZE), 0)
    draw_shape(ImageDraw.Draw(image))
    return np.array(image) > 0


def circle():
    return _drawn(lambda d: d.ellipse((12, 10, 52, 50), fill=1))


def square():
    return _drawn(lambda d: d.rectangle((8, 20, 40, 52), fill=1))


def star():
    points = []
    for k in range(10):
        radius = 28 if k % 2 == 0 else 12
        angle = math.pi / 2 + k * math.pi / 5
        points.append((32 + radius * math.cos(angle), 32 - radius * math.sin(angle)))
    return _drawn(lambda d: d.polygon(points, fill=1))


def _round_trip(mask: np.ndarray, max_points: int) -> np.ndarray:
    height, width = mask.shape
    rings = mask_to_polygons(mask, max_points)
    normalised = [[v / (width if i % 2 == 0 else height) for i, v in enumerate(ring)] for ring in rings]
    return polygon_to_mask(normalised, width, height).numpy().astype(bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("shape", [circle, square, star])
def test_round_trip_keeps_the_shape(shape):
    mask = shape()
    assert _iou(_round_trip(mask, 100), mask) > 0.9


def test_a_rectangle_outline_runs_along_pixel_edges():
    # Pixel i covers [i, i + 1): columns 3..5 span x in [3, 6]; each corner is cut by half a pixel.
    mask = np.zeros((10, 12), bool)
    mask[2:8, 3:6] = True
    assert mask_to_polygons(mask, 100) == [
        [3.0, 2.5, 3.5, 2.0, 5.5, 2.0, 6.0, 2.5, 6.0, 7.5, 5.5, 8.0, 3.5, 8.0, 3.0, 7.5]]


@pytest.mark.parametrize("shape", [circle, square, star])
@pytest.mark.parametrize("max_points", [1, 2, 3, 4, 7, 12, 30, 100])
def test_each_ring_has_at_most_max_points(shape, max_points):
    rings = mask_to_polygons(shape(), max_points)
    assert len(rings) == 1
    points = len(rings[0]) // 2
    assert len(rings[0]) % 2 == 0
    assert points <= max_points
    assert points >= min(3, max_points)  # a ring never collapses below a triangle when allowed


def test_simplification_keeps_as_many_points_as_it_can_use():
    # The raw outline of a 40 px circle has far more than 100 points; the simplified one is
    # still a close fit with few points.
    rings = mask_to_polygons(circle(), 16)
    assert 8 <= len(rings[0]) // 2 <= 16
    assert _iou(_round_trip(circle(), 16), circle()) > 0.9


def test_separate_objects_give_separate_rings_largest_first():
    mask = np.zeros((40, 60), bool)
    mask[5:10, 5:10] = True       # small
    mask[15:35, 30:55] = True     # large
    mask[30:32, 2:4] = True       # tiny
    rings = mask_to_polygons(mask, 100)
    assert len(rings) == 3
    lefts = [min(ring[0::2]) for ring in rings]
    assert lefts == [30.0, 5.0, 2.0]


def test_holes_are_not_rings():
    mask = np.zeros((30, 30), bool)
    mask[3:27, 3:27] = True
    mask[10:20, 10:20] = False
    rings = mask_to_polygons(mask, 100)
    assert len(rings) == 1
    assert min(rings[0][0::2]) == 3.0 and max(rings[0][0::2]) == 27.0


def test_an_object_touching_the_image_edge_is_closed_along_it():
    mask = np.zeros((20, 30), bool)
    mask[0:10, 20:30] = True
    rings = mask_to_polygons(mask, 100)
    xs, ys = rings[0][0::2], rings[0][1::2]
    assert (min(xs), min(ys), max(xs), max(ys)) == (20.0, 0.0, 30.0, 10.0)


def test_empty_mask_gives_no_rings():
    assert mask_to_polygons(np.zeros((8, 8), bool), 100) == []


def test_soft_masks_count_nonzero_pixels_and_tensors_work():
    import torch

    mask = torch.zeros(16, 16)
    mask[4:12, 4:12] = 0.3
    assert len(mask_to_polygons(mask, 100)) == 1


@pytest.mark.parametrize("max_points", [0, -1, 2.5, True])
def test_bad_max_points_is_rejected(max_points):
    with pytest.raises(ValueError, match="max_points"):
        mask_to_polygons(square(), max_points)


def test_a_mask_must_be_two_dimensional():
    with pytest.raises(ValueError, match="2-D"):
        mask_to_polygons(np.ones((1, 4, 4)), 10)
