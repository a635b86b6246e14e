"""Names, shapes and preprocessing of our ONNX models (see docs/export.md), without torch.

The input and output names follow Azure ML's exported AutoML image models: ``input1`` and
``output1`` for classifiers, ``input`` and ``boxes``, ``labels``, ``scores`` (``masks``) for
detectors.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from automl_nb.infer.onnx_model import (EXPORT_FOLDER, LABELS_FILE, MODEL_FILE, PARITY_FILE,  # noqa: F401
                                        PREPROCESSING_FILE, SETTINGS_FILE)
from automl_nb.spec.inference import PREDICTION_KEYS, TILING_KEYS
from automl_nb.spec.tasks import DETECTION, MULTILABEL, SEGMENTATION, is_classification



def input_names(task: str) -> list[str]:
    return ["input1"] if is_classification(task) else ["input"]


def output_names(task: str) -> list[str]:
    if is_classification(task):
        return ["output1"]
    return ["boxes", "labels", "scores"] + (["masks"] if task == SEGMENTATION else [])


def dynamic_axes(task: str) -> dict[str, dict[int, str]]:
    """The axes left free: the batch of a classifier; a detector's image height and width (batch 1)."""
    if is_classification(task):
        return {"input1": {0: "batch"}, "output1": {0: "batch"}}
    return {"input": {2: "height", 3: "width"}}


def preprocessing(task: str, settings: Mapping[str, Any], mean: Sequence[float], std: Sequence[float],
                  normalisation_in_graph: bool) -> dict[str, Any]:
    """What a caller does to an image before the graph, as written to ``preprocessing.json``.

    Args:
        task: the model's task.
        settings: the resolved inference settings (our names).
        mean, std: the per-channel normalisation of the training pipeline.
        normalisation_in_graph: ``enable_onnx_normalization`` (classifiers; a detector always
            normalises inside its graph).
    """
    # tile_grid_size too is applied around the graph (the predictor runs the graph per tile)
    fixed = [key for key in settings if key not in PREDICTION_KEYS[task] + TILING_KEYS + ("tile_grid_size",)]
    if is_classification(task):
        crop = settings["validation_crop_size"]
        fixed.append("validation_crop_size")  # the input's height and width
        steps = {"layout": "NCHW", "channels": "RGB", "dtype": "float32",
                 "resize_short_side": settings["validation_resize_size"], "center_crop": crop,
                 "input_shape": ["batch", 3, crop, crop], "scale": 1 / 255,
                 "normalise": not normalisation_in_graph, "mean": list(mean), "std": list(std),
                 "output": "sigmoid probabilities" if task == MULTILABEL else "softmax probabilities"}
    else:
        steps = {"layout": "NCHW", "channels": "RGB", "dtype": "float32", "input_shape": [1, 3, "height", "width"],
                 "scale": 1 / 255, "normalise": False,
                 "output": "boxes XYXY in input pixels, labels 1..C (0 is background), scores; NMS done"}
    return {"task": task, "input_names": input_names(task), "output_names": output_names(task),
            "normalisation_in_graph": bool(normalisation_in_graph) or not is_classification(task),
            "fixed_in_graph": fixed, **steps}


def yolo_preprocessing(settings: Mapping[str, Any], size: int, fill: float, max_detections: int) -> dict[str, Any]:
    """``preprocessing.json`` of a YOLOv5 graph: the caller letterboxes, the graph does NMS.

    Args:
        settings: the resolved inference settings (our names).
        size: the trained letterbox size (``image_size`` rounded up to a multiple of 32); the
            graph's height and width are free, so ``image_size`` may change at inference.
        fill: the grey of the padding, in [0, 1].
        max_detections: the graph's cap on boxes per image (YOLOv5's ``max_det``).
    """
    steps = preprocessing(DETECTION, settings, (), (), False)
    fixed = [key for key in steps["fixed_in_graph"] if key != "image_size"]
    return {**steps, "fixed_in_graph": fixed, "input_shape": [1, 3, "height", "width"],
            "letterbox": {"size": size, "fill": fill, "resize": "bilinear, antialiased", "align": "centre"},
            "max_detections": max_detections,
            "output": "boxes XYXY in letterbox pixels, labels 1..C, scores; NMS done"}
