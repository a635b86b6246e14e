"""The one table of training hyperparameters (SPEC section 7): ``PARAMETERS``.

Every name, range, default and applicability rule of a hyperparameter is written here and
nowhere else: the job classes, the YAML loader, the search-space checks and the widgets read
this table (through :mod:`automl_nb.spec.resolve`). Each row is a
:class:`~automl_nb.spec.parameter.Parameter`.

Decisions where the seeds are silent:

- ``momentum``/``nesterov`` (sgd) and ``beta1``/``beta2``/``ams_gradient`` (adam, adamw) are
  accepted with any optimizer and simply unused by the others, like the ``step_lr_*`` and
  ``warmup_cosine_*`` keys with the other scheduler. Rejecting them would break the common
  search space that sweeps ``optimizer`` with a fixed ``momentum``.
- Amazon SageMaker object-detection keys apply only to ``image_object_detection``. Keys that mean
  the same as ours are aliases (``epochs`` -> ``number_of_epochs``, ``mini_batch_size`` ->
  ``training_batch_size``, ``nms_threshold`` -> ``nms_iou_threshold``, ``overlap_threshold`` ->
  ``validation_iou_threshold``); an alias's value must also fit the range of the key it sets.
  Shared names (``learning_rate``, ``momentum``...) are ours. The SageMaker-only keys
  (``base_network``, ``image_shape``...) appear in a resolved dict, with SageMaker's defaults,
  only when the user gave at least one SageMaker key: their defaults (e.g.
  ``early_stopping_min_epochs`` 10) must not change an Azure-style job.
- SageMaker mode: a job with SageMaker keys and no ``model_name`` trains SageMaker's SSD, and
  then seed 001's defaults and ranges hold instead of Azure's (each row's ``sagemaker_mode``):
  30 epochs, batch 32, learning rate 0.001 in (0, 1], momentum in (0, 1], weight decay 0.0005
  in (0, 1), NMS 0.45, early stopping off; ``num_classes`` and ``num_training_samples`` are
  required (checked by ``ImageJob.validate``).
- ``optimizer`` ``rmsprop`` and ``adadelta`` (SageMaker's) are allowed only for
  ``image_object_detection``.
- ``seresnext`` "takes no arbitrary size": its pooling is fixed to a 7x7 feature map, so its
  ``training_crop_size`` and ``validation_crop_size`` must be the default 224;
  ``validation_resize_size`` only sizes the image before the centre crop and stays free.
- ``advanced_settings`` keys ``apply_mosaic_for_yolo`` and ``apply_automl_train_augmentations``
  are supported only for detection and segmentation (seed 002); setting them on a
  classification task is an error, and a resolved ``advanced_settings`` holds only the keys
  of its task.
- ``augmentation`` (classification; our extension, not in Azure's schema) sets the strength of
  the training augmentation: ``default`` (Azure's), ``light`` or ``none``. It is a training
  parameter rather than an ``advanced_settings`` key so that a search space (and AutoMode) can
  sweep it like any other key: ``advanced_settings`` is one JSON value, swept only as a whole.
- ``layers_to_freeze`` may not exceed the number of layer groups of the model's family
  (``FREEZE_LAYER_ORDER``; resnest uses the resnet order, as its timm layout matches).
- A value of None given for a key means "not set": the default applies.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Mapping

from automl_nb.spec._checks import fail, show, to_int
from automl_nb.spec.advanced_settings import ADVANCED_SETTINGS, normalise_advanced_settings
from automl_nb.spec.grid import GRID_FORMAT, parse_grid
from automl_nb.spec.parameter import MODEL_NAME, Parameter
from automl_nb.spec.tasks import (
    CLASSIFICATION_TASKS, DEFAULT_MODEL, DETECTION, DETECTION_TASKS, MODELS, MULTICLASS,
    MULTILABEL, SEGMENTATION, TASKS,
)

# Layer groups frozen by ``layers_to_freeze`` = n, in order (SPEC section 7), per model family.
_RESNET_ORDER = (("conv1.", "bn1."), "layer1.", "layer2.", "layer3.", "layer4.")
_RESNET_BACKBONE_ORDER = ("backbone.body.conv1.",) + tuple(f"backbone.body.layer{i}." for i in range(1, 5))
FREEZE_LAYER_ORDER = MappingProxyType({
    "resnet": _RESNET_ORDER,
    "resnest": _RESNET_ORDER,
    "mobilenetv2": tuple(f"features.{i}." for i in range(19)),
    "seresnext": tuple(f"layer{i}." for i in range(5)),
    "vit": ("patch_embed",) + tuple(f"blocks.{i}." for i in range(12)),
    "yolov5": tuple(f"model.{i}." for i in range(10)),
    "fasterrcnn": _RESNET_BACKBONE_ORDER,
    "retinanet": _RESNET_BACKBONE_ORDER,
    "maskrcnn": _RESNET_BACKBONE_ORDER,
})


# ----- normalisers for "str" kinds
def _tile_grid_size(param: Parameter, value: str, task: str) -> str:
    cols, rows = parse_grid(value, param.name)
    return f"{cols}x{rows}"


def _epoch_list(param: Parameter, value: str, task: str) -> str:
    if value == "":
        return ""
    epochs = []
    for part in value.split(","):
        try:
            epoch = to_int(part)
        except ValueError:
            epoch = 0
        if epoch < 1:
            fail(param.name, f"{show(value)} is not a list of epochs; allowed: {param.format}")
        epochs.append(epoch)
    return ",".join(str(e) for e in epochs)


def _regex(param: Parameter, value: str, task: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        fail(param.name, f"{show(value)} is not a valid regular expression ({error}); allowed: {param.format}")
    return value


def _non_empty(param: Parameter, value: str, task: str) -> str:
    if not value:
        fail(param.name, f"{show(value)} is empty; allowed: {param.format}")
    return value


# ----- the table
# Strengths of the classification training augmentation (automl_nb.data.transforms builds them).
AUGMENTATIONS = ("default", "light", "none")
_POSITIVE = {"minimum": 0, "minimum_open": True}
_UNIT = {"minimum": 0, "maximum": 1}
_OPEN_UNIT_HIGH = {"minimum": 0, "maximum": 1, "maximum_open": True}
_SAGEMAKER = {"tasks": (DETECTION,), "sagemaker": True}
_VIT_LR = {"vits16r224": 0.0125, "vitb16r224": 0.0125, "vitl16r224": 0.001}
_VIT_LR_MULTILABEL = {"vits16r224": 0.025, "vitb16r224": 0.025, "vitl16r224": 0.002}
_VIT_BATCH = {"vits16r224": 128, "vitb16r224": 48, "vitl16r224": 10}
_NOT_YOLO = {"tasks": DETECTION_TASKS, "excluded_families": ("yolov5",)}
_YOLO = {"tasks": (DETECTION,), "families": ("yolov5",)}

_TABLE = (
    # --- model-agnostic (every task)
    Parameter(MODEL_NAME, "choice", "Model architecture; the allowed names depend on the task.",
              task_choices=MODELS, task_defaults=DEFAULT_MODEL),
    Parameter("number_of_epochs", "int", "Number of training epochs.",
              default=15, model_defaults={"yolov5": 30}, sagemaker_mode={"default": 30}, **_POSITIVE),
    Parameter("training_batch_size", "int", "Training batch size (defaults fit a 12 GiB GPU).",
              task_defaults={MULTICLASS: 78, MULTILABEL: 78, DETECTION: 2, SEGMENTATION: 2},
              model_defaults={**_VIT_BATCH, "yolov5": 16}, sagemaker_mode={"default": 32}, **_POSITIVE),
    Parameter("validation_batch_size", "int", "Validation batch size (defaults fit a 12 GiB GPU).",
              task_defaults={MULTICLASS: 78, MULTILABEL: 78, DETECTION: 1, SEGMENTATION: 1},
              model_defaults={**_VIT_BATCH, "yolov5": 16}, **_POSITIVE),
    Parameter("gradient_accumulation_step", "int", "Steps whose gradients are accumulated before one weight update.",
              default=1, **_POSITIVE),
    Parameter("early_stopping", "bool", "Stop a trial when the primary metric stops improving.", default=True,
              sagemaker_mode={"default": False}),
    Parameter("early_stopping_patience", "int", "Evaluations with no primary-metric gain before early stopping.",
              default=5, **_POSITIVE),
    Parameter("early_stopping_delay", "int", "Evaluations to wait before tracking the primary metric for early stopping.",
              default=5, **_POSITIVE),
    Parameter("learning_rate", "float", "Initial learning rate.",
              task_defaults={MULTICLASS: 0.01, MULTILABEL: 0.035, DETECTION: 0.005, SEGMENTATION: 0.005},
              model_defaults={"yolov5": 0.01},
              task_model_defaults={**{(MULTICLASS, m): v for m, v in _VIT_LR.items()},
                                   **{(MULTILABEL, m): v for m, v in _VIT_LR_MULTILABEL.items()}},
              sagemaker_mode={"default": 0.001, "minimum_open": True}, **_UNIT),
    Parameter("learning_rate_scheduler", "choice", "Learning rate schedule.",
              default="warmup_cosine", choices=("warmup_cosine", "step")),
    Parameter("step_lr_gamma", "float", "Learning rate factor at each step (step scheduler).", default=0.5, **_UNIT),
    Parameter("step_lr_step_size", "int", "Epochs between learning rate steps (step scheduler).",
              default=5, **_POSITIVE),
    Parameter("warmup_cosine_lr_cycles", "float", "Cosine cycles (warmup_cosine scheduler).", default=0.45, **_UNIT),
    Parameter("warmup_cosine_lr_warmup_epochs", "int", "Warm-up epochs (warmup_cosine scheduler).",
              default=2, **_POSITIVE),
    Parameter("optimizer", "choice", "Optimizer (rmsprop and adadelta, SageMaker's, only for object detection).",
              default="sgd", choices=("sgd", "adam", "adamw"),
              task_choices={DETECTION: ("sgd", "adam", "adamw", "rmsprop", "adadelta")}),
    Parameter("momentum", "float", "Momentum (used by sgd).", default=0.9,
              sagemaker_mode={"minimum_open": True}, **_UNIT),
    Parameter("weight_decay", "float", "Weight decay.", default=1e-4,
              sagemaker_mode={"default": 0.0005, "minimum_open": True, "maximum_open": True}, **_UNIT),
    Parameter("nesterov", "bool", "Nesterov momentum (used by sgd).", default=True),
    Parameter("beta1", "float", "Adam beta1 (used by adam and adamw).", default=0.9, **_UNIT),
    Parameter("beta2", "float", "Adam beta2 (used by adam and adamw).", default=0.999, **_UNIT),
    Parameter("ams_gradient", "bool", "AMSGrad (used by adam and adamw).", default=False),
    Parameter("evaluation_frequency", "int", "Epochs between validations.", default=1, **_POSITIVE),
    Parameter("checkpoint_frequency", "int",
              "Epochs between checkpoints (None: keep the epoch with the best primary metric).", **_POSITIVE),
    Parameter("checkpoint_run_id", "str", "Run whose checkpoint starts incremental training (None: none).",
              format="a non-empty run id", normalise=_non_empty),
    Parameter("layers_to_freeze", "int", "Number of leading layer groups to freeze (None: train all).",
              **_POSITIVE),
    Parameter("number_of_workers", "int", "Data loader workers (None: automatic).", minimum=0),
    Parameter("random_seed", "int", "Seed for deterministic training (None: each trial derives its own).",
              minimum=0),
    Parameter("distributed", "bool", "Train each trial with DDP on every device its Dask worker owns: one process "
              "per GPU (NCCL), or on CPU one per core of the trial's share (gloo); training_batch_size is the "
              "global batch, split between the processes (docs/distributed.md)."),
    Parameter("enable_onnx_normalization", "bool", "Put input normalisation inside the exported ONNX model "
              "of a classifier (automl-nb export): it then takes pixels in [0, 1]. Detectors always "
              "normalise inside their graph.", default=False),
    Parameter("log_training_metrics", "bool", "Compute and log metrics on the training set.",
              default=False, enable_disable=True),
    Parameter("log_validation_loss", "bool", "Compute and log the validation loss.",
              default=True, enable_disable=True),
    Parameter("advanced_settings", "json", "JSON object of switches and settings: "
              + ", ".join(s.name for s in ADVANCED_SETTINGS) + ".",
              task_defaults={task: {s.name: s.default for s in ADVANCED_SETTINGS if task in s.tasks} for task in TASKS},
              format="JSON object with keys " + ", ".join(s.name for s in ADVANCED_SETTINGS),
              normalise=normalise_advanced_settings),
    Parameter("use_pretrained_model", "bool", "Start from pretrained weights (false: train from scratch).",
              default=True),
    # --- classification only
    Parameter("weighted_loss", "choice", "Class weighting: 0 none, 1 sqrt(class_weights), 2 class_weights.",
              default=0, choices=(0, 1, 2), tasks=CLASSIFICATION_TASKS),
    Parameter("validation_resize_size", "int", "Validation image size before the centre crop.",
              default=256, tasks=CLASSIFICATION_TASKS, **_POSITIVE),
    Parameter("validation_crop_size", "int", "Validation crop fed to the network (ViT: equal to training_crop_size).",
              default=224, tasks=CLASSIFICATION_TASKS, **_POSITIVE),
    Parameter("training_crop_size", "int", "Training crop fed to the network (ViT: equal to validation_crop_size).",
              default=224, tasks=CLASSIFICATION_TASKS, **_POSITIVE),
    Parameter("augmentation", "choice", "Training augmentation (our extension): default = Azure's random resized "
              "crop, flip and colour jitter; light = a mild crop and jitter, no flip; none = the validation resize "
              "and centre crop.", default="default", choices=AUGMENTATIONS, tasks=CLASSIFICATION_TASKS),
    # --- detection and segmentation
    Parameter("validation_metric_type", "choice", "How validation metrics are computed.",
              default="voc", choices=("none", "coco", "voc", "coco_voc"), tasks=DETECTION_TASKS),
    Parameter("validation_iou_threshold", "float", "IoU for matching boxes in validation metrics.",
              default=0.5, minimum=0.1, maximum=1, tasks=DETECTION_TASKS),
    Parameter("min_size", "int", "Minimum image size after rescaling, before the backbone.",
              default=600, **_POSITIVE, **_NOT_YOLO),
    Parameter("max_size", "int", "Maximum image size after rescaling, before the backbone.",
              default=1333, **_POSITIVE, **_NOT_YOLO),
    Parameter("box_score_threshold", "float", "Minimum score of a returned box (yolov5: objectness x class).",
              default=0.3, model_defaults={"yolov5": 0.1}, tasks=DETECTION_TASKS, **_UNIT),
    Parameter("nms_iou_threshold", "float", "IoU threshold of non-maximum suppression at inference.",
              default=0.5, tasks=DETECTION_TASKS, sagemaker_mode={"default": 0.45}, **_UNIT),
    Parameter("box_detections_per_image", "int", "Maximum detections per image, all classes.",
              default=100, **_POSITIVE, **_NOT_YOLO),
    Parameter("tile_grid_size", "str", "Tile grid 'MxN' for small-object detection (None: no tiling).",
              tasks=(DETECTION,), format=GRID_FORMAT, normalise=_tile_grid_size),
    Parameter("tile_overlap_ratio", "float", "Overlap of adjacent tiles in each dimension.",
              default=0.25, tasks=(DETECTION,), **_OPEN_UNIT_HIGH),
    Parameter("tile_predictions_nms_threshold", "float", "IoU for NMS when merging tile and image predictions.",
              default=0.25, tasks=(DETECTION,), **_UNIT),
    # --- yolov5 only
    Parameter("image_size", "int", "yolov5 training and validation image size.", default=640, **_POSITIVE, **_YOLO),
    Parameter("model_size", "choice", "yolov5 model size.",
              default="medium", choices=("small", "medium", "large", "extra_large"), **_YOLO),
    Parameter("multi_scale", "bool", "yolov5 multi-scale training (image size varied by +/-50%).",
              default=False, **_YOLO),
    # --- maskrcnn inference
    Parameter("mask_pixel_score_threshold", "float", "Score above which a pixel belongs to an object's mask.",
              default=0.5, tasks=(SEGMENTATION,), **_UNIT),
    Parameter("max_number_of_polygon_points", "int", "Maximum (x, y) points of a polygon made from a mask.",
              default=100, tasks=(SEGMENTATION,), **_POSITIVE),
    Parameter("export_as_image", "bool", "Export masks as images.", default=False, tasks=(SEGMENTATION,)),
    Parameter("image_type", "choice", "Image format of exported masks.",
              default="jpg", choices=("jpg", "png", "bmp"), tasks=(SEGMENTATION,)),
    # --- Amazon SageMaker object detection: aliases of ours
    Parameter("epochs", "int", "SageMaker: number of training epochs (our number_of_epochs).",
              maps_to="number_of_epochs", **_POSITIVE, **_SAGEMAKER),
    Parameter("mini_batch_size", "int", "SageMaker: training batch size (our training_batch_size).",
              maps_to="training_batch_size", **_POSITIVE, **_SAGEMAKER),
    Parameter("nms_threshold", "float", "SageMaker: non-maximum suppression threshold (our nms_iou_threshold).",
              maps_to="nms_iou_threshold", minimum=0, maximum=1, minimum_open=True, **_SAGEMAKER),
    # --- Amazon SageMaker object detection: keys of their own
    Parameter("base_network", "choice", "SageMaker: base network of the SSD detector.",
              default="vgg-16", choices=("vgg-16", "resnet-50"), **_SAGEMAKER),
    Parameter("image_shape", "int", "SageMaker: square input image size (300 and 512 recommended).",
              default=300, minimum=300, **_SAGEMAKER),
    Parameter("overlap_threshold", "float", "SageMaker: evaluation overlap threshold (our validation_iou_threshold).",
              maps_to="validation_iou_threshold", minimum=0, maximum=1, minimum_open=True, **_SAGEMAKER),
    Parameter("lr_scheduler_step", "str", "SageMaker: epochs at which the learning rate is multiplied by "
              "lr_scheduler_factor ('': never).", default="",
              format="comma-separated positive epochs, e.g. '10,20'", normalise=_epoch_list, **_SAGEMAKER),
    Parameter("lr_scheduler_factor", "float", "SageMaker: learning rate factor at each lr_scheduler_step.",
              default=0.1, minimum=0, maximum=1, minimum_open=True, maximum_open=True, **_SAGEMAKER),
    Parameter("early_stopping_min_epochs", "int", "SageMaker: epochs to run before early stopping may act.",
              default=10, **_POSITIVE, **_SAGEMAKER),
    Parameter("early_stopping_tolerance", "float", "SageMaker: relative mAP gain below which an epoch counts as "
              "no gain.", default=0.0, **_UNIT, **_SAGEMAKER),
    Parameter("freeze_layer_pattern", "str", "SageMaker: regex of layer names to freeze (None: none).",
              format="a regular expression", normalise=_regex, **_SAGEMAKER),
    Parameter("num_classes", "int", "SageMaker: number of classes (checked against the data).",
              sagemaker_mode={"required": True}, **_POSITIVE, **_SAGEMAKER),
    Parameter("num_training_samples", "int", "SageMaker: number of training images (checked against the data).",
              sagemaker_mode={"required": True}, **_POSITIVE, **_SAGEMAKER),
    Parameter("kv_store", "choice", "SageMaker: weight-update mode of multi-machine training (None: one machine; "
              "refused while the job trains each trial on one machine).",
              choices=("dist_sync", "dist_async"), **_SAGEMAKER),
    Parameter("label_width", "int", "SageMaker: padded label width of its RecordIO data (no effect here).",
              default=350, **_POSITIVE, **_SAGEMAKER),
)


def _index(table: tuple[Parameter, ...]) -> Mapping[str, Parameter]:
    index = {}
    for param in table:
        if param.name in index:
            raise ValueError(f"duplicate parameter {param.name!r} in the table")
        index[param.name] = param
    return MappingProxyType(index)


PARAMETERS: Mapping[str, Parameter] = _index(_TABLE)
