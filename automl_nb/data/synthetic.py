"""Toy datasets for tests, tutorials and demos: coloured shapes on textured backgrounds.

Every task gets a realistic layout: one dominant shape per image (multiclass), one shape per
label of a random non-empty label set (multilabel), or 1-4 shapes of random classes with
partial overlap and varied sizes (detection, instance segmentation). By default each class has
its own hue (jittered) and shape, so a tiny CNN learns it in a few epochs at 32-64 px (from the
colour alone, mostly: what tests want); with ``colour_by_class=False`` every shape takes a random
hue and only its shape tells its class (what a demo of learning should show). The background
(gradient, stripes, noise) keeps either from being trivial. Backgrounds are kept low in colour
saturation, so any strongly coloured pixel belongs to a shape.

Boxes come from each shape's rasterised pixels (united with its polygon), so they enclose
the drawn shape exactly; polygons are the drawn outline (a circle is a 32-point polygon) in
normalised continuous coordinates (pixel ``i`` covers ``[i, i + 1)``).
"""

from __future__ import annotations

import colorsys
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from automl_nb.data.jsonl import write_jsonl
from automl_nb.data.mltable import write_mltable
from automl_nb.data.records import ImageRecord, ObjectLabel
from automl_nb.spec.tasks import DETECTION, MULTICLASS, MULTILABEL, check_task
from automl_nb.errors import DataError

SHAPES = ("circle", "square", "triangle", "star", "ellipse", "hexagon")
JSONL_NAME = "labels.jsonl"


def make_dataset(
    task: str,
    n: int,
    size: int,
    out_dir: str | os.PathLike,
    seed: int = 0,
    classes: Sequence[str] = ("circle", "square", "triangle"),
    colour_by_class: bool = True,
) -> Path:
    """Write a toy image dataset for ``task`` as an MLTable folder.

    Writes ``out_dir/images/NNNNN.png``, ``out_dir/labels.jsonl`` (Azure JSONL with
    ``image_details``) and ``out_dir/MLTable``. The same arguments give the same bytes.

    Args:
        task: one of the four image task names.
        n: number of images (>= 1). Classification classes are balanced (round robin,
            then shuffled).
        size: width and height in pixels (>= 16).
        out_dir: folder to write (created if missing).
        seed: random seed.
        classes: class names. A name from :data:`SHAPES` draws that shape; other names
            take the shapes in order. Multiclass needs at least two.
        colour_by_class: each class its own hue (True), or every shape a random hue, so
            that colour says nothing of the class (False).

    Returns:
        Path of the JSONL file.

    Raises:
        SpecError: unknown task.
        DataError: ``n < 1``, ``size < 16``, empty or repeated class names.

    Example:
        >>> jsonl = make_dataset("image_object_detection", n=20, size=64, out_dir="toy")
    """
    _check_arguments(task, n, size, classes)
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    shapes = _shapes_for(classes)
    hues = {name: i / len(classes) for i, name in enumerate(classes)} if colour_by_class else None

    labels = [classes[i % len(classes)] for i in range(n)]
    rng.shuffle(labels)
    records = []
    for index in range(n):
        if task == MULTICLASS:
            wanted = [labels[index]]
        elif task == MULTILABEL:
            wanted = _random_subset(classes, rng)
        else:
            wanted = [classes[k] for k in rng.integers(0, len(classes), size=int(rng.integers(1, 5)))]
        pixels = _background(size, rng)
        objects = _draw_objects(pixels, wanted, task, shapes, hues, rng)
        # Luminance grain over everything, shapes included (it leaves colour saturation alone).
        grain = rng.normal(0.0, 4.0, (size, size, 1))
        image = Image.fromarray(np.clip(pixels + grain, 0, 255).astype(np.uint8), "RGB")
        path = out_dir / "images" / f"{index:05d}.png"
        image.save(path, format="PNG")
        records.append(ImageRecord(str(path.resolve()), _label(task, objects), size, size, "png", f"{path}"))
    jsonl = write_jsonl(records, out_dir / JSONL_NAME)
    write_mltable(out_dir, JSONL_NAME)
    return jsonl


def _check_arguments(task: str, n: int, size: int, classes: Sequence[str]) -> None:
    check_task(task)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DataError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise DataError(f"size must be an integer >= 16 (pixels), got {size!r}")
    if isinstance(classes, str) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise DataError(f"classes must be a non-empty sequence of names, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise DataError(f"classes must be unique, got {list(classes)}")
    if task == MULTICLASS and len(classes) < 2:
        raise DataError(f"{MULTICLASS} needs at least 2 classes, got {list(classes)}")


def _shapes_for(classes: Sequence[str]) -> dict[str, str]:
    """Map each class to a shape: its own name if it is one, else the next unused shape."""
    shapes = {name: name for name in classes if name in SHAPES}
    spare = [s for s in SHAPES if s not in shapes.values()] or list(SHAPES)
    for name in classes:
        if name not in shapes:
            shapes[name] = spare[len(shapes) % len(spare)]
    return shapes


def _random_subset(classes: Sequence[str], rng: np.random.Generator) -> list[str]:
    while True:
        chosen = [c for c in classes if rng.random() < 0.5]
        if chosen:
            return chosen


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Low-saturation texture: tinted grey, a linear gradient, stripes and fine noise (float 0..255)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    grey = rng.uniform(0.3, 0.65)
    tint = rng.uniform(-0.04, 0.04, 3)
    angle = rng.uniform(0, 2 * math.pi)
    gradient = rng.uniform(-0.2, 0.2) * (xx * math.cos(angle) + yy * math.sin(angle) - 0.5)
    stripe_angle = rng.uniform(0, math.pi)
    stripes = rng.uniform(0.0, 0.08) * np.sin(
        2 * math.pi * rng.uniform(2, 8) * (xx * math.cos(stripe_angle) + yy * math.sin(stripe_angle))
        + rng.uniform(0, 2 * math.pi)
    )
    shade = (grey + gradient + stripes)[..., None] + tint + rng.normal(0.0, 0.01, (size, size, 3))
    return np.clip(shade, 0.0, 1.0) * 255.0


def _draw_objects(
    pixels: np.ndarray,
    wanted: list[str],
    task: str,
    shapes: dict[str, str],
    hues: dict[str, float] | None,
    rng: np.random.Generator,
) -> list[ObjectLabel]:
    """Draw the wanted classes into ``pixels`` (in place); return the objects actually placed.

    ``hues`` gives each class its hue; None draws each shape in a random one.
    """
    size = pixels.shape[0]
    if task == MULTICLASS:
        radius_range, max_overlap = (0.22, 0.38), 0.0
    elif task == MULTILABEL:
        radius_range, max_overlap = (0.14, 0.24), 0.1
    else:
        radius_range, max_overlap = (0.1, 0.28), 0.35
    objects: list[ObjectLabel] = []
    for name in wanted:
        boxes = [(o.top_x, o.top_y, o.bottom_x, o.bottom_y) for o in objects]
        placed = _place(size, radius_range, boxes, max_overlap, rng)
        if placed is None:
            continue  # no room left: the label lists only what is drawn
        centre_x, centre_y, radius = placed
        outline = _outline(shapes[name], centre_x, centre_y, radius, rng)
        mask = Image.new("L", (size, size), 0)
        ImageDraw.Draw(mask).polygon(outline, fill=1)
        inside = np.asarray(mask, dtype=bool)
        pixels[inside] = _colour(hues[name] if hues is not None else rng.uniform(0.0, 1.0), rng)
        objects.append(object_label(name, inside, outline, size))
    return objects


def _place(
    size: int,
    radius_range: tuple[float, float],
    boxes: list[tuple[float, float, float, float]],
    max_overlap: float,
    rng: np.random.Generator,
) -> tuple[float, float, float] | None:
    """Pick a centre and radius that fits the image and covers at most ``max_overlap`` of any earlier box."""
    for _ in range(30):
        radius = rng.uniform(*radius_range) * size
        centre_x, centre_y = rng.uniform(radius + 1, size - radius - 2, 2)
        box = tuple(v / size for v in (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius))
        if all(_overlap(box, other) <= max_overlap for other in boxes):
            return centre_x, centre_y, radius
    return None


def _outline(
    shape: str, centre_x: float, centre_y: float, radius: float, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """Vertices of ``shape`` in PIL pixel coordinates (integers are pixel centres)."""
    turn = rng.uniform(0, 2 * math.pi)
    if shape == "circle":
        radii, angles = [radius] * 32, [2 * math.pi * k / 32 for k in range(32)]
    elif shape == "square":
        turn = rng.uniform(-0.26, 0.26)  # stays a square, not a diamond
        radii, angles = [radius] * 4, [math.pi / 4 + math.pi / 2 * k for k in range(4)]
    elif shape == "triangle":
        radii, angles = [radius] * 3, [2 * math.pi * k / 3 for k in range(3)]
    elif shape == "star":
        radii = [radius if k % 2 == 0 else 0.45 * radius for k in range(10)]
        angles = [math.pi * k / 5 for k in range(10)]
    elif shape == "hexagon":
        radii, angles = [radius] * 6, [math.pi * k / 3 for k in range(6)]
    else:  # ellipse
        angles = [2 * math.pi * k / 32 for k in range(32)]
        radii = [radius * 0.55 / math.hypot(0.55 * math.cos(a), math.sin(a)) for a in angles]
    return [
        (centre_x + r * math.cos(a + turn), centre_y + r * math.sin(a + turn))
        for r, a in zip(radii, angles)
    ]


def _colour(hue: float, rng: np.random.Generator) -> np.ndarray:
    red, green, blue = colorsys.hsv_to_rgb(
        (hue + rng.uniform(-0.04, 0.04)) % 1.0, rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0)
    )
    return np.array([red, green, blue]) * 255.0


def object_label(name: str, inside: np.ndarray, outline: list[tuple[float, float]], size: int) -> ObjectLabel:
    """An object of a square ``size`` image from its pixel mask ``inside`` and its ``outline``.

    The box encloses both the mask's pixels and the polygon; ``outline`` points are pixel
    positions (pixel centres at integers), normalised with the half-pixel shift of the JSONL.
    """
    rows, columns = np.nonzero(inside)
    ring = tuple(round(min(max((v + 0.5) / size, 0.0), 1.0), 6) for point in outline for v in point)
    xs, ys = ring[0::2], ring[1::2]
    top_x = min(columns.min() / size, min(xs))
    top_y = min(rows.min() / size, min(ys))
    bottom_x = max((columns.max() + 1) / size, max(xs))
    bottom_y = max((rows.max() + 1) / size, max(ys))
    return ObjectLabel(name, float(top_x), float(top_y), float(bottom_x), float(bottom_y), polygon=(ring,))


def _label(task: str, objects: list[ObjectLabel]):
    if task == MULTICLASS:
        return objects[0].label
    if task == MULTILABEL:
        return tuple(o.label for o in objects)
    if task == DETECTION:
        return tuple(ObjectLabel(o.label, o.top_x, o.top_y, o.bottom_x, o.bottom_y) for o in objects)
    return tuple(objects)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection as a fraction of the smaller box (1.0 when one contains the other)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / smaller
