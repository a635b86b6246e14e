"""Torch dataset for object detection and instance segmentation over image records.

Targets are what torchvision's detectors take in training (and their metrics read):

- ``boxes``: ``tv_tensors.BoundingBoxes`` ``[N, 4]`` float32, XYXY in pixels of the image
  as stored (normalised JSONL boxes times its width and height);
- ``labels``: int64 ``[N]``, class ``classes[k]`` is ``k + 1``: **0 is the background**, as
  torchvision's detectors count it, so build them with ``num_classes=len(classes) + 1``;
- ``is_crowd``: bool ``[N]`` (crowd or VOC "difficult" objects; metrics ignore them);
- ``masks`` (``with_masks`` only): ``tv_tensors.Mask`` uint8 ``[N, H, W]``, 1 inside the
  object, rasterised from its polygon by :func:`polygon_to_mask`;
- ``image_id``: the sample's index in the dataset; ``orig_size``: ``(H, W)`` of the image (or
  tile) before the transform.

Images with no objects are valid: their boxes are ``[0, 4]`` (and masks ``[0, H, W]``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from automl_nb.data.images import ImageReader, open_image, read_or_substitute
from automl_nb.data.records import ImageRecord
from automl_nb.data.tiling import ImageTile, boxes_in_tile
from automl_nb.errors import DataError

BACKGROUND_LABEL = 0


def polygon_to_mask(rings: Sequence[Sequence[float]], width: int, height: int) -> torch.Tensor:
    """Rasterise a polygon given as rings of normalised coordinates into a binary mask.

    Coordinates are continuous: ``x * width`` is a position in pixels where pixel ``i`` covers
    ``[i, i + 1)``; a pixel is inside when its centre is. scikit-image tests integer positions,
    so the half-pixel shift puts them at the centres (PIL's polygon fill rounds the corners
    down instead, which adds a row and a column on the top and left of every mask).
    Rings are separate parts of the object (as in COCO), so their union is filled.

    Args:
        rings: flat ``(x1, y1, x2, y2, ...)`` rings, normalised to [0, 1].
        width, height: mask size in pixels.

    Returns:
        uint8 tensor ``[height, width]``, 1 inside the polygon, 0 outside.

    Example:
        >>> polygon_to_mask([(0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0)], 4, 3).sum()
        tensor(12)
    """
    from skimage.draw import polygon

    mask = np.zeros((height, width), dtype=np.uint8)
    for ring in rings:
        rows, columns = polygon(np.asarray(ring[1::2]) * height - 0.5, np.asarray(ring[0::2]) * width - 0.5,
                                shape=(height, width))
        mask[rows, columns] = 1
    return torch.from_numpy(mask)


class DetectionDataset(Dataset):
    """Images with their boxes, labels and, for instance segmentation, masks.

    Each item is ``(image, target)``: the image after ``transform`` (without one, a float
    ``[3, H, W]`` tensor in [0, 1]) and the target described in this module's docstring.

    Args:
        records: the images and their objects; :class:`~automl_nb.data.tiling.ImageTile`
            samples (from :func:`~automl_nb.data.tiling.tile_records`) crop an image and its
            boxes to a tile.
        classes: class names; ``classes[k]`` gets label ``k + 1`` (0 is the background).
        transform: called as ``transform(image, target)`` with a uint8
            ``tv_tensors.Image`` and the target; returns both (see
            :mod:`automl_nb.data.detection_transforms`). None converts to float in [0, 1].
        with_masks: add ``masks`` rasterised from each object's polygon.
        reader: how an image URL becomes an RGB PIL image of its original size:
            :func:`~automl_nb.data.images.open_image`, or a reader that streams through the
            image cache (:mod:`automl_nb.data.cache`). An image the reader skips is replaced
            by the next readable sample (target and all).

    Raises:
        DataError: an object's class is not in ``classes``, or ``with_masks`` and an object
            has no polygon (names the record's source).
        ValueError: tiles with ``with_masks`` (tiling is not supported for instance
            segmentation).

    Example:
        >>> dataset = DetectionDataset(records, ["cat", "dog"], detection_train_transform(params))
        >>> loader = DataLoader(dataset, batch_size=2, collate_fn=detection_collate)
    """

    def __init__(
        self,
        records: Sequence[ImageRecord | ImageTile],
        classes: Sequence[str],
        transform: Callable | None = None,
        with_masks: bool = False,
        reader: ImageReader = open_image,
    ) -> None:
        self.samples = [r if isinstance(r, ImageTile) else ImageTile(r) for r in records]
        self.reader = reader
        self.classes = list(classes)
        self.transform = transform
        self.with_masks = with_masks
        self._label_of = {name: k + 1 for k, name in enumerate(self.classes)}
        if with_masks and any(s.tile is not None for s in self.samples):
            raise ValueError("tiling is not supported for instance segmentation (masks); use whole images")
        for record in {s.record.image_url: s.record for s in self.samples}.values():
            self._check(record)

    def _check(self, record: ImageRecord) -> None:
        where = record.source or record.image_url
        for number, obj in enumerate(record.objects, start=1):
            if obj.label not in self._label_of:
                raise DataError(f"{where}: object {number} has class {obj.label!r}, not one of {self.classes}")
            if self.with_masks and not obj.polygon:
                raise DataError(f"{where}: object {number} has no polygon; instance segmentation needs one")

    def __len__(self) -> int:
        return len(self.samples)

    def image_url(self, i: int) -> str:
        """The image URL of sample ``i``."""
        return self.samples[i].record.image_url

    def __getitem__(self, i: int) -> tuple[Any, dict[str, Any]]:
        i, image = read_or_substitute(self.reader, self.image_url, i, len(self.samples))
        sample = self.samples[i]
        objects = sample.record.objects
        width, height = image.size
        boxes = torch.tensor(
            [[o.top_x * width, o.top_y * height, o.bottom_x * width, o.bottom_y * height] for o in objects],
            dtype=torch.float32,
        ).reshape(-1, 4)
        labels = torch.tensor([self._label_of[o.label] for o in objects], dtype=torch.int64)
        is_crowd = torch.tensor([o.is_crowd for o in objects], dtype=torch.bool)
        if sample.tile is not None:
            boxes, keep = boxes_in_tile(boxes, sample.tile)
            labels, is_crowd = labels[keep], is_crowd[keep]
            image = image.crop(sample.tile)
            width, height = image.size
        target: dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": labels,
            "is_crowd": is_crowd,
        }
        if self.with_masks:
            masks = [polygon_to_mask(o.polygon, width, height) for o in objects]
            target["masks"] = tv_tensors.Mask(
                torch.stack(masks) if masks else torch.zeros((0, height, width), dtype=torch.uint8)
            )
        target["image_id"] = i
        target["orig_size"] = (height, width)
        image = F.to_image(image)
        if self.transform is None:
            return F.to_dtype(image, torch.float32, scale=True), target
        return self.transform(image, target)


def detection_collate(batch: Sequence[tuple[Any, dict]]) -> tuple[list, list[dict]]:
    """Collate ``(image, target)`` items into ``(images, targets)`` lists (images differ in size).

    Torchvision's detectors take exactly these two lists.
    """
    images = [image for image, _ in batch]
    targets = [target for _, target in batch]
    return images, targets
