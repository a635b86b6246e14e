"""The one table of training hyperparameters (SPEC section 7) and the functions that read it.

Every name, range, default and applicability rule of a hyperparameter is written here and
nowhere else: the job classes, the YAML loader, the search-space checks and the widgets read
this table.

Decisions where the seeds are silent:

- ``momentum``/``nesterov`` (sgd) and ``beta1``/``beta2``/``ams_gradient`` (adam, adamw) are
  accepted with any optimizer and simply unused by the others, like the ``step_lr_*`` and
  ``warmup_cosine_*`` keys with the other scheduler. Rejecting them would break the common
  search space that sweeps ``optimizer`` with a fixed ``momentum``.
- Amazon SageMaker object-detection keys apply only to ``image_object_detection``. Keys that mean
  the same as ours are aliases (``epochs`` -> ``number_of_epochs``, ``mini_batch_size`` ->
  ``training_batch_size``, ``nms_threshold`` -> ``nms_iou_threshold``); shared names
  (``learning_rate``, ``momentum``...) are simply ours, with our ranges and defaults. The
  SageMaker-only keys (``base_network``, ``image_shape``...) appear in a resolved dict, with
  SageMaker's defaults, only when the user gave at least one SageMaker key: their defaults
  (e.g. ``early_stopping_min_epochs`` 10) must not change an Azure-style job.
- ``optimizer`` ``rmsprop`` and ``adadelta`` (SageMaker's) are allowed only for
  ``image_object_detection``.
- ``seresnext`` "takes no arbitrary size": its pooling is fixed to a 7x7 feature map, so its
  ``training_crop_size`` and ``validation_crop_size`` must be the default 224;
  ``validation_resize_size`` only sizes the image before the centre crop and stays free.
- ``advanced_settings`` keys ``apply_mosaic_for_yolo`` and ``apply_automl_train_augmentations``
  are supported only for detection and segmentation (seed 002); setting them on a
  classification task is an error, and a resolved ``advanced_settings`` holds only the keys
  of its task.
- ``layers_to_freeze`` may not exceed the number of layer groups of the model's family
  (``FREEZE_LAYER_ORDER``; resnest uses the resnet order, as its timm layout matches).
- A value of None given for a key means "not set": the default applies.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from automl_nb.spec._checks import (
    check_nested_key, did_you_mean, fail, show, snake_case, to_bool, to_float, to_int, unknown_key,
)
from automl_nb.spec.tasks import (
    CLASSIFICATION_TASKS, DEFAULT_MODEL, DETECTION, DETECTION_TASKS, MODELS, MULTICLASS,
    MULTILABEL, SEGMENTATION, TASKS, check_model, check_task, model_family,
)

MODEL_NAME = "model_name"
KINDS = ("int", "float", "bool", "choice", "str", "json")
_ENABLE_WORDS = ("enable", "enabled")
_DISABLE_WORDS = ("disable", "disabled")


@dataclass(frozen=True)
class Parameter:
    """One hyperparameter: its type, range, default and where it applies.

    Attributes:
        name: the key in ``training_parameters`` / ``search_space``.
        kind: "int" | "float" | "bool" | "choice" | "str" | "json".
        description: one line for widgets and error messages.
        default: the default value (None means "not set / automatic", see the description).
        task_defaults: per-task defaults, overriding ``default``.
        model_defaults: per-model defaults (keyed by model name or family), overriding the above.
        task_model_defaults: per (task, model or family) defaults, the most specific of all.
        minimum, maximum: numeric bounds (None: unbounded); ``*_open`` makes a bound exclusive.
        choices: allowed values of a "choice" parameter; ``task_choices`` overrides them per task.
        tasks: the tasks it applies to.
        families: the model families it applies to (None: every model of those tasks).
        excluded_families: model families it does not apply to.
        sagemaker: an Amazon SageMaker object-detection key.
        maps_to: for a SageMaker spelling of one of our keys, our key.
        enable_disable: a bool also spelt "Enable"/"Disable" (Azure's log_* keys).
        format: what a "str"/"json" value looks like, for messages.
        normalise: for "str"/"json" kinds, ``f(parameter, value, task) -> value`` that checks
            and canonicalises the value.
    """

    name: str
    kind: str
    description: str
    default: Any = field(default=None, hash=False)
    task_defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    model_defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    task_model_defaults: Mapping[tuple[str, str], Any] = field(default_factory=dict, hash=False)
    minimum: float | None = None
    maximum: float | None = None
    minimum_open: bool = False
    maximum_open: bool = False
    choices: tuple = ()
    task_choices: Mapping[str, tuple] = field(default_factory=dict, hash=False)
    tasks: tuple[str, ...] = TASKS
    families: tuple[str, ...] | None = None
    excluded_families: tuple[str, ...] = ()
    sagemaker: bool = False
    maps_to: str | None = None
    enable_disable: bool = False
    format: str | None = None
    normalise: Callable[["Parameter", Any, str], Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")
        # Read-only views: a Parameter is shared by every job and must not be edited.
        for name in ("task_defaults", "model_defaults", "task_model_defaults", "task_choices"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    # ----- where it applies
    def applies_to(self, task: str, model_name: str | None = None) -> bool:
        """True when the parameter applies to the task and (if given) the model."""
        if task not in self.tasks:
            return False
        if model_name is None:
            return any(self.applies_to(task, model) for model in MODELS[task])
        family = model_family(model_name)
        if self.families is not None and family not in self.families:
            return False
        return family not in self.excluded_families

    def applicability_text(self) -> str:
        """Where the parameter applies, e.g. ``image_object_detection with model yolov5``."""
        text = ", ".join(self.tasks)
        if self.families is not None:
            models = [m for task in self.tasks for m in MODELS[task] if model_family(m) in self.families]
            text += " with model " + ", ".join(dict.fromkeys(models))
        if self.excluded_families:
            text += " (not with " + ", ".join(self.excluded_families) + " models)"
        if self.sagemaker:
            text += " (an Amazon SageMaker object-detection key)"
        return text

    # ----- values
    def allowed_choices(self, task: str) -> tuple:
        """The allowed values of a "choice" parameter for a task."""
        return tuple(self.task_choices.get(task, self.choices))

    def default_for(self, task: str, model_name: str) -> Any:
        """The default for a task and model (most specific override wins); a fresh copy."""
        family = model_family(model_name)
        for key in ((task, model_name), (task, family)):
            if key in self.task_model_defaults:
                return copy.deepcopy(self.task_model_defaults[key])
        for key in (model_name, family):
            if key in self.model_defaults:
                return copy.deepcopy(self.model_defaults[key])
        if task in self.task_defaults:
            return copy.deepcopy(self.task_defaults[task])
        return copy.deepcopy(self.default)

    def in_range(self, number: float) -> bool:
        """True when a number lies within the bounds (open or closed)."""
        if self.minimum is not None:
            if number < self.minimum or (self.minimum_open and number == self.minimum):
                return False
        if self.maximum is not None:
            if number > self.maximum or (self.maximum_open and number == self.maximum):
                return False
        return True

    def clip(self, number: float) -> float:
        """Move a number to the nearest value within the bounds (for unbounded distributions)."""
        low, high = self.minimum, self.maximum
        if low is not None and number <= low:
            number = low
            if self.minimum_open:
                number = low + 1 if self.kind == "int" else math.nextafter(low, math.inf)
        if high is not None and number >= high:
            number = high
            if self.maximum_open:
                number = high - 1 if self.kind == "int" else math.nextafter(high, -math.inf)
        return number

    def allowed_text(self, task: str | None = None) -> str:
        """What values are allowed, for messages: ``float in [0, 1]``, ``one of sgd, adam``..."""
        if self.kind in ("int", "float"):
            return _bounds_text(self.kind, self.minimum, self.maximum, self.minimum_open, self.maximum_open)
        if self.kind == "bool":
            if self.enable_disable:
                return "'Enable' or 'Disable' (or a bool)"
            return "bool (true/false or 1/0)"
        if self.kind == "choice":
            values = self.allowed_choices(task) if task else self.choices
            return "one of " + ", ".join(str(v) for v in values)
        return self.format or "string"

    def coerce(self, value: Any, task: str) -> Any:
        """Check one value and return it in canonical form (int, float, bool, lower-case choice...).

        Args:
            value: the value as the user, YAML or a sampler gave it.
            task: the job's task (choices may depend on it).

        Returns:
            The canonical value.

        Raises:
            SpecError: ``key: value is ...; allowed: ...``.
        """
        allowed = self.allowed_text(task)
        if self.kind in ("int", "float"):
            try:
                number = to_int(value) if self.kind == "int" else to_float(value)
            except ValueError:
                fail(self.name, f"{show(value)} is not a{'n' if self.kind == 'int' else ''} {self.kind}; allowed: {allowed}")
            if not self.in_range(number):
                fail(self.name, f"{show(value)} is out of range; allowed: {allowed}")
            return number
        if self.kind == "bool":
            extra = (_ENABLE_WORDS, _DISABLE_WORDS) if self.enable_disable else ((), ())
            try:
                return to_bool(value, *extra)
            except ValueError:
                fail(self.name, f"{show(value)} is not a bool; allowed: {allowed}")
        if self.kind == "choice":
            return self._coerce_choice(value, task)
        if self.kind == "str":
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                fail(self.name, f"{show(value)} is not a string; allowed: {allowed}")
            value = value.strip()
        return self.normalise(self, value, task) if self.normalise else value

    def _coerce_choice(self, value: Any, task: str) -> Any:
        allowed_values = self.allowed_choices(task)
        if all(isinstance(v, int) for v in allowed_values):
            try:
                candidates = [to_int(value)]
            except ValueError:
                candidates = []
        elif isinstance(value, str):
            candidates = [value.strip().lower(), snake_case(value)]
        else:
            candidates = []
        for candidate in candidates:
            if candidate in allowed_values:
                return candidate
        message = f"{show(value)} is not allowed; allowed: {self.allowed_text(task)}"
        other_tasks = [t for t in self.task_choices if t != task and any(c in self.task_choices[t] for c in candidates)]
        if other_tasks and self.name != MODEL_NAME:
            message += f" ({show(value)} is allowed only for {', '.join(other_tasks)})"
        if self.name == MODEL_NAME:
            message = f"{show(value)} is not a model for {task}; allowed: {self.allowed_text(task)}"
        if isinstance(value, str):
            message += did_you_mean(value, [str(v) for v in allowed_values])
        fail(self.name, message)


@dataclass(frozen=True)
class AdvancedSetting:
    """One key inside the ``advanced_settings`` JSON string: a bool switch, or a positive number."""

    name: str
    default: bool | float | None
    tasks: tuple[str, ...]
    description: str
    kind: str = "bool"  # "bool" or "positive_number" (null allowed: no bound)


ADVANCED_SETTINGS = (
    AdvancedSetting("apply_mosaic_for_yolo", True, DETECTION_TASKS,
                    "Mosaic augmentation for yolov5 training (false switches it off)."),
    AdvancedSetting("apply_automl_train_augmentations", True, DETECTION_TASKS,
                    "Random crop/expand/flip (or yolov5 affine/flip) in training (false switches them off)."),
    AdvancedSetting("stream_image_files", False, TASKS,
                    "Stream images from storage when needed, caching what fits on local disk."),
    AdvancedSetting("skip_unreadable_images", False, TASKS,
                    "With stream_image_files, warn and skip an image that cannot be fetched or decoded "
                    "(false: the trial fails naming it)."),
    AdvancedSetting("max_cache_gb", None, TASKS,
                    "With stream_image_files, the image cache's size bound in GB (null: keep 5% of the disk free).",
                    kind="positive_number"),
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


def _bounds_text(kind: str, low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high:g}"
    return kind


# ----- normalisers for "str" and "json" kinds
_GRID = re.compile(r"^(\d+)\s*[xX]\s*(\d+)$")


def _tile_grid_size(param: Parameter, value: str, task: str) -> str:
    match = _GRID.match(value)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        fail(param.name, f"{show(value)} is not a grid size; allowed: {param.format}")
    return f"{int(match[1])}x{int(match[2])}"


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


def _advanced_settings(param: Parameter, value: Any, task: str) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            fail(param.name, f"{show(value)} is not valid JSON ({error.msg}); allowed: {param.format}")
    if not isinstance(value, Mapping):
        fail(param.name, f"{show(value)} is not a JSON object; allowed: {param.format}")
    settings = {setting.name: setting for setting in ADVANCED_SETTINGS}
    result = {}
    for key, item in value.items():
        check_nested_key(param.name, key, item, settings, task, "advanced setting")
        result[key] = _advanced_value(settings[key], item, f"{param.name}.{key}")
    return result


def _advanced_value(setting: AdvancedSetting, item: Any, where: str) -> Any:
    if setting.kind == "positive_number":
        if item is None:
            return None
        try:
            number = to_float(item)
        except ValueError:
            number = 0.0
        if number <= 0:
            fail(where, f"{show(item)} is not a positive number; allowed: a number > 0 or null")
        return number
    try:
        return to_bool(item)
    except ValueError:
        fail(where, f"{show(item)} is not a bool; allowed: true or false")



# ----- the table
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
              default=15, model_defaults={"yolov5": 30}, **_POSITIVE),
    Parameter("training_batch_size", "int", "Training batch size (defaults fit a 12 GiB GPU).",
              task_defaults={MULTICLASS: 78, MULTILABEL: 78, DETECTION: 2, SEGMENTATION: 2},
              model_defaults={**_VIT_BATCH, "yolov5": 16}, **_POSITIVE),
    Parameter("validation_batch_size", "int", "Validation batch size (defaults fit a 12 GiB GPU).",
              task_defaults={MULTICLASS: 78, MULTILABEL: 78, DETECTION: 1, SEGMENTATION: 1},
              model_defaults={**_VIT_BATCH, "yolov5": 16}, **_POSITIVE),
    Parameter("gradient_accumulation_step", "int", "Steps whose gradients are accumulated before one weight update.",
              default=1, **_POSITIVE),
    Parameter("early_stopping", "bool", "Stop a trial when the primary metric stops improving.", default=True),
    Parameter("early_stopping_patience", "int", "Evaluations with no primary-metric gain before early stopping.",
              default=5, **_POSITIVE),
    Parameter("early_stopping_delay", "int", "Evaluations to wait before tracking the primary metric for early stopping.",
              default=5, **_POSITIVE),
    Parameter("learning_rate", "float", "Initial learning rate.",
              task_defaults={MULTICLASS: 0.01, MULTILABEL: 0.035, DETECTION: 0.005, SEGMENTATION: 0.005},
              model_defaults={"yolov5": 0.01},
              task_model_defaults={**{(MULTICLASS, m): v for m, v in _VIT_LR.items()},
                                   **{(MULTILABEL, m): v for m, v in _VIT_LR_MULTILABEL.items()}},
              **_UNIT),
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
    Parameter("momentum", "float", "Momentum (used by sgd).", default=0.9, **_UNIT),
    Parameter("weight_decay", "float", "Weight decay.", default=1e-4, **_UNIT),
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
    Parameter("distributed", "bool", "Multi-GPU training (None: automatic, all visible GPUs)."),
    Parameter("enable_onnx_normalization", "bool", "Put input normalisation inside the exported ONNX model.",
              default=False),
    Parameter("log_training_metrics", "bool", "Compute and log metrics on the training set.",
              default=False, enable_disable=True),
    Parameter("log_validation_loss", "bool", "Compute and log the validation loss.",
              default=True, enable_disable=True),
    Parameter("advanced_settings", "json", "JSON object of switches and settings: "
              + ", ".join(s.name for s in ADVANCED_SETTINGS) + ".",
              task_defaults={task: {s.name: s.default for s in ADVANCED_SETTINGS if task in s.tasks} for task in TASKS},
              format="JSON object with keys " + ", ".join(s.name for s in ADVANCED_SETTINGS),
              normalise=_advanced_settings),
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
              default=0.5, tasks=DETECTION_TASKS, **_UNIT),
    Parameter("box_detections_per_image", "int", "Maximum detections per image, all classes.",
              default=100, **_POSITIVE, **_NOT_YOLO),
    Parameter("tile_grid_size", "str", "Tile grid 'MxN' for small-object detection (None: no tiling).",
              tasks=(DETECTION,), format="'MxN' with positive ints, e.g. '3x2'", normalise=_tile_grid_size),
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
              **_POSITIVE, **_SAGEMAKER),
    Parameter("num_training_samples", "int", "SageMaker: number of training images (checked against the data).",
              **_POSITIVE, **_SAGEMAKER),
    Parameter("kv_store", "choice", "SageMaker: weight-update mode of multi-machine training (None: one machine).",
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


# ----- functions that read the table
def get_parameter(name: Any, value: Any = None) -> Parameter:
    """Return the Parameter of a key.

    Args:
        name: a training parameter name (ours or a SageMaker one).
        value: the value given with it, named in the message of an unknown key.

    Raises:
        SpecError: for an unknown key, with the nearest known key suggested.
    """
    if isinstance(name, str) and name in PARAMETERS:
        return PARAMETERS[name]
    unknown_key(name, "training parameter", PARAMETERS, value)


def parameters_for(task: str, model_name: str | None = None, *, include_aliases: bool = False) -> list[Parameter]:
    """Return the parameters that apply to a task (and model), in table order.

    Args:
        task: one of ``TASKS``.
        model_name: a model of the task; None lists what applies to any model of the task.
        include_aliases: also list SageMaker spellings of our keys (``epochs``...).

    Returns:
        A list of Parameter.

    Raises:
        SpecError: for an unknown task or a model that does not fit it.

    Example:
        >>> [p.name for p in parameters_for("image_object_detection", "yolov5")][:2]
        ['model_name', 'number_of_epochs']
    """
    task = check_task(task)
    if model_name is not None:
        model_name = check_model(task, model_name)
    return [p for p in PARAMETERS.values()
            if p.applies_to(task, model_name) and (include_aliases or p.maps_to is None)]


def default_value(name: str, task: str, model_name: str | None = None) -> Any:
    """Return the default of a parameter for a task and model.

    Args:
        name: the parameter (a SageMaker alias gives the default of our key).
        task: one of ``TASKS``.
        model_name: a model of the task; None means the task's default model.

    Returns:
        The default (None means "not set / automatic").

    Raises:
        SpecError: for an unknown name, task or model, or a parameter that does not apply.

    Example:
        >>> default_value("learning_rate", "image_classification", "vitb16r224")
        0.0125
    """
    param = get_parameter(name)
    task = check_task(task)
    model_name = check_model(task, model_name if model_name is not None else DEFAULT_MODEL[task])
    if param.maps_to:
        param = PARAMETERS[param.maps_to]
    check_applies(param, ..., task, model_name)
    return param.default_for(task, model_name)


def check_applies(param: Parameter, value: Any, task: str, model_name: str | None) -> None:
    """Raise unless the parameter applies to the task (and the model, when given).

    Args:
        param: the parameter.
        value: the value given, for the message (``...`` when there is none).
        task: the job's task.
        model_name: the model, or None to check the task only.

    Raises:
        SpecError: ``key: value does not apply to ...; it applies only to ...``.
    """
    shown = "" if value is ... else f"{show(value)} "
    if task not in param.tasks:
        message = f"{shown}does not apply to {task}; it applies only to {param.applicability_text()}"
        if param.maps_to:
            message += f"; for {task} use {param.maps_to}"
        fail(param.name, message)
    if model_name is not None and not param.applies_to(task, model_name):
        fail(param.name, f"{shown}does not apply to model {model_name}; it applies only to "
             f"{param.applicability_text()}")


def coerce_value(name: str, value: Any, task: str, model_name: str | None = None) -> Any:
    """Check one key and value for a task (and model) and return the canonical value.

    Raises:
        SpecError: unknown key, key not for this task/model, wrong type or out of range.
    """
    param = get_parameter(name, value)
    check_applies(param, value, task, None)
    value = param.coerce(value, task)
    if model_name is not None:
        check_applies(param, value, task, model_name)
    return value


def check_parameters(task: str, given: Mapping[str, Any], model_name: str | None = None) -> dict[str, Any]:
    """Validate the keys and values a user set and return them coerced, keys as given.

    Model applicability is checked against ``given["model_name"]``, else ``model_name``; when
    both are None (a sweep will choose the model) only the task is checked. SageMaker aliases
    are kept as spelt but must not contradict our key.

    Args:
        task: one of ``TASKS``.
        given: the parameters; a None value means "not set" and is dropped.
        model_name: the model to check against when ``given`` names none.

    Returns:
        A new dict of the given keys with canonical values.

    Raises:
        SpecError: naming the key, the value and what is allowed.
    """
    task = check_task(task)
    if not isinstance(given, Mapping):
        fail("training_parameters", f"{show(given)} is not a mapping of parameter names to values")
    values = {}
    for key, value in given.items():
        if value is None:
            continue
        param = get_parameter(key, value)
        check_applies(param, value, task, None)
        values[key] = param.coerce(value, task)
    model = values.get(MODEL_NAME, model_name)
    if model is not None:
        model = check_model(task, model)
        for key in values:
            check_applies(PARAMETERS[key], given[key], task, model)
    _check_aliases(values)
    return values


def _check_aliases(values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        ours = PARAMETERS[key].maps_to
        if ours and ours in values and values[ours] != value:
            fail(key, f"{show(value)} contradicts {ours}: {show(values[ours])}; {key} is SageMaker's "
                 f"name for {ours}, give one of them")


# SageMaker keys that configure its SSD detector. A job with SageMaker keys and no model_name
# trains that SSD; its resolved parameters then hold these keys (see :func:`uses_sagemaker_ssd`).
SSD_KEYS = ("base_network", "image_shape")


def uses_sagemaker_ssd(params: Mapping[str, Any]) -> bool:
    """Whether resolved parameters describe SageMaker's SSD rather than ``model_name``."""
    return "base_network" in params


def resolve_parameters(task: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Validate training parameters and return every parameter of the task and model.

    Args:
        task: one of ``TASKS``.
        given: what the user set or a sweep sampled; without ``model_name`` the task's default
            model is used. SageMaker aliases are mapped onto our keys.

    Returns:
        A new dict, in table order, with the given values coerced and every other parameter
        that applies to the task and model set to its default.

    Raises:
        SpecError: unknown key (with a suggestion), wrong type, out of range, not in the
            choices, a key that does not apply to the task or model, a SageMaker key that
            contradicts ours, or a cross-field rule (ViT crops, seresnext sizes,
            layers_to_freeze).

    Example:
        >>> resolve_parameters("image_object_detection", {"model_name": "yolov5"})["number_of_epochs"]
        30
    """
    return resolve_with_sampled(task, given, sampled=())


def resolve_with_sampled(task: str, given: Mapping[str, Any], sampled: tuple | frozenset = ()) -> dict[str, Any]:
    """Like :func:`resolve_parameters`, but skip cross-field rules that involve ``sampled`` keys.

    Used to check the fixed part of a search space before its distributions are sampled.
    """
    task = check_task(task)
    model = check_model(task, given.get(MODEL_NAME) or DEFAULT_MODEL[task]) if isinstance(given, Mapping) else None
    values = check_parameters(task, given, model)
    sagemaker_mode = any(PARAMETERS[key].sagemaker for key in values)
    named_model = isinstance(given, Mapping) and given.get(MODEL_NAME) is not None
    if sagemaker_mode and named_model:
        for key in SSD_KEYS:
            if key in values:
                fail(key, f"{show(given[key])} sets up SageMaker's SSD detector, but model_name "
                     f"{show(model)} was given; drop one of them")
    for key in list(values):
        ours = PARAMETERS[key].maps_to
        if ours:
            values.setdefault(ours, values.pop(key))
    resolved = {}
    for param in PARAMETERS.values():
        if param.maps_to or not param.applies_to(task, model):
            continue
        if param.sagemaker and (not sagemaker_mode or (named_model and param.name in SSD_KEYS)):
            continue
        value = param.default_for(task, model)
        if param.name in values:
            value = {**value, **values[param.name]} if param.kind == "json" else values[param.name]
        resolved[param.name] = value
    resolved[MODEL_NAME] = model
    _check_rules(task, model, resolved, frozenset(sampled))
    return resolved


def _check_rules(task: str, model: str, params: Mapping[str, Any], sampled: frozenset) -> None:
    """Cross-field rules; a rule is skipped when a sweep will sample one of its keys."""
    family = model_family(model)
    crops = ("training_crop_size", "validation_crop_size")
    if family == "vit" and not sampled.intersection(crops):
        if params[crops[0]] != params[crops[1]]:
            fail(crops[0], f"{show(params[crops[0]])} differs from validation_crop_size "
                 f"{show(params[crops[1]])}; ViT models ({model}) need equal training and validation crop sizes")
    if family == "seresnext":
        for key in crops:
            required = PARAMETERS[key].default_for(task, model)
            if key not in sampled and params[key] != required:
                fail(key, f"{show(params[key])} is not allowed for seresnext, which takes no arbitrary size; "
                     f"allowed: {required}")
    freeze = params.get("layers_to_freeze")
    groups = FREEZE_LAYER_ORDER.get(family, ())
    if freeze is not None and "layers_to_freeze" not in sampled and groups and freeze > len(groups):
        fail("layers_to_freeze", f"{show(freeze)} is out of range for {model}, which has {len(groups)} "
             f"layer groups; allowed: int in [1, {len(groups)}]")
