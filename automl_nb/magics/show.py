"""``%automl show``: a model's predictions drawn on the images, as one PNG."""

from __future__ import annotations

from typing import Sequence

from automl_nb.widgets.drawing import caption, draw_classification, draw_objects, enlarge, grid, png_bytes


def draw_predictions(images: Sequence, predictions: Sequence[dict], predictor) -> tuple[bytes, list[str]]:
    """Draw each prediction on its image: top classes below a classified image, boxes (and
    polygons) on a detected one.

    Args:
        images: what was predicted on (paths, URLs, PIL images or bytes).
        predictions: the Azure-shaped predictions, one per image.
        predictor: the :class:`~automl_nb.infer.Predictor` that made them (task, labels).

    Returns:
        ``(png, lines)``: one PNG with every image, and a line of text per image.
    """
    from automl_nb.spec import MULTILABEL, is_classification

    drawn, lines = [], []
    for index, (image, prediction) in enumerate(zip(images, predictions)):
        picture, name = _open(image, index)
        if is_classification(predictor.task):
            drawn.append(caption(draw_classification(picture, prediction, multilabel=predictor.task == MULTILABEL),
                                 [name]))
            pairs = sorted(zip(prediction["labels"], prediction["probs"]), key=lambda pair: -pair[1])
            lines.append(f"{name}: " + ", ".join(f"{label} {prob:.2f}" for label, prob in pairs[:3]))
        else:
            boxes = prediction["boxes"]
            drawn.append(caption(draw_objects(enlarge(picture), boxes, predictor.labels), [name]))
            found = ", ".join(f"{box['label']} {box['score']:.2f}" for box in boxes[:6])
            lines.append(f"{name}: {len(boxes)} object(s)" + (f": {found}" if found else ""))
    return png_bytes(grid(drawn)), lines


def _open(image, index: int):
    """``(PIL image, short name)`` of a path or URL, a PIL image, or encoded bytes."""
    import io
    import os
    from pathlib import PurePosixPath

    from PIL import Image

    from automl_nb.data.images import open_image

    if isinstance(image, (str, os.PathLike)):
        return open_image(image), PurePosixPath(str(image)).name
    if isinstance(image, Image.Image):
        return image.convert("RGB"), f"image {index}"
    return Image.open(io.BytesIO(bytes(image))).convert("RGB"), f"image {index}"
