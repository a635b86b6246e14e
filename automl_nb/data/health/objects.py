"""Data health of detection and segmentation labels: object statistics, small objects (with
:mod:`automl_nb.data.health.scale`), boxes at the border, images without objects, polygons
that enclose nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from automl_nb.data.health.findings import INFO, WARNING, Finding, listed, percent, plural
from automl_nb.data.health.scale import (
    MEDIUM_AREA, SMALL_AREA, ObjectSizes, small_objects_finding, upscaled_finding,
)
from automl_nb.data.records import ImageRecord

BORDER_PIXELS = 1.0
# A ring enclosing less (square pixels of the image) encloses nothing: its points are on a line.
MIN_POLYGON_AREA = 0.01


@dataclass(frozen=True)
class ObjectStats:
    """Object statistics of the training and validation images together.

    Attributes:
        objects: labelled objects (in images whose size could be read).
        small, medium, large: COCO's size classes at the size the model sees.
        touching_border: boxes within a pixel of an image edge.
        empty_images: images with no object.
        median_scale: the typical factor from an image to what the model sees.
        sides: each object's side (square root of its box area) in pixels as the model sees it.
    """

    objects: int
    small: int
    medium: int
    large: int
    touching_border: int
    empty_images: int
    median_scale: float
    sides: tuple[float, ...]


def object_health(records: Sequence[ImageRecord], sizes: Mapping[str, tuple[int, int]], task: str,
                  params: Mapping[str, Any], fixed: Mapping[str, Any]) -> tuple[ObjectStats, list[Finding]]:
    """Object statistics and findings of detection or segmentation records.

    Args:
        records: training and validation records.
        sizes: ``(width, height)`` of each readable image, by URL (others are left out).
        task: the job's task.
        params: the resolved training parameters the model will use.
        fixed: the job's fixed training parameters (recommendations are checked with them).

    Returns:
        ``(stats, findings)``.
    """
    objects = ObjectSizes(records, sizes)
    sides = objects.sides(params)
    areas = [side * side for side in sides]
    sized = objects.records
    stats = ObjectStats(
        objects=len(sides), small=sum(a < SMALL_AREA for a in areas),
        medium=sum(SMALL_AREA <= a < MEDIUM_AREA for a in areas), large=sum(a >= MEDIUM_AREA for a in areas),
        touching_border=len(_touching_border(sized, sizes)), empty_images=sum(not r.objects for r in sized),
        median_scale=objects.median_scale(params), sides=tuple(sides))
    findings = [small_objects_finding(objects, task, params, fixed), upscaled_finding(objects, task, params, fixed),
                _border(sized, sizes, stats), _empty(sized), _degenerate_polygons(sized, sizes)]
    return stats, [f for f in findings if f is not None]


def _touching_border(records, sizes) -> list[str]:
    touching = []
    for record in records:
        width, height = sizes[record.image_url]
        for number, item in enumerate(record.objects, start=1):
            gaps = (item.top_x * width, item.top_y * height, (1 - item.bottom_x) * width, (1 - item.bottom_y) * height)
            if min(gaps) < BORDER_PIXELS:
                touching.append(f"{record.source} object {number}")
    return touching


def _border(records, sizes, stats: ObjectStats) -> Finding | None:
    touching = _touching_border(records, sizes)
    if not touching:
        return None
    return Finding("boxes_touch_border", INFO,
                   f"{len(touching)} of {stats.objects} boxes ({percent(len(touching), stats.objects)}) touch the "
                   f"image border: {listed(touching)}",
                   "objects cut by the frame are fine when their box covers the visible part; check a few, since a "
                   "converter that clips or shifts boxes also puts them there", examples=tuple(touching))


def _empty(records) -> Finding | None:
    empty = [r.source or r.image_url for r in records if not r.objects]
    if not empty:
        return None
    severity = WARNING if len(empty) > len(records) / 2 else INFO
    return Finding("empty_images", severity,
                   f"{len(empty)} of {plural(len(records), 'image')} ({percent(len(empty), len(records))}) have no "
                   f"objects: "
                   f"{listed(empty)}",
                   "images without objects teach the background; if they should have objects, label them, and keep "
                   "background-only images a minority", examples=tuple(empty))


def _degenerate_polygons(records, sizes) -> Finding | None:
    """Rings close implicitly (the last point joins the first); one with fewer than 3 distinct
    points, or with all points on one line, does not close around any area."""
    bad = []
    for record in records:
        width, height = sizes[record.image_url]
        for number, item in enumerate(record.objects, start=1):
            for ring_number, ring in enumerate(item.polygon or (), start=1):
                points = [(x * width, y * height) for x, y in zip(ring[0::2], ring[1::2])]
                if len(set(points)) < 3 or _area(points) < MIN_POLYGON_AREA:
                    bad.append(f"{record.source} object {number} ring {ring_number}")
    if not bad:
        return None
    return Finding("degenerate_polygons", WARNING,
                   f"{plural(len(bad), 'polygon')} enclosing no area (fewer than 3 distinct points, or all on one "
                   f"line): "
                   f"{listed(bad)}",
                   "their masks are empty, so they train nothing or mislead the mask head; redraw or remove them",
                   examples=tuple(bad))


def _area(points: list[tuple[float, float]]) -> float:
    """Shoelace area of a closed ring, in square pixels."""
    twice = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]))
    return abs(twice) / 2
