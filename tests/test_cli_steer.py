"""``automl-nb stop|extend|clone|requeue|limits|narrow|steering`` on a scripted run folder (in-process
``main([...])`` calls, nothing trains): each logs the Run method's request, the next resume applies
it, ``steering`` lists them; a refusal exits 2 with its message and logs nothing."""

import re

import pytest

from automl_nb import cli
from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import load_job
from automl_nb.sweep import load_run
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.testing import ScriptedTrial

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: 2, max_concurrent_trials: 1}}
sweep: {{sampling_algorithm: random}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: uniform, min_value: 0.001, max_value: 0.1}}
training_parameters: {{number_of_epochs: 2}}
"""
NARROW = """\
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: uniform, min_value: 0.05, max_value: 0.06}
"""


class FailsSecond:
    """A scripted curve whose second trial fails (trials run one at a time, in this process)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, params):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("scripted failure")
        return [0.5, 0.6]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr("automl_nb.sweep.report.write_summary", lambda run: None)  # the end's plots: not tested here
    make_dataset("image_classification", 12, 32, tmp_path / "data", seed=0)
    run = load_job(JOB.format(data=tmp_path / "data")).submit(
        tmp_path / "run", check_data=False, executor=InProcessExecutor(ScriptedTrial(FailsSecond())))
    assert run.wait(60, report=None) == "Completed"
    return run.folder


def steer(capsys, *words) -> tuple[int, str, str]:
    code = cli.main([str(word) for word in words])
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_cli_requests_are_logged_listed_and_applied_on_resume(folder, tmp_path, capsys):
    (tmp_path / "space.yaml").write_text(NARROW)
    logged = rf"{re.escape(str(folder))}: {{}}: request (\w+) logged; applied when the run resumes " \
             rf"\(automl-nb resume {re.escape(str(folder))}\)"
    for words, what in ((("extend", folder, "0", "--epochs", "3"), "extend trial 0 by 3 epochs"),
                        (("clone", folder, "1", "learning_rate=0.0123", "optimizer=adam"), "clone trial 1"),
                        (("requeue", folder), "requeue every Failed trial"),
                        (("limits", folder, "--max-trials", "4", "--timeout-minutes", "90"),
                         "limits max_trials=4 timeout_minutes=90"),
                        (("narrow", folder, tmp_path / "space.yaml"), "narrow the search space")):
        code, out, err = steer(capsys, *words)
        assert code == 0 and not err and re.fullmatch(logged.format(re.escape(what)), out), (out, err)
    code, out, _ = steer(capsys, "steering", folder)
    assert code == 0 and [line.split()[1:2] for line in out.splitlines()[1:]] == [
        ["extend"], ["clone"], ["requeue"], ["limits"], ["narrow"]]
    assert "trial 1 learning_rate=0.0123 optimizer=adam" in out and out.count("pending") == 5

    resumed = load_run(folder).resume(check_data=False,
                                      executor=InProcessExecutor(ScriptedTrial(lambda p: [0.5, 0.6, 0.7])))
    assert resumed.wait(60, report=None) == "Completed"
    trials = resumed.trials()
    made = {t.origin["kind"]: t for t in trials if t.origin}
    assert made["extend"].origin["source"] == "0" and made["extend"].epochs == 3  # a warm start of 3 epochs
    assert made["clone"].parameters["learning_rate"] == 0.0123 and made["clone"].parameters["optimizer"] == "adam"
    assert next(t for t in trials if t.trial_id == "1").status == "Completed"  # requeued, and it ran
    drawn = [t for t in trials if t.sampler_index is not None]
    assert len(drawn) == 4 and all(0.05 <= t.parameters["learning_rate"] <= 0.06 for t in drawn[2:])
    code, out, _ = steer(capsys, "steering", folder)
    assert code == 0 and out.count("applied") == 5 and "pending" not in out


@pytest.mark.parametrize("words, message", [
    (("extend", "{run}", "0", "--epochs", "0"), "error: extend trial 0: epochs 0 is not allowed; allowed: int >= 1"),
    (("extend", "{run}", "7", "--epochs", "2"), "error: trial '7' is not a trial of this run; trials: 0, 1"),
    (("clone", "{run}", "0", "learning_rate"), "error: automl-nb clone: 'learning_rate' is not KEY=VALUE"),
    (("clone", "{run}", "0", "learning_rate=abc"), "error: clone trial 0: learning_rate: 'abc' is not a float"),
    (("requeue", "{run}", "0"), "error: requeue trial 0: it is Completed; only a Failed trial can be requeued"),
    (("limits", "{run}"), "error: limits: {{}} changes nothing; allowed: max_trials, max_concurrent_trials, "
                          "timeout_minutes"),
    (("limits", "{run}", "--max-trials", "1"), "error: limits: max_trials 1 is below the 2 trials already started"),
    (("narrow", "{run}", "{run}/missing.yaml"), "error: SPACE.yaml '{run}/missing.yaml': no such file"),
    (("stop", "{run}", "0"), "is not driven from this process (Completed)"),
    (("steering", "{run}/trials"), "error: RUN '{run}/trials' is not a run folder (a folder with run.json)"),
])
def test_a_refused_request_exits_2_with_its_message_and_logs_nothing(folder, capsys, words, message):
    code, out, err = steer(capsys, *(word.format(run=folder) for word in words))
    assert code == 2 and not out and message.format(run=folder) in err, err
    assert not (folder / "steering.jsonl").exists()


def test_a_bad_option_is_argparses_exit_2(folder, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["extend", str(folder), "0", "--epochs", "two"])
    assert exit_.value.code == 2 and "argument --epochs: invalid int value: 'two'" in capsys.readouterr().err
