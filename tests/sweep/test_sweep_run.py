"""Sweeps through a real Dask LocalCluster and run store, with scripted trials: policies,
failures, dead workers, timeouts, stops, resume. A scripted trial's metric per epoch is given,
so every decision asserted here is a fact of the script, not of training on one CPU; real
training runs in the learning tests and in ``test_a_real_sweep_trains_and_keeps_its_best_model``."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import load_job
from automl_nb.sweep import load_run
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.sweep.store import RunStore
from automl_nb.testing import FailingCurve, OutOfMemoryAbove, ScriptedTrial

# The swept keys are set per test; these keep a real trial tiny (random weights, 28 px crops).
FIXED = """\
training_parameters:
  use_pretrained_model: false
  training_batch_size: 16
  validation_batch_size: 64
  warmup_cosine_lr_warmup_epochs: 1
  training_crop_size: 28
  validation_resize_size: 32
  validation_crop_size: 28
  random_seed: 0
  early_stopping: false
  number_of_epochs: {epochs}
"""


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    make_dataset("image_classification", 60, 32, folder, seed=0)
    return folder


def job_text(shapes, body, epochs=3, swept=(), model=None):
    """A job YAML: ``body`` (limits, sweep, search space) and the fixed parameters not in ``swept``
    (with ``model`` and a learning rate for it when given)."""
    head = f"task: image_classification\ntarget_column_name: label\ntraining_data: {{path: {shapes}, type: mltable}}\n"
    fixed = [line for line in FIXED.format(epochs=epochs).splitlines(keepends=True)
             if line.split(":")[0].strip() not in swept]
    if model:
        fixed.append(f"  model_name: {model}\n  learning_rate: 0.05\n")
    return head + body + "".join(fixed)


def submit(shapes, tmp_path, body, epochs=3, swept=(), model=None, **options):
    return load_job(job_text(shapes, body, epochs, swept, model)).submit(tmp_path / "run", **options)


def rate_curve(params):
    """A scripted curve that rises faster the higher the learning rate (ranks trials by rate)."""
    return [min(1.0, params["learning_rate"] * 5 * epoch) for epoch in range(1, 51)]


def test_seed_example_runs_two_trials_at_a_time(shapes, tmp_path):
    # The seed's YAML example, with classification models in place of detection ones.
    run = submit(shapes, tmp_path, """\
limits: {timeout_minutes: 60, max_trials: 4, max_concurrent_trials: 2}
sweep:
  sampling_algorithm: random
  early_termination: {type: bandit, evaluation_interval: 2, slack_factor: 0.2, delay_evaluation: 6}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: uniform, min_value: 0.01, max_value: 0.1}
    optimizer: {type: choice, values: [sgd, adam, adamw]}
  - model_name: {type: choice, values: [mobilenetv2]}
    learning_rate: {type: uniform, min_value: 0.001, max_value: 0.01}
""", epochs=2, trial_function=ScriptedTrial(rate_curve, seconds_per_epoch=0.3))
    assert run.wait() == "Completed"
    trials = run.trials()
    assert [t.status for t in trials] == ["Completed"] * 4
    for trial in trials:
        low, high = (0.01, 0.1) if trial.parameters["model_name"] == "resnet18" else (0.001, 0.01)
        assert low <= trial.parameters["learning_rate"] <= high
        assert [row["epoch"] for row in run.metrics(trial.trial_id)] == [1, 2]
        assert trial.best_metric == pytest.approx(rate_curve(trial.parameters)[1])
    # Never more than two trials at once: the driver starts a trial only after one ended.
    intervals = [(t.started, t.ended) for t in trials]
    assert max(sum(s <= start < e for s, e in intervals) for start, _ in intervals) == 2
    table = run.leaderboard()
    assert list(table["accuracy"]) == sorted(table["accuracy"], reverse=True)
    fastest = max(trials, key=lambda t: t.parameters["learning_rate"])
    assert table["trial"][0] == fastest.trial_id
    assert run.best_model_path == run.folder / "trials" / fastest.trial_id / "model_best.pt"
    assert (run.folder / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert len((run.folder / "leaderboard.csv").read_text().splitlines()) == 5


@pytest.mark.slow
def test_a_real_sweep_trains_and_keeps_its_best_model(shapes, tmp_path):
    # The one sweep here that really trains: two tiny trials, two at a time, through Dask.
    run = submit(shapes, tmp_path, """\
limits: {max_trials: 2, max_concurrent_trials: 2}
sweep: {sampling_algorithm: grid}
search_space:
  - model_name: {type: choice, values: [resnet18, mobilenetv2]}
""", epochs=2)
    assert run.wait() == "Completed"
    trials = run.trials()
    assert [t.status for t in trials] == ["Completed"] * 2
    assert {t.parameters["model_name"] for t in trials} == {"resnet18", "mobilenetv2"}
    for trial in trials:
        rows = run.metrics(trial.trial_id)
        assert [row["epoch"] for row in rows] == [1, 2]
        assert all(0.0 <= row["accuracy"] <= 1.0 and row["train_loss"] > 0 for row in rows)
        assert trial.best_metric == max(row["accuracy"] for row in rows)
    from automl_nb.train.restore import load_best_model

    model, record = load_best_model(run.best_model_path.parent)
    assert record["params"]["model_name"] == run.best_trial.parameters["model_name"]


BANDIT = """\
limits: {max_trials: 2, max_concurrent_trials: 1}
sweep:
  sampling_algorithm: grid
  early_termination: {type: bandit, slack_amount: 0.15, delay_evaluation: 4}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: choice, values: [0.05, 0.000001]}
"""


def run_on(executor, script, concurrent=1):
    """submit() options running ``script`` on Dask workers or on threads of this process."""
    if executor == "in-process":
        return {"executor": InProcessExecutor(script, max_workers=concurrent)}
    return {"trial_function": script}


def hopeless_below(rate):
    """Scripted: a trial learns (0.5 .. 0.9) at or above ``rate`` and stays at chance below it."""
    return lambda params: [0.5, 0.6, 0.7, 0.8, 0.9] if params["learning_rate"] >= rate else [0.1]


@pytest.mark.parametrize("executor", ["dask", "in-process"])
def test_bandit_stops_a_hopeless_trial_at_the_first_report_it_may_judge(shapes, tmp_path, executor):
    # One at a time, grid order: a learning trial first, then one whose rate is too small to learn.
    run = submit(shapes, tmp_path, BANDIT, epochs=7, **run_on(executor, ScriptedTrial(hopeless_below(0.01))))
    assert run.wait(120) == "Completed"
    good, hopeless = run.trials()
    assert good.status == "Completed" and good.epochs == 7 and good.best_metric == 0.9
    assert hopeless.status == "Canceled" and hopeless.stopped_by == "policy"
    assert hopeless.epochs == 4  # delay_evaluation: 4 is the first report the policy may act on
    assert hopeless.notes[-1] == "early termination: bandit: 0.100 < 0.800-0.15=0.650 at report 4"
    assert len(run.metrics(hopeless.trial_id)) == 4
    assert hopeless.finished  # a verdict: resume() leaves it alone


@pytest.mark.parametrize("executor", ["dask", "in-process"])
def test_stop_trial_stops_one_trial_and_the_others_go_on(shapes, tmp_path, executor):
    options = run_on(executor, ScriptedTrial([0.5], seconds_per_epoch=0.2), concurrent=2)
    run = submit(shapes, tmp_path, """\
limits: {max_trials: 2, max_concurrent_trials: 2}
sweep: {sampling_algorithm: grid}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: choice, values: [0.05, 0.04]}
""", epochs=30, **options)
    reported = threading.Event()
    run.subscribe(lambda event: reported.set() if event["kind"] == "report" and event["trial"] == "1" else None)
    assert reported.wait(120)
    run.stop_trial(1)
    assert run.stop_requested("1") and not run.stop_requested("0")
    assert run.wait(120) == "Completed"
    kept, stopped = run.trials()
    assert kept.status == "Completed" and kept.epochs == 30
    assert stopped.status == "Canceled" and stopped.epochs < 30 and stopped.finished
    assert stopped.notes == ["stopped by the user"]
    with pytest.raises(Exception, match="not driven from this process"):
        run.stop_trial("0")


def test_failing_trials_are_recorded_and_the_sweep_goes_on(shapes, tmp_path, capsys):
    def fails_without_checkpoint(params):
        if params["checkpoint_run_id"]:
            raise FileNotFoundError(f"checkpoint_run_id: {params['checkpoint_run_id']!r} not found")
        return [0.5]

    run = submit(shapes, tmp_path, """\
limits: {max_trials: 3, max_concurrent_trials: 2}
sweep: {sampling_algorithm: grid}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: choice, values: [0.05]}
    training_crop_size: 28
    validation_crop_size: 28
  - model_name: {type: choice, values: [resnet18]}
    checkpoint_run_id: {type: choice, values: [/no/such/run]}
    training_crop_size: 28
    validation_crop_size: 28
  - model_name: {type: choice, values: [vits16r224]}
    training_crop_size: {type: choice, values: [192]}
    validation_crop_size: {type: choice, values: [224]}
""", epochs=1, swept=("training_crop_size", "validation_crop_size"),
                 trial_function=ScriptedTrial(fails_without_checkpoint))
    assert run.wait() == "Completed"
    ok, missing_checkpoint, bad_vit = run.trials()
    assert ok.status == "Completed"
    assert missing_checkpoint.status == "Failed" and "/no/such/run" in missing_checkpoint.error
    assert "Traceback" in missing_checkpoint.traceback  # raised on the worker, recorded with its traceback
    assert bad_vit.status == "Failed" and bad_vit.error.startswith("SpecError")  # sampled crops break a rule
    assert bad_vit.attempts == 0  # caught by the driver before any worker time
    told = sorted(line for line in capsys.readouterr().out.splitlines() if line.startswith(("trial ", "all ")))
    assert len(told) == 2  # each failure once; not every trial failed, so no sentence saying so
    assert told[0] == "trial 1 failed: FileNotFoundError: checkpoint_run_id: '/no/such/run' not found"
    assert told[1].startswith("trial 2 failed: SpecError: ") and "\n" not in told[1]
    assert run.wait() == "Completed" and capsys.readouterr().out == ""  # told already


def test_wait_tells_each_failure_as_it_happens_and_that_all_failed(shapes, tmp_path, capsys):
    reason = "CUDA out of memory (scripted)"
    # One trial at a time, each failing 1.5 s after it starts: the first fails while others still run.
    run = submit(shapes, tmp_path, """\
limits: {max_trials: 3, max_concurrent_trials: 1}
sweep: {sampling_algorithm: grid}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: choice, values: [0.05, 0.04, 0.03]}
""", epochs=1, trial_function=ScriptedTrial(FailingCurve(reason, seconds=1.5)))
    told = []
    assert run.wait(120, report=lambda line: told.append((line, run.running))) == "Failed"
    assert [line for line, _ in told] == [f"trial {n} failed: RuntimeError: {reason}" for n in range(3)] + [
        f"all 3 trials failed; the first (trial 0): RuntimeError: {reason}"]
    assert told[0][1]  # told while the sweep still ran, not only at its end
    assert run.wait() == "Failed"  # printed now: the failures were told, the sentence is said again
    assert capsys.readouterr().out == f"all 3 trials failed; the first (trial 0): RuntimeError: {reason}\n"


def test_killed_worker_resumes_the_trial_from_its_checkpoint(shapes, tmp_path):
    seen_report, pids = threading.Event(), []

    def listen(event):
        if event["kind"] == "trial_started":
            pids.append(event["pid"])
        if event["kind"] == "report" and event["epoch"] >= 2:
            seen_report.set()

    run = load_job(job_text(shapes, "", epochs=5, model="resnet18")).submit(
        tmp_path / "run", trial_function=ScriptedTrial([0.2, 0.4, 0.6, 0.8, 0.9], seconds_per_epoch=0.5))
    run.subscribe(listen)
    assert seen_report.wait(120)
    os.kill(pids[0], signal.SIGKILL)
    assert run.wait(120) == "Completed"
    (trial,) = run.trials()
    assert trial.status == "Completed" and trial.attempts == 2 and len(set(pids)) == 2
    assert any("worker died" in note for note in trial.notes)
    assert [row["epoch"] for row in run.metrics("0")] == [1, 2, 3, 4, 5]
    assert trial.best_metric == 0.9


SEARCH_SPACE = ("sweep: {sampling_algorithm: random}\n"
                "search_space: [{weight_decay: {type: uniform, min_value: 0.0, max_value: 0.001}}]\n")


@pytest.mark.parametrize("space, status", [("", "Completed"), (SEARCH_SPACE, "Canceled")], ids=["automode", "space"])
def test_timeout_cancels_running_trials(shapes, tmp_path, space, status):
    """The budget cancels running trials; it is how an AutoMode sweep ends, a search space's is cut short."""
    # 8 s: the trial must report a metric within the budget even when a busy machine is slow to start
    # a worker (with 3 s, an AutoMode run on a loaded CI machine ended before any report: Canceled).
    run = submit(shapes, tmp_path, "limits: {max_trials: 2, max_concurrent_trials: 1}\n" + space, epochs=200,
                 model="resnet18", time_budget_seconds=8, trial_function=ScriptedTrial([0.5], seconds_per_epoch=0.2))
    assert run.wait(120) == status
    trials = run.trials()
    assert trials[0].status == "Canceled" and trials[0].stopped_by == "timeout"
    assert "timeout" in trials[0].notes[-1]
    assert len(trials) == 1  # the second trial was never started
    info = RunStore(run.folder).run_info()
    assert info["stopped_by"] == "timeout"
    assert ("budget" in info["ended_because"]) if space == "" else info["ended_because"] is None


def test_cancel_stops_the_sweep_and_resume_continues_it(shapes, tmp_path):
    reported = threading.Event()
    script = ScriptedTrial([0.1, 0.2, 0.3, 0.4], seconds_per_epoch=0.5)
    run = submit(shapes, tmp_path, "", epochs=4, model="resnet18", trial_function=script)
    # After report 2, epoch 1's checkpoint is surely on disk (it is written before epoch 2 runs).
    run.subscribe(lambda event: reported.set() if event["kind"] == "report" and event["epoch"] >= 2 else None)
    assert reported.wait(120)
    run.cancel()
    assert run.wait(120) == "Canceled"
    (trial,) = run.trials()
    assert trial.status == "Canceled" and trial.stopped_by == "user" and trial.epochs < 4
    assert run.resume(trial_function=script).wait(120) == "Completed"  # a user's cancel is not a verdict
    (trial,) = run.trials()
    assert trial.status == "Completed" and trial.epochs == 4 and trial.best_metric == 0.4
    assert [row["epoch"] for row in run.metrics("0")] == [1, 2, 3, 4]
    assert trial.notes[:2] == ["canceled by the user", "resumed from its last checkpoint"]


def test_out_of_memory_retries_with_half_the_batch(shapes, tmp_path):
    run = submit(shapes, tmp_path, """\
limits: {max_trials: 2, max_concurrent_trials: 2}
sweep: {sampling_algorithm: grid}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    training_batch_size: {type: choice, values: [16, 128]}
""", epochs=1, swept=("training_batch_size",), trial_function=OutOfMemoryAbove(8, ScriptedTrial([0.5])))
    assert run.wait() == "Completed"
    fits, never = run.trials()
    assert fits.status == "Completed" and fits.oom_retries == 1
    assert fits.parameters["training_batch_size"] == 8 and fits.parameters["gradient_accumulation_step"] == 2
    assert "retry 1 with batch 8 x 2" in fits.notes[0]
    assert never.status == "Failed" and never.oom_retries == 3
    assert never.parameters["training_batch_size"] == 16 and "no retries left" in never.notes[-1]


DRIVER = """\
import sys
from automl_nb.spec import load_job
from automl_nb.testing import ScriptedTrial
if __name__ == "__main__":
    script = ScriptedTrial([0.1, 0.2, 0.3, 0.4], seconds_per_epoch=0.5)
    load_job(sys.argv[1]).submit(sys.argv[2], trial_function=script).wait()
"""


def test_resume_after_the_driver_is_killed_finishes_only_what_remains(shapes, tmp_path):
    (tmp_path / "job.yml").write_text(job_text(shapes, """\
limits: {max_trials: 3, max_concurrent_trials: 1}
sweep: {sampling_algorithm: grid}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: choice, values: [0.05, 0.04, 0.03]}
""", epochs=4))
    (tmp_path / "driver.py").write_text(DRIVER)
    folder = tmp_path / "run"
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "job.yml"), str(folder)])
    try:
        wait_until(lambda: _status(folder, "0") == "Completed" and (folder / "trials/1/last.pt").exists())
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    before = {tid: (folder / "trials" / tid / "metrics.jsonl").read_text() for tid in ("0", "1")}
    run = load_run(folder)
    assert run.status == "Interrupted"
    assert run.resume(trial_function=ScriptedTrial([0.1, 0.2, 0.3, 0.4])).wait(120) == "Completed"
    first, second, third = run.trials()
    assert [t.status for t in (first, second, third)] == ["Completed"] * 3
    assert run.metrics("0") == [json.loads(line) for line in before["0"].splitlines()]  # not run again
    assert first.attempts == 1
    kept = before["1"].splitlines()[0]  # the checkpointed epoch 1 survives as it was
    assert (folder / "trials/1/metrics.jsonl").read_text().splitlines()[0] == kept
    assert [row["epoch"] for row in run.metrics("1")] == [1, 2, 3, 4]
    assert "resumed from its last checkpoint" in second.notes
    assert RunStore(folder).run_info()["sessions"] == 2


SUBMIT_AND_LIST_MODULES = """\
import sys
from automl_nb.spec import load_job
from automl_nb.testing import ScriptedTrial
if __name__ == "__main__":
    run = load_job(sys.argv[1]).submit(sys.argv[2], trial_function=ScriptedTrial([0.5]))
    print(run.wait(120), sorted(name for name in ("torch", "torchvision") if name in sys.modules))
"""


def test_a_sweep_driven_from_a_kernel_never_loads_torch_there(shapes, tmp_path):
    # job.submit() runs in the notebook kernel: torch and its CUDA libraries belong in the workers.
    (tmp_path / "job.yml").write_text(job_text(shapes, "", epochs=2, model="resnet18"))
    (tmp_path / "driver.py").write_text(SUBMIT_AND_LIST_MODULES)
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "job.yml"),
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "Completed []", done.stderr[-3000:]


def _status(folder: Path, trial_id: str):
    path = folder / "trials" / trial_id / "trial.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


def wait_until(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)
