"""The steering bar's "More" controls on scripted runs (in-process, nothing trains): the clone form,
the live limits and the narrowed space each log their request, which the next resume applies (a
clone runs with the edited value, a raised max_trials runs more trials, new samples fall in the
narrowed space); a bad value is refused with its message and nothing is logged."""

import re

import pytest

from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import load_job
from automl_nb.sweep import load_run
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.sweep.steering import SteeringLog
from automl_nb.testing import ScriptedTrial
from automl_nb.widgets.snapshot import SnapshotReader
from automl_nb.widgets.steering_bar import SteeringBar

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: 2, max_concurrent_trials: 1}}
sweep: {{sampling_algorithm: random}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: uniform, min_value: 0.001, max_value: 0.1}}
    optimizer: {{type: choice, values: [sgd, adam, adamw]}}
training_parameters: {{number_of_epochs: 2}}
"""
SCRIPT = ScriptedTrial(lambda params: [params["learning_rate"] * epoch for epoch in range(1, 9)])
LOGGED = r"{what}: request \w+ logged; applied when the run resumes"


@pytest.fixture(autouse=True)
def no_summary(monkeypatch):
    monkeypatch.setattr("automl_nb.sweep.report.write_summary", lambda run: None)  # the end's plots: not tested here


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("steer-bar-data")
    make_dataset("image_classification", 12, 32, folder, seed=0)
    return folder


@pytest.fixture
def finished(data, tmp_path):
    """A finished scripted sweep of two trials, and its steering bar as the dashboard shows it."""
    run = load_job(JOB.format(data=data)).submit(tmp_path / "run", check_data=False,
                                                  executor=InProcessExecutor(SCRIPT))
    assert run.wait(60, report=None) == "Completed"
    bar = SteeringBar(run)
    bar.update(SnapshotReader(run).take())
    yield run, bar
    for widget in bar.widgets():
        widget.close()


def test_clone_limits_and_narrow_from_the_bar_are_applied_by_the_resume(finished):
    run, bar = finished
    source = next(t for t in run.trials() if t.trial_id == "1")
    # The clone form: a field per swept hyperparameter, prefilled with the chosen trial's values.
    bar.clone.trial.value = "1"
    assert list(bar.clone.fields) == ["learning_rate", "optimizer"]
    assert bar.clone.fields["learning_rate"].value == str(source.sampled["learning_rate"])
    assert bar.clone.fields["optimizer"].value == source.sampled["optimizer"]
    bar.clone.fields["learning_rate"].value = "1.23e-2"  # YAML reads it as text; the form as the rate's float
    bar.clone.other.value = "number_of_epochs=3"
    bar.clone.button.click()
    assert re.fullmatch(LOGGED.format(what=r"clone trial 1 learning_rate=0\.0123 number_of_epochs=3"),
                        bar.message.value)
    # The limits, prefilled with the effective ones; Apply asks for the changed one only.
    assert {key: box.value for key, box in bar.limits.boxes.items()} == run.store.load_job().limits.to_dict()
    bar.limits.boxes["max_trials"].value = 4
    bar.limits.button.click()
    assert re.fullmatch(LOGGED.format(what="limits max_trials=4"), bar.message.value)
    # The space as YAML, edited to a narrower rate and one optimizer.
    assert "learning_rate: {type: uniform, min_value: 0.001, max_value: 0.1}" in bar.narrow.text.value
    bar.narrow.text.value = (bar.narrow.text.value.replace("min_value: 0.001, max_value: 0.1", "min_value: 0.05, "
                                                           "max_value: 0.06").replace("[sgd, adam, adamw]", "[adamw]"))
    bar.narrow.button.click()
    assert re.fullmatch(LOGGED.format(what="narrow the search space"), bar.message.value)
    assert [(r["kind"], r["outcome"]) for r in run.steering()] == [("clone", "pending"), ("limits", "pending"),
                                                                    ("narrow", "pending")]
    assert run.steering()[1]["limits"] == {"max_trials": 4}

    resumed = load_run(run.folder).resume(check_data=False, executor=InProcessExecutor(SCRIPT))
    assert resumed.wait(60, report=None) == "Completed"
    assert [r["outcome"] for r in resumed.steering()] == ["applied"] * 3
    trials = {t.trial_id: t for t in resumed.trials()}
    clone = [t for t in trials.values() if t.origin and t.origin["kind"] == "clone"]
    assert len(clone) == 1 and clone[0].origin["source"] == "1" and clone[0].status == "Completed"
    assert clone[0].parameters["learning_rate"] == 0.0123 and clone[0].epochs == 3
    assert clone[0].parameters["optimizer"] == source.parameters["optimizer"]  # a field left as it was: kept
    drawn = [t for t in trials.values() if t.sampler_index is not None]
    assert len(drawn) == 4  # max_trials raised from 2: two more samples, both from the narrowed space
    assert all(0.05 <= t.parameters["learning_rate"] <= 0.06 and t.parameters["optimizer"] == "adamw"
               for t in drawn[2:])
    # The bar follows: the limits as applied, the space new trials come from.
    bar.update(SnapshotReader(resumed).take())
    assert bar.limits.boxes["max_trials"].value == 4
    again = SteeringBar(resumed)
    assert "min_value: 0.05, max_value: 0.06" in again.narrow.text.value
    for widget in again.widgets():
        widget.close()


@pytest.mark.parametrize("control, value, message", [
    ("clone", "abc", "clone trial 0: learning_rate: 'abc' is not a float; allowed: float in"),
    ("clone other", "learning_rat=0.1", "clone trial 0: learning_rat: 0.1: unknown training parameter; "
                                        "did you mean 'learning_rate'?"),
    ("limits", 0, "max_concurrent_trials: 0 is out of range; allowed: int in"),
    ("limits", "unchanged", "limits: {} changes nothing"),
    ("narrow", "min_value: 0.2, max_value: 0.3", "narrow: search_space[0].learning_rate: "),
])
def test_a_bad_value_is_refused_with_its_message_and_nothing_is_logged(finished, control, value, message):
    run, bar = finished
    if control == "clone":
        bar.clone.trial.value = "0"
        bar.clone.fields["learning_rate"].value = value
        bar.clone.button.click()
    elif control == "clone other":
        bar.clone.trial.value = "0"
        bar.clone.other.value = value
        bar.clone.button.click()
    elif control == "limits":
        if value != "unchanged":
            bar.limits.boxes["max_concurrent_trials"].value = value
        bar.limits.button.click()
    else:
        bar.narrow.text.value = bar.narrow.text.value.replace("min_value: 0.001, max_value: 0.1", value)
        bar.narrow.button.click()
    assert 'color:#c62828' in bar.message.value and message.replace("'", "&#x27;") in bar.message.value
    assert SteeringLog(run.folder).read_new() == []


def test_the_trial_clicked_in_the_chart_comes_chosen_once_and_a_later_choice_stays(finished):
    run, bar = finished
    snapshot = SnapshotReader(run).take()
    bar.update(snapshot, selected="1")
    assert (bar.trial.value, bar.clone.trial.value) == ("1", "1")
    assert bar.clone.fields["learning_rate"].value == str(snapshot_params(snapshot, "1")["learning_rate"])
    bar.trial.value, bar.clone.trial.value = "0", "0"  # chosen in the lists afterwards
    bar.clone.fields["optimizer"].value = "sgd"  # being typed
    bar.update(snapshot, selected="1")  # a refresh: the choices and the typing stay
    assert (bar.trial.value, bar.clone.trial.value, bar.clone.fields["optimizer"].value) == ("0", "0", "sgd")
    bar.update(snapshot, selected="0")
    bar.update(snapshot, selected="1")  # a new click on trial 1's curve
    assert (bar.trial.value, bar.clone.trial.value) == ("1", "1")
    assert bar.clone.fields["learning_rate"].value == str(snapshot_params(snapshot, "1")["learning_rate"])


def snapshot_params(snapshot, trial_id):
    return next(row.params for row in snapshot.rows if row.trial_id == trial_id)
