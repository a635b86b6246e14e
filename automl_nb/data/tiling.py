"""Tiling for small-object detection (SPEC section 7: ``tile_grid_size``, ``tile_overlap_ratio``,
``tile_predictions_nms_threshold``; object detection only, not instance segmentation).

Small objects shrink to a few pixels when a detector resizes a large image to ``min_size``.
With a tile grid, each image is also seen as ``cols x rows`` overlapping tiles, each resized
on its own, so small objects keep more pixels:

- Training: :func:`tile_records` lists every image whole and as each of its tiles; a
  :class:`~automl_nb.data.detection.DetectionDataset` over that list crops the image and its
  targets. An object keeps a box in a tile (clipped to the tile) when at least
  :data:`MIN_VISIBLE_FRACTION` (25%) of its box area lies inside the tile; a smaller sliver
  is dropped from that tile's targets. The tile overlap makes such an object appear whole,
  or mostly whole, in a neighbouring tile, and the object is always labelled in the full image.
- Inference: the model runs on the full image and on every tile (:func:`crop_image`);
  :func:`merge_predictions` moves the tile boxes back to image pixels with
  :func:`map_to_image` and removes the duplicates of an object seen by several tiles and the
  full image with class-aware NMS at ``tile_predictions_nms_threshold``. The final
  ``box_detections_per_image`` cap applies after the merge (``max_detections``).

Tiles are integer pixel rectangles ``(x1, y1, x2, y2)`` (``x2``, ``y2`` exclusive), so a crop
is exact and moving a box between a tile and its image is a pure translation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from automl_nb.data.images import image_size
from automl_nb.data.records import ImageRecord
from automl_nb.errors import SpecError
from automl_nb.spec.grid import parse_grid
from automl_nb.spec.table import PARAMETERS

if TYPE_CHECKING:  # torch is imported where used, so importing this module stays light
    import torch

Tile = tuple[int, int, int, int]

# An object keeps a box in a tile when at least this fraction of its box area is inside.
MIN_VISIBLE_FRACTION = 0.25


def check_overlap_ratio(overlap_ratio: float) -> float:
    """Return ``overlap_ratio`` as a float; SpecError unless it is a number in the table's range, [0, 1)."""
    param = PARAMETERS["tile_overlap_ratio"]
    number = isinstance(overlap_ratio, (int, float)) and not isinstance(overlap_ratio, bool)
    if not number or not param.in_range(overlap_ratio):
        raise SpecError(f"{param.name}: {overlap_ratio!r} is out of range; allowed: {param.allowed_text()}")
    return float(overlap_ratio)


def tile_boxes(width: int, height: int, grid: str | tuple[int, int], overlap_ratio: float) -> list[Tile]:
    """Split an image into a grid of overlapping tiles.

    Tiles of one column (row) have the same width (height) up to 1 px of rounding; adjacent
    tiles overlap by ``overlap_ratio`` of a tile's width (height), also up to 1 px; the first
    tiles start at 0 and the last ones end at the image's edge.

    Args:
        width, height: image size in pixels.
        grid: ``"MxN"`` or ``(cols, rows)``.
        overlap_ratio: overlap of adjacent tiles as a fraction of a tile, in [0, 1).

    Returns:
        ``cols * rows`` tiles ``(x1, y1, x2, y2)`` in integer pixels, row by row from the
        top, left to right within a row.

    Raises:
        SpecError: bad grid or overlap ratio.
        ValueError: the image has fewer pixels than tiles across or down.

    Example:
        >>> tile_boxes(100, 50, "2x1", 0.25)
        [(0, 0, 57, 50), (43, 0, 100, 50)]
    """
    cols, rows = parse_grid(grid) if isinstance(grid, str) else parse_grid(f"{grid[0]}x{grid[1]}")
    overlap_ratio = check_overlap_ratio(overlap_ratio)
    if width < cols or height < rows:
        raise ValueError(f"an image of {width}x{height} px is too small for a {cols}x{rows} tile grid")
    xs = _spans(width, cols, overlap_ratio)
    ys = _spans(height, rows, overlap_ratio)
    return [(x1, y1, x2, y2) for y1, y2 in ys for x1, x2 in xs]


def _spans(length: int, count: int, overlap_ratio: float) -> list[tuple[int, int]]:
    """``count`` intervals of one size covering ``[0, length)``, neighbours overlapping by ``overlap_ratio``."""
    # count * size - (count - 1) * overlap * size = length
    size = length / (count - (count - 1) * overlap_ratio)
    step = size * (1 - overlap_ratio)
    spans = [(_round(i * step), _round(i * step + size)) for i in range(count)]
    spans[-1] = (spans[-1][0], length)
    return spans


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # half up, so that round(x + 1) == round(x) + 1


@dataclass(frozen=True)
class ImageTile:
    """One sample of a tiled dataset: an image record and the tile of it to use.

    Args:
        record: the labelled image.
        tile: ``(x1, y1, x2, y2)`` in pixels, or None for the whole image.
    """

    record: ImageRecord
    tile: Tile | None = None


def tile_records(
    records: Iterable[ImageRecord],
    grid: str | tuple[int, int],
    overlap_ratio: float,
    include_full_image: bool = True,
) -> list[ImageTile]:
    """List every image whole and as each of its tiles, for training with tiling.

    Args:
        records: detection records. Their ``width``/``height`` are used when known, else the
            image header is read.
        grid: ``"MxN"`` (``tile_grid_size``) or ``(cols, rows)``.
        overlap_ratio: ``tile_overlap_ratio``.
        include_full_image: also list each whole image (before its tiles).

    Returns:
        :class:`ImageTile` samples to pass to ``DetectionDataset`` instead of the records.

    Raises:
        SpecError: bad grid or overlap ratio.
        ValueError: an image is smaller than the grid.
        DataError: an image without a known size cannot be read.

    Example:
        >>> samples = tile_records(train_records, "3x2", 0.25)
        >>> dataset = DetectionDataset(samples, classes, detection_train_transform(params))
    """
    samples = []
    for record in records:
        if record.width is not None and record.height is not None:
            width, height = record.width, record.height
        else:
            width, height = image_size(record.image_url)
        if include_full_image:
            samples.append(ImageTile(record, None))
        samples.extend(ImageTile(record, tile) for tile in tile_boxes(width, height, grid, overlap_ratio))
    return samples


def boxes_in_tile(
    boxes: torch.Tensor, tile: Tile, min_visible: float = MIN_VISIBLE_FRACTION
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move image boxes into a tile's pixel coordinates, clipped to the tile.

    Args:
        boxes: ``[N, 4]`` XYXY boxes in image pixels.
        tile: ``(x1, y1, x2, y2)`` in image pixels.
        min_visible: keep a box when at least this fraction of its area is inside the tile.

    Returns:
        ``(tile_boxes, keep)``: the kept boxes ``[K, 4]`` in tile pixels (same dtype as
        ``boxes``) and the bool ``[N]`` mask of kept boxes, to select their labels with.
    """
    import torch

    x1, y1, x2, y2 = tile
    clipped = boxes.clone()
    clipped[:, 0::2] = clipped[:, 0::2].clamp(x1, x2)
    clipped[:, 1::2] = clipped[:, 1::2].clamp(y1, y2)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (visible > 0) & (visible >= min_visible * area)
    offset = torch.tensor([x1, y1, x1, y1], dtype=boxes.dtype, device=boxes.device)
    return clipped[keep] - offset, keep


def map_to_image(boxes: torch.Tensor, tile: Tile | None) -> torch.Tensor:
    """Move ``[N, 4]`` XYXY boxes from a tile's pixel coordinates to its image's.

    A pure translation by the tile's integer corner, so it is exact and undoes
    :func:`boxes_in_tile` for a box inside the tile. ``tile=None`` (the full image) returns the
    boxes unchanged.
    """
    import torch

    if tile is None:
        return boxes
    x1, y1 = tile[0], tile[1]
    return boxes + torch.tensor([x1, y1, x1, y1], dtype=boxes.dtype, device=boxes.device)


def crop_image(image: torch.Tensor, tile: Tile | None) -> torch.Tensor:
    """Return the ``[..., H, W]`` tensor image cut to ``tile`` (a view); ``None`` returns it whole."""
    if tile is None:
        return image
    x1, y1, x2, y2 = tile
    return image[..., y1:y2, x1:x2]


def merge_predictions(
    predictions: Sequence[Mapping[str, torch.Tensor]],
    tiles: Sequence[Tile | None],
    iou_threshold: float,
    max_detections: int | None = None,
) -> dict[str, torch.Tensor]:
    """Merge the predictions for one image's tiles and the full image into one set.

    Boxes are moved to image pixels, then class-aware NMS (``torchvision.ops.batched_nms``)
    keeps the best-scoring of boxes of one class that overlap by more than ``iou_threshold``:
    an object seen by two tiles and the full image counts once, while nearby objects of
    different classes are all kept.

    Args:
        predictions: one dict per tile, with ``boxes`` ``[N, 4]`` XYXY in that tile's pixels,
            ``scores`` ``[N]`` and ``labels`` ``[N]`` (other keys are ignored).
        tiles: the tile of each prediction, None for the full image.
        iou_threshold: ``tile_predictions_nms_threshold``, in [0, 1].
        max_detections: keep at most this many (best first); None keeps all.

    Returns:
        ``{"boxes", "scores", "labels"}`` in image pixels, sorted by decreasing score.

    Raises:
        ValueError: ``predictions`` and ``tiles`` differ in length, or ``iou_threshold`` is
            out of [0, 1].

    Example:
        >>> tiles = [None, *tile_boxes(width, height, "3x2", 0.25)]
        >>> outputs = model([crop_image(image, tile) for tile in tiles])
        >>> merged = merge_predictions(outputs, tiles, iou_threshold=0.25)
    """
    import torch
    from torchvision.ops import batched_nms

    if len(predictions) != len(tiles):
        raise ValueError(f"got {len(predictions)} predictions for {len(tiles)} tiles; give one per tile")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float)) or not 0 <= iou_threshold <= 1:
        raise ValueError(f"tile_predictions_nms_threshold: {iou_threshold!r} is out of range; allowed: float in [0, 1]")
    if not predictions:
        return {"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    boxes = torch.cat([map_to_image(p["boxes"], tile) for p, tile in zip(predictions, tiles)])
    scores = torch.cat([p["scores"] for p in predictions])
    labels = torch.cat([p["labels"] for p in predictions])
    keep = batched_nms(boxes.float(), scores.float(), labels, float(iou_threshold))  # sorted by score
    if max_detections is not None:
        keep = keep[:max_detections]
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


def predict_tiled(model: Callable, image: torch.Tensor, settings: Mapping) -> dict[str, torch.Tensor]:
    """Detect on the full image and on each tile in one batch, and merge (SPEC section 7).

    Args:
        model: a detector in eval mode taking a list of ``[3, H, W]`` tensors.
        image: one ``[3, H, W]`` image.
        settings: ``tile_grid_size``, ``tile_overlap_ratio``, ``tile_predictions_nms_threshold``
            and ``box_detections_per_image`` (training parameters or inference settings).

    Returns:
        The merged detections in image pixels, as :func:`merge_predictions`.
    """
    height, width = image.shape[-2:]
    tiles = [None, *tile_boxes(width, height, settings["tile_grid_size"], settings["tile_overlap_ratio"])]
    outputs = model([crop_image(image, tile) for tile in tiles])
    return merge_predictions(outputs, tiles, settings["tile_predictions_nms_threshold"],
                             max_detections=settings["box_detections_per_image"])
