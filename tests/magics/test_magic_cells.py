"""%%automl cells without running anything: options, $var / {expr} interpolation, errors that
name the cell line, the %automl commands' usage errors, and tab completion."""

import pytest
from IPython.core.error import UsageError

from automl_nb.errors import SpecError
from automl_nb.magics.cell import CellError, job_from_cell
from automl_nb.magics.completion import yaml_completions
from automl_nb.magics.interpolate import interpolate
from automl_nb.spec import Choice, ImageJob, LogUniform, load_job

JOB = """\
task: image_classification
training_data: {path: data/shapes, type: mltable}
limits: {max_trials: 2}
sweep: {sampling_algorithm: random}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: uniform, min_value: 0.01, max_value: 0.05}
training_parameters:
  number_of_epochs: 3
  use_pretrained_model: false
"""


@pytest.fixture
def shell():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "automl_nb")
    magics = ip.magics_manager.registry["AutoMLMagics"]
    magics.current_run = None
    yield ip
    for name in ("job", "epochs", "data", "lr"):
        ip.user_ns.pop(name, None)


# -- interpolation ---------------------------------------------------------------------------
def test_dollar_names_and_expressions_become_yaml_values():
    namespace = {"epochs": 4, "lr": 1e-5, "models": ["resnet18", "mobilenetv2"], "data": "/data/shapes"}
    text = interpolate("number_of_epochs: $epochs\nlearning_rate: $lr\nvalues: {models}\npath: $data\n"
                       "doubled: {epochs * 2}\nshort: {lr:.1e}", namespace)
    assert text == ("number_of_epochs: 4\nlearning_rate: 1.0e-05\nvalues: [resnet18, mobilenetv2]\npath: /data/shapes\n"
                    "doubled: 8\nshort: 1.0e-05")
    import yaml

    assert yaml.safe_load(text)["learning_rate"] == 1e-5  # a number, not the string "1e-05"


def test_yaml_flow_mappings_schema_keys_and_escaped_dollars_are_left_alone():
    namespace = {"data": "shapes", "schema": "WRONG", "mu": 0.5}
    source = ("$schema: https://azuremlschemas/x.json\ntraining_data: {path: $data, type: mltable}\n"
              "lr: {type: choice, values: [{mu}, 0.1]}\nprice: $$5 and $$undefined")
    assert interpolate(source, namespace) == (
        "$schema: https://azuremlschemas/x.json\ntraining_data: {path: shapes, type: mltable}\n"
        "lr: {type: choice, values: [0.5, 0.1]}\nprice: $5 and $undefined")


@pytest.mark.parametrize("source, message", [
    ("a: 1\nb: $nodata", r"^line 2: \$nodata: NameError: name 'nodata' is not defined; a literal \$ is written \$\$$"),
    ("b: {n_epochs * 2}", r"^line 1: \{n_epochs \* 2\}: NameError: name 'n_epochs' is not defined$"),
    ("b: {epoch}", r"^line 1: \{epoch\}: NameError: name 'epoch' is not defined$"),
    ("a: 1\n\nb: $data.missing", r"^line 3: \$data.missing: AttributeError: 'str' object has no attribute 'missing'$"),
    ("b: {data:d}", r"^line 1: \{data:d\}: ValueError: Unknown format code 'd'"),
])
def test_undefined_names_and_failing_expressions_are_errors(source, message):
    with pytest.raises(SpecError, match=message):
        interpolate(source, {"data": "shapes"})


def test_references_that_fail_in_comments_stay_as_written():
    source = "# $nodata and {undefined}\nk: v  # {1 / 0} $x\npath: data#$data"
    assert interpolate(source, {"data": "shapes"}) == "# $nodata and {undefined}\nk: v  # {1 / 0} $x\npath: data#shapes"


def test_distributions_attributes_and_multiline_strings():
    class Settings:
        epochs = 7

    namespace = {"space": LogUniform(-6.0, -2.0), "settings": Settings(), "note": "two\nlines"}
    text = interpolate("learning_rate: $space\nepochs: $settings.epochs\ndescription: $note\nnext: 1", namespace)
    assert text.splitlines() == ["learning_rate: {type: loguniform, min_value: -6.0, max_value: -2.0}", "epochs: 7",
                                 'description: "two\\nlines"', "next: 1"]  # no line shifts


def test_an_expression_that_raises_names_its_line():
    with pytest.raises(SpecError, match=r"^line 2: \{1 / 0\}: ZeroDivisionError"):
        interpolate("a: 1\nb: {1 / 0}", {})


# -- cells to jobs, errors at cell lines -------------------------------------------------------
def test_cell_gives_the_same_job_as_the_yaml():
    job = job_from_cell(JOB.replace("number_of_epochs: 3", "number_of_epochs: $epochs"), {"epochs": 3}, name="shapes")
    expected = load_job(JOB)
    expected.name = "shapes"
    assert job == expected


@pytest.mark.parametrize("change, line, quoted", [
    (("number_of_epochs: 3", "number_of_epochs: -3"), 10, "number_of_epochs: -3"),
    (("max_value: 0.05", "max_value: 5"), 8, "learning_rate: {type: uniform"),
    (("use_pretrained_model: false", "use_pretrained_modle: false"), 11, "use_pretrained_modle"),
    (("limits: {max_trials: 2}", "limits: {max_trials: 2"), 5, None),  # YAML syntax: found on the next line
])
def test_errors_name_the_cell_line_and_quote_it(change, line, quoted):
    with pytest.raises(CellError) as caught:
        job_from_cell(JOB.replace(*change), {})
    assert caught.value.cell_line == line
    message = str(caught.value)
    assert message.startswith(f"cell line {line}: ")
    if quoted:
        assert f"\n  {line} | " in message and quoted in message.splitlines()[1]


def test_misspelt_key_suggests_the_right_one():
    with pytest.raises(CellError, match="use_pretrained_model"):
        job_from_cell(JOB.replace("use_pretrained_model", "use_pretrained_modle"), {})


def test_error_after_interpolation_shows_both_lines():
    with pytest.raises(CellError) as caught:
        job_from_cell(JOB.replace("number_of_epochs: 3", "number_of_epochs: $epochs"), {"epochs": 0})
    first, written, read = str(caught.value).splitlines()
    assert first.startswith("cell line 10: ") and "number_of_epochs" in first
    assert written.endswith("number_of_epochs: $epochs") and "number_of_epochs: 0" in read


def test_an_empty_cell_says_what_to_write():
    with pytest.raises(CellError, match="the cell is empty"):
        job_from_cell("\n  \n", {})


# -- the magic's options ------------------------------------------------------------------------
def test_dry_run_binds_the_validated_job_and_submits_nothing(shell, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no data there: a dry run validates the job, and a data problem shows in
    # its estimate (the data may live where the cluster's workers are), which the suite turns off
    shell.user_ns["epochs"] = 5
    result = shell.run_cell_magic("automl", "--dry-run -o job --name shapes",
                                  JOB.replace("number_of_epochs: 3", "number_of_epochs: {epochs}"))
    assert result is None
    job = shell.user_ns["job"]
    assert isinstance(job, ImageJob) and job.name == "shapes" and job.training_parameters["number_of_epochs"] == 5
    assert isinstance(job.search_space[0]["model_name"], Choice)
    assert not (tmp_path / "runs").exists()


def test_a_dry_run_of_an_automode_cell_without_its_data_here_says_so(shell, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the data may live where a cluster's workers are: no stop, a line
    shell.run_cell_magic("automl", "--dry-run", "task: image_classification\n"
                                                 "training_data: {path: data/shapes, type: mltable}\n"
                                                 "limits: {max_trials: 4}\n")
    assert "AutoMode plan: not made, the data cannot be read here: " in capsys.readouterr().out


def test_dry_run_shows_the_resolved_job(shell):
    from automl_nb.magics.summary import JobSummary

    job = load_job(JOB.replace("limits: {max_trials: 2}\nsweep: {sampling_algorithm: random}\nsearch_space:\n"
                               "  - model_name: {type: choice, values: [resnet18]}\n"
                               "    learning_rate: {type: uniform, min_value: 0.01, max_value: 0.05}\n", "")
                   .replace("training_parameters:\n", "training_parameters:\n  model_name: resnet18\n"))
    summary = JobSummary(job, expanded=True)
    assert summary.lines()[0].startswith("image_classification: single trial, 1 trial(s)")
    resolved = summary.resolved_parameters()
    assert resolved["model_name"] == "resnet18" and resolved["number_of_epochs"] == 3
    assert resolved["learning_rate"] == 0.01  # the default filled in by the spec
    assert "training parameters with defaults" in summary._repr_html_()


@pytest.mark.parametrize("line, message", [
    ("--bogus", "unrecognized arguments: --bogus"),
    ("-o 2run", "-o: '2run' is not a Python variable name"),
    ("--cluster localhost:8786", "is not a Dask scheduler address"),
    ("--name 'unbalanced", "No closing quotation"),
])
def test_bad_options_are_usage_errors(shell, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_cell_magic("automl", line, JOB)


def test_cell_errors_reach_the_user_as_usage_errors(shell):
    with pytest.raises(UsageError, match=r"^cell line 10: number_of_epochs: 0 is out of range; allowed: int > 0\n  10 \|   number_of_epochs: 0$"):
        shell.run_cell_magic("automl", "--dry-run", JOB.replace("number_of_epochs: 3", "number_of_epochs: 0"))


@pytest.mark.parametrize("change, message", [
    (("path: data/shapes", "path: $nodata"),
     r"^cell line 3: \$nodata: NameError: name 'nodata' is not defined; a literal \$ is written \$\$\n"
     r"  3 \| training_data: \{path: \$nodata, type: mltable\}$"),
    (("number_of_epochs: 3", "number_of_epochs: {n_epochs * 2}"),
     r"^cell line 10: \{n_epochs \* 2\}: NameError: name 'n_epochs' is not defined\n"
     r"  10 \|   number_of_epochs: \{n_epochs \* 2\}$"),
])
def test_undefined_references_are_usage_errors_at_their_cell_line(shell, change, message):
    with pytest.raises(UsageError, match=message):
        shell.run_cell_magic("automl", "--dry-run", JOB.replace(*change))


@pytest.mark.parametrize("line, message", [
    ("", "the following arguments are required: COMMAND"),
    ("frobnicate", "invalid choice: 'frobnicate'"),
    ("status", "no run in this kernel yet"),
    ("leaderboard -r /no/such/folder", "neither a Run variable of this notebook nor a run folder"),
    ("explain image.png", "no run in this kernel yet"),
])
def test_line_commands_explain_what_is_wrong(shell, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("automl", line)


# -- tab completion ---------------------------------------------------------------------------
@pytest.mark.parametrize("line, expected", [
    ("task: image_cl", ["image_classification", "image_classification_multilabel"]),
    ("  learning_r", ["learning_rate", "learning_rate_scheduler"]),
    ("    learning_rate: {type: logu", ["loguniform"]),
    ("  optimizer: ad", ["adam", "adamw"]),
    ("lim", ["limits"]),
])
def test_completion_offers_names_from_the_spec(line, expected):
    cell = f"%%automl\ntask: image_classification\ntraining_parameters:\n  number_of_epochs: 3\n{line}"
    if line.startswith("    "):
        cell = cell.replace("training_parameters:", "search_space:\n  - model_name: {type: choice, values: [resnet18]}")
    prefix, candidates = yaml_completions(cell, cell.count("\n"), len(line))
    assert candidates == expected and line.endswith(prefix)


def test_completion_of_the_magic_line_offers_the_parsers_options():
    from automl_nb.magics.parsers import cell_parser

    assert yaml_completions("%%automl --dr", 0, 13) == ("--dr", ["--dry-run"])
    options = {option for action in cell_parser()._actions for option in action.option_strings}
    assert set(yaml_completions("%%automl -", 0, 10)[1]) == options


def test_completion_of_models_follows_the_task():
    cell = "%%automl\ntask: image_object_detection\ntraining_parameters:\n  model_name: yolo"
    assert yaml_completions(cell, 3, len("  model_name: yolo"))[1] == ["yolov5"]
    assert yaml_completions("x = 1\ntask: im", 1, 8) is None  # not a %%automl cell


def test_completion_is_wired_into_the_shell(shell):
    cell = "%%automl\ntask: image_classification\ntraining_parameters:\n  number_of_ep"
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():
        found = [c.text for c in shell.Completer.completions(cell, len(cell))]
    assert "number_of_epochs" in found
