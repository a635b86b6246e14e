"""``automl-nb check JOB.yml``: the health of a job's data, before anything trains.

    automl-nb check JOB.yml

Prints the report: class counts and imbalance, image and object sizes against what the model
sees, duplicates within and across training and validation, unlabelled images, and each
finding with its recommendation and the YAML lines to paste. Nothing is written and nothing
trains.

Exit status: 0 when no finding is an error (the report may still hold warnings and notes:
advice); 1 when a finding is an error, which makes a run's result wrong or makes it fail
(validation images copied from training, unreadable images, validation classes training never
shows); 2, as for every command, when the job or its label files cannot be read.
"""

from __future__ import annotations

import argparse

EXIT_HEALTHY, EXIT_ERRORS = 0, 1


def add_check_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``check`` command to a CLI's subcommands; it sets ``handler(args) -> exit code``.

    Example:
        >>> commands = parser.add_subparsers(dest="command", required=True)
        >>> add_check_parser(commands)
    """
    check = commands.add_parser(
        "check", help="report the health of a job's data (duplicates, leakage, sizes, imbalance...) with YAML fixes",
        description="Report the health of a job's data before training; each finding comes with the YAML to paste.",
        epilog="exit status: 0 no errors (warnings and notes are advice), 1 a finding is an error (e.g. leakage "
               "between training and validation), 2 the job or its data cannot be read")
    check.add_argument("job", help="the job's YAML file (Azure ML CLI v2 AutoML image job schema)")
    check.add_argument("--no-progress", action="store_true", help="no progress bar while images are hashed")
    check.set_defaults(handler=check_command)
    return check


def check_command(args) -> int:
    """Print the data-health report of ``args.job``; return 1 when a finding is an error, else 0."""
    from pathlib import Path

    from automl_nb.data.health import check
    from automl_nb.errors import SpecError

    path = Path(args.job).expanduser()
    if not path.is_file():
        raise SpecError(f"{args.job}: no such job file; allowed: the path of a job's YAML file")
    health = check(path, progress=False if args.no_progress else None)
    print(health.text())
    return EXIT_ERRORS if health.has_errors else EXIT_HEALTHY
