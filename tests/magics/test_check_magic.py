"""``%automl check``: the data-health report of a YAML file or a job variable, shown as a panel,
bound with -o, and usage mistakes as UsageErrors."""

import json
import re

import pytest
from IPython.core.error import UsageError

from automl_nb.data.health import DataHealth
from automl_nb.data.synthetic import make_dataset
from automl_nb.magics.parsers import SUBCOMMANDS
from automl_nb.spec import load_job


@pytest.fixture
def shell():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "automl_nb")
    yield ip
    for name in ("health", "job", "number"):
        ip.user_ns.pop(name, None)


@pytest.fixture
def job_file(tmp_path):
    """A classification job whose one class has 3 images of 43 (2 of them in training after the split)."""
    make_dataset("image_classification", 60, 32, tmp_path / "data", seed=0)
    labels = tmp_path / "data" / "labels.jsonl"
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    rows = [r for r in rows if r["label"] != "triangle"] + [r for r in rows if r["label"] == "triangle"][:3]
    labels.write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "job.yml").write_text("task: image_classification\ntraining_data: {path: ./data}\n"
                                      "training_parameters: {random_seed: 0}\n")
    return tmp_path / "job.yml"


def test_check_shows_the_report_of_a_file_or_a_job_variable(shell, job_file, capsys):
    assert "check" in SUBCOMMANDS
    assert shell.run_line_magic("automl", f"check {job_file} -o health") is None
    health = shell.user_ns["health"]
    assert isinstance(health, DataHealth) and not health.has_errors
    out = capsys.readouterr().out  # a terminal shell shows the panel's text form
    assert "WARNING class_imbalance: classes are imbalanced 8.0:1 in training: circle (16) / triangle (2) images" in out
    assert "        weighted_loss: 1" in out
    shell.user_ns["job"] = load_job(job_file)
    shell.run_line_magic("automl", "check -j job")
    assert "WARNING class_imbalance" in capsys.readouterr().out


@pytest.mark.parametrize("line, message", [
    ("check", "%automl check: give the job's YAML file or -j JOB_VARIABLE"),
    ("check job.yml -j job", "%automl check: give the job's YAML file or -j JOB_VARIABLE"),
    ("check -j number", "-j 'number' is not a job variable of this notebook (int)"),
    ("check -j nothing", "-j 'nothing' is not a job variable of this notebook (no such variable)"),
    ("check missing.yml", "missing.yml: no such job file"),
    ("check -j job -o 2x", "-o: '2x' is not a Python variable name"),
])
def test_check_usage_mistakes_are_usage_errors(shell, line, message):
    shell.user_ns["number"] = 3
    with pytest.raises(UsageError, match=re.escape(message)):
        shell.run_line_magic("automl", line)
