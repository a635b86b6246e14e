"""The steering commands of ``%automl`` (extend, clone, requeue, limits, narrow): how their words
parse, and one run steered from magics while no driver runs, the requests applied by its resume."""

import pytest
from IPython.core.error import UsageError

from automl_nb.data.synthetic import make_dataset
from automl_nb.magics.parsers import key_values, line_parser, parse
from automl_nb.spec import load_job
from automl_nb.sweep import load_run
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.testing import ScriptedTrial


def test_steering_commands_parse_their_words():
    parser = line_parser()
    extend = parse(parser, "extend 3 2 -r runs/x")
    assert (extend.command, extend.trial, extend.epochs, extend.run) == ("extend", "3", 2, "runs/x")
    clone = parse(parser, "clone 3 learning_rate=0.01 optimizer=adam 'layers_to_freeze=2'")
    assert key_values(clone.edits, "clone") == {"learning_rate": 0.01, "optimizer": "adam", "layers_to_freeze": 2}
    assert parse(parser, "requeue").trials == [] and parse(parser, "requeue 1 4").trials == ["1", "4"]
    assert key_values(parse(parser, "limits max_trials=20").limits, "limits") == {"max_trials": 20}
    assert parse(parser, "narrow -f space.yml").file == "space.yml"
    with pytest.raises(UsageError, match="argument N: invalid int value: 'two'"):
        parse(parser, "extend 3 two")
    with pytest.raises(UsageError, match="%automl clone: 'learning_rate' is not KEY=VALUE"):
        key_values(["learning_rate"], "clone")
    with pytest.raises(UsageError, match="the following arguments are required: KEY=VALUE"):
        parse(parser, "limits")


def test_a_run_steered_from_magics_runs_the_requests_when_resumed(tmp_path, monkeypatch, capsys):
    from IPython.testing.globalipapp import get_ipython

    monkeypatch.setattr("automl_nb.sweep.report.write_summary", lambda run: None)  # a plot per session: not tested here
    make_dataset("image_classification", 12, 32, tmp_path / "data", seed=0)
    job = load_job(f"""\
task: image_classification
training_data: {{path: {tmp_path / 'data'}, type: mltable}}
limits: {{max_trials: 1}}
sweep: {{sampling_algorithm: random}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: uniform, min_value: 0.001, max_value: 0.1}}
training_parameters: {{number_of_epochs: 1}}
""")
    script = ScriptedTrial(lambda params: [params["learning_rate"]])
    run = job.submit(tmp_path / "run", check_data=False, executor=InProcessExecutor(script))
    assert run.wait(60, report=None) == "Completed"
    shell = get_ipython()
    shell.run_line_magic("load_ext", "automl_nb")
    capsys.readouterr()  # what load_ext said (in a process that loaded it before: "already loaded")
    folder = run.folder
    shell.run_line_magic("automl", f"clone 0 learning_rate=0.0123 -r {folder}")
    assert capsys.readouterr().out.startswith(f"{folder}: clone trial 0: request ")
    shell.run_line_magic("automl", f"limits max_trials=3 -r {folder}")
    shell.run_cell_magic("automl", f"narrow -r {folder}", """\
- model_name: {type: choice, values: [resnet18]}
  learning_rate: {type: uniform, min_value: 0.05, max_value: 0.06}
""")
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"applied when the run resumes (%automl resume {folder})")
    with pytest.raises(UsageError, match="'max_epochs' is not a limit; allowed: max_trials, max_concurrent_trials, "
                                         "timeout_minutes"):
        shell.run_line_magic("automl", f"limits max_epochs=3 -r {folder}")
    with pytest.raises(UsageError, match="extend trial 0: epochs 0 is not allowed"):
        shell.run_line_magic("automl", f"extend 0 0 -r {folder}")
    with pytest.raises(UsageError, match="give the search space as the cell of %%automl narrow, or -f FILE"):
        shell.run_line_magic("automl", f"narrow -r {folder}")
    resumed = load_run(folder).resume(check_data=False, executor=InProcessExecutor(script))
    assert resumed.wait(60, report=None) == "Completed"
    first, clone, *drawn = resumed.trials()
    assert clone.origin["kind"] == "clone" and clone.parameters["learning_rate"] == 0.0123
    assert len(drawn) == 2 and all(0.05 <= t.parameters["learning_rate"] <= 0.06 for t in drawn)
    assert [request["outcome"] for request in resumed.steering()] == ["applied"] * 3
