"""A run folder damaged on disk (a truncated run.json, a corrupt trial record, a torn metrics
line): one clear message naming the file, no traceback from the CLI, nothing started, and the
file that could not be read is left exactly as it was."""

import shutil
import warnings

import pytest

from automl_nb.cli import main
from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import RunFolderError
from automl_nb.spec import load_job
from automl_nb.sweep import load_run
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.testing import ScriptedTrial
from automl_nb.train.folder import TrialFolder

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: 2, max_concurrent_trials: 1}}
sweep: {{sampling_algorithm: grid}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: choice, values: [0.01, 0.1]}}
training_parameters: {{number_of_epochs: 3}}
"""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A sweep of two scripted trials that ran to the end (on threads: nothing trains)."""
    root = tmp_path_factory.mktemp("finished")
    make_dataset("image_classification", 20, 16, root / "data", seed=0)
    job = load_job(JOB.format(data=root / "data"))
    run = job.submit(root / "run", executor=InProcessExecutor(ScriptedTrial([0.5, 0.6, 0.7])))
    assert run.wait(60) == "Completed"
    return root / "run"


@pytest.fixture
def run_folder(finished_run, tmp_path):
    """A copy of the finished run for one test to damage."""
    return shutil.copytree(finished_run, tmp_path / "run")


DAMAGES = {
    "truncated": lambda data: data[: len(data) // 2],
    "a list, not an object": lambda data: b"[1, 2]\n",
    "not UTF-8": lambda data: b"\xff\xfe\x00garbage",
    "empty": lambda data: b"",
}


def damage(path, kind="truncated"):
    """Damage the file at ``path``; return its bytes as damaged."""
    path.write_bytes(DAMAGES[kind](path.read_bytes()))
    return path.read_bytes()


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_run_json_is_named_and_left_as_it_was(run_folder, capsys, kind):
    before = damage(run_folder / "run.json", kind)
    with pytest.raises(RunFolderError, match=r"run\.json: damaged"):
        load_run(run_folder).status
    assert main(["resume", str(run_folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run.json: damaged" in err and "Traceback" not in err
    assert (run_folder / "run.json").read_bytes() == before  # never overwritten by the failed resume


@pytest.mark.parametrize("kind", ["truncated", "a list, not an object", "not UTF-8"])
def test_a_damaged_trial_record_stops_the_leaderboard_and_resume_naming_it(run_folder, capsys, kind):
    record = run_folder / "trials" / "1" / "trial.json"
    before = damage(record, kind)
    run_before = (run_folder / "run.json").read_bytes()
    with pytest.raises(RunFolderError, match=r"trials/1/trial\.json: damaged"):
        load_run(run_folder).leaderboard()
    assert main(["resume", str(run_folder)]) == 2
    assert "trials/1/trial.json: damaged" in capsys.readouterr().err
    assert record.read_bytes() == before and (run_folder / "run.json").read_bytes() == run_before


def test_a_trial_record_missing_its_index_is_damaged(run_folder):
    (run_folder / "trials" / "0" / "trial.json").write_text('{"trial_id": "0"}')
    with pytest.raises(RunFolderError, match=r"trials/0/trial\.json: damaged trial record .*index"):
        load_run(run_folder).trials()


def test_a_torn_last_metrics_line_is_dropped_with_a_warning_and_the_rest_kept(run_folder):
    metrics = run_folder / "trials" / "0" / "metrics.jsonl"
    rows = load_run(run_folder).metrics("0")
    metrics.write_bytes(metrics.read_bytes() + b'{"epoch": 4, "accur')
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:4: dropped a torn last line"):
        assert load_run(run_folder).metrics("0") == rows
    # Resuming from epoch 2 rewrites the file from what could be read: the torn line is gone.
    with pytest.warns(UserWarning, match="torn"):
        TrialFolder(metrics.parent).truncate_metrics(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TrialFolder(metrics.parent).metrics() == rows[:2]


def test_a_corrupt_metrics_line_is_named_and_the_file_is_not_rewritten(run_folder):
    metrics = run_folder / "trials" / "0" / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text(lines[0] + "{not json\n" + lines[2])
    before = metrics.read_bytes()
    with pytest.raises(RunFolderError, match=r"metrics\.jsonl:2: damaged line, not JSON.*not json"):
        load_run(run_folder).metrics("0")
    with pytest.raises(RunFolderError, match=r"metrics\.jsonl:2"):
        TrialFolder(metrics.parent).truncate_metrics(1)  # what resume does: it must not drop line 3
    assert metrics.read_bytes() == before


@pytest.mark.parametrize("name", ["params.json", "status.json"])
def test_a_damaged_trial_file_is_named(run_folder, name):
    folder = run_folder / "trials" / "0"
    damage(folder / name)
    with pytest.raises(RunFolderError, match=rf"trials/0/{name}: damaged"):
        TrialFolder(folder).read_json(name)


def test_a_damaged_job_yaml_is_named_with_its_line(run_folder, capsys):
    (run_folder / "job.yaml").write_text("task: image_classification\ntraining_data: [unclosed\n")
    assert main(["resume", str(run_folder)]) == 2
    err = capsys.readouterr().err
    assert "job.yaml:3:1: YAML syntax error" in err and "Traceback" not in err
