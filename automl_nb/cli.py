"""``automl-nb``: run a job, convert datasets, run the demo.

    automl-nb run JOB.yml [--output DIR]
    automl-nb convert coco|voc|folder ...
    automl-nb demo [--output DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Mapping, Sequence

from automl_nb.errors import AutoMLError


class ProgressReporter:
    """Reporter that draws a progress bar over epochs, with the latest metrics beside it."""

    def __init__(self, epochs: int, primary_metric: str) -> None:
        from tqdm.auto import tqdm

        self.primary_metric = primary_metric
        self.bar = tqdm(total=epochs, unit="epoch", desc="training", file=sys.stdout)

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.bar.update(epoch - self.bar.n)
        self.bar.set_postfix(loss=f"{metrics['train_loss']:.3f}",
                             **{self.primary_metric: f"{metrics[self.primary_metric]:.3f}"})

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        self.bar.close()


def format_table(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    """A plain aligned text table of ``columns`` from ``rows`` (floats to 4 decimals)."""
    cells = [[f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def free_folder(path: Path) -> Path:
    """``path`` if it is free, else ``path-2``, ``path-3``...: a new run never overwrites an old one."""
    candidate, n = path, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def run_job(job, output: Path):
    """Run a single-trial job in-process: progress bar, run folder, curves PNG, final table.

    The run folder gets ``job.yaml``, ``trials/0/`` (the trial's files) and
    ``learning_curves.png``.

    Returns:
        The trial's :class:`~automl_nb.train.TrialResult`.
    """
    from automl_nb.plots import plot_learning_curves
    from automl_nb.train import run_trial, trial_from_job
    from automl_nb.train.folder import TrialFolder

    if job.search_space or job.limits.max_trials > 1:
        raise AutoMLError("`automl-nb run` runs single-trial jobs for now: set limits.max_trials to 1 "
                          "and leave out search_space")
    output.mkdir(parents=True, exist_ok=True)
    (output / "job.yaml").write_text(job.dump(), encoding="utf-8")
    trial = trial_from_job(job, output / "trials" / "0")
    params = job.resolved_training_parameters()
    reporter = ProgressReporter(params["number_of_epochs"], _primary_metric(job.task))
    try:
        result = run_trial(trial, reporter)
    finally:
        reporter.close()
    rows = TrialFolder(trial.output_dir).metrics()
    metric = result.primary_metric
    print(format_table(rows, ["epoch", "train_loss", "validation_loss", metric]))
    if rows:
        plot_learning_curves(rows, metric, output / "learning_curves.png", title=f"{job.task}: {params['model_name']}")
    print(f"{result.status}: best {metric} {result.best_metric:.4f} at epoch {result.best_epoch}"
          f"{' (stopped early)' if result.stopped_early else ''}; results in {output}")
    return result


def _primary_metric(task: str) -> str:
    from automl_nb.spec import PRIMARY_METRICS

    return PRIMARY_METRICS[task]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``automl-nb`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except AutoMLError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="automl-nb", description="AutoML for computer vision.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a single-trial job from its YAML file")
    run.add_argument("job", help="the job's YAML file (Azure ML CLI v2 AutoML image job schema)")
    run.add_argument("--output", type=Path, help="run folder (default: runs/<job name>)")
    run.set_defaults(handler=_run_command)
    convert = commands.add_parser("convert", help="convert COCO, Pascal VOC or an image folder to JSONL")
    from automl_nb.data.convert import add_convert_arguments, run_convert

    add_convert_arguments(convert.add_subparsers(dest="format", required=True))
    convert.set_defaults(handler=lambda args: print(run_convert(args)) or 0)
    demo = commands.add_parser("demo", help="train a classifier on built-in synthetic shapes")
    demo.add_argument("--output", type=Path, default=Path("runs/demo"), help="run folder (default: runs/demo)")
    demo.set_defaults(handler=_demo_command)
    return parser


def _run_command(args) -> int:
    from automl_nb.spec import load_job

    job = load_job(args.job)
    name = job.name or job.experiment_name or Path(args.job).stem
    run_job(job, args.output or free_folder(Path("runs") / name))
    return 0


def _demo_command(args) -> int:
    """Synthetic shapes -> a small resnet18 trained from scratch, with curves and metrics."""
    from automl_nb.data.synthetic import make_dataset
    from automl_nb.spec import Input, image_classification

    output = free_folder(args.output)
    data = make_dataset("image_classification", n=DEMO_IMAGES, size=64, out_dir=output / "data", seed=0)
    job = image_classification(training_data=Input(path=str(data.parent), type="mltable"),
                               target_column_name="label", name="demo")
    job.set_training_parameters(**DEMO_PARAMETERS)
    result = run_job(job, output)
    return 0 if result.status == "Completed" else 1


# The demo trains from random weights (no network here) on 64 px images, so it uses
# small crops and a higher learning rate than the defaults meant for pretrained models.
DEMO_IMAGES = 300
DEMO_PARAMETERS = {
    "model_name": "resnet18", "use_pretrained_model": False, "number_of_epochs": 12,
    "training_batch_size": 32, "validation_batch_size": 64, "learning_rate": 0.05,
    "training_crop_size": 56, "validation_resize_size": 64, "validation_crop_size": 56,
    "early_stopping": False, "random_seed": 0,
}


if __name__ == "__main__":
    sys.exit(main())
