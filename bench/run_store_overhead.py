"""Run-store overhead: a sweep whose run lives on S3 against the same sweep in a local folder.

Starts moto's S3 server on 127.0.0.1 (a stand-in for an S3-compatible store; no network) and a
LocalCluster of ``--workers`` worker processes, then runs the same scripted sweep twice on it
(``--trials`` trials of ``--epochs`` evaluations, ``--seconds`` of sleep per epoch: nothing
trains, so the difference is the store's): once with a local run folder, once with
``s3://bench/runs/<n>`` (each trial staged on its worker, uploading after each evaluation, its
lease an object on the store; the driver on a local mirror, synced every second). Each trial can
also write a ``--checkpoint-mb`` file at every evaluation, as a real trial's checkpoints are.

Prints, per trial: its mean duration (its start on a worker to its end as the driver saw it) on
each store, the overhead (the difference) in seconds, per evaluation, and as a share of a
30-second trial with the same number of evaluations. Goal: under 2%.

    python bench/run_store_overhead.py [--trials 6] [--epochs 10] [--seconds 0.2] [--checkpoint-mb 0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from automl_nb.testing import ScriptedTrial

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: {trials}, max_concurrent_trials: {workers}}}
sweep: {{sampling_algorithm: random}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: uniform, min_value: 0.01, max_value: 0.1}}
training_parameters: {{number_of_epochs: {epochs}, use_pretrained_model: false}}
"""


class Ballast:
    """A trial function: ``inner``, with a ``megabytes`` file rewritten at each evaluation (a checkpoint's upload)."""

    def __init__(self, inner, megabytes: float) -> None:
        self.inner, self.megabytes = inner, megabytes

    def __call__(self, trial, reporter):
        if self.megabytes <= 0:
            return self.inner(trial, reporter)
        return self.inner(trial, _BallastReporter(reporter, Path(trial.output_dir), int(self.megabytes * 2**20)))


class _BallastReporter:
    def __init__(self, reporter, folder: Path, size: int) -> None:
        self.reporter, self.folder, self.size = reporter, folder, size

    def report(self, epoch, metrics):
        (self.folder / "ballast.pt").write_bytes(os.urandom(self.size))
        self.reporter.report(epoch, metrics)

    def should_stop(self):
        return self.reporter.should_stop()


def sweep(output, data: Path, client, args) -> list[float]:
    """Run the sweep to ``output``; return each trial's seconds (start on a worker to end)."""
    from automl_nb.spec import load_job

    job = load_job(JOB.format(data=data, trials=args.trials, workers=args.workers, epochs=args.epochs))
    script = Ballast(ScriptedTrial([0.5], seconds_per_epoch=args.seconds), args.checkpoint_mb)
    run = job.submit(output, client=client, check_data=False, trial_function=script)
    assert run.wait() == "Completed", run.status
    return [trial.ended - trial.started for trial in run.trials()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10, help="evaluations per trial")
    parser.add_argument("--seconds", type=float, default=0.2, help="seconds per epoch (a sleep)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--checkpoint-mb", type=float, default=0.0, help="a file of this size rewritten per evaluation")
    args = parser.parse_args(argv)

    import cloudpickle
    from distributed import Client, LocalCluster

    from automl_nb.data.synthetic import make_dataset
    from automl_nb.testing import moto_s3

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this script
    with moto_s3() as fs, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["AUTOML_NB_RUN_MIRRORS"] = str(tmp / "mirrors")
        data = tmp / "data"
        make_dataset("image_classification", 12, 16, data, seed=0)
        fs.mkdir("bench")
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, local_directory=str(tmp / "workers"),
                               dashboard_address=None)
        client = Client(cluster)
        try:
            sweep(tmp / "warm-up", data, client, args)  # imports on the workers, once
            local, remote = [], []
            for n in range(2):  # interleaved, so a slower spell of the machine hits both
                local += sweep(tmp / f"local-{n}", data, client, args)
                remote += sweep(f"s3://bench/runs/{n}", data, client, args)
        finally:
            client.close()
            cluster.close()
    local_mean, remote_mean = statistics.mean(local), statistics.mean(remote)
    overhead = remote_mean - local_mean
    share = overhead / 30.0
    print(f"trials: {len(local)} per store, {args.epochs} evaluations each, {args.seconds:g} s per epoch, "
          f"{args.workers} workers, ballast {args.checkpoint_mb:g} MB per evaluation")
    print(f"trial seconds: local folder {local_mean:.3f} (median {statistics.median(local):.3f}), "
          f"s3 (moto on 127.0.0.1) {remote_mean:.3f} (median {statistics.median(remote):.3f})")
    print(f"overhead per trial: {overhead:.3f} s ({overhead / args.epochs * 1000:.1f} ms per evaluation); "
          f"{share:.2%} of a 30-second trial of {args.epochs} evaluations (goal: under 2%)")


if __name__ == "__main__":
    main()
