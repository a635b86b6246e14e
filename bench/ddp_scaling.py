"""DDP scaling on CPU: one trial (``distributed: true``) on 1 process against 2 processes.

The same resnet18 trial (random init, synthetic shapes, same global batch) runs three ways on
the same cores, alternating, ``--repeats`` times each:

- ``1 process x 2 threads``: the ordinary loop with the trial's whole core share (the baseline);
- ``2 processes x 1 thread``: DDP over gloo, what ``distributed: true`` does on CPU;
- ``1 process x 1 thread``: for the per-process scaling.

Prints training images/s (the trial's ``train_images_per_second``, epochs after the first,
which excludes start-up and validation), the whole trial's wall time (start-up included), and
the ratios against the baseline. The machine may be shared: run it on an idle one for figures
to design by, and read the ratio, measured in the same run, rather than the absolute numbers.

    python bench/ddp_scaling.py [--images 320] [--size 64] [--crop 56] [--epochs 3] [--batch 32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from automl_nb.data.synthetic import make_dataset
from automl_nb.train import Trial, run_trial
from automl_nb.train.distributed import PROCESSES_VARIABLE
from automl_nb.train.folder import TrialFolder

WAYS = {"1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 2), "1 process x 1 thread": (1, 1)}


def one_trial(data: Path, folder: Path, processes: int, threads: int, args) -> tuple[float, float]:
    """Train once; return (training images/s after the first epoch, wall seconds of the whole trial)."""
    os.environ[PROCESSES_VARIABLE] = str(processes)
    torch.set_num_threads(threads)  # the trial's core share; DDP gives each process threads // processes
    parameters = {"model_name": "resnet18", "use_pretrained_model": False, "number_of_epochs": args.epochs,
                  "training_batch_size": args.batch, "validation_batch_size": 64, "learning_rate": 0.05,
                  "training_crop_size": args.crop, "validation_resize_size": args.size,
                  "validation_crop_size": args.crop, "random_seed": 0, "early_stopping": False,
                  "distributed": True}
    trial = Trial(trial_id="0", task="image_classification", parameters=parameters, training_data=str(data),
                  output_dir=str(folder), validation_data_size=0.2)
    started = time.perf_counter()
    run_trial(trial)
    seconds = time.perf_counter() - started
    rows = TrialFolder(folder).metrics()
    return statistics.mean(row["train_images_per_second"] for row in rows[1:] or rows), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--crop", type=int, default=56)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"cores this process may use: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()}")
    results: dict[str, list[tuple[float, float]]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as scratch:
        data = make_dataset("image_classification", args.images, args.size, Path(scratch) / "data", seed=0)
        for repeat in range(args.repeats):
            for way, (processes, threads) in WAYS.items():
                folder = Path(scratch) / f"{repeat}-{processes}-{threads}"
                results[way].append(one_trial(data, folder, processes, threads, args))
    best = {way: (max(r[0] for r in runs), min(r[1] for r in runs)) for way, runs in results.items()}
    base_rate, base_seconds = best["1 process x 2 threads"]
    print(f"\n{'':24} {'train img/s':>11} {'ratio':>6} {'trial s':>8} {'ratio':>6}   (best of {args.repeats})")
    for way, (rate, seconds) in best.items():
        print(f"{way:24} {rate:11.1f} {rate / base_rate:6.2f} {seconds:8.1f} {base_seconds / seconds:6.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
