"""The run folder, the leaderboard and the sweep plan, without a cluster."""

import math
import os
import subprocess
import sys

import pytest

from automl_nb.cluster import ClusterHandle
from automl_nb.errors import AutoMLError, SpecError
from automl_nb.spec import Input, image_classification
from automl_nb.sweep import load_run, submit
from automl_nb.sweep.plan import SingleTrialSampler, make_driver, make_sampler
from automl_nb.sweep.report import leaderboard
from automl_nb.sweep.store import RunStore, TrialRecord, free_folder


def a_job(**parameters):
    job = image_classification(training_data=Input(path="shapes", type="mltable"), target_column_name="label")
    job.set_training_parameters(model_name="resnet18", **parameters)
    return job


@pytest.mark.parametrize("status, stopped_by, finished", [
    ("Completed", None, True), ("Failed", None, True), ("Canceled", "policy", True),
    ("Canceled", "timeout", False), ("Canceled", "user", False), ("Running", None, False), ("Queued", None, False),
])
def test_only_judged_trials_count_as_finished(status, stopped_by, finished):
    assert TrialRecord("0", 0, status=status, stopped_by=stopped_by).finished is finished


def test_trials_come_back_in_sampling_order(tmp_path):
    store = RunStore(tmp_path)
    for index in (10, 2, 0):
        store.write_trial(TrialRecord(str(index), index, sampled={"learning_rate": index / 100}, notes=["x"]))
    records = store.trials()
    assert [r.index for r in records] == [0, 2, 10]
    assert records[2].sampled == {"learning_rate": 0.1} and records[2].notes == ["x"]


def test_job_yaml_keeps_absolute_data_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = RunStore(tmp_path / "run")
    store.create(a_job())
    monkeypatch.chdir("/")
    job = store.load_job()
    assert job.training_data.path == str(tmp_path / "shapes")
    assert job.training_parameters["model_name"] == "resnet18"
    assert store.run_info()["status"] == "NotStarted"


def test_a_run_is_alive_only_while_its_driver_process_lives(tmp_path):
    store = RunStore(tmp_path)
    store.create(a_job())
    assert not store.driver_alive()
    store.claim()
    assert store.driver_alive()  # this process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.write_run(pid=int(dead.stdout))
    assert not store.driver_alive()
    assert load_run(tmp_path).status == "Interrupted"
    store.write_run(status="Completed", pid=os.getpid())
    assert not store.driver_alive() and load_run(tmp_path).status == "Completed"


def test_leaderboard_puts_the_best_first_and_unscored_trials_last():
    records = [
        TrialRecord("0", 0, sampled={"model_name": "resnet18", "learning_rate": 0.1}, parameters={"model_name": "resnet18"},
                    best_metric=0.5, status="Completed", started=0.0, ended=10.0),
        TrialRecord("1", 1, parameters={"model_name": "vitb16r224"}, status="Failed", error="SpecError: crops"),
        TrialRecord("2", 2, parameters={"model_name": "mobilenetv2"}, best_metric=0.9, status="Canceled",
                    notes=["early termination: bandit"]),
    ]
    table = leaderboard(records, "accuracy")
    assert list(table["trial"]) == ["2", "0", "1"]
    assert table["params"][1] == {"learning_rate": 0.1}  # model_name has its own column
    assert table["duration_s"][1] == 10.0 and math.isnan(table["accuracy"][2])
    assert table["notes"][0] == "early termination: bandit" and table["notes"][2] == "SpecError: crops"


def test_time_budget_is_what_earlier_sessions_left(tmp_path):
    store = RunStore(tmp_path)
    job = a_job()
    job.set_limits(timeout_minutes=2)
    store.create(job)
    store.write_run(elapsed_seconds=100.0)
    driver = make_driver(job, store, ClusterHandle(client=None))
    assert driver.deadline - driver.started == pytest.approx(20.0)
    assert driver.max_trials == 1 and isinstance(driver.sampler, SingleTrialSampler)


def test_grid_size_caps_max_trials(tmp_path):
    from automl_nb.sweep import Choice

    job = a_job()
    job.set_limits(max_trials=50)
    job.extend_search_space({"learning_rate": Choice([0.01, 0.02, 0.03])})
    job.set_sweep(sampling_algorithm="grid")
    store = RunStore(tmp_path)
    store.create(job)
    assert make_driver(job, store, ClusterHandle(client=None)).max_trials == 3
    assert make_sampler(job, "cpu").capacity == 3


def test_single_trial_sampler_gives_one_empty_point():
    sampler = SingleTrialSampler()
    assert sampler.suggest(0) == {} and sampler.suggest(1) is None


def test_invalid_job_is_refused_before_any_folder_exists(tmp_path):
    job = image_classification(target_column_name="label")
    with pytest.raises(SpecError, match="training_data: missing"):
        submit(job, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_folder_holding_a_run_is_not_reused(tmp_path):
    RunStore(tmp_path).create(a_job())
    with pytest.raises(AutoMLError, match="already holds a run"):
        submit(a_job(), tmp_path)
    with pytest.raises(AutoMLError, match="not a run folder"):
        load_run(tmp_path / "elsewhere")


def test_free_folder_never_reuses_a_folder_with_files(tmp_path):
    (tmp_path / "run").mkdir()
    assert free_folder(tmp_path / "run") == tmp_path / "run"  # empty: reused
    (tmp_path / "run" / "run.json").write_text("{}")
    assert free_folder(tmp_path / "run") == tmp_path / "run-2"


def test_a_run_shows_its_leaderboard_in_a_notebook(tmp_path):
    store = RunStore(tmp_path)
    store.create(a_job())
    store.write_trial(TrialRecord("0", 0, parameters={"model_name": "resnet18"}, best_metric=0.75, status="Completed"))
    html = load_run(tmp_path)._repr_html_()
    assert "NotStarted" in html and "<td>resnet18</td>" in html and "0.7500" in html
