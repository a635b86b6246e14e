"""The magics document themselves: ``%automl?`` lists every option and command, ``-h`` prints the
help once, and Shift+Tab on a hyperparameter in a ``%%automl`` cell shows the spec table's row."""

import pytest
from ipykernel.ipkernel import IPythonKernel

from automl_nb.magics.interpolate import to_yaml
from automl_nb.magics.parsers import cell_parser, line_parser
from automl_nb.spec import PARAMETERS, default_value

TASK = "image_object_detection"
CELL = f"""\
%%automl --dry-run
task: {TASK}
training_data: {{path: data, type: mltable}}
training_parameters:
  box_score_threshold: 0.2
search_space:
  - model_name: {{type: choice, values: [yolov5]}}
    learning_rate: {{type: uniform, min_value: 0.001, max_value: 0.01}}"""


class Kernel:
    """What ipykernel's ``IPythonKernel.do_inspect`` (Shift+Tab) needs of its kernel: the shell."""

    do_inspect = IPythonKernel.do_inspect

    def __init__(self, shell):
        self.shell = shell


@pytest.fixture
def shell():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "automl_nb")
    return ip


@pytest.fixture
def kernel_shell(shell):
    """The test shell with a kernel, and the extension loaded again so it hooks that kernel."""
    shell.kernel = Kernel(shell)
    shell.extension_manager.unload_extension("automl_nb")
    shell.extension_manager.load_extension("automl_nb")
    yield shell
    shell.extension_manager.unload_extension("automl_nb")
    del shell.kernel
    shell.extension_manager.load_extension("automl_nb")


def every_parser():
    line = line_parser()
    return [cell_parser(), line, *line.commands.values()]


@pytest.mark.parametrize("question", ["%automl?", "%%automl?"])
def test_question_mark_documents_every_command_and_option(shell, capsys, question):
    result = shell.run_cell(question)
    shown = capsys.readouterr().out
    assert result.success and "<no docstring>" not in shown
    for command in line_parser().commands:
        assert f"usage: %automl {command} " in shown
    letters = "".join(shown.split())  # argparse wraps the help to the terminal's width, at blanks or hyphens
    for parser in every_parser():
        for action in parser._actions:
            assert all(option in shown for option in action.option_strings), action.option_strings
            assert action.help is None or "".join(action.help.replace("%%", "%").split()) in letters, action.help


@pytest.mark.parametrize("cell, usage", [
    ("%automl -h", "usage: %automl [-h] COMMAND"),
    ("%automl --help", "usage: %automl [-h] COMMAND"),
    ("%automl show --help", "usage: %automl show [-h]"),
    ("%%automl -h\ntask: image_classification\n", "usage: %%automl [-h]"),
])
def test_help_option_prints_the_help_once_without_an_error(shell, capsys, cell, usage):
    result = shell.run_cell(cell)
    out, err = capsys.readouterr()
    assert result.success and result.error_in_exec is None and "UsageError" not in out + err
    assert out.count("usage:") == 1 and out.startswith(usage)


def inspect(shell, cell, text_before_cursor):
    """The kernel's reply to Shift+Tab with the cursor right after ``text_before_cursor`` in ``cell``."""
    return shell.kernel.do_inspect(cell, cell.index(text_before_cursor) + len(text_before_cursor))


@pytest.mark.parametrize("name, before_cursor", [
    ("box_score_threshold", "  box_sc"),
    ("box_score_threshold", "box_score_threshold: 0."),
    ("learning_rate", "    learning_rate"),
    ("learning_rate", "learning_rate: {type: unif"),  # a value: the help of its line's key
    ("model_name", "  - model_na"),
])
def test_shift_tab_on_a_hyperparameter_shows_its_row_of_the_spec_table(kernel_shell, name, before_cursor):
    reply = inspect(kernel_shell, CELL, before_cursor)
    assert reply["status"] == "ok" and reply["found"]
    lines = reply["data"]["text/plain"].splitlines()
    param = PARAMETERS[name]
    assert lines[0] == f"{name} ({param.kind}): {param.description}"
    assert f"allowed: {param.allowed_text(TASK)}" in lines
    assert any(line.startswith(f"default: {to_yaml(default_value(name, TASK))}") for line in lines)


def test_shift_tab_elsewhere_is_ipykernels_own(kernel_shell):
    assert not inspect(kernel_shell, CELL, "tas")["found"]  # a job key: not a hyperparameter
    on_magic = inspect(kernel_shell, CELL, "%%auto")
    assert on_magic["found"] and "usage: %%automl" in on_magic["data"]["text/plain"]
    python = "number_of_epochs = 3\nnumber_of_epochs"
    assert not inspect(kernel_shell, python, "number_of_ep")["found"]  # a Python cell: not ours
    kernel_shell.extension_manager.unload_extension("automl_nb")
    assert not inspect(kernel_shell, CELL, "  box_sc")["found"]  # unloading gives ipykernel back
