"""YAML I/O: the seed example, round trips, and errors that point at lines."""

import warnings

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    BanditPolicy, Choice, Input, LogNormal, LogUniform, MedianStoppingPolicy, Normal, QLogNormal, QLogUniform,
    QNormal, QUniform, Randint, Sweep, TruncationSelectionPolicy, Uniform, image_classification,
    image_classification_multilabel, image_instance_segmentation, image_object_detection, load_job,
)

SPEC_EXAMPLE = """\
task: image_object_detection
target_column_name: label
training_data: {path: data/training-mltable-folder, type: mltable}
validation_data: {path: data/validation-mltable-folder, type: mltable}
limits: {timeout_minutes: 60, max_trials: 10, max_concurrent_trials: 2}
sweep:
  sampling_algorithm: random
  early_termination: {type: bandit, evaluation_interval: 2, slack_factor: 0.2, delay_evaluation: 6}
search_space:
  - model_name: {type: choice, values: [yolov5]}
    learning_rate: {type: uniform, min_value: 0.0001, max_value: 0.01}
    model_size: {type: choice, values: [small, medium]}
  - model_name: {type: choice, values: [fasterrcnn_resnet50_fpn]}
    learning_rate: {type: uniform, min_value: 0.0001, max_value: 0.001}
    optimizer: {type: choice, values: [sgd, adam, adamw]}
    min_size: {type: choice, values: [600, 800]}
training_parameters: {early_stopping: true, evaluation_frequency: 1}
"""


def test_spec_example_loads_as_is():
    job = load_job(SPEC_EXAMPLE)
    job.validate()
    assert job.task == "image_object_detection" and job.primary_metric == "mean_average_precision"
    assert job.training_data == Input("data/training-mltable-folder", "mltable")
    assert job.validation_data == Input("data/validation-mltable-folder", "mltable")
    assert (job.limits.timeout_minutes, job.limits.max_trials, job.limits.max_concurrent_trials) == (60, 10, 2)
    assert job.sweep == Sweep("random", BanditPolicy(evaluation_interval=2, slack_factor=0.2, delay_evaluation=6))
    assert job.search_space == [
        {"model_name": Choice(["yolov5"]), "learning_rate": Uniform(0.0001, 0.01), "model_size": Choice(["small", "medium"])},
        {"model_name": Choice(["fasterrcnn_resnet50_fpn"]), "learning_rate": Uniform(0.0001, 0.001),
         "optimizer": Choice(["sgd", "adam", "adamw"]), "min_size": Choice([600, 800])},
    ]
    assert job.training_parameters == {"early_stopping": True, "evaluation_frequency": 1}
    assert job.run_mode == "sweep"


def test_azure_cli_header_and_folded_advanced_settings():
    text = """\
$schema: https://azuremlschemas.azureedge.net/latest/autoMLJob.schema.json
type: automl
experiment_name: dpv2-cli-automl-image-object-detection-experiment
description: An Image Object Detection job using fridge items dataset
compute: azureml:gpu-cluster
task: image_object_detection
log_verbosity: debug
primary_metric: mean_average_precision
target_column_name: label
training_data:
  path: data/training-mltable-folder
  type: mltable
training_parameters:
  model_name: yolov5
  advanced_settings: >
    {"apply_mosaic_for_yolo": false}
  checkpoint_run_id : "target_checkpoint_run_id"
  weight_decay: 1e-4
"""
    with pytest.warns(UserWarning) as caught:
        job = load_job(text)
    messages = [str(w.message) for w in caught]
    assert any("compute 'azureml:gpu-cluster' is not a Dask scheduler address" in m for m in messages)
    assert any("checkpoint_run_id: 'target_checkpoint_run_id' is not a local trial folder" in m for m in messages)
    assert job.training_parameters["advanced_settings"] == {"apply_mosaic_for_yolo": False}
    assert job.training_parameters["weight_decay"] == 1e-4
    assert job.training_parameters["checkpoint_run_id"] == "target_checkpoint_run_id"
    assert job.schema.endswith("autoMLJob.schema.json") and job.log_verbosity == "debug"
    assert job.scheduler_address() is None
    with pytest.warns(UserWarning):
        assert load_job(job.dump()) == job


def _jobs():
    jobs = {}
    job = image_classification(training_data="data/train.jsonl", name="every-distribution")
    job.set_limits(max_trials=20, max_concurrent_trials=4, timeout_minutes=120)
    job.extend_search_space({
        "model_name": Choice(["resnet50", "mobilenetv2"]),
        "learning_rate": Uniform(0.001, 0.1),
        "weight_decay": LogUniform(-9, -3),
        "number_of_epochs": QUniform(5, 20, 1),
        "training_batch_size": QLogUniform(2, 4, 8),
        "momentum": Normal(0.9, 0.05),
        "beta1": LogNormal(-0.1, 0.05),
        "validation_batch_size": QNormal(32, 8, 4),
        "gradient_accumulation_step": QLogNormal(1, 0.5, 1),
        "number_of_workers": Randint(4),
        "optimizer": Choice(["sgd", "adamw"]),
        "nesterov": Choice([True, False]),
    })
    job.set_sweep(sampling_algorithm="bayesian", early_termination=MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5))
    jobs["classification-every-distribution"] = job

    job = image_classification_multilabel(training_data=Input("data/ml", "mltable"), validation_data=Input("data/ml-valid"))
    job.set_training_parameters(number_of_epochs=3, log_training_metrics="Enable", weighted_loss=2)
    job.extend_search_space([
        {"model_name": Choice(["vitb16r224"]), "learning_rate": Choice([0.01, 0.02])},
        {"model_name": Choice(["seresnext", "resnet18"]), "layers_to_freeze": Choice([1, 2])},
    ])
    job.set_sweep(sampling_algorithm="grid",
                  early_termination=TruncationSelectionPolicy(truncation_percentage=20, exclude_finished_jobs=True))
    job.set_limits(max_trials=8)
    jobs["multilabel-grid-truncation"] = job

    job = image_object_detection(training_data="data/od", validation_data="data/od-valid", experiment_name="sm")
    job.set_training_parameters(epochs=12, mini_batch_size=8, nms_threshold=0.45, base_network="resnet-50",
                                lr_scheduler_step="10,20", optimizer="rmsprop", freeze_layer_pattern="^(conv1_|conv2_).*",
                                num_classes=4, num_training_samples=100, image_shape=512)
    jobs["detection-sagemaker"] = job

    job = image_instance_segmentation(training_data="data/seg", validation_data_size=0.25, name="seg", tags={"owner": "me", "n": 3},
                                      cluster="tcp://127.0.0.1:8786", description="masks", log_verbosity="Info",
                                      schema="https://azuremlschemas.azureedge.net/latest/autoMLJob.schema.json",
                                      display_name="Segmentation")
    job.set_training_parameters(model_name="maskrcnn_resnet50_fpn", image_type="PNG", export_as_image=True)
    jobs["segmentation-metadata"] = job

    job = image_object_detection(training_data="data/od", target_column_name="objects")
    job.set_training_parameters(advanced_settings='{"apply_mosaic_for_yolo": false, "stream_image_files": true}',
                                tile_grid_size="3X2", tile_overlap_ratio=0.3)
    job.set_limits(max_trials=5)
    job.extend_search_space([{"model_name": Choice(["yolov5"]), "model_size": Choice(["small", "extra_large"]),
                              "image_size": QUniform(320, 640, 32), "multi_scale": Choice([0, 1])}])
    job.set_sweep(sampling_algorithm="random", early_termination=BanditPolicy(slack_amount=0.05, evaluation_interval=3))
    jobs["detection-yolo-tiling"] = job

    jobs["single-trial"] = image_classification(training_data="data/train")
    job = image_object_detection(training_data="d", compute="tcp://10.1.2.3:8786")
    job.set_limits(max_trials=12, max_concurrent_trials=3)
    jobs["automode-compute-address"] = job
    job = image_classification(training_data="d")
    job.set_training_parameters(model_name="vitl16r224", training_crop_size=288, validation_crop_size=288,
                                learning_rate_scheduler="step", step_lr_gamma=0.1, checkpoint_frequency=2)
    jobs["vit-crops"] = job
    return jobs


JOBS = _jobs()


@pytest.mark.parametrize("name", list(JOBS))
def test_round_trip(name):
    job = JOBS[name]
    job.validate()
    text = job.dump()
    loaded = load_job(text)
    assert loaded == job
    assert type(loaded) is type(job)
    assert loaded.dump() == text  # stable text
    assert loaded.training_parameters == job.training_parameters
    assert loaded.search_space == job.search_space


def test_round_trip_keeps_sagemaker_spelling():
    loaded = load_job(JOBS["detection-sagemaker"].dump())
    assert loaded.training_parameters["epochs"] == 12 and "number_of_epochs" not in loaded.training_parameters
    assert loaded.resolved_training_parameters()["number_of_epochs"] == 12


def test_dump_is_readable_yaml():
    text = JOBS["detection-yolo-tiling"].dump()
    lines = text.splitlines()
    assert lines[:2] == ["type: automl", "task: image_object_detection"]
    assert "training_data: {path: data/od, type: mltable}" in lines
    assert "- model_name: {type: choice, values: [yolov5]}" in lines
    assert "  early_termination: {type: bandit, evaluation_interval: 3, delay_evaluation: 0, slack_amount: 0.05}" in lines


# ----- errors point at lines
def _error(text):
    with pytest.raises(SpecError) as info:
        load_job(text)
    return str(info.value)


def test_training_parameter_error_line():
    text = SPEC_EXAMPLE.replace("training_parameters: {early_stopping: true, evaluation_frequency: 1}",
                                "training_parameters:\n  early_stopping: true\n  learning_rate: 1.5\n")
    assert _error(text) == "<yaml>:19: learning_rate: 1.5 is out of range; allowed: float in [0, 1]"


def test_search_space_error_line():
    text = SPEC_EXAMPLE.replace("min_size: {type: choice, values: [600, 800]}", "min_size: {type: uniform, min_value: 600, max_value: 800}")
    assert _error(text).startswith("<yaml>:16: search_space[1].min_size: uniform gives floats but min_size is an int")
    text = SPEC_EXAMPLE.replace("    model_size:", "    min_sise:")
    assert _error(text).startswith("<yaml>:12: search_space[0].min_sise: unknown training parameter; did you mean 'min_size'?")
    text = SPEC_EXAMPLE.replace("type: uniform, min_value: 0.0001, max_value: 0.001", "type: unifrom, min_value: 0.0001, max_value: 0.001")
    assert _error(text).startswith("<yaml>:14: search_space[1].learning_rate: type: 'unifrom' is not a distribution")


def test_applicability_error_line_names_key():
    text = SPEC_EXAMPLE.replace("{early_stopping: true,", "{early_stopping: true, training_crop_size: 224,")
    message = _error(text)
    assert message.startswith("<yaml>:17: training_crop_size: 224 does not apply to image_object_detection")
    assert "image_classification" in message


def test_top_level_and_section_error_lines():
    assert _error(SPEC_EXAMPLE.replace("limits:", "limit:")) == "<yaml>:5: limit: unknown job key; did you mean 'limits'?"
    assert _error(SPEC_EXAMPLE.replace("max_trials: 10", "max_trials: 0")).startswith("<yaml>:5: max_trials: 0 is out of range")
    assert _error(SPEC_EXAMPLE.replace("sampling_algorithm: random", "sampling_algorithm: randm")).startswith(
        "<yaml>:7: sampling_algorithm: 'randm' is not allowed")
    assert _error(SPEC_EXAMPLE.replace("slack_factor: 0.2", "slack_factor: -1")).startswith(
        "<yaml>:8: slack_factor: -1 is out of range")
    assert _error(SPEC_EXAMPLE.replace("task: image_object_detection", "task: image_detection")).startswith(
        "<yaml>:1: task: 'image_detection' is not a task")
    assert _error(SPEC_EXAMPLE.replace("type: mltable}\nvalidation", "type: table}\nvalidation")).startswith(
        "<yaml>:3: training_data.type: 'table' is not an input type")


def test_block_style_policy_error_line():
    text = """\
task: image_classification
training_data: {path: d}
search_space:
  - learning_rate: {type: uniform, min_value: 0.01, max_value: 0.1}
sweep:
  sampling_algorithm: random
  early_termination:
    type: truncation_selection
    evaluation_interval: 1
    truncation_percentage: 120
"""
    assert _error(text).startswith("<yaml>:10: truncation_percentage: 120 is out of range; allowed: int in [1, 99]")


def test_validation_error_lines():
    text = "task: image_classification\ntraining_data: {path: d}\nsearch_space:\n  - learning_rate: {type: choice, values: [0.1]}\n"
    assert _error(text) == ("<yaml>:3: search_space: needs a sweep, which is missing; "
                            "add sweep: {sampling_algorithm: random | grid | bayesian}")
    text = "task: image_classification\ntraining_data: {path: d}\ntraining_parameters:\n  training_crop_size: 300\n"
    assert _error(text).startswith("<yaml>:4: training_parameters.training_crop_size: 300 is not allowed for seresnext")
    text = "task: image_classification\ntraining_data: {path: d}\nsweep: {sampling_algorithm: grid}\n"
    assert _error(text).startswith("<yaml>:3: sweep: grid sampling needs a search_space")


def test_yaml_syntax_error_line_and_column():
    message = _error("task: image_classification\ntraining_data: {path: d\nlimits: {max_trials: 2}\n")
    assert message.startswith("<yaml>:3:") and "YAML syntax error" in message
    message = _error("task: image_classification\n  bad: indent\n")
    assert message.startswith("<yaml>:2:") and "YAML syntax error" in message


def test_duplicate_key():
    assert _error("task: image_classification\ntraining_data: {path: d}\ntask: image_classification\n") == \
        "<yaml>:3: task: duplicate key"


def test_not_a_mapping_and_missing_task():
    assert _error("- 1\n- 2\n").startswith("<yaml>:1: job: [1, 2] is not a mapping")
    assert _error("training_data: {path: d}\n").startswith("<yaml>:1: task: missing")
    assert _error("type: command\ntask: image_classification\n").startswith("<yaml>:1: type: 'command' is not allowed")


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "job.yml"
    path.write_text(SPEC_EXAMPLE.replace("evaluation_frequency: 1", "evaluation_frequency: 0"))
    with pytest.raises(SpecError) as info:
        load_job(path)
    assert str(info.value) == f"{path}:17: evaluation_frequency: 0 is out of range; allowed: int > 0"
    with pytest.raises(SpecError, match="no such file"):
        load_job(str(tmp_path / "missing.yml"))


def test_no_warnings_for_spec_example():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_job(SPEC_EXAMPLE)
