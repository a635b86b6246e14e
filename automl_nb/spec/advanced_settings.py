"""The keys of the ``advanced_settings`` JSON object (``AdvancedSetting`` records) and their check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from automl_nb.spec._checks import check_nested_key, fail, show, to_bool, to_float
from automl_nb.spec.tasks import DETECTION_TASKS, TASKS

if TYPE_CHECKING:
    from automl_nb.spec.parameter import Parameter


@dataclass(frozen=True)
class AdvancedSetting:
    """One key inside the ``advanced_settings`` JSON string: a bool switch, or a positive number."""

    name: str
    default: bool | float | None
    tasks: tuple[str, ...]
    description: str
    kind: str = "bool"  # "bool", "positive_number", "positive_integer" or "url" (null allowed: the default)


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
    AdvancedSetting("shared_cache_url", None, TASKS,
                    "With stream_image_files, an object store URL (s3://, gs://, abfs://) holding an image cache "
                    "that every worker shares: a shard one worker decoded, the others download (null: "
                    "$AUTOML_NB_SHARED_IMAGE_CACHE, else a run on a URL shares <run>/image-cache, else none). "
                    "Our extension.", kind="url"),
    AdvancedSetting("box_batch_size_per_image", None, DETECTION_TASKS,
                    "Faster/Mask R-CNN: proposals sampled per image to train the box (and mask) head; torchvision's "
                    "box_batch_size_per_image (null: its 512). Small images hold few objects: 64 trains several "
                    "times faster on a CPU. Our extension.", kind="positive_integer"),
)


def normalise_advanced_settings(param: Parameter, value: Any, task: str) -> dict:
    """The ``advanced_settings`` normaliser of the table: a JSON object (or its text) checked key by key.

    Raises:
        SpecError: not a JSON object, an unknown key or one of another task, or a bad value.
    """
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
    if setting.kind == "url":
        if item is None:
            return None
        if not isinstance(item, str):
            fail(where, f"{show(item)} is not a URL; allowed: s3://, gs:// or abfs:// URL, or null")
        from automl_nb.errors import AutoMLError
        from automl_nb.object_store import check_url

        try:
            return check_url(item, where, "an image cache", otherwise="")
        except AutoMLError as error:
            fail(where, str(error).removeprefix(f"{where}: "))
    if setting.kind == "positive_integer":
        if item is None:
            return None
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            fail(where, f"{show(item)} is not a positive integer; allowed: an integer >= 1 or null")
        return item
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
