"""Predictions of a trained model on new images, in Azure's output shapes (SPEC section 9)."""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from PIL import Image

from automl_nb.data.images import open_image
from automl_nb.errors import DataError, TrialError
from automl_nb.infer.outputs import box_output, classification_output, normalise_polygon, write_mask_images
from automl_nb.infer.polygons import mask_to_polygons
from automl_nb.spec.inference import DESCRIPTION_KEYS, PREDICTION_KEYS, TILING_KEYS, check_settings, inference_keys
from automl_nb.spec.tasks import MULTILABEL, SEGMENTATION, check_task, is_classification

if TYPE_CHECKING:  # torch is imported where a PyTorch model runs: an ONNX predictor never loads it
    import torch

_CHECKPOINT_KEYS = ("model", "task", "params", "labels")


def _inference_mode(method):
    """``torch.inference_mode()`` around ``method``, torch imported at the call."""
    @functools.wraps(method)
    def run(*args, **kwargs):
        import torch

        with torch.inference_mode():
            return method(*args, **kwargs)
    return run


class Predictor:
    """A trained model and its inference settings; ``predict`` turns images into Azure outputs.

    Build one with :meth:`from_trial`, or :meth:`from_onnx` for an exported model. The constructor takes the parts directly, e.g. to wrap
    a model trained elsewhere.

    Args:
        model: a classifier (``model(batch) -> logits``) or a torchvision-style detector
            (``model(list of [3, H, W] floats in [0, 1]) -> list of dicts`` with ``boxes`` XYXY
            in pixels of the image given, ``scores``, ``labels`` 1..C, and ``masks``
            ``[N, 1, H, W]`` for segmentation).
        task: one of the four task names.
        labels: class names in the model's output order (detector label k is ``labels[k - 1]``).
        settings: inference settings by training parameter name (see
            :func:`automl_nb.spec.inference.inference_keys`), e.g. ``validation_crop_size``.
        device: where the model runs (None for a model that is not a torch module).
        batch_size: images per forward pass.

    Raises:
        SpecError: unknown task.
        ValueError: no labels, a setting the task needs is missing, or a bad ``batch_size``.
    """

    def __init__(self, model: "torch.nn.Module", task: str, labels: Sequence[str], settings: Mapping[str, Any],
                 device: "str | torch.device | None" = "cpu", batch_size: int = 1) -> None:
        task = check_task(task)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: {batch_size!r} is not an int >= 1")
        if not labels:
            raise ValueError("labels: empty; give the class names in the model's output order")
        needs = PREDICTION_KEYS[task] + (TILING_KEYS if settings.get("tile_grid_size") else ())
        missing = [key for key in needs if key not in settings]
        if missing:
            raise ValueError(f"settings: {task} needs {', '.join(missing)}")
        self.model = model
        self.task = task
        self.labels = list(labels)
        self.settings = MappingProxyType(dict(settings))
        if device is not None:
            import torch

            device = torch.device(device)
        self.device = device
        self.batch_size = batch_size

    @classmethod
    def from_trial(cls, trial_dir: str | os.PathLike, device: "str | torch.device" = "cpu",
                   **settings: Any) -> "Predictor":
        """The best model of a trial folder, with its inference settings.

        Settings default to the values the model was trained with (the checkpoint's
        parameters); a ``settings.json`` in the folder may change them (as Azure lets one edit
        it before registering a model), and keyword arguments override both. Either spelling
        of a key works (``box_score_thresh`` or ``box_score_threshold``).

        Args:
            trial_dir: a trial folder with ``model_best.pt``.
            device: where the model runs.
            **settings: inference settings of SPEC section 9, e.g. ``box_score_threshold=0.5``,
                ``tile_grid_size="3x2"``, ``export_as_image=True, image_type="png"``.

        Returns:
            A Predictor; its ``batch_size`` is the trial's ``validation_batch_size``.

        Raises:
            TrialError: the folder is not a trial folder with a trained model.
            RunFolderError: its checkpoint is damaged, or refused because it holds more than plain
                data (loading it could run code).
            SpecError: an unknown setting, one that does not apply to the task or model, or
                a bad value (names the key, the value and what is allowed).

        Example:
            >>> predictor = Predictor.from_trial("outputs/trial_0", box_score_threshold=0.5)
            >>> predictor.predict(["street.jpg"])[0]["boxes"][0]
            {'box': {'topX': 0.1, 'topY': 0.4, 'bottomX': 0.3, 'bottomY': 0.8}, 'label': 'car', 'score': 0.93}
        """
        from automl_nb.models.detection import DETECTOR_OPTIONS
        from automl_nb.train.folder import BEST_CHECKPOINT, SETTINGS, TrialFolder
        from automl_nb.train.restore import rebuild_model

        folder = TrialFolder(trial_dir)
        if not folder.path.is_dir():
            raise TrialError(f"{folder.path} is not a trial folder: no such folder")
        if not folder.has_best_model():
            raise TrialError(f"{folder.path} is not a trial folder with a trained model: it has no "
                             f"{BEST_CHECKPOINT} (a trial writes it at its first evaluation)")
        state = folder.load_checkpoint(BEST_CHECKPOINT, device)  # RunFolderError on a damaged or unsafe file
        missing = [key for key in _CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
        if missing:
            raise TrialError(f"{folder.best_checkpoint} is not a trial checkpoint: it lacks {missing}")
        task, params = state["task"], state["params"]
        model_name = params["model_name"]
        resolved = {key: params.get(key) for key in inference_keys(task, model_name)}
        saved = {k: v for k, v in folder.settings().items() if k not in DESCRIPTION_KEYS}
        resolved.update(check_settings(task, model_name, saved, where=f"{SETTINGS} key"))
        resolved.update(check_settings(task, model_name, settings))
        option_keys = DETECTOR_OPTIONS
        if model_name == "yolov5":
            from automl_nb.models.yolo import MAX_DETECTIONS, YOLO_MODEL_OPTIONS

            option_keys = YOLO_MODEL_OPTIONS
            resolved["box_detections_per_image"] = MAX_DETECTIONS  # no such yolov5 key: YOLOv5's max_det
        model_options = {key: resolved[key] for key in option_keys
                         if key in resolved and resolved[key] != params.get(key)}
        model, record = rebuild_model(state, device, **model_options)
        return cls(model, task, record["labels"], resolved, device, batch_size=params["validation_batch_size"])

    @classmethod
    def from_onnx(cls, path: str | os.PathLike, **settings: Any) -> "Predictor":
        """A model exported by ``automl-nb export``, run by ONNX Runtime (needs no torch).

        It gives the outputs :meth:`from_trial` gives for the same trial; see
        :func:`automl_nb.infer.onnx_predictor.onnx_predictor` for the settings that still apply.

        Example:
            >>> Predictor.from_onnx("runs/shapes/trials/0/onnx/model.onnx").predict(["cat.png"])
            [{'probs': [0.97, 0.02, 0.01], 'labels': ['cat', 'dog', 'fox']}]
        """
        from automl_nb.infer.onnx_predictor import onnx_predictor

        return onnx_predictor(path, **settings)

    # ----- prediction ---------------------------------------------------------------------
    def predict(self, images: Any, *, mask_folder: str | os.PathLike | None = None) -> list[dict]:
        """Predict on images, one Azure-shaped dict per image, in order.

        Args:
            images: one image or a list of them: local paths or fsspec URLs, PIL images, or
                encoded image bytes.
            mask_folder: with ``export_as_image`` (segmentation), where each object's mask
                is written as ``{image name}_{k}.{image_type}`` for box ``k`` of that image
                (``image_{i}`` names the i-th image given when it has no file name).

        Returns:
            classification: ``{"probs": [...], "labels": [...]}`` (multilabel: independent
            sigmoid probabilities); detection: ``{"boxes": [{"box": {"topX", "topY",
            "bottomX", "bottomY"}, "label", "score"}]}`` normalised by the image's size;
            segmentation: each box also has ``"polygon": [[x1, y1, x2, y2, ...]]``.

        Raises:
            DataError: an image is missing or unreadable (names it).
            ValueError: ``export_as_image`` is set and ``mask_folder`` is not given.

        Example:
            >>> predictor.predict(["cat.jpg", "dog.jpg"])[0]
            {'probs': [0.97, 0.03], 'labels': ['cat', 'dog']}
        """
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        export = self.task == SEGMENTATION and bool(self.settings["export_as_image"])
        if export and mask_folder is None:
            raise ValueError("export_as_image is true: give mask_folder, the folder to write the mask images to")
        names = _unique_names([_image_name(item, i) for i, item in enumerate(items)])
        results = []
        for start in range(0, len(items), self.batch_size):
            batch = [_load_image(item, i) for i, item in enumerate(items[start:start + self.batch_size], start)]
            if is_classification(self.task):
                results += self._classify(batch)
                continue
            for image, name, detections in zip(batch, names[start:], self._detect(batch)):
                results.append(self._detection_output(image, detections))
                if export:
                    write_mask_images(detections["masks"], mask_folder, name, self.settings["image_type"])
        return results

    @_inference_mode
    def _classify(self, images: Sequence[Image.Image]) -> list[dict]:
        import torch

        from automl_nb.data.transforms import classification_valid_transform

        transform = classification_valid_transform(self.settings["validation_resize_size"],
                                                   self.settings["validation_crop_size"])
        batch = torch.stack([transform(image) for image in images]).to(self.device)
        logits = self.model(batch).float()
        probs = torch.sigmoid(logits) if self.task == MULTILABEL else torch.softmax(logits, dim=1)
        return [classification_output(row, self.labels) for row in probs.cpu().tolist()]

    @_inference_mode
    def _detect(self, images: Sequence[Image.Image]) -> list[dict[str, np.ndarray]]:
        """Each image's detections in its pixels, above the score threshold, best first."""
        import torch
        from torchvision.transforms.v2 import functional as F

        tensors = [F.to_dtype(F.to_image(image), torch.float32, scale=True).to(self.device) for image in images]
        if self.settings.get("tile_grid_size"):
            from automl_nb.data.tiling import predict_tiled

            outputs = [predict_tiled(self.model, tensor, self.settings) for tensor in tensors]
        else:
            outputs = self.model(tensors)
        return [self._keep(output) for output in outputs]

    def _keep(self, output: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The detections scoring above ``box_score_threshold``, at most ``box_detections_per_image``.

        The detector applies both already; applying them here too keeps a merged or foreign
        model's output within the settings. ``output`` holds tensors or numpy arrays.
        """
        scores = _numpy(output["scores"], np.float32)
        order = np.argsort(-scores, kind="stable")
        order = order[scores[order] > self.settings["box_score_threshold"]]
        order = order[:self.settings["box_detections_per_image"]]
        kept = {"boxes": _numpy(output["boxes"], np.float32)[order], "scores": scores[order],
                "labels": _numpy(output["labels"], np.int64)[order]}
        if self.task == SEGMENTATION:
            masks = _numpy(output["masks"], np.float32)[order]
            kept["masks"] = masks[:, 0] >= self.settings["mask_pixel_score_threshold"]
        return kept

    def _detection_output(self, image: Image.Image, detections: Mapping[str, np.ndarray]) -> dict:
        width, height = image.size
        boxes = []
        for k, (box, score, label) in enumerate(zip(detections["boxes"], detections["scores"], detections["labels"])):
            entry = box_output(box, self.labels[int(label) - 1], score, width, height)
            if self.task == SEGMENTATION:
                rings = mask_to_polygons(detections["masks"][k], self.settings["max_number_of_polygon_points"])
                entry["polygon"] = normalise_polygon(rings, width, height)
            boxes.append(entry)
        return {"boxes": boxes}


def _numpy(values: Any, dtype) -> np.ndarray:
    """A tensor (any device or dtype) or an array as a numpy array of ``dtype``."""
    if hasattr(values, "detach"):
        values = values.detach().float().cpu() if np.dtype(dtype).kind == "f" else values.detach().cpu()
        values = values.numpy()
    return np.asarray(values, dtype=dtype)


# ----- images in ------------------------------------------------------------------------
def _load_image(image: Any, index: int) -> Image.Image:
    """An RGB PIL image from a path or URL, a PIL image, or encoded bytes."""
    if isinstance(image, (str, os.PathLike)):
        return open_image(image)
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    if isinstance(image, (bytes, bytearray, memoryview)):
        try:
            with Image.open(io.BytesIO(bytes(image))) as opened:
                opened.load()
                return opened.convert("RGB")
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... on bad data
            raise DataError(f"cannot read image {index} (bytes): {error}") from error
    raise DataError(f"image {index}: a {type(image).__name__} is not an image; "
                    f"allowed: a path or URL, a PIL image, or encoded image bytes")


def _image_name(image: Any, index: int) -> str:
    if isinstance(image, (str, os.PathLike)):
        stem = Path(str(image).rstrip("/")).stem
        if stem:
            return stem
    return f"image_{index}"


def _unique_names(names: list[str]) -> list[str]:
    """``names`` with a repeated one followed by its position, so no two mask files collide."""
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    return [name if seen[name] == 1 else f"{name}_{i}" for i, name in enumerate(names)]
