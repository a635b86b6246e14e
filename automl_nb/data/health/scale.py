"""Objects at the size the model sees them: how small they are, and the tile grid, ``min_size``
or ``image_size`` that makes them bigger.

torchvision's detectors scale an image so its short side is ``min_size`` unless its long side
would pass ``max_size``; yolov5 letterboxes the long side to ``image_size``; with
``tile_grid_size`` each tile is also scaled that way on its own, so an object is seen largest
in its tile. An object is *small* as COCO counts it: under 32 x 32 px of area there, where
detectors find few of them.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any, Mapping, Sequence

from automl_nb.data.health.findings import INFO, TRAINING_PARAMETERS, WARNING, Finding, parameter_yaml, percent
from automl_nb.data.records import ImageRecord
from automl_nb.data.tiling import tile_boxes
from automl_nb.spec.grid import parse_grid
from automl_nb.spec.table import PARAMETERS
from automl_nb.spec.tasks import model_family

SMALL_AREA = 32 ** 2  # COCO: small objects have less area than this (pixels, at the model's size)
MEDIUM_AREA = 96 ** 2
SMALL_SHARE_WARNING = 0.2  # a share of small objects worth tiling or a larger min_size
SMALL_SHARE_GOAL = 0.05  # what a recommended tile grid or min_size should bring it down to
UPSCALE_NOTE = 2.0  # images scaled up more than this are noted (they cost pixels they lack)
# Tile grids tried, fewest tiles first; only those whose tiles are about square (aspect within
# TILE_ASPECT) for the data's typical image shape.
TILE_GRIDS = ((2, 1), (1, 2), (2, 2), (3, 2), (2, 3), (3, 3), (4, 3), (3, 4), (4, 4), (5, 4), (4, 5), (6, 4))
TILE_ASPECT = 1.6
MIN_SIZES = (800, 1024, 1333, 1600, 2048)
YOLO_IMAGE_SIZES = (960, 1280, 1536, 1920)


def model_scale(width: int, height: int, params: Mapping[str, Any]) -> float:
    """The factor by which the model resizes a ``width x height`` image (or tile).

    Args:
        width, height: pixels.
        params: resolved training parameters (``model_name``, ``min_size``/``max_size`` or
            yolov5's ``image_size``).

    Returns:
        The scale; 1.0 for a model with none of those parameters.
    """
    if model_family(params["model_name"]) == "yolov5":
        return params["image_size"] / max(width, height)
    if params.get("min_size") is None:
        return 1.0
    return min(params["min_size"] / min(width, height), params["max_size"] / max(width, height))


def seen_scale(width: int, height: int, params: Mapping[str, Any]) -> float:
    """The scale of the largest view of an object: its image, or its tile with ``tile_grid_size``."""
    scale = model_scale(width, height, params)
    grid = params.get("tile_grid_size")
    if grid:
        try:
            x1, y1, x2, y2 = tile_boxes(width, height, grid, params["tile_overlap_ratio"])[0]
        except ValueError:  # an image smaller than the grid is used whole
            return scale
        scale = max(scale, model_scale(x2 - x1, y2 - y1, params))
    return scale


class ObjectSizes:
    """The boxes of the images whose size is known, measured as the model would see them.

    Args:
        records: detection or segmentation records.
        sizes: ``(width, height)`` of each readable image, by URL (other records are left out).
    """

    def __init__(self, records: Sequence[ImageRecord], sizes: Mapping[str, tuple[int, int]]) -> None:
        self.records = [r for r in records if r.image_url in sizes]
        self.sizes = sizes
        self.boxes = []  # (image size, box width px, box height px, where)
        for record in self.records:
            width, height = sizes[record.image_url]
            for number, item in enumerate(record.objects, start=1):
                self.boxes.append(((width, height), (item.bottom_x - item.top_x) * width,
                                   (item.bottom_y - item.top_y) * height, f"{record.source} object {number}"))

    def sides(self, params: Mapping[str, Any]) -> list[float]:
        """Each object's side (square root of its box area) in pixels as the model sees it with ``params``."""
        scales: dict[tuple[int, int], float] = {}
        sides = []
        for size, box_width, box_height, _ in self.boxes:
            if size not in scales:
                scales[size] = seen_scale(*size, params)
            sides.append(math.sqrt(box_width * box_height) * scales[size])
        return sides

    def small_share(self, params: Mapping[str, Any]) -> float:
        """The share of objects under :data:`SMALL_AREA` with ``params``."""
        sides = self.sides(params)
        return sum(side * side < SMALL_AREA for side in sides) / len(sides) if sides else 0.0

    def median_scale(self, params: Mapping[str, Any]) -> float:
        """The typical factor from an image to what the model sees (1.0 without images)."""
        scales = [model_scale(*self.sizes[r.image_url], params) for r in self.records]
        return median(scales) if scales else 1.0


def _view(params: Mapping[str, Any]) -> str:
    if model_family(params["model_name"]) == "yolov5":
        view = f"image_size {params['image_size']}"
    elif params.get("min_size") is not None:
        view = f"min_size {params['min_size']} / max_size {params['max_size']}"
    else:
        view = "their own size"
    return view + (f", tiles {params['tile_grid_size']}" if params.get("tile_grid_size") else "")


def small_objects_finding(objects: ObjectSizes, task: str, params: Mapping[str, Any],
                          fixed: Mapping[str, Any]) -> Finding | None:
    """A warning when :data:`SMALL_SHARE_WARNING` of the objects or more are small as the model sees them,
    with the cheapest tile grid (detection), ``min_size`` or ``image_size`` that makes them bigger.
    """
    sides = objects.sides(params)
    small = [box for box, side in zip(objects.boxes, sides) if side * side < SMALL_AREA]
    if not sides or len(small) / len(sides) < SMALL_SHARE_WARNING:
        return None
    (width, height), box_width, box_height, where = small[0]
    message = (f"{len(small)} of {len(sides)} objects ({percent(len(small), len(sides))}) are smaller than "
               f"32x32 px (COCO 'small') at the size the model sees (images scaled "
               f"{objects.median_scale(params):.2g}x at {_view(params)}); e.g. {where}: "
               f"{_pixels(box_width)}x{_pixels(box_height)} px in a {width}x{height} image")
    values, reason = _bigger_view(objects, task, params)
    yaml = parameter_yaml(task, fixed, values) if values else None
    if yaml is None:
        reason = ("detectors find few objects this small; label on higher-resolution images, or drop objects "
                  "too small to matter")
    return Finding("small_objects", WARNING, message, reason, yaml, TRAINING_PARAMETERS if yaml else None,
                   tuple(box[3] for box in small))


def _pixels(value: float) -> str:
    """``"24"``, or ``"1.9"`` below 10 px, where a tenth matters."""
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _bigger_view(objects: ObjectSizes, task: str, params: Mapping[str, Any]) -> tuple[dict, str]:
    """The cheapest tile grid (detection) or min_size / image_size that makes objects big enough."""
    model = params["model_name"]
    current = objects.small_share(params)
    options: list[dict] = []
    if PARAMETERS["tile_grid_size"].applies_to(task, model):
        now = _tile_count(params.get("tile_grid_size"))
        aspect = median(objects.sizes[r.image_url][0] / objects.sizes[r.image_url][1] for r in objects.records)
        for cols, rows in TILE_GRIDS:
            if cols * rows > now and 1 / TILE_ASPECT <= aspect * rows / cols <= TILE_ASPECT:
                options.append({"tile_grid_size": f"{cols}x{rows}"})
    elif model_family(model) == "yolov5":
        options = [{"image_size": size} for size in YOLO_IMAGE_SIZES if size > params["image_size"]]
    elif PARAMETERS["min_size"].applies_to(task, model):
        ratio = params["max_size"] / params["min_size"]
        options = [{"min_size": size, "max_size": max(params["max_size"], math.ceil(size * ratio))}
                   for size in MIN_SIZES if size > params["min_size"]]
    shares = [objects.small_share({**params, **option}) for option in options]
    good = [i for i, share in enumerate(shares) if share <= SMALL_SHARE_GOAL]
    best = good[0] if good else min(range(len(shares)), key=shares.__getitem__, default=None)
    if best is None or shares[best] > current / 2:
        return {}, ""
    option, total = options[best], len(objects.boxes)
    left = percent(round(shares[best] * total), total)
    if "tile_grid_size" in option:
        tiles = _tile_count(option["tile_grid_size"])
        return option, (f"with {option['tile_grid_size']} tiles each tile is scaled on its own, so objects are seen "
                        f"larger: {left} stay small; "
                        f"each epoch then trains on every image and its {tiles} tiles ({tiles + 1}x the steps)")
    return option, (f"at {', '.join(f'{k} {v}' for k, v in option.items())} objects are seen larger: "
                    f"{left} stay small; "
                    "memory and time per image grow with the pixels")


def _tile_count(grid: str | None) -> int:
    if not grid:
        return 0
    cols, rows = parse_grid(grid)
    return cols * rows


def upscaled_finding(objects: ObjectSizes, task: str, params: Mapping[str, Any],
                     fixed: Mapping[str, Any]) -> Finding | None:
    """A note when images are scaled up more than :data:`UPSCALE_NOTE` times and objects stay big
    enough without it: the pixels cost time and hold nothing."""
    scale, records, sizes = objects.median_scale(params), objects.records, objects.sizes
    if not records or scale <= UPSCALE_NOTE:
        return None
    model = params["model_name"]
    if model_family(model) == "yolov5":
        long_side = median(max(sizes[r.image_url]) for r in records)
        option = {"image_size": 32 * math.ceil(long_side / 32)}
    elif PARAMETERS["min_size"].applies_to(task, model):
        short_side = median(min(sizes[r.image_url]) for r in records)
        option = {"min_size": 32 * math.ceil(short_side / 32)}
    else:
        return None
    share = objects.small_share({**params, **option})
    if share >= SMALL_SHARE_WARNING or share > objects.small_share(params) + SMALL_SHARE_GOAL:
        return None  # the upscaling is what keeps objects visible
    yaml = parameter_yaml(task, fixed, option)
    if yaml is None:
        return None
    key, value = next(iter(option.items()))
    return Finding("images_upscaled", INFO,
                   f"images are scaled up {scale:.2g}x (typical) to {_view(params)}: each step "
                   f"processes about {scale ** 2:.0f}x the pixels the images hold",
                   f"at {key} {value} training is faster and "
                   f"{percent(round(share * len(objects.boxes)), len(objects.boxes))} "
                   "of objects are small", yaml, TRAINING_PARAMETERS)
