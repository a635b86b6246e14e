"""SageMaker mode: a job with SageMaker keys and no model_name takes seed 001's defaults and ranges.

Side by side with Azure mode (the same task, no SageMaker key, or a model named), so a default
or range that leaks from one mode into the other fails here.
"""

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    DETECTION, PARAMETERS, Choice, Uniform, default_value, image_object_detection, is_sagemaker_mode,
    load_job, resolve_parameters,
)

SAGEMAKER = {"base_network": "vgg-16"}  # any SageMaker key, no model_name: SageMaker's SSD
AZURE = {}
NAMED = {"base_network": None, "epochs": 12, "model_name": "fasterrcnn_resnet50_fpn"}  # SageMaker alias, our model

# key: (SageMaker's default from 001_4304b2577ab90c68.txt, Azure's for the task's default model)
DEFAULTS = {
    "number_of_epochs": (30, 15),        # 001 "epochs ... Predeterminado: 30"
    "training_batch_size": (32, 2),      # 001 "mini_batch_size ... Predeterminado: 32"
    "learning_rate": (0.001, 0.005),     # 001 "learning_rate ... Predeterminado: 0.001"
    "nms_iou_threshold": (0.45, 0.5),    # 001 "nms_threshold ... Predeterminado: 0.45"
    "weight_decay": (0.0005, 1e-4),      # 001 "weight_decay ... Predeterminado: 0.0005"
    "early_stopping": (False, True),     # 001 "early_stopping ... Valor predeterminado: False"
    "momentum": (0.9, 0.9),
    "validation_iou_threshold": (0.5, 0.5),  # 001 "overlap_threshold ... Predeterminado: 0.5"
}


def test_the_mode_is_sagemaker_keys_without_a_model():
    assert is_sagemaker_mode(SAGEMAKER) and is_sagemaker_mode({"epochs": "30"})
    assert not is_sagemaker_mode(AZURE) and not is_sagemaker_mode({"learning_rate": 0.1})
    assert not is_sagemaker_mode({"epochs": 30, "model_name": "yolov5"})
    assert not is_sagemaker_mode({"epochs": None})  # None is "not set"


@pytest.mark.parametrize("key", DEFAULTS)
def test_defaults_side_by_side(key):
    sagemaker, azure = DEFAULTS[key]
    assert resolve_parameters(DETECTION, SAGEMAKER)[key] == sagemaker
    assert resolve_parameters(DETECTION, AZURE)[key] == azure
    assert default_value(key, DETECTION, sagemaker_mode=True) == sagemaker
    assert default_value(key, DETECTION) == azure
    # A named model keeps Azure's defaults even with a SageMaker alias given.
    named = resolve_parameters(DETECTION, {k: v for k, v in NAMED.items() if v is not None})
    assert named[key] == (12 if key == "number_of_epochs" else default_value(key, DETECTION, NAMED["model_name"]))


def test_sagemaker_defaults_are_declared_in_the_table():
    declared = {name: dict(p.sagemaker_mode) for name, p in PARAMETERS.items() if p.sagemaker_mode}
    assert declared["learning_rate"] == {"default": 0.001, "minimum_open": True}
    assert declared["weight_decay"] == {"default": 0.0005, "minimum_open": True, "maximum_open": True}
    assert declared["num_classes"] == declared["num_training_samples"] == {"required": True}
    # In SageMaker mode a parameter is a new record; the shared one is unchanged.
    assert PARAMETERS["learning_rate"].in_sagemaker_mode().default_for(DETECTION, "yolov5") == 0.001
    assert PARAMETERS["learning_rate"].default_for(DETECTION, "yolov5") == 0.01


@pytest.mark.parametrize("key, value, allowed", [
    # 001: learning_rate and momentum "número flotante en (0, 1]", weight_decay "(0, 1)".
    ("learning_rate", 0, "float in (0, 1]"),
    ("momentum", 0, "float in (0, 1]"),
    ("weight_decay", 0, "float in (0, 1)"),
    ("weight_decay", 1, "float in (0, 1)"),
])
def test_ranges_side_by_side(key, value, allowed):
    with pytest.raises(SpecError) as info:
        resolve_parameters(DETECTION, {**SAGEMAKER, key: value})
    assert str(info.value) == f"{key}: {value!r} is out of range; allowed: {allowed}"
    assert resolve_parameters(DETECTION, {key: value})[key] == value  # Azure: [0, 1]
    assert resolve_parameters(DETECTION, {**NAMED, key: value, "base_network": None})[key] == value


def test_ranges_hold_in_a_search_space_without_a_model():
    job = image_object_detection(training_data="d")
    job.set_training_parameters(base_network="resnet-50", num_classes=2, num_training_samples=20)
    with pytest.raises(SpecError, match=r"search_space\[0\].learning_rate: uniform\(min_value=0, max_value=0.01\) "
                                        r"can give values in \[0, 0.01\], outside what is allowed; "
                                        r"allowed: float in \(0, 1\]"):
        job.extend_search_space({"learning_rate": Uniform(0, 0.01)})
    job.extend_search_space({"learning_rate": Uniform(0.0001, 0.01), "weight_decay": Choice([0.0005, 0.001])})
    job.set_sweep(sampling_algorithm="random")
    job.validate()
    # The same space with a model named is Azure's: 0 is allowed.
    azure = image_object_detection(training_data="d")
    azure.extend_search_space({"model_name": Choice(["fasterrcnn_resnet18_fpn"]), "learning_rate": Uniform(0, 0.01)})


def test_overlap_threshold_keeps_the_range_of_validation_iou_threshold():
    # 001 allows (0, 1]; it sets our validation_iou_threshold, whose range is [0.1, 1].
    with pytest.raises(SpecError) as info:
        resolve_parameters(DETECTION, {"overlap_threshold": 0.05})
    assert str(info.value) == ("overlap_threshold: 0.05 is out of range; allowed: float in [0.1, 1] "
                               "(overlap_threshold sets validation_iou_threshold, whose range this is)")
    assert resolve_parameters(DETECTION, {"overlap_threshold": "0.1"})["validation_iou_threshold"] == 0.1
    with pytest.raises(SpecError, match=r"overlap_threshold: uniform.*allowed: float in \[0.1, 1\]"):
        image_object_detection(training_data="d").extend_search_space({"overlap_threshold": Uniform(0.05, 0.5)})


def test_num_classes_and_num_training_samples_are_required_there():
    job = image_object_detection(training_data="d")
    job.set_training_parameters(base_network="resnet-50", num_training_samples=100)
    with pytest.raises(SpecError) as info:
        job.validate()
    assert str(info.value) == ("training_parameters.num_classes: missing; a job with SageMaker keys and no "
                               "model_name trains SageMaker's SSD, which requires num_classes (int > 0); add it, "
                               "or set model_name to train another detector")
    job.set_training_parameters(num_classes=3, num_training_samples=None)
    with pytest.raises(SpecError, match="training_parameters.num_training_samples: missing"):
        job.validate()
    job.set_training_parameters(num_training_samples=100)
    job.validate()
    # Not required by our detectors, nor in a subspace that names one.
    named = image_object_detection(training_data="d")
    named.set_training_parameters(epochs=10, model_name="fasterrcnn_resnet18_fpn")
    named.validate()


def test_a_yaml_error_for_a_missing_key_points_at_training_parameters():
    text = """\
task: image_object_detection
training_data: {path: d, type: mltable}
training_parameters:
  base_network: resnet-50
  num_classes: 3
"""
    with pytest.raises(SpecError, match=r"^<yaml>:3: training_parameters.num_training_samples: missing"):
        load_job(text)


def test_kv_store_is_refused_on_one_machine_and_warned_about_on_several():
    text = """\
task: image_object_detection
training_data: {path: d, type: mltable}
training_parameters: {num_classes: 3, num_training_samples: 20, kv_store: dist_sync}
"""
    with pytest.raises(SpecError) as info:
        load_job(text)
    assert str(info.value).startswith(
        "<yaml>:3: training_parameters.kv_store: 'dist_sync' sets how machines share weight updates in "
        "multi-machine training, but this job trains each trial on one machine")
    assert str(info.value).endswith("leave kv_store out, or set properties.node_count_per_trial")
    with pytest.warns(UserWarning, match=r"properties.node_count_per_trial: '2' is accepted but not acted on yet: "
                                         r"each trial trains on one machine \(kv_store has no effect either\)"):
        job = load_job(text + 'properties: {node_count_per_trial: "2"}\n')
    assert job.resolved_training_parameters()["kv_store"] == "dist_sync"
