"""%automl commands on a real sweep (Dask LocalCluster, tiny trials): status, cluster, stop a
trial, stop the job, resume, leaderboard, best and show."""

import re
import time

import pytest
from IPython.core.error import UsageError

from automl_nb.data.synthetic import make_dataset
from automl_nb.sweep import Run

pytestmark = pytest.mark.slow

CELL = """\
task: image_classification
training_data: {path: $data, type: mltable}
limits: {max_trials: 3, max_concurrent_trials: 2}
sweep: {sampling_algorithm: grid}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: choice, values: [0.02, 0.01, 0.005]}
training_parameters:
  use_pretrained_model: false
  number_of_epochs: 4
  training_batch_size: 16
  training_crop_size: 28
  validation_resize_size: 32
  validation_crop_size: 28
  early_stopping: false
  random_seed: 0
"""


def wait_until(condition, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def trial(run, trial_id):
    """The trial's record, or an empty one before the driver has written it."""
    from automl_nb.sweep.store import TrialRecord

    return {r.trial_id: r for r in run.trials()}.get(trial_id, TrialRecord(trial_id, -1))


def test_commands_steer_a_running_sweep(tmp_path, monkeypatch, capsys):
    from IPython.testing.globalipapp import get_ipython

    monkeypatch.chdir(tmp_path)
    make_dataset("image_classification", 60, 32, tmp_path / "shapes", seed=0)
    shell = get_ipython()
    shell.run_line_magic("load_ext", "automl_nb")
    shell.user_ns["data"] = str(tmp_path / "shapes")
    run = shell.run_cell_magic("automl", "-o sweep --name magics --no-dashboard --no-estimate", CELL)
    assert isinstance(run, Run) and shell.user_ns["sweep"] is run and run.folder.as_posix() == "runs/magics"
    capsys.readouterr()

    wait_until(lambda: trial(run, "1").status == "Running" and trial(run, "1").epochs >= 1)
    shell.run_line_magic("automl", "status")
    status = capsys.readouterr().out
    assert re.match(r"runs/magics: image_classification, Running; \d/3 trials ended, [12] running; best accuracy", status)
    shell.run_line_magic("automl", "cluster")
    workers = capsys.readouterr().out
    assert "workers: 2" in workers and re.search(r"running: trial [01]", workers)

    shell.run_line_magic("automl", "stop 1")
    assert capsys.readouterr().out.strip() == "runs/magics: trial 1 stops at its next evaluation"
    wait_until(lambda: trial(run, "1").status == "Canceled")
    shell.run_line_magic("automl", "stop")
    assert "canceling" in capsys.readouterr().out
    assert run.wait() == "Canceled"
    stopped = {r.trial_id: r for r in run.trials()}
    assert stopped["1"].status == "Canceled" and stopped["1"].finished  # a user's stop of one trial is final

    again = shell.run_line_magic("automl", "resume runs/magics --no-dashboard -o resumed")
    assert again.wait() == "Completed" and shell.user_ns["resumed"] is again
    final = {r.trial_id: r for r in again.trials()}
    assert final["1"].epochs == stopped["1"].epochs  # not run again
    assert all(final[t].status == "Completed" and final[t].epochs == 4 for t in ("0", "2"))

    table = shell.run_line_magic("automl", "leaderboard -r resumed")
    assert list(table["trial"])[0] == again.best_trial.trial_id and len(table) == 3
    shell.run_line_magic("automl", "best -r runs/magics")
    best = capsys.readouterr().out
    assert best.startswith(f"best trial {again.best_trial.trial_id}: resnet18, accuracy {again.best_trial.best_metric:.4f}")
    shell.run_line_magic("automl", "show shapes/images/0000[0-2].png")
    shown = capsys.readouterr().out
    assert shown.count(".png: ") == 3 and "circle" in shown

    shell.run_line_magic("automl", "explain shapes/images/00000.png --method guided_gradcam")
    explained = capsys.readouterr().out
    assert explained.startswith(f"trial {again.best_trial.trial_id}, shapes/images/00000.png: ")
    assert any(name in explained for name in ("circle", "square", "triangle"))
    with pytest.raises(UsageError, match="xai_algorithm: .sharp. is not allowed; allowed: one of xrai"):
        shell.run_line_magic("automl", "explain shapes/images/00000.png --method sharp")


def test_status_tells_each_failure_once_and_that_all_failed(tmp_path, monkeypatch, capsys):
    from IPython.testing.globalipapp import get_ipython

    from automl_nb.spec import load_job
    from automl_nb.sweep.executor import InProcessExecutor
    from automl_nb.testing import FailingCurve, ScriptedTrial

    monkeypatch.chdir(tmp_path)
    make_dataset("image_classification", 60, 32, tmp_path / "shapes", seed=0)
    shell = get_ipython()
    shell.run_line_magic("load_ext", "automl_nb")
    job = load_job(CELL.replace("$data", str(tmp_path / "shapes")))
    script = ScriptedTrial(FailingCurve("CUDA out of memory (scripted)"))
    run = shell.user_ns["failing"] = job.submit("failing", executor=InProcessExecutor(script))
    assert run.wait(120, report=None) == "Failed"  # says nothing: the failures are still news to status
    capsys.readouterr()  # what load_ext said
    all_failed = "all 3 trials failed; the first (trial 0): RuntimeError: CUDA out of memory (scripted)"
    shell.run_line_magic("automl", "status -r failing")
    summary, *told = capsys.readouterr().out.splitlines()
    assert summary.startswith("failing: image_classification, Failed; 3/3 trials ended")
    assert told == [f"trial {n} failed: RuntimeError: CUDA out of memory (scripted)" for n in range(3)] + [all_failed]
    shell.run_line_magic("automl", "status -r failing")
    assert capsys.readouterr().out.splitlines()[1:] == [all_failed]  # each failure told once
    shell.user_ns.pop("failing")
