"""The options of ``%%automl`` and the subcommands of ``%automl``, as argparse parsers.

A user's mistake raises IPython's ``UsageError`` (a message, no traceback); ``-h`` prints the
help once and stops. The parsers double as the magics' documentation: :func:`magic_help` is the
docstring ``%automl?`` and ``%%automl?`` show, so every option is written here and nowhere else.
"""

from __future__ import annotations

import argparse
import shlex

from IPython.core.error import UsageError

from automl_nb.export import EXPORTERS
from automl_nb.spec.limits import LIMIT_KEYS
from automl_nb.spec.explain import XAI_ALGORITHMS, XAI_PARAMETERS


class _HelpShown(Exception):
    """``-h`` printed the help: the magic stops without an error."""


class MagicParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting.

    Attributes:
        commands: the parsers of the subcommands by name (empty for a parser without them).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, MagicParser] = {}

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage()}")

    def exit(self, status: int = 0, message: str | None = None):
        # argparse calls exit only after -h has printed the help (error() is ours): a second,
        # red copy as a UsageError would be noise.
        raise _HelpShown


def parse(parser: argparse.ArgumentParser, line: str) -> argparse.Namespace | None:
    """Split ``line`` as a shell would (quotes group words) and parse it.

    Returns:
        The parsed options, or None when ``-h`` / ``--help`` printed the help.

    Raises:
        UsageError: unknown option, missing or bad value, unbalanced quotes.
    """
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise UsageError(f"{parser.prog}: {error} in {line!r}") from None
    try:
        return parser.parse_args(words)
    except _HelpShown:
        return None


def magic_help() -> str:
    """The help of ``%%automl``, ``%automl`` and each of its commands: the magic's docstring.

    Example:
        >>> "--dry-run" in magic_help() and "%automl show" in magic_help()
        True
    """
    line = line_parser()
    parts = [cell_parser().format_help(), line.format_help()]
    parts += [command.format_help() for command in line.commands.values()]
    return "\n".join(parts)


def cell_parser() -> MagicParser:
    """``%%automl [-o NAME] [--cluster ADDRESS] [--name JOB] [--output FOLDER] [--dry-run] [--no-dashboard]
    [--no-estimate]``."""
    parser = MagicParser(prog="%%automl", add_help=True, description=(
        "Run the cell's YAML (an Azure ML CLI v2 AutoML image job) as a sweep on Dask: validate it "
        "(errors name the cell line), show the resolved job, submit it and show a live dashboard. "
        "$var and {expr} in the YAML are filled in from the notebook's variables ($$ is a literal $). "
        "In the cell, Tab completes keys and values; Shift+Tab on a hyperparameter shows its description, "
        "range and default."))
    parser.add_argument("-o", "--out", dest="out", metavar="NAME",
                        help="bind the Run (with --dry-run: the job) to this notebook variable")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="Dask scheduler address, e.g. tcp://host:8786 (default: the job's cluster:, else a local cluster)")
    parser.add_argument("--name", metavar="JOB", help="the job's name (default: the YAML's name:, else the task)")
    parser.add_argument("--output", metavar="FOLDER", help="the run folder (default: runs/<job name>, made unique)")
    parser.add_argument("--dry-run", action="store_true", help="validate and show the resolved job; submit nothing")
    parser.add_argument("--no-dashboard", action="store_true",
                        help="show no live dashboard; the cell returns the Run instead")
    parser.add_argument("--no-estimate", action="store_true",
                        help="do not time the sweep's models before it starts (that takes seconds; "
                             "$AUTOML_NB_NO_ESTIMATE=1 turns it off for every cell)")
    return parser


def line_parser() -> MagicParser:
    """``%automl COMMAND ...``: status, leaderboard, best, stop, extend, clone, requeue, limits, narrow, resume,
    dashboard, wait, cluster, show, explain, export, diff, errors, replay, check."""
    parser = MagicParser(prog="%automl", add_help=True, description=(
        "Look at and steer the sweeps of this notebook. Commands act on the last run of the kernel "
        "(the last %%automl, resume or dashboard) unless -r names a Run variable or a run folder."))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=MagicParser)
    commands.required = True
    parser.commands = commands.choices

    def command(name: str, help_text: str, description: str | None = None) -> MagicParser:
        # argparse %-formats a command's help (its line in the list), not its description.
        sub = commands.add_parser(name, help=help_text, description=description or help_text, add_help=True)
        sub.add_argument("-r", "--run", metavar="RUN", help="a Run variable or a run folder (default: the last run)")
        return sub

    command("status", "one line: status, trials ended and running, best metric, elapsed time")
    command("leaderboard", "the leaderboard as a table, best first (returns a pandas DataFrame)")
    command("best", "the best trial: its model, metric, params and model file")
    stop = command("stop", "stop the whole sweep, or one trial at its next evaluation")
    stop.add_argument("trial", nargs="?", metavar="TRIAL", help="the trial id (default: the whole sweep)")
    _steering_commands(command)
    resume_help = "continue an interrupted run from its folder and show its dashboard"
    resume = commands.add_parser("resume", help=resume_help, description=resume_help, add_help=True)
    resume.add_argument("folder", metavar="FOLDER", help="the run folder")
    resume.add_argument("--cluster", metavar="ADDRESS", help="Dask scheduler address (default: a local cluster)")
    resume.add_argument("-o", "--out", dest="out", metavar="NAME", help="bind the Run to this notebook variable")
    resume.add_argument("--no-dashboard", action="store_true", help="show no dashboard")
    command("dashboard", "show a live dashboard of a run (any run folder, e.g. one run by automl-nb run)")
    wait = command("wait", "wait for the sweep to end, keeping the dashboard's Stop buttons working")
    wait.add_argument("--timeout", type=float, metavar="SECONDS", help="wait at most this long")
    command("cluster", "the Dask cluster of the sweep: scheduler, dashboard link, workers and their trials")
    show = command("show", "predictions of the best model on images, drawn inline")
    show.add_argument("images", nargs="+", metavar="IMAGE", help="image paths or URLs (globs like data/*.png work)")
    show.add_argument("--trial", metavar="ID", help="use this trial's model instead of the best one")
    show.add_argument("--threshold", type=float, metavar="SCORE",
                      help="detection: the least box score drawn (default: the model's box_score_threshold)")
    explain = command("explain", "attribution heatmaps of the best classifier on images")
    explain.add_argument("images", nargs="+", metavar="IMAGE", help="image paths or URLs")
    explain.add_argument("--trial", metavar="ID", help="use this trial's model instead of the best one")
    method = XAI_PARAMETERS["xai_algorithm"].default
    explain.add_argument("--method", default=method,
                         help=f"one of {', '.join(XAI_ALGORITHMS)} (default: {method})")
    explain.add_argument("--label", help="explain this class (default: the predicted class or labels)")
    export = command("export", "export a trial's model (the best by default) to ONNX, checked against PyTorch")
    export.add_argument("--trial", metavar="ID", help="export this trial's model instead of the best one")
    export.add_argument("--output", metavar="FILE", help="the .onnx file (default: <trial folder>/onnx/model.onnx)")
    export.add_argument("--exporter", choices=EXPORTERS, default="auto",
                        help="torch.onnx's dynamo or TorchScript path (default: auto, dynamo then TorchScript)")
    export.add_argument("--batch-size", type=int, default=1, metavar="B",
                        help="a detector's images per run, fixed in the graph (default: 1)")
    export.add_argument("-o", "--out", dest="out", metavar="NAME", help="bind the ExportResult to this variable")
    replay = command("replay", "run the sweep again in simulated time under another early-termination policy: "
                               "the compute it would save and the best metric it would keep")
    replay.add_argument("policy", nargs="+", metavar="POLICY",
                        help="as early_termination: takes it: type: bandit, slack_factor: 0.1 (or a bare type, "
                             "e.g. median_stopping; none for no policy)")
    replay.add_argument("--concurrent", type=int, metavar="N",
                        help="trials at once (default: the job's max_concurrent_trials)")
    replay.add_argument("-o", "--out", dest="out", metavar="NAME", help="bind the ReplayResult to this variable")
    diff = command("diff", "the validation images where two trials disagree most, side by side (from the run folder)")
    diff.add_argument("a", metavar="A", help="a trial id")
    diff.add_argument("b", metavar="B", help="the trial id to compare it with")
    diff.add_argument("--limit", type=int, metavar="N", help="thumbnails shown (default: the gallery's)")
    diff.add_argument("--html", metavar="FILE", help="also save the gallery as a static HTML page")
    diff.add_argument("-o", "--out", dest="out", metavar="NAME", help="bind the PredictionDiff to this variable")
    errors = command("errors", "one trial's errors: confusion matrix, worst images, precision-recall curves, and for "
                               "detection its errors per class and AP by object size (from the run folder)")
    errors.add_argument("trial", nargs="?", metavar="TRIAL", help="the trial id (default: the best trial)")
    errors.add_argument("--limit", type=int, metavar="N", help="images shown per gallery (default: the panel's)")
    errors.add_argument("-o", "--out", dest="out", metavar="NAME", help="bind the ErrorAnalysis to this variable")
    check_help = ("the health of a job's data, with the YAML that fixes what it finds (duplicates, leakage, sizes, "
                  "imbalance...)")
    check = commands.add_parser("check", add_help=True, help=check_help, description=check_help)
    check.add_argument("job", nargs="?", metavar="JOB.yml", help="the job's YAML file")
    check.add_argument("-j", "--job", dest="job_variable", metavar="JOB_VARIABLE",
                       help="a job variable of this notebook instead (e.g. from %%%%automl --dry-run -o NAME)")
    check.add_argument("-o", "--out", dest="out", metavar="NAME", help="bind the DataHealth report to this variable")
    return parser


def _steering_commands(command) -> None:
    """extend, clone, requeue, limits, narrow: steering requests (``automl_nb.sweep.steering``, docs/steering.md)."""
    extend = command("extend", "run a Completed or Canceled trial N more epochs (a stopped one resumes from its "
                               "last checkpoint; a Completed one warm-starts a new trial from its best model)")
    extend.add_argument("trial", metavar="TRIAL", help="the trial id")
    extend.add_argument("epochs", type=int, metavar="N", help="how many more epochs")
    clone = command("clone", "run a new trial with a trial's parameters and the edits given, before new samples")
    clone.add_argument("trial", metavar="TRIAL", help="the trial to copy")
    clone.add_argument("edits", nargs="*", metavar="KEY=VALUE", help="parameters to change, e.g. learning_rate=0.002")
    requeue = command("requeue", "run Failed trials again (an out-of-memory retry keeps its smaller batch)")
    requeue.add_argument("trials", nargs="*", metavar="TRIAL", help="the trial ids (default: every Failed trial)")
    limits = command("limits", f"change {', '.join(LIMIT_KEYS)} while the sweep runs")
    limits.add_argument("limits", nargs="+", metavar="KEY=VALUE", help="e.g. max_trials=20 timeout_minutes=90")
    narrow_help = ("draw new trials from a narrower search space: %%automl narrow with the space's YAML as the cell, "
                   "or -f FILE")
    narrow = command("narrow", narrow_help.replace("%", "%%"), narrow_help)
    narrow.add_argument("-f", "--file", metavar="FILE", help="a YAML file holding the search space (search_space: "
                                                             "or a list of subspaces)")


def key_values(words: list[str], what: str) -> dict:
    """``key=value`` words as a mapping, each value read as YAML (``0.01`` a float, ``adam`` a str):
    :func:`automl_nb.spec.edits.key_values`, as ``automl-nb clone`` reads them, a mistake a UsageError.

    Example:
        >>> key_values(["learning_rate=0.01", "optimizer=adam"], "clone")
        {'learning_rate': 0.01, 'optimizer': 'adam'}
    """
    from automl_nb.errors import SpecError
    from automl_nb.spec.edits import key_values as read

    try:
        return read(words, f"%automl {what}")
    except SpecError as error:
        raise UsageError(str(error)) from None


SUBCOMMANDS = tuple(line_parser().commands)
