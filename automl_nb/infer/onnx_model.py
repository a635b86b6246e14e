"""An exported model under ONNX Runtime, with its preprocessing: numpy and pillow only, no torch.

:mod:`automl_nb.export` writes the files; this module reads them, so a deployment needs
onnxruntime, numpy and pillow. onnx and onnxruntime are optional (the ``export`` extra) and
imported at use: ``import automl_nb`` never needs them.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from automl_nb.errors import AutoMLError
from automl_nb.spec.tasks import SEGMENTATION
from automl_nb.train.folder import EXPORT_FOLDER, PARITY_FILE  # noqa: F401 (an export's place in a trial folder)

# The files of an export, beside each other (docs/export.md), by default in <trial folder>/onnx/.
MODEL_FILE = "model.onnx"
SETTINGS_FILE = "settings.json"
LABELS_FILE = "labels.json"
PREPROCESSING_FILE = "preprocessing.json"
EXTRA = "export"


def detection_keys(task: str, model_name: str | None = None) -> tuple[str, ...]:
    """A detector's outputs per image, in Azure's order: boxes, labels, scores (RetinaNet: boxes, scores,
    labels), then masks for instance segmentation."""
    retinanet = (model_name or "").startswith("retinanet")
    keys = ("boxes", "scores", "labels") if retinanet else ("boxes", "labels", "scores")
    return keys + (("masks",) if task == SEGMENTATION else ())


def per_image_outputs(names: Sequence[str], outputs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """A detector graph's outputs, ``boxes_0, labels_0, ..., boxes_1...``, as one dict per image.

    Names without an image suffix (``boxes``: files exported before outputs were per image) are image 0.
    """
    images: dict[int, dict[str, np.ndarray]] = {}
    for name, value in zip(names, outputs):
        key, _, image = name.rpartition("_")
        key, image = (key, int(image)) if image.isdigit() else (name, 0)
        images.setdefault(image, {})[key] = value
    return [images[image] for image in sorted(images)]


def require(module: str):
    """Import ``module`` (``onnx``, ``onnxruntime``, ``onnxscript``), or fail naming the extra.

    Raises:
        AutoMLError: the package is not installed.

    Example:
        >>> ort = require("onnxruntime")
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise AutoMLError(f"{module} is not installed ({error}); ONNX export and ONNX inference need it: "
                          f"pip install 'automl_nb[{EXTRA}]'") from None


class OnnxModel:
    """An ONNX file of ours (see docs/export.md) and the ``preprocessing.json`` beside it.

    Args:
        path: the ``.onnx`` file.
        threads: ONNX Runtime's intra-op threads (None: its default, all cores).

    Raises:
        AutoMLError: no such file, no preprocessing.json beside it, or onnxruntime is missing.

    Example:
        >>> model = OnnxModel("runs/shapes/trials/0/onnx/model.onnx")
        >>> model.classify([Image.open("cat.png")]).shape
        (1, 3)
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AutoMLError(f"{self.path}: no such ONNX file; give the .onnx file that `automl-nb export` wrote")
        beside = self.path.with_name(PREPROCESSING_FILE)
        if not beside.is_file():
            raise AutoMLError(f"{self.path}: no {PREPROCESSING_FILE} beside it; export the model with "
                              "`automl-nb export`, which writes it")
        self.preprocessing = json.loads(beside.read_text(encoding="utf-8"))
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for one input array (``float32``, NCHW)."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})

    @property
    def batch_size(self) -> int:
        """A detector's images per run, fixed at export (1 for files that do not say)."""
        return int(self.preprocessing.get("batch_size", 1))

    # -- classification --------------------------------------------------------------------
    def classification_input(self, image: Image.Image) -> np.ndarray:
        """``[3, crop, crop]`` float32: short side resized, centre crop, scaled (and normalised
        unless the graph does it), as the validation transform of training does."""
        steps = self.preprocessing
        image = _resize_short_side(image, steps["resize_short_side"])
        pixels = np.asarray(_center_crop(image, steps["center_crop"]), dtype=np.float32) * np.float32(steps["scale"])
        if steps["normalise"]:
            pixels = (pixels - np.asarray(steps["mean"], np.float32)) / np.asarray(steps["std"], np.float32)
        return pixels.transpose(2, 0, 1)

    def classify(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``[N, C]`` probabilities of RGB images (softmax, or sigmoid for multilabel)."""
        return self.run(np.stack([self.classification_input(image) for image in images]))[0]

    # -- detection -------------------------------------------------------------------------
    def detect(self, pixels: np.ndarray, image_size: int | None = None) -> dict[str, np.ndarray]:
        """The detections of one ``[3, H, W]`` image in [0, 1], in its pixels: boxes, labels, scores (masks).

        A YOLOv5 graph takes a letterboxed square (``preprocessing["letterbox"]``): the image is
        letterboxed to ``image_size`` (default: the trained one; rounded up to a multiple of 32)
        and the boxes mapped back here, as the PyTorch model does.
        """
        return self.detect_batch([pixels], image_size)[0]

    def detect_batch(self, images: Sequence[np.ndarray], image_size: int | None = None) -> list[dict[str, np.ndarray]]:
        """:meth:`detect` of several ``[3, H, W]`` images, :attr:`batch_size` per run.

        A run's images share one height and width, so images of the same shape (or, for YOLOv5,
        every letterboxed canvas) go together; a run that is not full repeats its last image.
        """
        steps = self.preprocessing.get("letterbox")
        geometries = [None] * len(images)
        if steps:
            size = network_size(image_size or steps["size"])
            boxed = [letterbox(pixels, size, steps["fill"]) for pixels in images]
            images, geometries = [canvas for canvas, _ in boxed], [geometry for _, geometry in boxed]
        found: list[dict[str, np.ndarray] | None] = [None] * len(images)
        by_shape: dict[tuple, list[int]] = {}
        for index, pixels in enumerate(images):
            by_shape.setdefault(pixels.shape, []).append(index)
        for indices in by_shape.values():
            for index, detections in zip(indices, self.run_detector([images[index] for index in indices])):
                found[index] = detections
        return [geometry.to_image(detections) if geometry else detections
                for detections, geometry in zip(found, geometries)]

    def run_detector(self, images: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """A detector graph's outputs, one dict per image, for ``[3, H, W]`` inputs of one shape:
        :attr:`batch_size` per run, a run that is not full padded with its last image."""
        batch, found = self.batch_size, []
        for start in range(0, len(images), batch):
            chunk = list(images[start:start + batch])
            chunk += chunk[-1:] * (batch - len(chunk))  # the graph's batch is fixed
            outputs = per_image_outputs(self.preprocessing["output_names"], self.run(np.stack(chunk)))
            found += outputs[:len(images) - start]
        return found

    def detection_input(self, image: Image.Image) -> np.ndarray:
        """``[3, H, W]`` float32 in [0, 1] of an RGB image."""
        return (np.asarray(image, dtype=np.float32) * np.float32(self.preprocessing["scale"])).transpose(2, 0, 1)

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, task={self.preprocessing.get('task')!r})"


def _resize_short_side(image: Image.Image, size: int) -> Image.Image:
    """torchvision's ``Resize(size)``: the short side to ``size``, the long one in proportion (bilinear,
    antialiased; PIL's and torch's uint8 kernels differ by at most one grey level)."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    other = int(size * long / short)
    new = (size, other) if width <= height else (other, size)
    return image if new == image.size else image.resize(new, Image.BILINEAR)


def _center_crop(image: Image.Image, size: int) -> Image.Image:
    """torchvision's ``CenterCrop(size)`` of an image at least ``size`` on each side."""
    width, height = image.size
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


# -- YOLOv5's letterbox in numpy (automl_nb.data.yolo_transforms.letterbox without torch) --------
YOLO_STRIDE = 32  # a letterbox side is a multiple of the largest stride


def network_size(image_size: int) -> int:
    """``image_size`` rounded up to a multiple of 32, at least 32 (YOLOv5's ``network_size``)."""
    return max(YOLO_STRIDE, -(-int(image_size) // YOLO_STRIDE) * YOLO_STRIDE)


class LetterboxGeometry:
    """Where an image sits on its letterbox canvas, and the way back (per-axis scale, padding)."""

    def __init__(self, width: int, height: int, size: int) -> None:
        ratio = min(size / width, size / height)
        self.new_width, self.new_height = max(1, round(width * ratio)), max(1, round(height * ratio))
        self.scale = np.array([self.new_width / width, self.new_height / height] * 2, np.float32)
        self.pad = np.array([(size - self.new_width) // 2, (size - self.new_height) // 2] * 2, np.float32)
        self.width, self.height = width, height

    def to_image(self, detections: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Boxes from canvas pixels to image pixels, clipped; boxes left empty (on the padding) dropped."""
        boxes = (detections["boxes"].astype(np.float32) - self.pad) / self.scale
        boxes = np.clip(boxes, 0, np.array([self.width, self.height] * 2, np.float32))
        kept = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return {**{key: value[kept] for key, value in detections.items()}, "boxes": boxes[kept]}


def letterbox(pixels: np.ndarray, size: int, fill: float) -> tuple[np.ndarray, LetterboxGeometry]:
    """``[3, H, W]`` float32 pixels resized to fit ``size x size`` (aspect kept), centred on ``fill``.

    The resize is PIL's bilinear on float ("F") images, the antialiased kernel torch's
    ``resize(antialias=True)`` was ported from: the two agree to about 1e-6.
    """
    height, width = pixels.shape[-2:]
    geometry = LetterboxGeometry(width, height, size)
    new_width, new_height = geometry.new_width, geometry.new_height
    if (new_height, new_width) != (height, width):
        pixels = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32))
                                      .resize((new_width, new_height), Image.BILINEAR)) for channel in pixels])
        pixels = np.clip(pixels, 0, 1)
    canvas = np.full((pixels.shape[0], size, size), fill, np.float32)
    left, top = int(geometry.pad[0]), int(geometry.pad[1])
    canvas[:, top:top + new_height, left:left + new_width] = pixels
    return canvas, geometry
