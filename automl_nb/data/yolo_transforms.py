"""yolov5's data augmentation and letterbox resize (SPEC section 8), on tensors with their boxes.

Training (:class:`YoloTrainDataset`), per image:

1. **Mosaic** (``advanced_settings.apply_mosaic_for_yolo``, default on): the image and three
   others drawn at random are resized so their long side is ``size`` and pasted into the four
   quadrants of a ``2 size`` canvas around a random centre; each image is cut only where it
   meets the canvas edge, so its boxes are translated and clipped to the canvas, nothing else.
   Without mosaic the image is letterboxed (below) to ``size``.
2. **Random affine** (``advanced_settings.apply_automl_train_augmentations``, default on):
   rotation, scale, shear and translation, drawn by :func:`draw_affine` with the strengths of
   :data:`AUGMENT`, as one 3x3 matrix from the canvas to the ``size x size`` output. The
   mosaic canvas is cut to ``size`` by this same warp (its centre goes to the output's
   centre). Boxes: the four corners are transformed and their enclosing box taken, then
   clipped to the output. With no rotation and no shear that is the exact image of the box;
   with them it is the smallest upright box holding the transformed box (it covers the object).
   A box left thinner than :data:`MIN_BOX_PIXELS`, more elongated than 20:1, or with less
   than :data:`MIN_VISIBLE_FRACTION` of it inside the image is dropped with its label.
   When the affine is off and mosaic on, the warp is the plain centre crop of the canvas.
3. **Horizontal flip** (with the affine switch), probability 0.5.

Validation and inference (:class:`YoloValidDataset`, :func:`letterbox`): the image is resized
so that it fits ``size x size`` with its aspect ratio kept, and centred on a grey canvas.
:class:`Letterbox` records the exact per-axis scale and the padding, so boxes map to the
canvas and back exactly (:meth:`Letterbox.to_image`).

Coordinates are continuous pixels: pixel ``i`` covers ``[i, i + 1)``. Resizing and warping
sample at pixel centres in that convention (``align_corners=False``), so a box transformed by
the same matrix as the pixels stays on them. Images are float ``[3, H, W]`` tensors in [0, 1];
the empty area is YOLOv5's grey (114 / 255). Randomness comes from torch's generator (the
global one, seeded by the trainer and per loader worker, or one passed in), as in
``torchvision.transforms.v2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as nnf
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

FILL = 114 / 255  # grey of the padding and of areas the warp brings in
# Augmentation strengths: fixed, not hyperparameters (the spec names the augmentations only).
# degrees: rotation in [-d, d]; translate: shift of the output centre in [-t, t] x size;
# scale: zoom in [1 - s, 1 + s]; shear: degrees in [-h, h] on each axis; flip: probability.
AUGMENT = MappingProxyType({"degrees": 5.0, "translate": 0.1, "scale": 0.5, "shear": 2.0, "flip": 0.5})
MIN_BOX_PIXELS = 2.0
MIN_VISIBLE_FRACTION = 0.1
MAX_ASPECT_RATIO = 20.0


# ----- letterbox ------------------------------------------------------------------------
@dataclass(frozen=True)
class Letterbox:
    """Where an image sits on its letterbox canvas.

    Args:
        scale_x, scale_y: resized width / original width, resized height / original height
            (equal up to the rounding of the resized size to whole pixels).
        pad_x, pad_y: left and top padding in pixels.
        width, height: the original image size.
    """

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    width: int
    height: int

    def to_canvas(self, boxes: torch.Tensor) -> torch.Tensor:
        """``[N, 4]`` XYXY boxes from original pixels to canvas pixels."""
        scale = boxes.new_tensor([self.scale_x, self.scale_y, self.scale_x, self.scale_y])
        return boxes * scale + boxes.new_tensor([self.pad_x, self.pad_y, self.pad_x, self.pad_y])

    def to_image(self, boxes: torch.Tensor, clip: bool = True) -> torch.Tensor:
        """``[N, 4]`` XYXY boxes from canvas pixels back to original pixels (clipped to the image)."""
        scale = boxes.new_tensor([self.scale_x, self.scale_y, self.scale_x, self.scale_y])
        boxes = (boxes - boxes.new_tensor([self.pad_x, self.pad_y, self.pad_x, self.pad_y])) / scale
        if clip:
            boxes = torch.stack([boxes[:, 0].clamp(0, self.width), boxes[:, 1].clamp(0, self.height),
                                 boxes[:, 2].clamp(0, self.width), boxes[:, 3].clamp(0, self.height)], dim=1)
        return boxes


def letterbox_geometry(width: int, height: int, size: int) -> Letterbox:
    """The letterbox of a ``width x height`` image on a ``size x size`` canvas (up- or downscaled).

    Example:
        >>> letterbox_geometry(200, 100, 64)
        Letterbox(scale_x=0.32, scale_y=0.32, pad_x=0, pad_y=16, width=200, height=100)
    """
    ratio = min(size / width, size / height)
    new_width, new_height = max(1, round(width * ratio)), max(1, round(height * ratio))
    return Letterbox(new_width / width, new_height / height, (size - new_width) // 2, (size - new_height) // 2,
                     width, height)


def letterbox(image: torch.Tensor, size: int) -> tuple[torch.Tensor, Letterbox]:
    """Resize ``image`` ``[3, H, W]`` (floats) to fit ``size x size``, aspect kept, centred on grey.

    Returns:
        ``(canvas [3, size, size], geometry)``; map boxes with ``geometry.to_canvas`` /
        ``geometry.to_image``.

    Example:
        >>> canvas, box = letterbox(torch.rand(3, 100, 200), 64)
        >>> canvas.shape, box.pad_y
        (torch.Size([3, 64, 64]), 16)
    """
    height, width = image.shape[-2:]
    geometry = letterbox_geometry(width, height, size)
    new_width, new_height = round(width * geometry.scale_x), round(height * geometry.scale_y)
    canvas = image.new_full((image.shape[0], size, size), FILL)
    canvas[:, geometry.pad_y:geometry.pad_y + new_height, geometry.pad_x:geometry.pad_x + new_width] = \
        _resize(image, new_width, new_height)
    return canvas, geometry


def _resize(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    if image.shape[-2:] == (height, width):
        return image
    return F.resize(image, [height, width], antialias=True).clamp(0, 1)


def resize_long_side(image: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize so the long side is ``size`` (aspect kept); boxes scaled by the exact per-axis ratios."""
    height, width = image.shape[-2:]
    ratio = size / max(width, height)
    new_width, new_height = max(1, round(width * ratio)), max(1, round(height * ratio))
    scale = boxes.new_tensor([new_width / width, new_height / height] * 2)
    return _resize(image, new_width, new_height), boxes * scale


# ----- mosaic ---------------------------------------------------------------------------
def mosaic(items: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], size: int,
           centre: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paste four images around ``centre`` of a ``2 size`` square canvas.

    Args:
        items: four ``(image [3, H, W], boxes [N, 4] XYXY pixels, labels [N])``, placed top-left,
            top-right, bottom-left, bottom-right; each is resized to long side ``size`` first.
        size: the output size; the canvas is ``2 size``.
        centre: ``(x, y)`` where the four images meet, in canvas pixels.

    Returns:
        ``(canvas [3, 2 size, 2 size], boxes, labels)``: boxes translated with their image and
        clipped to the canvas; boxes left less than :data:`MIN_VISIBLE_FRACTION` visible, or
        under :data:`MIN_BOX_PIXELS`, are dropped.
    """
    side = 2 * size
    xc, yc = centre
    canvas = items[0][0].new_full((items[0][0].shape[0], side, side), FILL)
    all_boxes, all_labels = [], []
    for quadrant, (image, boxes, labels) in enumerate(items):
        image, boxes = resize_long_side(image, boxes, size)
        height, width = image.shape[-2:]
        # Canvas rectangle of this quadrant; the image is cut only at the canvas edge.
        x1 = max(xc - width, 0) if quadrant in (0, 2) else xc
        x2 = xc if quadrant in (0, 2) else min(xc + width, side)
        y1 = max(yc - height, 0) if quadrant in (0, 1) else yc
        y2 = yc if quadrant in (0, 1) else min(yc + height, side)
        # Offset of the image's origin on the canvas: its right/bottom edge meets the centre
        # on the left/top quadrants, its left/top edge on the others.
        dx = xc - width if quadrant in (0, 2) else xc
        dy = yc - height if quadrant in (0, 1) else yc
        canvas[:, y1:y2, x1:x2] = image[:, y1 - dy:y2 - dy, x1 - dx:x2 - dx]
        all_boxes.append(boxes + boxes.new_tensor([dx, dy, dx, dy]))
        all_labels.append(labels)
    boxes, labels = torch.cat(all_boxes), torch.cat(all_labels)
    clipped = boxes.clamp(0, side)
    keep = _box_candidates(boxes, clipped)
    return canvas, clipped[keep], labels[keep]


# ----- random affine --------------------------------------------------------------------
@dataclass(frozen=True)
class AffineParams:
    """One draw of the random affine: rotation and shear in degrees, zoom, shift in output pixels."""

    degrees: float = 0.0
    scale: float = 1.0
    shear_x: float = 0.0
    shear_y: float = 0.0
    translate_x: float = 0.0
    translate_y: float = 0.0


IDENTITY = AffineParams()


def draw_affine(size: int, strengths: Mapping[str, float] = AUGMENT,
                generator: torch.Generator | None = None) -> AffineParams:
    """Draw affine parameters for a ``size`` output, uniformly within ``strengths`` (:data:`AUGMENT`)."""
    u = torch.rand(6, generator=generator, dtype=torch.float64).tolist()

    def spread(value: float, limit: float) -> float:  # uniform in [-limit, limit]
        return (2 * value - 1) * limit

    return AffineParams(
        degrees=spread(u[0], strengths["degrees"]), scale=1 + spread(u[1], strengths["scale"]),
        shear_x=spread(u[2], strengths["shear"]), shear_y=spread(u[3], strengths["shear"]),
        translate_x=spread(u[4], strengths["translate"]) * size,
        translate_y=spread(u[5], strengths["translate"]) * size)


def affine_matrix(params: AffineParams, canvas_size: tuple[int, int], size: int) -> torch.Tensor:
    """3x3 matrix (float64) from canvas pixels to output pixels.

    The canvas centre goes to the origin, is rotated and zoomed, sheared, then moved to the
    output centre plus the shift. With :data:`IDENTITY` it is a pure translation: a centre crop.
    """
    height, width = canvas_size
    to_origin = torch.tensor([[1, 0, -width / 2], [0, 1, -height / 2], [0, 0, 1]], dtype=torch.float64)
    angle = math.radians(params.degrees)
    cos, sin = math.cos(angle) * params.scale, math.sin(angle) * params.scale
    rotate = torch.tensor([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], dtype=torch.float64)
    shear = torch.tensor([[1, math.tan(math.radians(params.shear_x)), 0],
                          [math.tan(math.radians(params.shear_y)), 1, 0], [0, 0, 1]], dtype=torch.float64)
    to_output = torch.tensor([[1, 0, size / 2 + params.translate_x], [0, 1, size / 2 + params.translate_y],
                              [0, 0, 1]], dtype=torch.float64)
    return to_output @ shear @ rotate @ to_origin


def warp_image(image: torch.Tensor, matrix: torch.Tensor, size: int) -> torch.Tensor:
    """The ``[3, size, size]`` output of ``matrix`` applied to ``image`` (bilinear, grey outside)."""
    height, width = image.shape[-2:]
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    points = torch.stack([xs.flatten(), ys.flatten(), torch.ones(size * size, dtype=torch.float64)])
    source = torch.linalg.inv(matrix) @ points  # output pixel centres in canvas pixels
    grid = torch.stack([2 * source[0] / width - 1, 2 * source[1] / height - 1], dim=-1)
    grid = grid.view(1, size, size, 2).to(image.dtype)
    # Sampling (image - grey) with zero padding puts grey outside the canvas.
    warped = nnf.grid_sample((image - FILL)[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (warped[0] + FILL).clamp(0, 1)


def warp_boxes(boxes: torch.Tensor, labels: torch.Tensor, matrix: torch.Tensor,
               size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes through ``matrix``: the enclosing box of the four corners, clipped to the output.

    Returns:
        ``(boxes, labels)`` of the boxes kept (see the module docstring for which are dropped).
    """
    if not len(boxes):
        return boxes.reshape(0, 4), labels
    x1, y1, x2, y2 = boxes.double().unbind(1)
    corners = torch.stack([torch.stack([x1, y1]), torch.stack([x2, y1]), torch.stack([x2, y2]),
                           torch.stack([x1, y2])])  # [4, 2, N]
    ones = torch.ones_like(corners[:, :1])
    moved = torch.einsum("ij,kjn->kin", matrix, torch.cat([corners, ones], dim=1))[:, :2]  # [4, 2, N]
    warped = torch.stack([moved[:, 0].amin(0), moved[:, 1].amin(0), moved[:, 0].amax(0), moved[:, 1].amax(0)], 1)
    clipped = warped.clamp(0, size)
    keep = _box_candidates(warped, clipped)
    return clipped[keep].to(boxes.dtype), labels[keep]


def _box_candidates(boxes: torch.Tensor, clipped: torch.Tensor) -> torch.Tensor:
    """Which clipped boxes are worth training on: big enough, visible enough, not a sliver."""
    width, height = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    full_area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=1e-9)
    aspect = torch.maximum(width / height.clamp(min=1e-9), height / width.clamp(min=1e-9))
    return ((width > MIN_BOX_PIXELS) & (height > MIN_BOX_PIXELS)
            & (width * height / full_area > MIN_VISIBLE_FRACTION) & (aspect < MAX_ASPECT_RATIO))


def hflip(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror the image left-right; ``x -> width - x`` for the boxes (exact)."""
    width = image.shape[-1]
    flipped = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
    return image.flip(-1), flipped


# ----- datasets ---------------------------------------------------------------------------
def _base_item(dataset: Dataset, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    """``(image, boxes, 0-based labels, target)`` of a :class:`DetectionDataset` item (no transform)."""
    image, target = dataset[index]
    boxes = torch.as_tensor(target["boxes"]).as_subclass(torch.Tensor).float().reshape(-1, 4)
    return image, boxes, target["labels"] - 1, target


class YoloTrainDataset(Dataset):
    """Training samples for yolov5: mosaic, random affine and flip, all ``size x size``.

    Args:
        base: a :class:`~automl_nb.data.detection.DetectionDataset` without transform (items:
            float image in [0, 1], target with ``boxes`` in pixels and ``labels`` 1..C),
            possibly over tiles.
        size: output side in pixels (a multiple of 32 for the network).
        mosaic: build mosaics (``apply_mosaic_for_yolo``).
        augment: random affine and flip (``apply_automl_train_augmentations``).
        strengths: augmentation strengths (:data:`AUGMENT`).

    Items are ``(image [3, size, size], {"boxes": [N, 4] XYXY pixels, "labels": [N] 0-based})``.
    Crowd objects (``is_crowd``) are left out of training: one box around many objects would
    teach the objectness a wrong extent.
    """

    def __init__(self, base: Dataset, size: int, *, mosaic: bool = True, augment: bool = True,
                 strengths: Mapping[str, float] = AUGMENT) -> None:
        self.base, self.size, self.mosaic, self.augment = base, size, mosaic, augment
        self.strengths = strengths

    def __len__(self) -> int:
        return len(self.base)

    def _item(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, boxes, labels, target = _base_item(self.base, index)
        crowd = torch.as_tensor(target.get("is_crowd", torch.zeros(len(labels), dtype=torch.bool)))
        return image, boxes[~crowd], labels[~crowd]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        size = self.size
        if self.mosaic:
            others = torch.randint(len(self.base), (3,)).tolist()
            centre = torch.randint(size // 2, 3 * size // 2 + 1, (2,)).tolist()
            canvas, boxes, labels = mosaic([self._item(i) for i in [index, *others]], size, tuple(centre))
        else:
            image, boxes, labels = self._item(index)
            canvas, geometry = letterbox(image, size)
            boxes = geometry.to_canvas(boxes)
        if self.augment or self.mosaic:  # the mosaic canvas is cut to size by the warp
            params = draw_affine(size, self.strengths) if self.augment else IDENTITY
            matrix = affine_matrix(params, tuple(canvas.shape[-2:]), size)
            canvas = warp_image(canvas, matrix, size)
            boxes, labels = warp_boxes(boxes, labels, matrix, size)
        if self.augment and torch.rand(()) < self.strengths["flip"]:
            canvas, boxes = hflip(canvas, boxes)
        return canvas, {"boxes": boxes.float(), "labels": labels}


class YoloValidDataset(Dataset):
    """Validation samples for yolov5: letterboxed to ``size``, with what maps predictions back.

    Items are ``(image [3, size, size], target)`` where ``target`` has ``boxes`` (canvas pixels,
    for the validation loss), ``labels`` (0-based), ``is_crowd``, ``orig_boxes`` (original
    pixels, for the metrics), ``orig_size`` ``(H, W)`` and ``letterbox`` (:class:`Letterbox`).
    """

    def __init__(self, base: Dataset, size: int) -> None:
        self.base, self.size = base, size

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        image, boxes, labels, target = _base_item(self.base, index)
        canvas, geometry = letterbox(image, self.size)
        return canvas, {"boxes": geometry.to_canvas(boxes), "labels": labels,
                        "is_crowd": torch.as_tensor(target["is_crowd"]), "orig_boxes": boxes,
                        "orig_size": tuple(image.shape[-2:]), "letterbox": geometry}


def yolo_collate(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """Stack the (equal-size) images into ``[B, 3, S, S]``; targets stay a list of dicts."""
    return torch.stack([image for image, _ in batch]), [target for _, target in batch]


def targets_tensor(targets: Sequence[Mapping[str, torch.Tensor]], device: torch.device | None = None) -> torch.Tensor:
    """``[M, 6]`` rows ``(image index, class, centre x, centre y, width, height)`` in pixels.

    The layout :func:`automl_nb.models.yolo.loss.yolo_loss` takes.
    """
    rows = []
    for index, target in enumerate(targets):
        boxes = torch.as_tensor(target["boxes"]).float().reshape(-1, 4)
        centre, extent = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
        image = torch.full((len(boxes), 1), float(index))
        rows.append(torch.cat([image, target["labels"].float().view(-1, 1), centre, extent], dim=1))
    table = torch.cat(rows) if rows else torch.zeros((0, 6))
    return table.to(device) if device is not None else table
