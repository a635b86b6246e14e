"""Convert COCO, Pascal VOC and ImageFolder datasets to Azure image JSONL, exactly.

Exact means: image sizes come from the image files (the annotation's own size only when the
file is absent), boxes are never guessed to be normalised from their magnitude, each image
keeps its own ``image_details``, and image paths keep their folders so two ``1.jpg`` in
different folders stay two images. Paths are written relative to the output file's folder
when the images are under it, absolute otherwise.

Decisions where the formats are loose:

- COCO RLE segmentation (a dict, usually ``iscrowd: 1``) is rejected for instance
  segmentation with a DataError naming the annotation: a polygon traced from a mask would
  not be exact. Detection uses only ``bbox`` and accepts RLE annotations.
- COCO annotations with a zero-area box (after clipping to the image) or, for
  segmentation, no polygon ring of 3+ points are skipped with one warning. Boxes are
  clipped to the image; one warning counts those that ran more than 2% past it.
- VOC ``<bndbox>`` holds 1-based inclusive pixel indices, so ``xmin`` maps to
  ``(xmin - 1) / width`` and ``xmax`` to ``xmax / width`` (Azure's example script divides
  ``xmin`` as is, a one-pixel shift). VOC ``<difficult>1`` becomes ``isCrowd: 1`` as in
  that script: both mean "ignore in evaluation".
"""

from __future__ import annotations

import json
import os
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

from automl_nb.data.images import image_info
from automl_nb.data.jsonl import write_jsonl
from automl_nb.data.records import ImageRecord, ObjectLabel
from automl_nb.spec.tasks import DETECTION, SEGMENTATION
from automl_nb.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


# ---- COCO ----------------------------------------------------------------------------

def coco_to_jsonl(
    annotations: dict | str | os.PathLike,
    images_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    task: str = DETECTION,
) -> Path:
    """Convert a COCO annotations file to JSONL.

    Args:
        annotations: the COCO dict, or the path of its JSON file.
        images_dir: folder that each image's ``file_name`` (sub-folders kept) is relative to.
        out_path: JSONL file to write.
        task: ``image_object_detection`` (boxes) or ``image_instance_segmentation``
            (boxes and polygons).

    Returns:
        ``out_path`` as a Path.

    Raises:
        DataError: malformed COCO, an unknown category or image id, an image that is
            neither on disk nor sized in the COCO entry, RLE masks for segmentation.

    Example:
        >>> coco_to_jsonl("annotations/instances_train.json", "images", "data/train.jsonl")
    """
    if task not in (DETECTION, SEGMENTATION):
        raise DataError(f"COCO converts to {DETECTION} or {SEGMENTATION}, not {task!r}")
    coco, name = _load_coco(annotations)
    categories = {c["id"]: str(c["name"]) for c in coco.get("categories", [])}
    by_image: dict = {image["id"]: [] for image in coco["images"]}
    for annotation in coco.get("annotations", []):
        if annotation.get("image_id") not in by_image:
            raise DataError(
                f"{name}: annotation {annotation.get('id')}: unknown image_id {annotation.get('image_id')!r}"
            )
        by_image[annotation["image_id"]].append(annotation)

    sizes = _SizeNotes(name)
    skipped, outside = [], []
    records = []
    for image in coco["images"]:
        file_name = image.get("file_name")
        if not file_name:
            raise DataError(f"{name}: image {image.get('id')}: missing file_name")
        path = os.path.abspath(os.path.join(images_dir, file_name))
        where = f"{name}: image {image['id']}"
        width, height, image_format = sizes.read(path, image.get("width"), image.get("height"), where)
        objects = []
        for annotation in by_image[image["id"]]:
            where = f"{name}: annotation {annotation.get('id')} ({file_name})"
            obj = _coco_object(annotation, categories, width, height, task, where)
            if obj is None:
                skipped.append(where)
            else:
                objects.append(obj)
            if _far_outside(annotation.get("bbox"), width, height):
                outside.append(f"{where}: bbox {annotation['bbox']} in a {width}x{height} image")
        records.append(ImageRecord(path, tuple(objects), width, height, image_format, f"{name}: {file_name}"))
    sizes.warn()
    if outside:  # a little past the border is an annotation tool's habit; this much is a wrong size or unit
        warnings.warn(f"{name}: {len(outside)} box(es) reach more than {OUTSIDE_TOLERANCE:.0%} of the image past "
                      f"its border and were clipped to it (first: {outside[0]})", stacklevel=2)
    if skipped:
        warnings.warn(
            f"{name}: skipped {len(skipped)} annotation(s) with no usable box or polygon (first: {skipped[0]})",
            stacklevel=2,
        )
    return write_jsonl(records, out_path)


def _load_coco(annotations: dict | str | os.PathLike) -> tuple[dict, str]:
    if isinstance(annotations, dict):
        coco, name = annotations, "<COCO dict>"
    else:
        name = str(annotations)
        try:
            coco = json.loads(Path(name).read_text(encoding="utf-8-sig"))
        except FileNotFoundError as exc:
            raise DataError(f"COCO file not found: {name}") from exc
        except json.JSONDecodeError as exc:
            raise DataError(f"{name}:{exc.lineno}: malformed JSON: {exc.msg}") from exc
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise DataError(f"{name}: not a COCO annotations file (no 'images' list)")
    return coco, name


def _coco_object(
    annotation: dict, categories: dict, width: int, height: int, task: str, where: str
) -> ObjectLabel | None:
    """One COCO annotation as an ObjectLabel normalised by the image size; None to skip it."""
    category = annotation.get("category_id")
    if category not in categories:
        raise DataError(f"{where}: unknown category_id {category!r}")
    polygon = None
    if task == SEGMENTATION:
        segmentation = annotation.get("segmentation")
        if isinstance(segmentation, dict):
            raise DataError(
                f"{where}: RLE segmentation is not supported for {SEGMENTATION} "
                f"(only polygons convert exactly); convert it to polygons or drop the annotation"
            )
        rings = [r for r in segmentation or [] if isinstance(r, list) and len(r) >= 6 and len(r) % 2 == 0]
        if not rings:
            return None
        polygon = tuple(
            tuple(_unit(v / (width if i % 2 == 0 else height)) for i, v in enumerate(map(float, ring)))
            for ring in rings
        )
    bbox = annotation.get("bbox")
    if bbox is not None:
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DataError(f"{where}: bbox must be [x, y, width, height], got {bbox!r}")
        x, y, w, h = map(float, bbox)
        box = (_unit(x / width), _unit(y / height), _unit((x + w) / width), _unit((y + h) / height))
    elif polygon is not None:
        xs = [v for ring in polygon for v in ring[0::2]]
        ys = [v for ring in polygon for v in ring[1::2]]
        box = (min(xs), min(ys), max(xs), max(ys))
    else:
        return None
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    is_crowd = bool(annotation.get("iscrowd", 0))
    return ObjectLabel(categories[category], *box, is_crowd=is_crowd, polygon=polygon)


# ---- Pascal VOC ----------------------------------------------------------------------

def voc_to_jsonl(
    annotations_dir: str | os.PathLike,
    images_dir: str | os.PathLike,
    out_path: str | os.PathLike,
) -> Path:
    """Convert Pascal VOC XML annotations to object-detection JSONL.

    Each XML's image is ``images_dir/<sub-folder of the XML>/<filename>`` (falling back to
    ``images_dir/<filename>``, then to the XML's stem with a common image extension).

    Args:
        annotations_dir: folder searched recursively for ``*.xml``.
        images_dir: folder holding the images.
        out_path: JSONL file to write.

    Returns:
        ``out_path`` as a Path.

    Raises:
        DataError: no XML files, malformed XML (names the file), missing name or
            bndbox, xmax < xmin, an image neither on disk nor sized in ``<size>``.
    """
    annotations_dir = Path(annotations_dir)
    xml_files = sorted(annotations_dir.rglob("*.xml"))
    if not xml_files:
        raise DataError(f"no .xml annotation files under {annotations_dir}")
    sizes = _SizeNotes(str(annotations_dir))
    records = []
    for xml_file in xml_files:
        try:
            root = ET.parse(xml_file).getroot()
        except ET.ParseError as exc:
            raise DataError(f"{xml_file}:{exc.position[0]}: malformed XML: {exc}") from exc
        sub_folder = xml_file.parent.relative_to(annotations_dir)
        path = _voc_image_path(Path(images_dir), sub_folder, root.findtext("filename"), xml_file.stem)
        size = (_int_text(root, "size/width", xml_file), _int_text(root, "size/height", xml_file))
        width, height, image_format = sizes.read(path, *size, str(xml_file))
        objects = [
            _voc_object(element, width, height, f"{xml_file}: object {k}")
            for k, element in enumerate(root.findall("object"), start=1)
        ]
        records.append(ImageRecord(path, tuple(objects), width, height, image_format, str(xml_file)))
    sizes.warn()
    return write_jsonl(records, out_path)


def _voc_image_path(images_dir: Path, sub_folder: Path, filename: str | None, stem: str) -> str:
    if filename and filename.strip():
        candidates = [images_dir / sub_folder / filename.strip(), images_dir / filename.strip()]
    else:
        candidates = [images_dir / sub_folder / (stem + ext) for ext in IMAGE_EXTENSIONS]
    for candidate in candidates:
        if candidate.is_file():
            return os.path.abspath(candidate)
    return os.path.abspath(candidates[0])


def _int_text(root: ET.Element, tag: str, xml_file: Path) -> int | None:
    text = root.findtext(tag)
    if text is None or not text.strip():
        return None
    try:
        return int(float(text))
    except ValueError:
        raise DataError(f"{xml_file}: <{tag}> must be a number, got {text!r}") from None


def _voc_object(element: ET.Element, width: int, height: int, where: str) -> ObjectLabel:
    name = (element.findtext("name") or "").strip()
    if not name:
        raise DataError(f"{where}: missing <name>")
    if element.find("bndbox") is None:
        raise DataError(f"{where}: missing <bndbox>")
    corners = []
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        text = element.findtext(f"bndbox/{tag}")
        try:
            corners.append(float(text))
        except (TypeError, ValueError):
            raise DataError(f"{where}: <bndbox><{tag}> must be a number, got {text!r}") from None
    xmin, ymin, xmax, ymax = corners
    if xmax < xmin or ymax < ymin:
        raise DataError(
            f"{where}: box corners swapped: xmin={xmin:g} xmax={xmax:g} ymin={ymin:g} ymax={ymax:g}"
        )
    # 1-based inclusive pixel indices: pixel i covers [i - 1, i) in continuous coordinates.
    box = (_unit((xmin - 1) / width), _unit((ymin - 1) / height), _unit(xmax / width), _unit(ymax / height))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise DataError(f"{where}: box lies outside the {width}x{height} image: {corners}")
    difficult = (element.findtext("difficult") or "0").strip() in ("1", "true")
    return ObjectLabel(name, *box, is_crowd=difficult)


# ---- ImageFolder ---------------------------------------------------------------------

def folder_to_jsonl(root: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Convert an ImageFolder tree ``root/<class>/<any sub-folders>/<image>`` to multiclass JSONL.

    The class is the first folder under ``root``; deeper folders stay in the image path.
    Hidden files and folders (starting with ".") and files directly under ``root`` are
    ignored.

    Args:
        root: the tree's root folder.
        out_path: JSONL file to write.

    Returns:
        ``out_path`` as a Path.

    Raises:
        DataError: ``root`` is not a folder, holds no images, or an image is unreadable.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    records = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(class_dir.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(class_dir).parts)
            if hidden or not path.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            width, height, image_format = image_info(path)
            record = ImageRecord(os.path.abspath(path), class_dir.name, width, height, image_format, str(path))
            records.append(record)
    if not records:
        raise DataError(f"{root}: no images found in class folders (expected {root}/<class>/<image>)")
    return write_jsonl(records, out_path)


# ---- shared helpers ------------------------------------------------------------------

OUTSIDE_TOLERANCE = 0.02  # of the image's width or height


def _far_outside(bbox: object, width: int, height: int) -> bool:
    """Whether a COCO ``[x, y, w, h]`` box runs more than ``OUTSIDE_TOLERANCE`` past the image."""
    try:
        x, y, w, h = map(float, bbox)
    except (TypeError, ValueError):
        return False
    low, high = -OUTSIDE_TOLERANCE, 1 + OUTSIDE_TOLERANCE
    return min(x / width, y / height) < low or (x + w) / width > high or (y + h) / height > high

def _unit(value: float) -> float:
    """Clip to [0, 1]: annotation tools often let boxes run a fraction past the border."""
    return min(max(value, 0.0), 1.0)


def _format_from_extension(path: str) -> str | None:
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    return {"jpg": "jpeg", "tif": "tiff"}.get(extension, extension) or None


class _SizeNotes:
    """Reads each image's size (the file wins over the annotation) and collects notes to warn once."""

    def __init__(self, name: str):
        self.name = name
        self.disagree: list[str] = []
        self.missing: list[str] = []

    def read(self, path: str, width: object, height: object, where: str) -> tuple[int, int, str | None]:
        """Return (width, height, format) of the image at ``path``."""
        if os.path.isfile(path):
            real_width, real_height, image_format = image_info(path)
            said = (width, height)
            if None not in said and (int(width), int(height)) != (real_width, real_height):
                self.disagree.append(
                    f"{where}: annotation says {width}x{height}, {path} is {real_width}x{real_height}"
                )
            return real_width, real_height, image_format or _format_from_extension(path)
        if not width or not height or int(width) <= 0 or int(height) <= 0:
            raise DataError(f"{where}: image not found at {path} and the annotation gives no width/height")
        self.missing.append(path)
        return int(width), int(height), _format_from_extension(path)

    def warn(self) -> None:
        """Emit one warning per kind of note collected."""
        if self.disagree:
            warnings.warn(
                f"{self.name}: {len(self.disagree)} image size(s) in the annotations disagree with the "
                f"image files; using the real sizes (first: {self.disagree[0]})",
                stacklevel=3,
            )
        if self.missing:
            warnings.warn(
                f"{self.name}: {len(self.missing)} image(s) not found, sizes taken from the annotations "
                f"(first: {self.missing[0]})",
                stacklevel=3,
            )
