"""Estimate accuracy: the sweep estimate's per-trial time against the trials' actual durations.

Two sweeps, each estimated (timed afresh in timing processes, with an empty timing cache; as many
copies side by side as concurrent trials will share the cores) and then run through Dask as
``automl-nb run`` runs them:

    (a) demo       the configuration of ``automl-nb demo`` (its DEMO_* constants): AutoMode over
                   small classifiers on 64 px synthetic shapes, 2 trials at a time
    (b) detection  a sweep of two Faster R-CNN backbones on 128 px synthetic boxes,
                   2 trials at a time, no early termination

For each trial: the estimate for the epochs it actually ran (early termination stops some demo
trials), plus the workers' start (loading torch) for each worker's first trial, against its
duration in the run store. The goal is an error within 30% per trial. On a shared machine (other
processes on the cores) run it twice and look at both.

    python bench/estimate_accuracy.py [--only demo|detection] [--output DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from automl_nb.cli import DEMO_IMAGES, DEMO_PARAMETERS, DEMO_POLICY, DEMO_TRIALS
from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import Choice, Input, image_classification, image_object_detection
from automl_nb.sweep.estimate import estimate_sweep
from automl_nb.train.estimate import TimingCache

GOAL = 0.30


def demo_job(folder: Path):
    """The job `automl-nb demo` runs (see automl_nb.cli._demo_command)."""
    data = make_dataset("image_classification", n=DEMO_IMAGES, size=64, out_dir=folder / "data", seed=0)
    job = image_classification(training_data=Input(path=str(data.parent), type="mltable"), name="demo")
    job.set_limits(max_trials=DEMO_TRIALS, max_concurrent_trials=2, timeout_minutes=30)
    job.set_training_parameters(**DEMO_PARAMETERS)
    job.set_sweep(sampling_algorithm="random", early_termination=DEMO_POLICY)
    return job


def detection_job(folder: Path):
    """Two Faster R-CNN backbones from scratch on 60 synthetic 128 px images, 3 epochs each."""
    data = make_dataset("image_object_detection", 60, 128, folder / "data", seed=0)
    job = image_object_detection(training_data=Input(path=str(data.parent), type="mltable"), name="detection")
    job.set_limits(max_trials=2, max_concurrent_trials=2, timeout_minutes=30)
    job.set_training_parameters(use_pretrained_model=False, number_of_epochs=3, min_size=128, max_size=128,
                                early_stopping=False, random_seed=0,
                                advanced_settings='{"box_batch_size_per_image": 64}')
    job.extend_search_space({"model_name": Choice(["fasterrcnn_resnet18_fpn", "fasterrcnn_resnet34_fpn"])})
    job.set_sweep(sampling_algorithm="grid")
    return job


def measure(name: str, job, folder: Path) -> list[float]:
    """Estimate, run, and print estimated vs actual per trial; return the relative errors."""
    started = time.perf_counter()
    estimate = estimate_sweep(job, cache=TimingCache(folder / "timings.json"))
    took = time.perf_counter() - started
    print(f"\n== {name}: estimated in {took:.1f} s ({estimate.measured} configuration(s) timed)")
    print("\n".join(estimate.lines()))
    run = job.submit(folder / "run")
    status = run.wait()
    records = sorted(run.trials(), key=lambda r: r.started or 0)
    first_on_worker = {r.trial_id for r in records[:estimate.concurrent]}
    print(f"\n{'trial':>5} {'model':<26} {'status':<9} {'epochs':>6} {'estimated':>9} {'actual':>7} {'error':>7}")
    errors = []
    for record in records:
        configuration = estimate.configuration_of(job.trial_parameters(record.sampled))
        if configuration is None or record.duration is None or record.epochs == 0:
            print(f"{record.trial_id:>5} {record.parameters.get('model_name', ''):<26} {record.status:<9} "
                  f"no comparison ({record.error or 'not timed'})")
            continue
        expected = configuration.seconds(record.epochs)
        if record.trial_id in first_on_worker:
            expected += estimate.startup_seconds or 0.0
        error = expected / record.duration - 1
        errors.append(error)
        print(f"{record.trial_id:>5} {configuration.parameters['model_name']:<26} {record.status:<9} "
              f"{record.epochs:>6} {expected:>8.1f}s {record.duration:>6.1f}s {error:>+7.0%}")
    sweep_actual = max(r.ended for r in records) - min(r.started for r in records)
    print(f"{name}: {status}; per-trial error mean {sum(map(abs, errors)) / len(errors):.0%}, worst "
          f"{max(map(abs, errors)):.0%} (goal {GOAL:.0%}); sweep wall-clock estimated "
          f"{estimate.wall_seconds():.0f} s (all epochs), trials ran {sweep_actual:.0f} s")
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("demo", "detection"))
    parser.add_argument("--output", type=Path, help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="estimate-accuracy-") as temporary:
        root = args.output or Path(temporary)
        errors = []
        for name, make in (("demo", demo_job), ("detection", detection_job)):
            if args.only in (None, name):
                errors += measure(name, make(root / name), root / name)
    worst = max(map(abs, errors))
    print(f"\nall trials: worst error {worst:.0%} ({'within' if worst <= GOAL else 'beyond'} the {GOAL:.0%} goal)")


if __name__ == "__main__":
    main()
