"""AutoMode fitted to the data and the budget: sizes, batch, epochs, policy, and a budget that ends it."""

from __future__ import annotations

import json

import pytest

from automl_nb.data.records import ImageRecord
from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION, load_job, resolve_parameters
from automl_nb.sweep.automode import automode_portfolio
from automl_nb.sweep.automode_plan import (
    MAX_EPOCHS_FROM_SCRATCH, MIN_CROP, SMALL_SIDE, TRIALS_PER_SLOT, USEFUL_EPOCHS, data_profile, epoch_cap, fitted_batch,
    fitted_sizes, planned_concurrency, planned_epochs, with_threads,
)
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.sweep.store import RunStore
from automl_nb.testing import ScriptedTrial, ThreadCountCurve


@pytest.mark.parametrize("side, crop", [(8, MIN_CROP), (32, MIN_CROP), (64, 128), (70, 160), (100, 224), (SMALL_SIDE, None),
                                        (500, None)])
def test_small_images_get_crops_of_twice_their_side_within_the_default(side, crop):
    sizes = fitted_sizes(MULTICLASS, "resnet18", side)
    if crop is None:
        assert sizes == {}
    else:
        assert sizes == {"training_crop_size": crop, "validation_crop_size": crop, "validation_resize_size": crop}
        resolve_parameters(MULTICLASS, {"model_name": "resnet18", **sizes})  # the spec takes them


@pytest.mark.parametrize("task, model", [(DETECTION, "fasterrcnn_resnet18_fpn"), (SEGMENTATION, "maskrcnn_resnet18_fpn")])
def test_small_detection_images_keep_their_size_unless_their_objects_are_smaller_than_anchors(task, model):
    own = fitted_sizes(task, model, 96, object_side=40.0)
    assert own["min_size"] == 128 and own["max_size"] >= 128 * 1333 / 600  # MIN_DETECTION_SIZE, default aspect
    assert json.loads(own["advanced_settings"]) == {"box_batch_size_per_image": 64}
    assert fitted_sizes(task, model, 96, object_side=16.0)["min_size"] == 192  # scaled 2x towards 32 px anchors
    assert fitted_sizes(task, model, 96, object_side=4.0)["min_size"] == 192  # at most 2x
    assert fitted_sizes(task, model, 400, object_side=4.0) == {}
    resolve_parameters(task, {"model_name": model, **own})  # the spec takes them
    assert fitted_sizes(DETECTION, "yolov5", 96) == {"image_size": 128}


def test_few_images_get_a_smaller_batch():
    assert fitted_batch(MULTICLASS, "resnet18", 200) == {"training_batch_size": 16}
    assert fitted_batch(MULTICLASS, "resnet18", 1200) == {"training_batch_size": 64}
    assert fitted_batch(MULTICLASS, "resnet18", 50_000) == {}  # the default already gives many steps
    assert fitted_batch(DETECTION, "fasterrcnn_resnet18_fpn", 200) == {}


def test_epochs_fill_the_budget_within_their_cap():
    plan = dict(budget_seconds=600, concurrency=2, max_trials=12, most=MAX_EPOCHS_FROM_SCRATCH)
    fast, slow = planned_epochs(5.0, **plan), planned_epochs(20.0, **plan)
    assert fast > slow >= 3
    # Each of the 2 slots runs TRIALS_PER_SLOT trials of the planned epochs within 80% of the budget.
    assert TRIALS_PER_SLOT * slow * 20.0 <= 0.8 * 600 < TRIALS_PER_SLOT * (slow + 1) * 20.0
    assert planned_epochs(0.01, **plan) == MAX_EPOCHS_FROM_SCRATCH
    # A slot's budget of fewer than 2 x USEFUL_EPOCHS epochs goes to one longer trial; never none.
    assert planned_epochs(25.0, **plan) == 19 and planned_epochs(100.0, **plan) == 4
    assert planned_epochs(1e4, **plan) == 1
    assert epoch_cap(MULTICLASS, "resnet18", {}) == 15  # pretrained: the spec's epochs
    assert epoch_cap(MULTICLASS, "resnet18", {"use_pretrained_model": False}) == MAX_EPOCHS_FROM_SCRATCH


def test_a_budget_too_short_for_useful_trials_in_every_slot_runs_one_trial_at_a_time():
    # 0.8 x 600 s holds 10 epochs of 48 s (USEFUL_EPOCHS): each slot keeps its trials; one more second, it does not.
    assert planned_concurrency(48.0, budget_seconds=600, concurrency=2) == 2
    assert planned_concurrency(49.0, budget_seconds=600, concurrency=2) == 1
    assert planned_concurrency(1e4, budget_seconds=600, concurrency=1) == 1
    assert USEFUL_EPOCHS == 10
    # More threads make an epoch faster, but not in proportion; fewer are never assumed faster.
    assert 10.0 < with_threads(20.0, 1, 2) < 20.0 and with_threads(20.0, 2, 2) == with_threads(20.0, 2, 1) == 20.0


class _Estimate:  # what the plan reads of estimate_sweep: each configuration's model and epoch seconds
    def __init__(self, seconds):
        self.configurations = [type("Configuration", (), {"parameters": {"model_name": model}, "epoch_seconds": value})
                               for model, value in seconds.items()]


@pytest.mark.slow
def test_a_focused_automode_sweep_gives_its_one_trial_at_a_time_all_the_cores(shapes, tmp_path, monkeypatch):
    """On a real LocalCluster of 2 workers: the plan (from timings of 60 s an epoch, too long for 2 slots
    in 5 minutes) runs one trial at a time, and each trial sets the threads of both workers' cores."""
    from automl_nb.sweep import estimate
    from automl_nb.sweep.automode_plan import BUDGET_SHARE

    monkeypatch.setattr(estimate, "estimate_sweep", lambda job, **_: _Estimate({"resnet18": 60.0, "mobilenetv2": 50.0}))
    monkeypatch.setattr("automl_nb.cluster.usable_cpus", lambda: 2)  # as on 2 cores, whatever this test process is pinned to
    monkeypatch.delenv("AUTOML_NB_NO_ESTIMATE", raising=False)
    job = load_job("task: image_classification\ntarget_column_name: label\n"
                   f"training_data: {{path: {shapes}, type: mltable}}\n"
                   "limits: {max_trials: 2, max_concurrent_trials: 2, timeout_minutes: 5}\n"
                   "training_parameters: {use_pretrained_model: false}\n")
    run = job.submit(tmp_path / "run", trial_function=ScriptedTrial(ThreadCountCurve(seconds=0.5)))
    assert run.wait(120) == "Completed"
    plan = RunStore(run.folder).run_info()["automode_plan"]
    assert plan["concurrency"] == 1
    # Each epoch timed at one thread of two runs ~1.6x faster on both: more epochs than the timing alone allows.
    assert plan["epochs"]["resnet18"] > BUDGET_SHARE * 300 / 60.0
    trials = sorted(run.trials(), key=lambda t: t.index)
    assert [t.best_metric for t in trials] == [2 / 100] * 2  # each trial's torch threads: both cores
    records = [json.loads((run.folder / "trials" / str(t.index) / "trial.json").read_text()) for t in trials]
    assert records[0]["ended"] <= records[1]["started"]  # one at a time


def test_the_profile_reads_sizes_from_the_labels_or_else_the_headers(tmp_path):
    known = [ImageRecord(f"{i}.png", "a", width=w, height=h) for i, (w, h) in enumerate([(32, 40), (64, 30), (50, 50)])]
    assert data_profile(known) == data_profile(known, reader=None)
    assert data_profile(known).side == 32 and data_profile(known).n_images == 3
    jsonl = make_dataset(MULTICLASS, 6, 24, tmp_path, seed=0)
    from automl_nb.data.jsonl import read_jsonl

    records = read_jsonl(jsonl, MULTICLASS)
    assert data_profile([ImageRecord(r.image_url, r.label) for r in records]).side == 24
    assert data_profile([ImageRecord(str(tmp_path / "missing.png"), "a")]).side is None


def test_the_portfolio_pins_fitted_sizes_and_planned_epochs_but_never_over_a_fixed_key():
    baselines, subspaces = automode_portfolio(MULTICLASS, {"use_pretrained_model": False}, n_images=300,
                                              device="cpu", side=32, epochs={"resnet18": 12})
    assert baselines[0]["training_crop_size"] == 64 and baselines[0]["number_of_epochs"] == 12
    assert "number_of_epochs" not in baselines[1]  # mobilenetv2 was not timed: the spec's epochs
    assert baselines[0]["augmentation"] == "light" and set(subspaces[0]["augmentation"].values) == {
        "default", "light", "none"}
    multilabel, _ = automode_portfolio(MULTILABEL, {}, n_images=300, device="cpu", side=64)
    assert multilabel[0]["augmentation"] == "none"  # a crop could cut out a labelled object
    baselines, _ = automode_portfolio(MULTICLASS, {"training_crop_size": 96}, n_images=300, device="cpu", side=32,
                                      epochs={"resnet18": 12})
    assert "training_crop_size" not in baselines[0] and baselines[0]["validation_crop_size"] == 64


def automode_job(shapes, minutes=None, body=""):
    limits = f"limits: {{max_trials: 6, max_concurrent_trials: 1{f', timeout_minutes: {minutes}' if minutes else ''}}}"
    return load_job(
        "task: image_classification\ntarget_column_name: label\n"
        f"training_data: {{path: {shapes}, type: mltable}}\n{limits}\n{body}"
        "training_parameters: {use_pretrained_model: false, number_of_epochs: 3}\n")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    make_dataset(MULTICLASS, 30, 32, folder, seed=0)
    return folder


def test_an_automode_sweep_keeps_its_plan_and_gets_median_stopping(shapes, tmp_path):
    run = automode_job(shapes).submit(tmp_path / "run", trial_function=ScriptedTrial([0.5, 0.6, 0.7]))
    assert run.wait(120) == "Completed"
    info = RunStore(run.folder).run_info()
    # No budget set: no epochs planned, and the job's trials at once.
    assert info["automode_plan"] == {"n_images": 30, "side": 32, "object_side": None, "epochs": {}, "concurrency": 1}
    trials = run.trials()
    assert len(trials) == 6 and {t.parameters.get("training_crop_size") for t in trials} == {64}
    assert info["ended_because"] is None
    assert info["early_termination"].startswith("MedianStopping(")


def test_automode_starts_no_trial_the_budget_has_no_room_for(shapes, tmp_path):
    """Trials of >= 1.2 s in a 2 s budget of 6 trials: after the first, a second starts only with half
    a trial's time left, and it is the last; the budget's end is a normal end, said in run.json."""
    executor = InProcessExecutor(ScriptedTrial([0.5, 0.6, 0.7], seconds_per_epoch=0.4))
    run = automode_job(shapes).submit(tmp_path / "run", time_budget_seconds=2.0, executor=executor)
    assert run.wait(120) == "Completed"
    trials = run.trials()
    assert trials[0].status == "Completed" and len(trials) <= 2
    assert RunStore(run.folder).run_info()["ended_because"] in (
        "the time budget had no room for another trial", "the time budget (timeout_minutes) ended the AutoMode sweep")


def test_no_estimate_keeps_automode_from_timing_its_models(shapes, tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOML_NB_NO_ESTIMATE")  # the option alone (the magic's and the CLI's --no-estimate)
    job = load_job("task: image_classification\ntarget_column_name: label\n"
                   f"training_data: {{path: {shapes}, type: mltable}}\n"
                   "limits: {max_trials: 2, max_concurrent_trials: 1, timeout_minutes: 5}\n"
                   "training_parameters: {use_pretrained_model: false}\n")  # a budget, epochs not fixed
    run = job.submit(tmp_path / "run", no_estimate=True, executor=InProcessExecutor(ScriptedTrial([0.5])))
    assert run.wait(60) == "Completed"
    assert RunStore(run.folder).run_info()["automode_plan"]["epochs"] == {}  # every model keeps the spec's epochs
