"""SearchSpaceBuilder: widget edits make the same job as the YAML a user would write, checked as typed."""

from html import escape

import ipywidgets as widgets
import pytest
import yaml

from automl_nb.errors import SpecError
from automl_nb.spec import PARAMETERS, Choice, load_job
from automl_nb.widgets.builder import BuilderChoices, SearchSpaceBuilder, build_job, check_choices
from automl_nb.widgets.checkboxes import ChoiceCheckboxes
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
    assert "distributed" in builder.add_parameter.options  # acted on now (DDP): offered
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


# -- every problem at once, and a preview that shows only what the fields hold ----------------
def uncommented(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def test_every_invalid_field_is_listed_at_once():
    builder = SearchSpaceBuilder("image_classification")  # no training data
    builder.update({"learning_rate": 1.5, "number_of_epochs": 0, "max_trials": 0,
                    "early_termination": {"type": "bandit", "delay_evaluation": -2, "slack_factor": -1}})
    errors = builder.errors
    assert [error.key for error in errors] == ["training_data", "learning_rate", "number_of_epochs", "max_trials",
                                               "early_termination.delay_evaluation",
                                               "early_termination.slack_factor"]
    by_key = {error.key: error for error in errors}
    assert by_key["learning_rate"].value == 1.5 and by_key["max_trials"].value == 0
    for error in errors[1:]:  # the spec's own message: key, the value held, what is allowed
        assert error.message.startswith(error.key + ": ") and repr(error.value) in error.message
        assert "allowed: " in error.message
    assert "allowed: " + PARAMETERS["learning_rate"].allowed_text() in by_key["learning_rate"].message
    for error in errors:  # all of them in the status line, and Submit is off
        assert escape(f"✗ {error.message}") in builder.status.value
    assert builder.submit_button.disabled
    with pytest.raises(SpecError) as raised:
        builder.job()
    assert str(raised.value).splitlines() == [error.message for error in errors]


def test_the_job_as_a_whole_is_checked_once_every_field_is_valid():
    builder = SearchSpaceBuilder("image_classification", training_data="data/shapes")
    builder.update({"learning_rate": {"type": "uniform", "min_value": 0.001, "max_value": 0.05},
                    "sampling_algorithm": "grid"})
    [error] = builder.errors
    assert error.value is None and "grid" in error.message
    assert error.message in builder.to_yaml() and "learning_rate: {type: uniform" in builder.to_yaml()


def test_the_preview_never_shows_a_value_the_field_does_not_hold():
    builder = SearchSpaceBuilder("image_classification", training_data="data/shapes")
    builder.set("learning_rate", "1")       # typing "1.5": first "1" ...
    assert "learning_rate: 1.0" in builder.yaml.value
    builder.set("learning_rate", "1.5")     # ... then "1.5", out of range
    preview = builder.yaml.value
    assert preview == builder.to_yaml() and builder.values["learning_rate"] == 1.5
    assert "# learning_rate: 1.5 is out of range; allowed: float in [0, 1]" in preview
    assert "learning_rate" not in uncommented(preview) and "1.0" not in uncommented(preview)
    builder.update({"max_trials": 0, "max_concurrent_trials": 4})
    limits = yaml.safe_load(uncommented(builder.yaml.value))["limits"]
    assert limits == {"timeout_minutes": 10080}  # no default max_trials, no concurrency capped by it
    builder.update({"learning_rate": 0.02, "max_trials": 2})
    assert builder.yaml.value.startswith("# max_concurrent_trials: 4 is capped to max_trials (2)\n")
    assert load_job(builder.yaml.value) == builder.job()


def test_a_policy_the_spec_refuses_as_a_whole_is_one_error():
    builder = SearchSpaceBuilder("image_classification", training_data="data/shapes")
    builder.update({"max_trials": 4, "early_termination": {"type": "bandit"}})  # neither slack given
    [error] = builder.errors
    assert error.key == "early_termination" and "exactly one of slack_factor and slack_amount" in error.message
    assert "early_termination" not in uncommented(builder.to_yaml())


def test_check_choices_needs_no_widgets():
    checked = check_choices(BuilderChoices("image_classification", "data/shapes", max_trials="0",
                                           parameters=[ParameterChoice("learning_rate", value="2")]))
    assert [error.key for error in checked.errors] == ["learning_rate", "max_trials"] and checked.job is None
    assert check_choices(BuilderChoices("image_classification", "data/shapes")).job is not None


# -- choices as checkboxes -------------------------------------------------------------------
def test_checkboxes_hold_a_tuple_of_options_in_their_order():
    boxes = ChoiceCheckboxes(["sgd", "adam", "adamw"], value=("adam",), description="values")
    checkboxes = [child for child in boxes.children if isinstance(child, widgets.Checkbox)]
    assert [box.value for box in checkboxes] == [False, True, False]
    checkboxes[2].value = True
    checkboxes[0].value = True
    assert boxes.value == ("adam", "adamw", "sgd")  # the order ticked: a choice's values keep their order
    checkboxes[1].value = False
    boxes.value = ("adamw", "sgd")
    assert boxes.value == ("adamw", "sgd") and [box.value for box in checkboxes] == [True, False, True]
    with pytest.raises(Exception, match="not among the options"):
        boxes.value = ("rmsprop",)
    boxes.options = ("adamw", "rmsprop")
    assert boxes.value == ("adamw",)


def test_ticked_choices_round_trip_into_the_search_space():
    builder = SearchSpaceBuilder("image_classification", training_data="data/shapes")
    ticks = {box.description: box for box in builder.models.children if isinstance(box, widgets.Checkbox)}
    ticks["resnet18"].value = True
    ticks["mobilenetv2"].value = True
    optimizer = builder.editor("optimizer")
    optimizer.mode.value = "choice"
    [values] = optimizer.fields_box.children
    assert isinstance(values, ChoiceCheckboxes) and values.options == PARAMETERS["optimizer"].allowed_choices(
        "image_classification")
    for box in values.children:
        if isinstance(box, widgets.Checkbox):
            box.value = box.description in ("sgd", "adam")
    pretrained = builder.editor("use_pretrained_model")
    pretrained.mode.value = "choice"
    assert pretrained.fields_box.children[0].options == (True, False)
    builder.max_trials.value = "4"
    assert builder.errors == []
    job = load_job(builder.to_yaml())  # the project's own loader accepts the preview
    assert job == builder.job()
    [subspace] = job.search_space
    assert subspace["model_name"] == Choice(("resnet18", "mobilenetv2"))  # the order ticked
    assert subspace["optimizer"] == Choice(("sgd", "adam"))
    assert subspace["use_pretrained_model"] == Choice((True,))
    assert SearchSpaceBuilder(job=job).job() == job  # and back into the checkboxes


# -- the public API --------------------------------------------------------------------------
def test_the_public_api_fills_and_reads_the_form():
    builder = SearchSpaceBuilder("image_classification")
    builder.update({"training_data": "data/shapes", "models": ["resnet18", "mobilenetv2"],
                    "learning_rate": {"type": "uniform", "min_value": 0.001, "max_value": 0.05},
                    "optimizer": {"type": "choice", "values": ["SGD", "adam"]},  # canonical spelling
                    "number_of_epochs": 3, "use_pretrained_model": False,
                    "max_trials": 4, "max_concurrent_trials": 2, "timeout_minutes": 30,
                    "early_termination": {"type": "bandit", "slack_factor": 0.2, "delay_evaluation": 2}})
    assert builder.errors == [] and builder.summary() == "✓ the job is valid"
    assert builder.job() == load_job(CLASSIFICATION_SWEEP)
    assert builder.to_yaml() == builder.job().dump() == builder.yaml.value
    values = builder.values
    assert values["optimizer"] == {"type": "choice", "values": ["sgd", "adam"]} and values["max_trials"] == 4
    assert values["learning_rate"] == {"type": "uniform", "min_value": 0.001, "max_value": 0.05}
    for key, value in values.items():  # set(key, values[key]) changes nothing
        builder.set(key, value)
    assert builder.values == values and builder.job() == load_job(CLASSIFICATION_SWEEP)
    builder.set("number_of_epochs", None)  # None: empty again, the default applies
    assert "number_of_epochs" not in builder.job().training_parameters


def test_the_public_api_refuses_what_no_field_can_hold():
    builder = SearchSpaceBuilder("image_classification", training_data="data/shapes")
    with pytest.raises(SpecError, match="did you mean 'max_trials'"):
        builder.set("max_trial", 4)
    with pytest.raises(SpecError, match="optimizer: 'adagrad' is not allowed; allowed: one of"):
        builder.set("optimizer", "adagrad")
    with pytest.raises(SpecError, match="model_name: 'yolov5' is not a model for image_classification"):
        builder.set("models", ["yolov5"])
    with pytest.raises(SpecError, match="model_size: 'small' does not apply to image_classification; it applies to "):
        builder.set("model_size", "small")
    with pytest.raises(SpecError, match="early_termination.type"):
        builder.set("early_termination", {"type": "pbt"})
    assert builder.errors == []  # nothing half-set


def test_the_summary_is_plain_text():
    builder = SearchSpaceBuilder("image_classification")
    builder.set("learning_rate", 1.5)
    summary = builder.summary()
    assert summary.splitlines() == [f"✗ {error.message}" for error in builder.errors] and "<" not in summary
