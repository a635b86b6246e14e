"""Sweep overhead: trials dispatched through Dask against ``run_trial`` called in-process.

Runs the same ``--trials`` trials (resnet18 from random weights on synthetic shapes, one at a
time) twice: in this process one after another, and as a sweep through a LocalCluster with
one worker (``job.submit``, max_concurrent_trials 1). Both use the same torch threads.
Prints the steady-state per-trial overhead of the sweep (a trial's time on the worker less its
time in-process, plus the dispatch gap between trials) in seconds and as a share of a trial,
the one-off costs (cluster start, the first trial's imports), and how long a report takes from
the worker's ``log_event`` to the driver's listener. Goal: overhead under 2% of a 30 s trial.

    python bench/sweep_overhead.py [--trials 4] [--images 400] [--epochs 18]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import Choice, Input, image_classification
from automl_nb.testing import FAST_CLASSIFICATION
from automl_nb.train import Trial, run_trial



def parameters(epochs: int) -> dict:
    """One trial's parameters; the trials differ only in random_seed (same work each)."""
    fixed = {**FAST_CLASSIFICATION, "number_of_epochs": epochs, "training_crop_size": 56,
             "validation_resize_size": 64, "validation_crop_size": 56, "training_batch_size": 32}
    del fixed["random_seed"]
    return fixed


def in_process(data: Path, out: Path, args) -> list[float]:
    """Seconds per trial, calling run_trial directly."""
    seconds = []
    for i in range(args.trials):
        started = time.perf_counter()
        params = {**parameters(args.epochs), "random_seed": i}
        run_trial(Trial(str(i), "image_classification", params, str(data), str(out / str(i))))
        seconds.append(time.perf_counter() - started)
    return seconds


def through_dask(data: Path, out: Path, args) -> dict:
    """The same trials as a sweep; times taken by the driver (its trial records) and here."""
    job = image_classification(training_data=Input(path=str(data), type="mltable"), target_column_name="label")
    job.set_training_parameters(**parameters(args.epochs))
    job.set_limits(max_trials=args.trials, max_concurrent_trials=1)
    job.extend_search_space({"random_seed": Choice(list(range(args.trials)))})
    job.set_sweep(sampling_algorithm="grid")
    latencies: list[float] = []
    started = time.perf_counter()
    run = job.submit(out)
    submitted = time.perf_counter()
    run.subscribe(lambda event: latencies.append(time.time() - event["logged"]) if event["kind"] == "report" else None)
    run.wait()
    total = time.perf_counter() - submitted
    trials = run.trials()
    return {
        "cluster_start": submitted - started,
        "total": total,
        "trial_seconds": [t.ended - t.started for t in trials],
        # from one trial's end (as the driver saw it) to the next one's start on the worker
        "gaps": [b.started - a.ended for a, b in zip(trials, trials[1:])],
        "latencies": latencies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=18)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_dataset("image_classification", args.images, 64, tmp / "data", seed=0).parent
        plain = in_process(data, tmp / "plain", args)
        dask = through_dask(data, tmp / "sweep", args)
    # Steady state: leave out each path's first trial (imports and warm-up, paid once per worker).
    trial = statistics.mean(plain[1:] or plain)
    worker = statistics.mean(dask["trial_seconds"][1:] or dask["trial_seconds"])
    gap = statistics.mean(dask["gaps"]) if dask["gaps"] else 0.0
    overhead = worker - trial + gap
    print(f"in-process trial:            {trial:7.2f} s  (each: {', '.join(f'{s:.1f}' for s in plain)})")
    print(f"trial on a Dask worker:      {worker:7.2f} s  (each: {', '.join(f'{s:.1f}' for s in dask['trial_seconds'])})")
    print(f"dispatch gap between trials: {gap:7.3f} s")
    print(f"overhead per trial:          {overhead:+7.2f} s = {100 * overhead / trial:+.1f}% of a {trial:.0f} s trial "
          f"(goal: < 2%)")
    print(f"once per sweep: cluster start {dask['cluster_start']:.2f} s; whole sweep {dask['total']:.1f} s "
          f"vs {sum(plain):.1f} s in-process")
    latencies = dask["latencies"]
    if latencies:
        print(f"report latency, worker -> driver listener: mean {1000 * statistics.mean(latencies):.1f} ms, "
              f"max {1000 * max(latencies):.1f} ms over {len(latencies)} reports")


if __name__ == "__main__":
    main()
