"""``automl-nb export RUN [--trial ID] [--output FILE] [--batch-size B]``: a trial's model as ONNX, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_export_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``export`` command to a CLI's subcommands (its ``handler(args)`` returns the exit code:
    0 exported and parity passed, 1 exported but parity failed)."""
    from automl_nb.export import EXPORTERS

    export = commands.add_parser("export", help="export a trial's model (the best by default) to ONNX, "
                                                "with a parity check against PyTorch")
    export.add_argument("run", type=Path, help="the run folder")
    export.add_argument("--trial", help="the trial id (default: the best trial)")
    export.add_argument("--output", type=Path, help="the .onnx file (default: <trial folder>/onnx/model.onnx)")
    export.add_argument("--exporter", choices=EXPORTERS, default="auto",
                        help="torch.onnx's dynamo or TorchScript path (default: auto, dynamo then TorchScript)")
    export.add_argument("--batch-size", type=int, default=1, metavar="B",
                        help="a detector's images per run, fixed in the graph (default: 1; a classifier's batch is free)")
    export.add_argument("--no-parity", action="store_true", help="skip the parity check on the validation images")
    export.set_defaults(handler=export_command)
    return export


def export_command(args) -> int:
    from automl_nb.export import export_run
    from automl_nb.sweep import load_run

    result = export_run(load_run(args.run), args.trial, args.output, exporter=args.exporter,
                        parity=not args.no_parity, batch_size=args.batch_size)
    print("\n".join(result.lines()))
    return 0 if result.passed in (True, None) else 1
