"""SearchSpaceBuilder: widget edits make the same job as the YAML a user would write, checked as typed."""

import pytest

from automl_nb.spec import load_job
from automl_nb.widgets.builder import BuilderChoices, SearchSpaceBuilder, build_job
from automl_nb.widgets.editors import ParameterChoice, ParameterEditor, parse_list, parse_value

CLASSIFICATION_SWEEP = """\
task: image_classification
training_data: {path: data/shapes, type: mltable}
limits: {max_trials: 4, max_concurrent_trials: 2, timeout_minutes: 30}
training_parameters:
  number_of_epochs: 3
  use_pretrained_model: false
search_space:
  - model_name: {type: choice, values: [resnet18, mobilenetv2]}
    learning_rate: {type: uniform, min_value: 0.001, max_value: 0.05}
    optimizer: {type: choice, values: [sgd, adam]}
sweep:
  sampling_algorithm: random
  early_termination: {type: bandit, slack_factor: 0.2, delay_evaluation: 2}
"""

# yolov5 and Faster R-CNN take different keys: one subspace per model (a conditional space).
DETECTION_SWEEP = """\
task: image_object_detection
training_data: {path: data/boxes, type: mltable}
limits: {max_trials: 3}
search_space:
  - model_name: {type: choice, values: [yolov5]}
    optimizer: adam
    model_size: {type: choice, values: [small, medium]}
  - model_name: {type: choice, values: [fasterrcnn_resnet18_fpn]}
    optimizer: adam
    min_size: 64
sweep: {sampling_algorithm: grid}
"""


def edit_classification_sweep(builder: SearchSpaceBuilder) -> None:
    """What a user clicks and types for CLASSIFICATION_SWEEP."""
    builder.training_data.value = "data/shapes"
    builder.models.value = ("resnet18", "mobilenetv2")
    learning_rate = builder.editor("learning_rate")
    learning_rate.mode.value = "uniform"
    learning_rate._inputs["min_value"].value = "0.001"
    learning_rate._inputs["max_value"].value = "5e-2"
    optimizer = builder.editor("optimizer")
    optimizer.mode.value = "choice"
    optimizer._inputs["values"].value = ("sgd", "adam")
    builder.editor("number_of_epochs")._inputs["value"].value = "3"
    builder.editor("use_pretrained_model")._inputs["value"].value = False
    builder.max_trials.value, builder.max_concurrent_trials.value, builder.timeout_minutes.value = "4", "2", "30"
    builder.policy.value = "bandit"
    builder._policy_inputs["slack_factor"].value = "0.2"
    builder._policy_inputs["delay_evaluation"].value = "2"


def test_widget_edits_make_the_job_of_the_yaml():
    builder = SearchSpaceBuilder("image_classification")
    edit_classification_sweep(builder)
    assert builder.job() == load_job(CLASSIFICATION_SWEEP)
    assert builder.yaml.value == builder.job().dump()  # the preview is the job
    assert load_job(builder.yaml.value) == builder.job()
    assert "✓" in builder.status.value and not builder.submit_button.disabled


def test_hyperparameters_that_differ_by_model_make_one_subspace_per_model():
    builder = SearchSpaceBuilder("image_object_detection", training_data="data/boxes")
    builder.models.value = ("yolov5", "fasterrcnn_resnet18_fpn")
    model_size = builder.editor("model_size")
    model_size.mode.value = "choice"
    model_size._inputs["values"].value = ("small", "medium")
    builder.editor("min_size")._inputs["value"].value = "64"
    builder.editor("optimizer")._inputs["value"].value = "adam"
    builder.max_trials.value = "3"
    builder.sampling_algorithm.value = "grid"
    assert builder.job() == load_job(DETECTION_SWEEP)


def test_one_model_and_fixed_values_make_a_single_trial():
    job = build_job(BuilderChoices("image_classification", "data/shapes", models=("resnet18",),
                                   parameters=[ParameterChoice("learning_rate", value="0.02"),
                                               ParameterChoice("number_of_epochs", value="")]))
    assert job.run_mode == "single"
    assert job.training_parameters == {"learning_rate": 0.02, "model_name": "resnet18"}  # "" leaves the default


def test_untouched_editors_leave_every_default_to_the_spec():
    builder = SearchSpaceBuilder("image_classification", training_data="data/shapes")
    builder.models.value = ("vitb16r224",)
    assert builder.job().training_parameters == {"model_name": "vitb16r224"}  # not sgd/0.01/15 written out
    assert "default: 0.01" in builder.editor("learning_rate")._inputs["value"].placeholder


def test_mistakes_show_the_specs_message_as_you_type():
    builder = SearchSpaceBuilder("image_classification", training_data="data/shapes")
    learning_rate = builder.editor("learning_rate")
    learning_rate.mode.value = "uniform"
    learning_rate._inputs["min_value"].value = "0.001"
    learning_rate._inputs["max_value"].value = "2"
    assert "outside what is allowed; allowed: float in [0, 1]" in learning_rate.status.value
    assert "✗ learning_rate" in builder.status.value and builder.submit_button.disabled
    learning_rate._inputs["max_value"].value = "0.1"
    assert learning_rate.status.value == "" and not builder.submit_button.disabled
    builder.training_data.value = ""
    assert "training_data: missing" in builder.status.value


def test_a_distribution_an_int_cannot_take_is_refused():
    editor = ParameterEditor("number_of_epochs", "image_classification")
    assert "uniform" not in editor.mode.options and "quniform" in editor.mode.options
    editor.mode.value = "quniform"
    editor._inputs["min_value"].value, editor._inputs["max_value"].value, editor._inputs["q"].value = "2", "10", "0.5"
    assert "use choice, randint or a q-distribution with an integer q" in editor.check()
    editor._inputs["q"].value = "1"
    assert editor.check() is None


def test_a_job_loads_into_the_builder_and_comes_back_unchanged():
    for text in (CLASSIFICATION_SWEEP, DETECTION_SWEEP):
        job = load_job(text)
        assert SearchSpaceBuilder(job=job).job() == job


def test_changing_the_task_offers_its_models_and_parameters():
    builder = SearchSpaceBuilder("image_classification")
    builder.task.value = "image_instance_segmentation"
    assert builder.models.options[0].startswith("maskrcnn_")
    assert "mask_pixel_score_threshold" in builder.add_parameter.options
    assert "training_crop_size" not in builder.add_parameter.options
    # validated but not acted on yet: not offered
    assert not {"distributed", "enable_onnx_normalization"} & set(builder.add_parameter.options)
    builder.add_parameter.value = "mask_pixel_score_threshold"
    assert "mask_pixel_score_threshold" in builder._editors and builder.add_parameter.value == ""


def test_the_cell_text_is_a_runnable_automl_cell():
    from automl_nb.magics.cell import job_from_cell

    builder = SearchSpaceBuilder("image_classification")
    edit_classification_sweep(builder)
    head, body = builder.cell().split("\n", 1)
    assert head.startswith("%%automl") and job_from_cell(body, {}) == builder.job()


@pytest.mark.parametrize("text, value", [("0.01", 0.01), ("1e-4", 1e-4), ("3", 3), ("true", True), ("adam", "adam"),
                                         ("", None), ("3x2", "3x2")])
def test_typed_values_read_as_yaml(text, value):
    assert parse_value(text) == value


def test_typed_lists():
    assert parse_list("600, 800") == [600, 800] and parse_list("[sgd, adam]") == ["sgd", "adam"]
