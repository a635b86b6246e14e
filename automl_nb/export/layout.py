"""Names, shapes and preprocessing of our ONNX models (see docs/export.md), without torch.

The names follow Azure ML's exported AutoML image models (its docs page "Make predictions with ONNX on
computer vision models from AutoML" and azureml-examples' ``ONNX_batch_model_generator_automl_for_images.py``):
``input1`` and ``output1`` for classifiers; ``input`` and, per image ``i`` of the batch,
``boxes_i``, ``labels_i``, ``scores_i`` (``masks_i``) for detectors, in RetinaNet's case
``boxes_i``, ``scores_i``, ``labels_i``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from automl_nb.infer.onnx_model import (EXPORT_FOLDER, LABELS_FILE, MODEL_FILE, PARITY_FILE,  # noqa: F401
                                        PREPROCESSING_FILE, SETTINGS_FILE, detection_keys)
from automl_nb.spec.inference import PREDICTION_KEYS, TILING_KEYS
from automl_nb.spec.tasks import DETECTION, MULTILABEL, is_classification


def input_names(task: str) -> list[str]:
    return ["input1"] if is_classification(task) else ["input"]


def output_names(task: str, model_name: str | None = None, batch_size: int = 1) -> list[str]:
    """``output1``; or a detector's outputs per image of its fixed batch, ``boxes_0``, ``labels_0``... (Azure's)."""
    if is_classification(task):
        return ["output1"]
    return [f"{key}_{image}" for image in range(batch_size) for key in detection_keys(task, model_name)]


def dynamic_axes(task: str, model_name: str | None = None, batch_size: int = 1) -> dict[str, dict[int, str]]:
    """The axes left free: a classifier's batch; a detector's image height and width and its number of boxes.

    A detector's batch is fixed at export: torchvision's detectors take a list of images, which
    tracing unrolls, and each image gets its own outputs (as in Azure's batch export).
    """
    if is_classification(task):
        return {"input1": {0: "batch"}, "output1": {0: "batch"}}
    free = {name: {0: "boxes"} for name in output_names(task, model_name, batch_size)}
    return {"input": {2: "height", 3: "width"}, **free}


def preprocessing(task: str, settings: Mapping[str, Any], mean: Sequence[float], std: Sequence[float],
                  normalisation_in_graph: bool, *, model_name: str | None = None, batch_size: int = 1,
                  extra_fixed: Sequence[str] = ()) -> dict[str, Any]:
    """What a caller does to an image before the graph, as written to ``preprocessing.json``.

    Args:
        task: the model's task.
        settings: the resolved inference settings (our names).
        mean, std: the per-channel normalisation of the training pipeline.
        normalisation_in_graph: ``enable_onnx_normalization`` (classifiers; a detector always
            normalises inside its graph).
        model_name: the detector (RetinaNet's outputs come in Azure's RetinaNet order).
        batch_size: a detector's images per run, fixed in the graph.
        extra_fixed: further training settings built into the graph (SageMaker's SSD: ``image_shape``).
    """
    # tile_grid_size too is applied around the graph (the predictor runs the graph per tile)
    fixed = [key for key in settings if key not in PREDICTION_KEYS[task] + TILING_KEYS + ("tile_grid_size",)]
    fixed += [key for key in extra_fixed if key not in fixed]
    if is_classification(task):
        crop = settings["validation_crop_size"]
        fixed.append("validation_crop_size")  # the input's height and width
        steps = {"layout": "NCHW", "channels": "RGB", "dtype": "float32",
                 "resize_short_side": settings["validation_resize_size"], "center_crop": crop,
                 "input_shape": ["batch", 3, crop, crop], "scale": 1 / 255,
                 "normalise": not normalisation_in_graph, "mean": list(mean), "std": list(std),
                 "output": "sigmoid probabilities" if task == MULTILABEL else "softmax probabilities"}
    else:
        steps = {"layout": "NCHW", "channels": "RGB", "dtype": "float32",
                 "input_shape": [batch_size, 3, "height", "width"], "batch_size": batch_size,
                 "scale": 1 / 255, "normalise": False,
                 "output": "per image i: boxes_i XYXY in input pixels, labels_i 1..C (0 is background), scores_i; "
                           "NMS done"}
    return {"task": task, "input_names": input_names(task), "output_names": output_names(task, model_name, batch_size),
            "normalisation_in_graph": bool(normalisation_in_graph) or not is_classification(task),
            "fixed_in_graph": fixed, **steps}


def yolo_preprocessing(settings: Mapping[str, Any], size: int, fill: float, max_detections: int,
                       batch_size: int = 1) -> dict[str, Any]:
    """``preprocessing.json`` of a YOLOv5 graph: the caller letterboxes, the graph does NMS.

    Args:
        settings: the resolved inference settings (our names).
        size: the trained letterbox size (``image_size`` rounded up to a multiple of 32); the
            graph's height and width are free, so ``image_size`` may change at inference.
        fill: the grey of the padding, in [0, 1].
        max_detections: the graph's cap on boxes per image (YOLOv5's ``max_det``).
        batch_size: letterboxed images per run, fixed in the graph.
    """
    steps = preprocessing(DETECTION, settings, (), (), False, model_name="yolov5", batch_size=batch_size)
    fixed = [key for key in steps["fixed_in_graph"] if key != "image_size"]
    return {**steps, "fixed_in_graph": fixed,
            "letterbox": {"size": size, "fill": fill, "resize": "bilinear, antialiased", "align": "centre"},
            "max_detections": max_detections,
            "output": "per image i: boxes_i XYXY in letterbox pixels, labels_i 1..C, scores_i; NMS done"}
