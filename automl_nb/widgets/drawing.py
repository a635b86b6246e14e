"""Draw labels and predictions on images with PIL: boxes, polygons, class names, scores.

Boxes and polygons come in Azure's normalised shape (``{"box": {"topX", ...}, "label",
"score", "polygon"}``, or an :class:`~automl_nb.data.records.ObjectLabel`), so predictions
and ground truth are drawn by the same code. Small images are enlarged first by a whole
factor (:func:`enlarge`, :func:`fit`), so a 64 px training image stays sharp and readable.
"""

from __future__ import annotations

import io
from typing import Any, Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont

from automl_nb.metrics.classification import MULTILABEL_THRESHOLD

# matplotlib's tab10, as RGB: one colour per class, in the order of the class list.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
TRUTH_COLOUR = (255, 255, 255)
MIN_SIDE = 224


def colour_of(label: str, labels: Sequence[str]) -> tuple[int, int, int]:
    """The colour of a class: its position in ``labels`` (a stable hash when not listed)."""
    index = list(labels).index(label) if label in labels else sum(map(ord, label))
    return PALETTE[index % len(PALETTE)]


def enlarge(image: Image.Image, min_side: int = MIN_SIDE) -> Image.Image:
    """``image`` scaled up (by a whole factor, pixels kept sharp) until its short side is >= ``min_side``."""
    factor = max(1, -(-min_side // max(1, min(image.size))))
    if factor == 1:
        return image.convert("RGB")
    return image.convert("RGB").resize((image.width * factor, image.height * factor), Image.NEAREST)


def display_size(width: int, height: int, longest: int, max_zoom: int) -> tuple[int, int]:
    """The size to show a ``width`` x ``height`` image at: its longer side at most ``longest``.

    A small image is enlarged by a whole factor of at most ``max_zoom`` (its pixels stay square
    and sharp); a large one is shrunk to fit.

    Example:
        >>> display_size(64, 48, 256, 3), display_size(1024, 512, 256, 3)
        ((192, 144), (256, 128))
    """
    side = max(width, height)
    if side <= longest:
        zoom = max(1, min(max_zoom, longest // side))
        return width * zoom, height * zoom
    return max(1, round(width * longest / side)), max(1, round(height * longest / side))


def fit(image: Image.Image, longest: int, max_zoom: int) -> Image.Image:
    """``image`` in RGB at :func:`display_size`: enlarged by repeating pixels, or shrunk smoothly."""
    size = display_size(image.width, image.height, longest, max_zoom)
    image = image.convert("RGB")
    if size == image.size:
        return image
    return image.resize(size, Image.NEAREST if size[0] > image.width else Image.LANCZOS)


def font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def object_entry(item: Any) -> tuple[str, tuple[float, float, float, float], float | None, list | None]:
    """``(label, (x1, y1, x2, y2), score or None, polygon rings or None)`` of a box, normalised."""
    if hasattr(item, "top_x"):  # an ObjectLabel
        return (item.label, (item.top_x, item.top_y, item.bottom_x, item.bottom_y), None,
                [list(ring) for ring in item.polygon] if item.polygon else None)
    box = item["box"] if "box" in item else item
    return (item["label"], (float(box["topX"]), float(box["topY"]), float(box["bottomX"]), float(box["bottomY"])),
            item.get("score"), item.get("polygon"))


def draw_objects(image: Image.Image, objects: Iterable[Any], labels: Sequence[str], *, truth: bool = False,
                 fill_polygons: bool = True, text: bool = True,
                 colours: Sequence[tuple[int, int, int]] | None = None) -> Image.Image:
    """Draw boxes (and polygons) on a copy of ``image``.

    Args:
        image: the (already enlarged) image.
        objects: Azure box entries or ObjectLabels, coordinates normalised to [0, 1].
        labels: the class list, for colours.
        truth: ground truth: dashed white boxes, labels without scores.
        fill_polygons: fill polygons with a translucent colour.
        text: write each box's class (and score); off, colours alone tell the classes (thumbnails).
        colours: one RGB colour per object, instead of the class colours (or white for ``truth``),
            e.g. to tell true from false positives.

    Returns:
        A new RGB image.
    """
    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    width, height = base.size
    text_font = font(max(10, min(width, height) // 22))
    for n, item in enumerate(objects):
        label, (x1, y1, x2, y2), score, polygon = object_entry(item)
        colour = colours[n] if colours is not None else TRUTH_COLOUR if truth else colour_of(label, labels)
        box = (x1 * width, y1 * height, x2 * width, y2 * height)
        for ring in polygon or []:
            points = [(ring[k] * width, ring[k + 1] * height) for k in range(0, len(ring) - 1, 2)]
            if len(points) >= 3:
                draw.polygon(points, fill=colour + (70,) if fill_polygons else None, outline=colour + (255,))
        if truth:
            _dashed_rectangle(draw, box, colour + (255,), width=2)
        else:
            draw.rectangle(box, outline=colour + (255,), width=2)
        if text:
            words = label if score is None else f"{label} {score:.2f}"
            _label(draw, (box[0], box[1] if truth else max(0, box[1] - 1)), words, colour, text_font, below=truth)
    return Image.alpha_composite(base, overlay).convert("RGB")


def _label(draw: ImageDraw.ImageDraw, at: tuple[float, float], text: str, colour, text_font, below: bool) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=text_font)
    w, h = right - left + 4, bottom - top + 4
    x, y = at[0], at[1] if below else at[1] - h
    y = max(0, y)
    draw.rectangle((x, y, x + w, y + h), fill=colour + (200,))
    dark = sum(colour) > 500
    draw.text((x + 2 - left, y + 2 - top), text, fill=(0, 0, 0, 255) if dark else (255, 255, 255, 255), font=text_font)


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box, colour, width: int = 2, dash: int = 6) -> None:
    x1, y1, x2, y2 = box
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = max(abs(bx - ax), abs(by - ay))
        steps = max(1, int(length // dash))
        for k in range(0, steps, 2):
            s, e = k / steps, min(1.0, (k + 1) / steps)
            draw.line((ax + (bx - ax) * s, ay + (by - ay) * s, ax + (bx - ax) * e, ay + (by - ay) * e),
                      fill=colour, width=width)


def caption(image: Image.Image, lines: Sequence[str], colours: Sequence[tuple] | None = None) -> Image.Image:
    """``image`` with lines of text in a white band below it."""
    text_font = font(max(11, image.width // 20))
    line_height = sum(text_font.getbbox("Ag")[1::2]) + 4
    out = Image.new("RGB", (image.width, image.height + line_height * len(lines) + 4), "white")
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    for k, line in enumerate(lines):
        colour = colours[k] if colours else (0, 0, 0)
        draw.text((3, image.height + 2 + k * line_height), line, fill=colour, font=text_font)
    return out


def draw_classification(image: Image.Image, prediction: dict, truth: Sequence[str] | str | None = None,
                        top_k: int = 3, multilabel: bool = False) -> Image.Image:
    """The image with its top classes and probabilities below it (true labels marked)."""
    pairs = sorted(zip(prediction["labels"], prediction["probs"]), key=lambda pair: -pair[1])[:top_k]
    truth_set = {truth} if isinstance(truth, str) else set(truth or ())
    lines, colours = [], []
    for label, prob in pairs:
        chosen = prob >= MULTILABEL_THRESHOLD if multilabel else (label, prob) == pairs[0]
        mark = " ✓" if truth_set and label in truth_set else ""
        lines.append(f"{'>' if chosen else ' '} {label} {prob:.2f}{mark}")
        colours.append((0, 110, 0) if (truth_set and label in truth_set) else (0, 0, 0))
    if truth_set:
        lines.append("true: " + ", ".join(sorted(truth_set)))
        colours.append((90, 90, 90))
    return caption(enlarge(image), lines, colours)


def grid(images: Sequence[Image.Image], columns: int = 4, pad: int = 6) -> Image.Image:
    """Images side by side in rows of ``columns`` (cells as large as the largest image)."""
    if not images:
        raise ValueError("grid: no images")
    columns = max(1, min(columns, len(images)))
    cell_w = max(image.width for image in images)
    cell_h = max(image.height for image in images)
    rows = -(-len(images) // columns)
    out = Image.new("RGB", (columns * cell_w + (columns - 1) * pad, rows * cell_h + (rows - 1) * pad), "white")
    for k, image in enumerate(images):
        out.paste(image, ((k % columns) * (cell_w + pad), (k // columns) * (cell_h + pad)))
    return out


def png_bytes(image: Image.Image) -> bytes:
    """The image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
