"""``automl-nb``: run a job, resume a run, check a job's data, convert datasets, run the demo.

The ``check``, ``convert`` and ``cache`` commands live in :mod:`automl_nb.cli.check`,
:mod:`automl_nb.cli.convert` and :mod:`automl_nb.cli.cache`, the steering commands (stop, extend,
clone, requeue, limits, narrow, steering) in :mod:`automl_nb.cli.steer`; ``main`` is the console
entry point.

    automl-nb run JOB.yml [--output DIR] [--cluster tcp://host:8786] [--dry-run] [--no-estimate]
    automl-nb resume RUN_FOLDER
    automl-nb check JOB.yml
    automl-nb convert coco|voc|folder ...
    automl-nb cache build|info|clear ...
    automl-nb export RUN_FOLDER [--trial ID] [--output FILE]
    automl-nb stop|extend|clone|requeue|limits|narrow|steering RUN_FOLDER ...
    automl-nb demo [--output DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Mapping, Sequence

from automl_nb.errors import AutoMLError, DataCheckError


class SweepProgress:
    """A run listener that draws a progress bar over trials, with the best metric so far."""

    def __init__(self, total: int, primary_metric: str) -> None:
        from tqdm.auto import tqdm

        self.primary_metric = primary_metric
        self.best: float | None = None
        self.epochs: dict[str, int] = {}
        self.bar = tqdm(total=total, unit="trial", desc="sweep", file=sys.stdout)

    def __call__(self, event: dict) -> None:
        if event["kind"] == "report":
            self.epochs[event["trial"]] = event["epoch"]
            value = event["metrics"].get(self.primary_metric)
            if value is not None and (self.best is None or value > self.best):
                self.best = value
        elif event["kind"] == "trial_ended":
            self.epochs.pop(event["trial"], None)
            self.bar.update(1)
        running = ", ".join(f"{trial}@{epoch}" for trial, epoch in sorted(self.epochs.items()))
        self.bar.set_postfix_str(f"best {self.primary_metric} {self.best:.3f}" if self.best is not None else "")
        self.bar.set_description(f"sweep [running {running}]" if running else "sweep")

    def tell(self, line: str) -> None:
        """Print ``line`` on stderr above the bar (a failed trial, as ``run.wait()`` reports it)."""
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def format_table(rows: Sequence[Mapping], columns: Sequence[str], decimals: Mapping[str, int] | None = None) -> str:
    """A plain aligned text table of ``columns`` from ``rows`` (floats to 4 decimals unless
    ``decimals`` says otherwise for a column)."""
    decimals = decimals or {}
    cells = [[f"{r[c]:.{decimals.get(c, 4)}f}" if isinstance(r.get(c), float) else str(r.get(c, ""))
              for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def run_job(job, output: str | Path, **options):
    """Run a job (single trial, AutoMode or sweep) through Dask and print its leaderboard.

    The run folder gets ``job.yaml``, ``run.json``, ``trials/<id>/``, ``leaderboard.csv`` and
    ``learning_curves.png``. Ctrl-C cancels the sweep (``automl-nb resume`` continues it).

    Returns:
        The finished :class:`~automl_nb.sweep.Run`.
    """
    run = job.submit(output, **options)
    return follow(run)


def follow(run):
    """Show a running sweep's progress until it ends, then its leaderboard; return the run."""
    info = run.store.run_info()
    metric = run.store.load_job().primary_metric
    progress = SweepProgress(info.get("max_trials", 1), metric)
    progress.bar.update(sum(1 for r in run.trials() if r.finished))
    run.subscribe(progress)
    try:
        status = run.wait(report=progress.tell)  # each failed trial on stderr as it fails
    except KeyboardInterrupt:
        print("\ncanceling: running trials stop at their next evaluation...", file=sys.stderr)
        run.cancel()
        status = run.wait(report=progress.tell)
    finally:
        progress.close()
    table = run.leaderboard()
    columns = ["trial", "model", metric, "status", "epochs", "duration_s", "notes"]
    print(format_table(table.to_dict("records"), columns, decimals={"duration_s": 1}))
    best = run.best_trial
    summary = f"best {metric} {best.best_metric:.4f} (trial {best.trial_id})" if best else "no trial reported a metric"
    because = run.store.run_info().get("ended_because")
    print(f"{status}: {summary}{f' ({because})' if because else ''}; results in {run.folder}")
    return run


def _primary_metric(task: str) -> str:
    from automl_nb.spec import PRIMARY_METRICS

    return PRIMARY_METRICS[task]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``automl-nb`` command.

    Returns:
        The exit status: 0 done, 1 a run ended other than Completed, 2 a usage or data
        mistake (the message on stderr; for a data check, a headline then one line per
        problem, ``file:line: ...``, the first 20 and how many more).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except DataCheckError as error:
        headline, *problems = error.lines()
        print(f"error: {headline}", file=sys.stderr)
        for line in problems:
            print(line, file=sys.stderr)
        return 2
    except AutoMLError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="automl-nb", description="AutoML for computer vision.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a job (single trial, AutoMode or sweep) from its YAML file")
    run.add_argument("job", help="the job's YAML file (Azure ML CLI v2 AutoML image job schema)")
    run.add_argument("--output", help="run folder, or a URL such as s3://bucket/runs/x (default: runs/<job name>)")
    run.add_argument("--cluster", help="Dask scheduler address (default: the job's cluster:, else a local cluster)")
    run.add_argument("--dry-run", action="store_true",
                     help="validate the job and estimate its sweep; train nothing and make no run folder")
    run.add_argument("--no-estimate", action="store_true",
                     help="do not time the sweep's models before it starts (that takes seconds; "
                          "$AUTOML_NB_NO_ESTIMATE=1 does the same)")
    run.set_defaults(handler=_run_command)
    resume = commands.add_parser("resume", help="continue an interrupted run from its folder")
    resume.add_argument("folder", help="the run folder, or its URL (s3://...)")
    resume.add_argument("--cluster", help="Dask scheduler address (default: the job's cluster:, else a local cluster)")
    resume.set_defaults(handler=_resume_command)
    convert = commands.add_parser("convert", help="convert COCO, Pascal VOC or an image folder to JSONL")
    from automl_nb.cli.cache import add_cache_parser
    from automl_nb.cli.convert import add_convert_arguments, run_convert

    add_convert_arguments(convert.add_subparsers(dest="format", required=True))
    convert.set_defaults(handler=lambda args: print(run_convert(args)) or 0)
    add_cache_parser(commands)
    from automl_nb.cli.check import add_check_parser

    add_check_parser(commands)
    from automl_nb.cli.export import add_export_parser

    add_export_parser(commands)
    from automl_nb.cli.steer import add_steering_parsers

    add_steering_parsers(commands)
    demo = commands.add_parser("demo", help="an AutoMode sweep of classifiers on built-in synthetic shapes")
    demo.add_argument("--output", type=Path, default=Path("runs/demo"), help="run folder (default: runs/demo)")
    demo.set_defaults(handler=_demo_command)
    return parser


def _run_command(args) -> int:
    from automl_nb.data.check import check_job_data
    from automl_nb.spec import load_job
    from automl_nb.sweep.estimate import estimate_sweep, estimate_wanted
    from automl_nb.sweep.plan import automode_plan_lines
    from automl_nb.sweep.store import free_folder

    job = load_job(args.job)  # validates
    check_job_data(job)  # a data problem exits 2, one line each, before anything is timed or made
    if estimate_wanted(args.no_estimate):
        estimate = estimate_sweep(job, cluster=args.cluster, check_data=False,
                                  announce=lambda line: print(line, flush=True))
        print("\n".join(estimate.lines()), flush=True)
    if args.dry_run:
        if job.run_mode == "automode":
            print("\n".join(automode_plan_lines(job, args.cluster, no_estimate=args.no_estimate)), flush=True)
        print(f"{args.job}: a valid {job.task} job ({job.run_mode}, {job.limits.max_trials} trial(s)), its data "
              "checked; dry run: nothing trained, no run folder made")
        return 0
    name = job.name or job.experiment_name or Path(args.job).stem
    run = run_job(job, args.output or free_folder(Path("runs") / name), cluster=args.cluster, check_data=False,
                  no_estimate=args.no_estimate)
    return _exit_code(run.status)


def _resume_command(args) -> int:
    from automl_nb.sweep import load_run

    run = load_run(args.folder).resume(cluster=args.cluster)
    return _exit_code(follow(run).status)


def _exit_code(status: str) -> int:
    return 0 if status == "Completed" else 1


def _demo_command(args) -> int:
    """Synthetic shapes in random colours -> an AutoMode sweep of small classifiers trained from scratch."""
    from automl_nb.data.synthetic import make_dataset
    from automl_nb.spec import Input, image_classification
    from automl_nb.sweep.store import free_folder

    output = free_folder(args.output)
    # Colour says nothing of the class: what the demo learns, it learns from the shapes.
    data = make_dataset("image_classification", n=DEMO_IMAGES, size=64, out_dir=output / "data", seed=0,
                        colour_by_class=False)
    job = image_classification(training_data=Input(path=str(data.parent), type="mltable"), name="demo")
    job.set_limits(max_trials=DEMO_TRIALS, max_concurrent_trials=2, timeout_minutes=30)
    job.set_training_parameters(**DEMO_PARAMETERS)
    job.set_sweep(sampling_algorithm="random", early_termination=DEMO_POLICY)
    run = run_job(job, output / "run")
    print(demo_summary(run))
    return _exit_code(run.status)


def demo_summary(run) -> str:
    """What the demo's best trial learned: validation accuracy against chance, and recall per shape."""
    from automl_nb.train.folder import EVALUATION, TrialFolder

    best = run.best_trial
    if best is None:
        return "The demo trained no trial to an evaluation: nothing learned to show."
    scores = TrialFolder(run.store.trial_folder(best.trial_id)).read_json(EVALUATION)
    labels, recall = scores["labels"], scores["per_class"]["recall"]
    per_shape = ", ".join(f"{label} {value:.2f}" for label, value in zip(labels, recall))
    verdict = ("it tells the shapes apart" if scores["accuracy"] >= 2 / len(labels)
               else "it has barely learned; more epochs or images would help")
    return (f"The shapes were coloured at random, so only their outline tells the class. Best trial "
            f"{best.trial_id} ({best.parameters.get('model_name')}): validation accuracy {scores['accuracy']:.2f} "
            f"(chance {1 / len(labels):.2f}), {verdict}. Recall per shape: {per_shape}.")


# AutoMode picks the models and learning rates; the demo fixes what suits random weights
# (no network here) on 64 px images: small crops, a few epochs. Shapes in random colours are
# harder than colour-coded ones: 300 images and 8 epochs reached 0.60 (chance 0.33), these 0.72.
DEMO_IMAGES = 600
DEMO_TRIALS = 4
DEMO_PARAMETERS = {
    "use_pretrained_model": False, "number_of_epochs": 12, "training_batch_size": 32, "training_crop_size": 56,
    "validation_resize_size": 64, "validation_crop_size": 56, "early_stopping": False, "random_seed": 0,
}
DEMO_POLICY = {"type": "bandit", "slack_factor": 0.2, "evaluation_interval": 1, "delay_evaluation": 3}

