"""Plain, frozen records for one labelled image and one labelled object.

Every reader (JSONL, MLTable, COCO, VOC, ImageFolder) produces :class:`ImageRecord` rows and
every consumer (splits, torch datasets, the Zarr cache, widgets) reads them; nothing else
crosses the data layer.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Union

from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME


# "scheme://..." marks a URL; one letter before ":" is a Windows drive, not a scheme.
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a URL with a scheme (``s3://``, ``memory://``, ``file://``...)."""
    return bool(_URL_RE.match(str(path)))


@dataclass(frozen=True)
class ObjectLabel:
    """One object in an image: a label and a box, normalised to [0, 1].

    Args:
        label: class name.
        top_x, top_y, bottom_x, bottom_y: box corners as fractions of the image width and
            height (``top_x < bottom_x``, ``top_y < bottom_y``).
        is_crowd: the object is a crowd (or VOC "difficult"); metrics ignore it.
        polygon: for instance segmentation, the outline as rings, each a flat
            ``(x1, y1, x2, y2, ...)`` tuple of normalised coordinates.
    """

    label: str
    top_x: float
    top_y: float
    bottom_x: float
    bottom_y: float
    is_crowd: bool = False
    polygon: tuple[tuple[float, ...], ...] | None = None

    def to_json(self) -> dict:
        """Return the Azure JSONL shape of this object (``topX``... ``isCrowd`` 0/1)."""
        row = {
            "label": self.label,
            "topX": self.top_x,
            "topY": self.top_y,
            "bottomX": self.bottom_x,
            "bottomY": self.bottom_y,
            "isCrowd": int(self.is_crowd),
        }
        if self.polygon is not None:
            row["polygon"] = [list(ring) for ring in self.polygon]
        return row


Label = Union[str, tuple[str, ...], tuple[ObjectLabel, ...]]


@dataclass(frozen=True)
class ImageRecord:
    """One labelled image.

    Args:
        image_url: absolute local path or a URL with a scheme (already resolved).
        label: a class name (multiclass), a tuple of class names (multilabel) or a tuple
            of :class:`ObjectLabel` (detection, instance segmentation).
        width, height: image size in pixels when known.
        image_format: e.g. ``"png"``, ``"jpeg"`` when known.
        source: where the record came from, ``"file:line"``, for error messages.
    """

    image_url: str
    label: Label
    width: int | None = None
    height: int | None = None
    image_format: str | None = None
    source: str = ""

    @property
    def objects(self) -> tuple[ObjectLabel, ...]:
        """The objects of a detection/segmentation record (empty for classification)."""
        if isinstance(self.label, tuple):
            return tuple(o for o in self.label if isinstance(o, ObjectLabel))
        return ()

    def label_names(self) -> tuple[str, ...]:
        """The class names in this record, in order, with repeats (one per object)."""
        if isinstance(self.label, str):
            return (self.label,)
        return tuple(o.label if isinstance(o, ObjectLabel) else o for o in self.label)

    def to_json_line(self, root: str | os.PathLike | None = None) -> dict:
        """Return this record in the Azure JSONL shape.

        Args:
            root: folder the JSONL will live in; a local ``image_url`` under it is written
                relative to it (with ``/`` separators). Otherwise the URL is kept as is.

        Returns:
            A dict with ``image_url``, ``image_details`` (``"NNNpx"`` strings; only the
            keys that are known) and ``label``.
        """
        row: dict = {"image_url": relative_url(self.image_url, root)}
        details = {}
        if self.image_format:
            details["format"] = self.image_format
        if self.width is not None:
            details["width"] = f"{int(self.width)}px"
        if self.height is not None:
            details["height"] = f"{int(self.height)}px"
        if details:
            row["image_details"] = details
        if isinstance(self.label, str):
            row[DEFAULT_TARGET_COLUMN_NAME] = self.label
        else:
            row[DEFAULT_TARGET_COLUMN_NAME] = [o.to_json() if isinstance(o, ObjectLabel) else o for o in self.label]
        return row


def relative_url(image_url: str, root: str | os.PathLike | None) -> str:
    """Return ``image_url`` relative to ``root`` when it is a local path under it, else as is."""
    if root is None or is_url(image_url) or is_url(root):
        return image_url
    root_abs = os.path.abspath(root)
    path_abs = os.path.abspath(image_url)
    try:
        common = os.path.commonpath([root_abs, path_abs])
    except ValueError:  # different drives on Windows
        return image_url
    if common != root_abs:
        return image_url
    return os.path.relpath(path_abs, root_abs).replace(os.sep, "/")


def class_names(records: Iterable[ImageRecord]) -> list[str]:
    """Return the sorted unique class names used by ``records`` (any task).

    Example:
        >>> class_names([ImageRecord("/a.png", "dog"), ImageRecord("/b.png", "cat")])
        ['cat', 'dog']
    """
    names = set()
    for record in records:
        names.update(record.label_names())
    return sorted(names)
