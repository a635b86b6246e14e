"""From a binary object mask to polygons with a bounded number of points (SPEC section 7:
``max_number_of_polygon_points``).

Coordinates are continuous pixel positions, as :func:`automl_nb.data.detection.polygon_to_mask`
reads them: pixel ``i`` covers ``[i, i + 1)``, so a mask's outline runs along pixel edges and
dividing by the image's width and height gives Azure's normalised polygon. The outline is
traced at level 0.5 with contourpy (marching squares; a matplotlib dependency), which cuts each
pixel corner diagonally, then each ring is simplified with Douglas-Peucker at growing
tolerance until it has at most ``max_points`` points. Holes are left out: a polygon in the
JSONL format is a union of filled rings.
"""

from __future__ import annotations

import numpy as np

# Douglas-Peucker tolerances in pixels: the first drops only collinear points, then each try
# is 1.5x the last from a quarter pixel, so a ring keeps close to the most points allowed.
_COLLINEAR = 1e-6
_FIRST_TOLERANCE = 0.25
_TOLERANCE_GROWTH = 1.5


def mask_to_polygons(mask, max_points: int) -> list[list[float]]:
    """Outer outlines of a binary mask as flat rings ``[x1, y1, x2, y2, ...]`` in pixels.

    Args:
        mask: ``[H, W]`` array-like (numpy or CPU tensor); nonzero pixels belong to the object.
        max_points: most ``(x, y)`` points in each ring (>= 1).

    Returns:
        One ring per connected part of the mask, the largest first; ``[]`` for an empty mask.
        A ring is not closed (its last point is not its first repeated).

    Raises:
        ValueError: ``mask`` is not 2-D, or ``max_points`` is not an int >= 1.

    Example:
        >>> mask = np.zeros((10, 10), bool); mask[2:8, 3:6] = True
        >>> mask_to_polygons(mask, 100)
        [[3.0, 2.5, 3.5, 2.0, 5.5, 2.0, 6.0, 2.5, 6.0, 7.5, 5.5, 8.0, 3.5, 8.0, 3.0, 7.5]]
    """
    from contourpy import LineType, contour_generator

    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1:
        raise ValueError(f"max_points: {max_points!r} is not an int >= 1")
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask: expected a 2-D [H, W] mask, got shape {mask.shape}")
    if not mask.any():
        return []
    # A border of zeros closes every outline, also where the object touches the image's edge.
    padded = np.pad(mask != 0, 1).astype(np.float64)
    lines = contour_generator(z=padded, line_type=LineType.Separate).lines(0.5)
    rings = []
    for line in lines:
        # Array index j (padded) is the centre of pixel j - 1, i.e. position j - 0.5.
        points = np.asarray(line, dtype=np.float64)[:-1] - 0.5  # drop the repeated closing point
        area = _signed_area(points)
        if area > 0:  # contourpy turns outer outlines one way and holes the other
            rings.append((area, simplify_ring(points, max_points)))
    rings.sort(key=lambda item: -item[0])
    return [ring.reshape(-1).tolist() for _, ring in rings]


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def simplify_ring(points: np.ndarray, max_points: int) -> np.ndarray:
    """Douglas-Peucker on a closed ring, at growing tolerance until it has at most ``max_points``.

    Args:
        points: ``[N, 2]`` ring, not closed.
        max_points: most points to keep (>= 1).

    Returns:
        ``[K, 2]``, ``K <= max_points``, a subsequence of ``points`` in the same order.
    """
    tolerance = _COLLINEAR
    ring = _simplify_closed(points, tolerance)
    while len(ring) > max_points:
        if len(ring) <= 3:  # every tolerance keeps the three anchors
            return ring[:max_points]
        tolerance = max(_FIRST_TOLERANCE, tolerance * _TOLERANCE_GROWTH)
        ring = _simplify_closed(points, tolerance)
    return ring


def _simplify_closed(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on a ring, split at three anchors that are always kept.

    The anchors are the first point, the point farthest from it and the point farthest from
    the line between those two: at any tolerance a ring keeps at least a triangle.
    """
    if len(points) < 4:
        return points
    far = int(np.argmax(np.sum((points - points[0]) ** 2, axis=1)))
    third = int(np.argmax(_distance_to_segment(points, points[0], points[far])))
    anchors = sorted({0, far, third, len(points)})  # index len(points) is the first point again
    closed = np.vstack([points, points[:1]])
    keep = np.zeros(len(closed), dtype=bool)
    for first, last in zip(anchors, anchors[1:]):
        _douglas_peucker(closed, first, last, tolerance, keep)
    return points[keep[:-1]]


def _douglas_peucker(points: np.ndarray, first: int, last: int, tolerance: float, keep: np.ndarray) -> None:
    """Mark in ``keep`` the points of ``points[first:last + 1]`` that Douglas-Peucker keeps."""
    keep[first] = keep[last] = True
    stack = [(first, last)]
    while stack:  # a loop, not recursion: a long outline would exceed Python's recursion limit
        start, end = stack.pop()
        if end - start < 2:
            continue
        inner = points[start + 1:end]
        distances = _distance_to_segment(inner, points[start], points[end])
        index = int(np.argmax(distances))
        if distances[index] > tolerance:
            split = start + 1 + index
            keep[split] = True
            stack += [(start, split), (split, end)]


def _distance_to_segment(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    length2 = float(ab @ ab)
    if length2 == 0:
        return np.sqrt(np.sum((points - a) ** 2, axis=1))
    t = np.clip(((points - a) @ ab) / length2, 0.0, 1.0)
    closest = a + t[:, None] * ab
    return np.sqrt(np.sum((points - closest) ** 2, axis=1))
