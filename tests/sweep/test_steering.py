"""Steering a sweep (extend, clone, requeue, live limits, a narrowed space) with scripted trials on
threads: each request changes what runs next, is recorded in the run folder, and holds across a
resume, including one whose driver died after applying a request but before recording it."""

import threading

import pytest

from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import AutoMLError, SpecError
from automl_nb.spec import load_job
from automl_nb.sweep import load_run
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.sweep.steering import append_request, check_narrow
from automl_nb.sweep.store import RunStore
from automl_nb.testing import OutOfMemoryAbove, ScriptedTrial

GRID = """\
limits: {max_trials: 3, max_concurrent_trials: 1}
sweep: {sampling_algorithm: grid}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: choice, values: [0.05, 0.04, 0.03]}
"""
RANDOM = """\
limits: {max_trials: 3, max_concurrent_trials: 1}
sweep: {sampling_algorithm: random}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: uniform, min_value: 0.001, max_value: 0.1}
    optimizer: {type: choice, values: [sgd, adam, adamw]}
"""


@pytest.fixture(autouse=True)
def no_summary(monkeypatch):
    """The leaderboard and learning-curve plot written when a session ends take most of a scripted
    session's time and are not what these tests are about (``test_sweep_run`` checks them)."""
    monkeypatch.setattr("automl_nb.sweep.report.write_summary", lambda run: None)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("steer-data")
    make_dataset("image_classification", 12, 32, folder, seed=0)
    return folder


def by_rate(params):
    return [params["learning_rate"] * epoch for epoch in range(1, 21)]


def submit(data, tmp_path, body, script, epochs=3, workers=1):
    job = load_job(f"task: image_classification\ntarget_column_name: label\n"
                   f"training_data: {{path: {data}, type: mltable}}\n{body}"
                   f"training_parameters: {{number_of_epochs: {epochs}}}\n")
    return job.submit(tmp_path / "run", check_data=False, executor=InProcessExecutor(script, max_workers=workers))


def resume(folder, script, workers=1):
    run = load_run(folder)
    run.resume(check_data=False, executor=InProcessExecutor(script, max_workers=workers))
    assert run.wait(60, report=None) == "Completed"
    return run


def starts(run):
    """Trial ids in the order their workers started them (a listener's record)."""
    order = []
    run.subscribe(lambda event: order.append(event["trial"]) if event["kind"] == "trial_started" else None)
    return order


def records(run):
    return {record.trial_id: record for record in run.trials()}


def test_clone_and_extend_run_before_new_samples_and_a_resume_does_not_repeat_them(data, tmp_path):
    script = ScriptedTrial(by_rate, seconds_per_epoch=0.01)
    run = submit(data, tmp_path, GRID, script)
    order = starts(run)

    def steer(event):  # on the driver's thread, as a dashboard button's click would be queued
        if event["kind"] == "report" and event["trial"] == "0" and event["epoch"] == 1:
            run.clone_trial(0, learning_rate=0.01)
        if event["kind"] == "trial_ended" and event["trial"] == "0":
            run.extend_trial(0, 2)

    run.subscribe(steer)
    assert run.wait(60, report=None) == "Completed"
    trials = records(run)
    assert order == ["0", "1", "2", "3", "4"]  # the clone and the extension ran before samples 1 and 2
    clone, extension = trials["1"], trials["2"]
    assert clone.origin["kind"] == "clone" and clone.sampler_index is None
    assert clone.parameters["learning_rate"] == 0.01 and clone.best_metric == pytest.approx(0.03)
    # Trial 0 Completed (no last.pt): a warm start from its best model, a fresh schedule of 2 epochs.
    assert extension.origin["source"] == "0" and extension.parameters["number_of_epochs"] == 2
    assert extension.parameters["checkpoint_run_id"] == str(run.folder / "trials" / "0")
    assert "warm start from its model_best.pt (epoch 3)" in extension.notes[0]
    assert trials["0"].epochs == 3 and "as trial 2" in trials["0"].notes[-1]
    assert [(t.sampler_index, t.parameters["learning_rate"]) for t in (trials["3"], trials["4"])] == [
        (1, 0.04), (2, 0.03)]  # the grid skipped no point
    assert [request["outcome"] for request in run.steering()] == ["applied", "applied"]
    # Killed after applying both but before recording it: the resumed driver finds them in the trials.
    RunStore(run.folder).write_run(steering={})
    again = resume(run.folder, script)
    assert sorted(records(again)) == ["0", "1", "2", "3", "4"]
    assert [request["outcome"] for request in again.steering()] == ["applied", "applied"]


def test_extending_a_stopped_trial_resumes_it_from_its_checkpoint_at_the_next_resume(data, tmp_path):
    script = ScriptedTrial(by_rate, seconds_per_epoch=0.01)
    run = submit(data, tmp_path, GRID.replace("max_trials: 3", "max_trials: 2"), script, epochs=4)
    # Asked at report 1 (after its verdict was sent): the trial stops at report 2.
    run.subscribe(lambda event: run.stop_trial(0) if event["kind"] == "report" and event["trial"] == "0"
                  and event["epoch"] == 1 else None)
    assert run.wait(60, report=None) == "Completed"
    stopped = records(run)["0"]
    assert stopped.status == "Canceled" and stopped.epochs == 2 and stopped.finished
    with pytest.raises(AutoMLError, match="extend trial 1: epochs 0 is not allowed; allowed: int >= 1"):
        run.extend_trial(1, 0)
    run.extend_trial(0, 3)  # no driver now: applied by the next session
    assert [request["outcome"] for request in run.steering()] == ["applied", "pending"]  # the stop, then this
    run = resume(run.folder, script)
    trial = records(run)["0"]
    assert trial.status == "Completed" and trial.epochs == 7 and trial.parameters["number_of_epochs"] == 7
    assert [row["epoch"] for row in run.metrics("0")] == [1, 2, 3, 4, 5, 6, 7]  # epochs 1-2 kept, then 3-7
    assert trial.notes[-2] == "extended by 3 epochs to 7; resumes from its last checkpoint (epoch 2)"
    assert len(run.trials()) == 2  # in place: no new trial


def test_requeue_runs_failed_trials_again_keeping_their_smaller_batch(data, tmp_path):
    script = OutOfMemoryAbove(8, ScriptedTrial([0.5]))
    body = GRID.replace("learning_rate: {type: choice, values: [0.05, 0.04, 0.03]}",
                        "training_batch_size: {type: choice, values: [128]}").replace("max_trials: 3", "max_trials: 1")
    run = submit(data, tmp_path, body, script, epochs=1)
    assert run.wait(60, report=None) == "Failed"
    (failed,) = run.trials()
    assert failed.status == "Failed" and failed.parameters["training_batch_size"] == 16  # three halvings
    with pytest.raises(AutoMLError, match="trial '7' is not a trial of this run; trials: 0"):
        run.requeue([7])
    run.requeue()
    run = resume(run.folder, script)
    (trial,) = run.trials()
    assert trial.status == "Completed" and trial.parameters["training_batch_size"] == 8  # from 16, not from 128
    assert any(note.startswith("requeued by the user after: OutOfMemoryError") for note in trial.notes)
    assert trial.oom_retries == 1  # counted afresh: 16 ran out of memory once more, 8 fits


def test_live_limits_change_how_many_trials_run_and_hold_across_a_resume(data, tmp_path):
    script = ScriptedTrial(by_rate, seconds_per_epoch=0.1)  # trial 0 outlasts a driver turn: 1 starts meanwhile
    run = submit(data, tmp_path, RANDOM.replace("max_trials: 3", "max_trials: 2"), script, workers=2)
    running, most = set(), [0]

    def watch(event):
        if event["kind"] == "trial_started":
            running.add(event["trial"])
            most[0] = max(most[0], len(running))
        if event["kind"] == "trial_ended":
            running.discard(event["trial"])
        if event["kind"] == "report" and event["trial"] == "0" and event["epoch"] == 1:
            run.set_limits(max_trials=4, max_concurrent_trials=2)

    run.subscribe(watch)
    assert run.wait(60, report=None) == "Completed"
    assert len(run.trials()) == 4 and most[0] == 2
    with pytest.raises(AutoMLError, match="max_trials 3 is below the 4 trials already started; allowed: int >= 4"):
        run.set_limits(max_trials=3)
    with pytest.raises(SpecError, match="max_concurrent_trials: 0 is out of range"):
        run.set_limits(max_concurrent_trials=0)
    run.set_limits(max_trials=5, timeout_minutes=30)  # applied by the next session
    run = load_run(run.folder)
    run.resume(check_data=False, executor=InProcessExecutor(script, max_workers=2))
    assert run.wait(60, report=None) == "Completed"
    driver = run._driver
    assert driver.max_concurrent == 2  # session 1's change, replayed
    # The deadline is 30 minutes from the sweep's start, less the time earlier sessions ran.
    assert driver.deadline - driver.started == pytest.approx(30 * 60 - driver.used_before, abs=0.01)
    assert driver.used_before > 0 and len(run.trials()) == 5


def test_a_narrowed_space_gives_the_next_samples(data, tmp_path):
    script = ScriptedTrial(by_rate, seconds_per_epoch=0.01)
    run = submit(data, tmp_path, RANDOM.replace("max_trials: 3", "max_trials: 4"), script)
    narrow = """\
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: uniform, min_value: 0.05, max_value: 0.06}
    optimizer: {type: choice, values: [adam]}
"""
    run.subscribe(lambda event: run.narrow_space(narrow) if event["kind"] == "report" and event["trial"] == "0"
                  and event["epoch"] == 1 else None)
    assert run.wait(60, report=None) == "Completed"
    first, *later = run.trials()
    assert not (0.05 <= first.parameters["learning_rate"] <= 0.06 and first.parameters["optimizer"] == "adam")
    assert all(0.05 <= t.parameters["learning_rate"] <= 0.06 and t.parameters["optimizer"] == "adam" for t in later)
    assert len(later) == 3  # a resume replays the narrowing: see the test of a killed driver below


@pytest.mark.parametrize("space, message", [
    ("[{model_name: {type: choice, values: [resnet18]}, learning_rate: {type: uniform, min_value: 0.0001, "
     "max_value: 0.05}, optimizer: {type: choice, values: [adam]}}]",
     r"search_space\[0\]\.learning_rate: .* is not within the job's .*\"max_value\": 0.1"),
    ("[{model_name: {type: choice, values: [resnet18]}, learning_rate: 0.01, optimizer: {type: choice, values: "
     "[adam]}}]", r"search_space\[0\].learning_rate: 0.01 is not within the job's"),
    ("[{model_name: {type: choice, values: [resnet18]}, learning_rate: {type: uniform, min_value: 0.01, "
     "max_value: 0.02}}]", r"search_space\[0\] has keys \['learning_rate', 'model_name'\]; allowed: the job's"),
    ("[{model_name: {type: choice, values: [resnet18]}, learnin_rate: 0.01}]", r"narrow: search_space\[0\]\."
                                                                               r"learnin_rate: .*learning_rate"),
    ("[{model_name: {type: choice, values: [resnet18]}}, {model_name: {type: choice, values: [resnet18]}}]",
     "narrow: search_space has 2 subspaces; allowed: the job's 1"),
], ids=["wider", "fixed", "dropped-key", "unknown-key", "more-subspaces"])
def test_a_space_that_is_not_within_the_jobs_is_refused_naming_the_key(data, space, message):
    job = load_job(f"task: image_classification\ntraining_data: {{path: {data}, type: mltable}}\n{RANDOM}")
    with pytest.raises(SpecError, match=message):
        check_narrow(job, space)


def test_bad_requests_are_refused_when_made_and_when_applied(data, tmp_path):
    script = ScriptedTrial([0.5], seconds_per_epoch=0.05)
    run = submit(data, tmp_path, GRID, script, epochs=2)
    applied = threading.Event()
    refused = []

    def watch(event):
        if event["kind"] == "report" and event["trial"] == "0" and event["epoch"] == 1:
            with pytest.raises(AutoMLError, match="extend trial 0: it is Running; only a Completed or Canceled"):
                run.extend_trial(0, 1)
            append_request(run.folder, "clone", trial="0", edits={"learning_rate": -1})  # not through the API
        if event["kind"] == "steered":
            refused.append(event)
            applied.set()

    run.subscribe(watch)
    assert run.wait(60, report=None) == "Completed"
    assert applied.is_set()
    assert refused[0]["outcome"] == "refused" and refused[0]["reason"].startswith("clone trial 0: learning_rate: -1")
    assert len(run.trials()) == 3  # the refused clone made no trial
    with pytest.raises(SpecError, match="clone trial 0: learning_rate: -1"):
        run.clone_trial(0, learning_rate=-1)
    with pytest.raises(AutoMLError, match="trial '9' is not a trial of this run; trials: 0, 1, 2"):
        run.clone_trial(9)
    with pytest.raises(AutoMLError, match="requeue: no trial of this run has Failed"):
        run.requeue()
    with pytest.raises(AutoMLError, match="limits: 'max_epochs' is not a limit"):
        run._request("limits", limits={"max_epochs": 3})
    assert [request["outcome"] for request in run.steering()] == ["refused"]  # refused API requests are not logged


def test_a_narrowed_bayesian_sampler_asks_in_the_new_space_and_keeps_every_told_result():
    from automl_nb.spec import parse_search_space
    from automl_nb.sweep.samplers import make_sampler

    space = parse_search_space({"learning_rate": {"type": "uniform", "min_value": 0.001, "max_value": 0.1},
                                "optimizer": {"type": "choice", "values": ["sgd", "adam", "adamw"]}})
    sampler = make_sampler("bayesian", "image_classification", space, {"model_name": "resnet18"}, seed=0,
                           max_trials=8)
    told = {}
    for index in range(4):
        told[index] = sampler.suggest(index)
        sampler.tell(index, told[index]["learning_rate"])
    assert {told[i]["optimizer"] for i in range(4)} != {"adam"}  # a choice the narrowing drops was tried
    narrowed = parse_search_space({"learning_rate": {"type": "uniform", "min_value": 0.05, "max_value": 0.06},
                                   "optimizer": {"type": "choice", "values": ["adam"]}})
    sampler.narrow(narrowed, 4)
    for index in range(4, 8):
        values = sampler.suggest(index)
        assert 0.05 <= values["learning_rate"] <= 0.06 and values["optimizer"] == "adam"
        sampler.tell(index, values["learning_rate"])
    history = sampler.study.get_trials()[:4]
    assert [trial.value for trial in history] == [told[i]["learning_rate"] for i in range(4)]
    # A choice no longer allowed is left out of its trial; its other values and its result stay.
    assert [trial.params.get("optimizer") for trial in history] == [
        told[i]["optimizer"] if told[i]["optimizer"] == "adam" else None for i in range(4)]
    assert [trial.params["learning_rate"] for trial in history] == [told[i]["learning_rate"] for i in range(4)]


DRIVER = """\
import sys
from automl_nb.spec import load_job
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.testing import ScriptedTrial
if __name__ == "__main__":
    script = ScriptedTrial(lambda params: [params["learning_rate"]], seconds_per_epoch=1.0)
    load_job(sys.argv[1]).submit(sys.argv[2], check_data=False, executor=InProcessExecutor(script)).wait()
"""


def test_another_process_steers_a_sweep_and_its_requests_outlive_the_drivers_kill(data, tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "job.yml").write_text(f"task: image_classification\ntarget_column_name: label\n"
                                      f"training_data: {{path: {data}, type: mltable}}\n"
                                      f"{RANDOM.replace('max_trials: 3', 'max_trials: 2')}"
                                      "training_parameters: {number_of_epochs: 10}\n")
    (tmp_path / "driver.py").write_text(DRIVER)
    folder = tmp_path / "run"
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "job.yml"), str(folder)])
    try:
        deadline = time.monotonic() + 60
        while not (folder / "trials/0/trial.json").exists():  # trial 0 runs for 10 s: killed long before
            assert time.monotonic() < deadline and driver.poll() is None
            time.sleep(0.05)
        run = load_run(folder)  # this process does not drive the sweep: its requests go through the log
        run.set_limits(max_trials=3)
        run.narrow_space([{"model_name": {"type": "choice", "values": ["resnet18"]},
                           "learning_rate": {"type": "uniform", "min_value": 0.05, "max_value": 0.06},
                           "optimizer": {"type": "choice", "values": ["adam"]}}])
        run.clone_trial(0, learning_rate=0.0123, number_of_epochs=2)
        while len(json.loads((folder / "run.json").read_text()).get("steering", {})) < 3:
            assert time.monotonic() < deadline and driver.poll() is None
            time.sleep(0.05)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert load_run(folder).status == "Interrupted"
    run = resume(folder, ScriptedTrial(by_rate))
    first, clone, *drawn = run.trials()
    assert clone.origin["kind"] == "clone" and clone.parameters["learning_rate"] == 0.0123 and clone.epochs == 2
    assert len(drawn) == 2  # max_trials 3 from the killed session: samples 1 and 2 after sample 0
    assert all(0.05 <= t.parameters["learning_rate"] <= 0.06 and t.parameters["optimizer"] == "adam" for t in drawn)
    assert [request["outcome"] for request in run.steering()] == ["applied"] * 3
    assert RunStore(folder).run_info()["sessions"] == 2


def test_a_resumed_bayesian_sampler_gives_each_trial_its_values_after_a_narrowing_of_unplain_choices():
    # Optuna holds a choice of dicts by its index; an index taken after a narrowing points into the
    # narrowed list, and a resume restores trials into the job's space before it replays the narrowing.
    from automl_nb.spec import parse_search_space
    from automl_nb.sweep.samplers import make_sampler

    settings = [{"stream_image_files": False}, {"stream_image_files": True}, {}]
    job_space = parse_search_space({"learning_rate": {"type": "uniform", "min_value": 0.001, "max_value": 0.1},
                                    "advanced_settings": {"type": "choice", "values": settings}})
    narrowed = parse_search_space({"learning_rate": {"type": "uniform", "min_value": 0.001, "max_value": 0.1},
                                   "advanced_settings": {"type": "choice", "values": settings[:0:-1]}})

    def sampler():
        return make_sampler("bayesian", "image_classification", job_space, {"model_name": "resnet18"}, seed=0,
                            max_trials=8)

    first = sampler()
    asked = {}
    for index in range(8):
        if index == 3:
            first.narrow(narrowed, 3)
        asked[index] = (first.suggest(index), first.state(index))
        first.tell(index, asked[index][0]["learning_rate"])
    resumed = sampler()  # as the driver resumes: restore every trial, then replay the narrowing
    for index, (_, state) in asked.items():
        resumed.restore(index, state, None, finished=False)
    resumed.narrow(narrowed, 3)
    assert {index: resumed.suggest(index) for index in asked} == {index: values for index, (values, _) in asked.items()}
