"""ASHA and Hyperband whose first rung no trial reaches before its last report stop nothing: the job says so
when it is checked, in one line naming the policy, min_resource, the trials' reports and what to change."""

import re
import warnings

import pytest

from automl_nb.spec import AshaPolicy, default_value, load_job

MIN_RESOURCE = AshaPolicy().min_resource  # the default first rung
DETECTION = "image_object_detection"


def _job(policy: str, parameters: str = "", search_space: str = "", limits: str = "",
         task: str = "image_classification") -> str:
    text = f"task: {task}\ntraining_data: {{path: d, type: mltable}}\n"
    text += f"training_parameters: {{{parameters}}}\n" if parameters else ""
    text += f"limits: {{{limits}}}\n" if limits else ""
    text += f"sweep: {{sampling_algorithm: random, early_termination: {{{policy}}}}}\n"
    return text + (f"search_space: [{search_space}]\n" if search_space else "")


def _warnings(text: str) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_job(text)
    return [str(w.message) for w in caught]


LEARNING_RATE = "{learning_rate: {type: uniform, min_value: 0.001, max_value: 0.01}}"


@pytest.mark.parametrize("policy", ["asha", "hyperband"])
def test_too_few_epochs_for_the_first_rung_warns_and_its_advice_silences_it(policy):
    (notice,) = _warnings(_job(f"type: {policy}", f"number_of_epochs: {MIN_RESOURCE}", LEARNING_RATE))
    assert notice.startswith(f"early_termination: {policy} will stop no trial: its first rung is at report "
                             f"{MIN_RESOURCE} (min_resource), but the trials report at most {MIN_RESOURCE} times "
                             f"(once per validation: number_of_epochs {MIN_RESOURCE}, evaluation_frequency 1)")
    above = int(re.search(r"set number_of_epochs above (\d+)", notice).group(1))
    assert above == MIN_RESOURCE and f"or min_resource below {MIN_RESOURCE}" in notice
    assert _warnings(_job(f"type: {policy}", f"number_of_epochs: {above + 1}", LEARNING_RATE)) == []
    # min_resource below the trials' reports: the first rung comes before their last report.
    lower = f"type: {policy}, min_resource: {MIN_RESOURCE - 1}"
    assert _warnings(_job(lower, f"number_of_epochs: {MIN_RESOURCE}", LEARNING_RATE)) == []


def test_reports_are_counted_per_validation_as_the_trials_report():
    # Every third epoch and the last validate: 7 epochs report at 3, 6 and 7, 6 epochs at 3 and 6.
    policy = "type: asha, min_resource: 2, max_resource: 9"
    (notice,) = _warnings(_job(policy, "number_of_epochs: 6, evaluation_frequency: 3", LEARNING_RATE))
    assert "at most 2 times (once per validation: number_of_epochs 6, evaluation_frequency 3)" in notice
    assert notice.endswith("set number_of_epochs above 6 or lower evaluation_frequency, or min_resource below 2")
    assert _warnings(_job(policy, "number_of_epochs: 7, evaluation_frequency: 3", LEARNING_RATE)) == []
    (notice,) = _warnings(_job("type: asha", "number_of_epochs: 1", LEARNING_RATE))
    assert "at most 1 time (" in notice and notice.endswith("set number_of_epochs above 2")  # no min_resource 0


def test_a_search_space_warns_only_when_no_trial_reports_past_the_first_rung():
    epochs = "{{number_of_epochs: {{type: choice, values: [{}]}}, learning_rate: {{type: uniform, min_value: 0.001, " \
             "max_value: 0.01}}}}"
    (notice,) = _warnings(_job("type: asha", search_space=epochs.format(f"1, {MIN_RESOURCE}")))
    assert f"at most {MIN_RESOURCE} times" in notice
    assert _warnings(_job("type: asha", search_space=epochs.format(f"1, {MIN_RESOURCE + 1}"))) == []
    two = epochs.format(1) + ", " + epochs.format(MIN_RESOURCE + 1)  # one subspace reaches it
    assert _warnings(_job("type: asha", search_space=two)) == []
    unknown = "{number_of_epochs: {type: quniform, min_value: 1, max_value: 2, q: 1}}"  # a range: not known here
    assert _warnings(_job(f"type: asha, min_resource: {MIN_RESOURCE + 5}", search_space=unknown)) == []


def test_the_model_default_epochs_and_the_default_max_resource_count():
    """Unset epochs are each model's default; unset max_resource is how many times the job's fixed parameters report
    (what the sweep gives the policy), so a model with more default epochs reports past a rung no trial gets."""
    ours, yolo = default_value("number_of_epochs", DETECTION), default_value("number_of_epochs", DETECTION, "yolov5")
    assert ours < yolo  # what this test needs of the table
    models = "{{model_name: {{type: choice, values: [{}]}}}}"
    (notice,) = _warnings(_job(f"type: asha, min_resource: {ours}", search_space=models.format("fasterrcnn_resnet50_fpn"),
                               task=DETECTION))
    assert f"at most {ours} times" in notice
    (notice,) = _warnings(_job(f"type: asha, min_resource: {ours}", search_space=models.format("yolov5"),
                               task=DETECTION))
    assert notice.endswith(f"max_resource, which is unset and so the number of times the job's own "
                           f"training_parameters report ({ours}), though trials report up to {yolo} times; set "
                           f"max_resource above {ours} (e.g. {yolo}), or number_of_epochs in training_parameters")
    assert _warnings(_job(f"type: asha, min_resource: {ours}, max_resource: {yolo}",
                          search_space=models.format("yolov5"), task=DETECTION)) == []


def test_other_policies_and_automode_planned_epochs_say_nothing():
    assert _warnings(_job("type: bandit, slack_factor: 0.1", "number_of_epochs: 1", LEARNING_RATE)) == []
    # AutoMode plans each model's epochs unless they are fixed: then their reports are known.
    assert _warnings(_job(f"type: asha, min_resource: {MIN_RESOURCE + 50}", limits="max_trials: 4")) == []
    (notice,) = _warnings(_job("type: asha", f"number_of_epochs: {MIN_RESOURCE}", limits="max_trials: 4"))
    assert f"at most {MIN_RESOURCE} times" in notice
