"""``automl-nb stop|extend|clone|requeue|limits|narrow|steering RUN ...``: steer a sweep from a shell.

Each command makes the same request as the ``Run`` method (and ``%automl`` command) of its name:
checked at once against the run folder (a refusal exits 2 with its message, nothing logged), logged
in the folder's ``steering.jsonl``, applied by the process driving the sweep at its next turn, or
by the next ``automl-nb resume`` when none does. See ``docs/steering.md``.

    automl-nb stop RUN TRIAL
    automl-nb extend RUN TRIAL --epochs N
    automl-nb clone RUN TRIAL [KEY=VALUE ...]
    automl-nb requeue RUN [TRIAL ...]
    automl-nb limits RUN [--max-trials N] [--max-concurrent-trials N] [--timeout-minutes M]
    automl-nb narrow RUN SPACE.yaml
    automl-nb steering RUN
"""

from __future__ import annotations

import argparse
from pathlib import Path

from automl_nb.errors import AutoMLError
from automl_nb.spec.limits import LIMIT_KEYS


def add_steering_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the steering commands to a CLI's subcommands (each ``handler(args)`` returns the exit code)."""

    def command(name: str, help_text: str, handler) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("run", metavar="RUN", help="the run folder, or its URL (s3://...)")
        parser.set_defaults(handler=handler)
        return parser

    stop = command("stop", "stop a running trial at its next evaluation (the sweep driven by another process)",
                   _stop)
    stop.add_argument("trial", metavar="TRIAL", help="the trial id")
    extend = command("extend", "run a Completed or Canceled trial N more epochs (a stopped one resumes from its last "
                               "checkpoint; a Completed one warm-starts a new trial from its best model)", _extend)
    extend.add_argument("trial", metavar="TRIAL", help="the trial id")
    extend.add_argument("--epochs", type=int, required=True, metavar="N", help="how many more epochs")
    clone = command("clone", "run a new trial with a trial's parameters and the edits given, before new samples",
                    _clone)
    clone.add_argument("trial", metavar="TRIAL", help="the trial to copy")
    clone.add_argument("edits", nargs="*", metavar="KEY=VALUE", help="parameters to change, e.g. learning_rate=0.002")
    requeue = command("requeue", "run Failed trials again (an out-of-memory retry keeps its smaller batch)", _requeue)
    requeue.add_argument("trials", nargs="*", metavar="TRIAL", help="the trial ids (default: every Failed trial)")
    limits = command("limits", "change the sweep's limits while it runs (trials running go on)", _limits)
    for key in LIMIT_KEYS:
        limits.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int, metavar="M" if "minutes" in key else "N",
                            help=f"the new {key}")
    narrow = command("narrow", "draw new trials from a narrower search space, within the job's", _narrow)
    narrow.add_argument("space", type=Path, metavar="SPACE.yaml",
                        help="a YAML file holding the search space (search_space: or a list of subspaces)")
    command("steering", "list the run's steering requests and what became of them", _steering)


def _run(location: str):
    """The run at a folder or a URL (``s3://...``, as ``automl-nb resume`` takes)."""
    from automl_nb.sweep import load_run
    from automl_nb.sweep.store import is_remote

    if not is_remote(location) and not (Path(location) / "run.json").is_file():
        raise AutoMLError(f"RUN {location!r} is not a run folder (a folder with run.json)")
    return load_run(location)


def _said(run, request_id: str, what: str) -> int:
    """Tell when a logged request takes effect (the magics' words, with the command that resumes)."""
    from automl_nb.sweep.steering import request_logged

    print(request_logged(run, request_id, what, "automl-nb resume"))
    return 0


def _stop(args) -> int:
    run = _run(args.run)
    run.stop_trial(args.trial)
    print(f"{run.store.location}: trial {args.trial} stops at its next evaluation")
    return 0


def _extend(args) -> int:
    run = _run(args.run)
    return _said(run, run.extend_trial(args.trial, args.epochs), f"extend trial {args.trial} by {args.epochs} epochs")


def _clone(args) -> int:
    from automl_nb.spec.edits import key_values

    run = _run(args.run)
    edits = key_values(args.edits, "automl-nb clone")
    return _said(run, run.clone_trial(args.trial, **edits), f"clone trial {args.trial}")


def _requeue(args) -> int:
    run = _run(args.run)
    return _said(run, run.requeue(args.trials or None), f"requeue {' '.join(args.trials) or 'every Failed trial'}")


def _limits(args) -> int:
    run = _run(args.run)
    changes = {key: getattr(args, key) for key in LIMIT_KEYS if getattr(args, key) is not None}
    shown = " ".join(f"{key}={value}" for key, value in changes.items())
    return _said(run, run.set_limits(**changes), f"limits {shown}".rstrip())


def _narrow(args) -> int:
    run = _run(args.run)
    if not args.space.is_file():
        raise AutoMLError(f"SPACE.yaml {str(args.space)!r}: no such file; allowed: a YAML file holding the search "
                          "space")
    return _said(run, run.narrow_space(args.space.read_text(encoding="utf-8")), "narrow the search space")


def _steering(args) -> int:
    from automl_nb.cli import format_table

    run = _run(args.run)
    rows = [{"request": request["id"], "kind": request["kind"], "asks": _asks(request), "outcome": request["outcome"],
             "reason": request.get("reason") or ""} for request in run.steering()]
    if not rows:
        print(f"{run.folder}: no steering requests")
        return 0
    print(format_table(rows, ["request", "kind", "asks", "outcome", "reason"]))
    return 0


def _asks(request: dict) -> str:
    """What a request asks for, in one short line."""
    kind = request["kind"]
    if kind == "extend":
        return f"trial {request.get('trial')} +{request.get('epochs')} epochs"
    if kind == "clone":
        edits = " ".join(f"{key}={value}" for key, value in (request.get("edits") or {}).items())
        return f"trial {request.get('trial')} {edits}".rstrip()
    if kind == "requeue":
        return " ".join(f"trial {trial}" for trial in request.get("trials") or []) or "every Failed trial"
    if kind == "limits":
        return " ".join(f"{key}={value}" for key, value in (request.get("limits") or {}).items())
    if kind == "narrow":
        return f"{len(request.get('search_space') or [])} subspace(s)"
    return f"trial {request.get('trial')}" if "trial" in request else ""
