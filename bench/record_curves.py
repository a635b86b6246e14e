"""Record the learning curves that bench/early_termination.py replays: real data, real trials.

Method: scikit-learn's handwritten digits (``automl_nb.data.real``, no download), a seeded
subset of ``--train-images`` training and ``--valid-images`` validation images. A fixed list of
``--trials`` parameter sets is drawn once with a seeded generator from ``SPACE`` (learning rate
over four decades, two small models, sgd or adam) on top of
``automl_nb.testing.FAST_CLASSIFICATION`` (random weights, 28 px crops), with ``--epochs``
epochs, an evaluation every epoch and no early stopping. Each trial runs to the end once,
in-process, with the real trial runner (``run_trial``) on one torch thread; its accuracy per
report and the duration of each epoch (from the trainer's ``elapsed_seconds``) are written to
``--out`` (JSON, a few tens of KB). A trial whose loss becomes non-finite fails; the duration
of its failed epoch is kept, so the replay counts that epoch as spent.

    nice -n 10 python bench/record_curves.py [--trials 24] [--epochs 15] [--train-images 300]
                                             [--valid-images 200] [--seed 0] [--out bench/curves/digits.json]
                                             [--reverse] [--keep FOLDER] [--assemble FOLDER...]

``--seed`` draws other trials and another image subset: ``bench/curves/digits_seed1.json``, the
second recording the benchmark checks its settings on, is ``--seed 1`` (written there by default).

Two processes can share the work: ``--keep A`` and ``--reverse --keep B`` run from both ends;
stop them when they meet, then ``--assemble A B`` writes the JSON.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from early_termination import CURVES

from automl_nb._atomic import atomic_write_json, read_json
from automl_nb.data.real import REAL_DATASETS, make_real_dataset
from automl_nb.errors import TrialError
from automl_nb.spec import Choice, LogUniform
from automl_nb.testing import FAST_CLASSIFICATION
from automl_nb.train import Trial, run_trial

DATASET = "digits"
TASK = REAL_DATASETS[DATASET][0]
PRIMARY_METRIC = "accuracy"
SPACE = {
    "learning_rate": LogUniform(math.log(1e-4), math.log(1.0)),
    "model_name": Choice(["resnet18", "mobilenetv2"]),
    "optimizer": Choice(["sgd", "adam"]),
}


def draw_trials(count: int, epochs: int, seed: int) -> list[dict[str, Any]]:
    """The fixed list of trial parameters: a seeded random draw from ``SPACE``."""
    rng = random.Random(seed)
    trials = []
    for index in range(count):
        sampled = {name: dist.sample(rng) for name, dist in SPACE.items()}
        trials.append({**FAST_CLASSIFICATION, **sampled, "training_batch_size": 32, "number_of_epochs": epochs,
                       "evaluation_frequency": 1, "early_stopping": False, "random_seed": index})
    return trials


def subset(name: str, split: str, count: int, folder: Path, seed: int) -> Path:
    """A seeded random ``count`` of the dataset's ``split`` images, as a JSONL file."""
    jsonl = make_real_dataset(name, folder / split, split, seed=seed)
    lines = jsonl.read_text().splitlines()
    random.Random(seed).shuffle(lines)
    path = jsonl.with_name(f"subset_{count}.jsonl")  # beside the images, which it names relatively
    path.write_text("\n".join(lines[:count]) + "\n")
    return path


def record_trial(trial_id: str, parameters: dict, train: Path, valid: Path, out_dir: Path) -> None:
    """Run one trial to the end (no reporter: nothing stops it) in ``out_dir/trial_id``."""
    try:
        run_trial(Trial(trial_id, TASK, parameters, str(train), str(out_dir / trial_id), validation_data=str(valid)))
    except TrialError:
        pass  # diverged: its folder says Failed, and when


def read_trial(folder: Path, parameters: dict) -> dict | None:
    """A finished trial's curve from its folder, JSON-ready; None when it has not finished.

    The values are the accuracy of each metrics.jsonl row, the durations the steps of its
    ``elapsed_seconds``. A failed trial gets one more duration: its failed epoch, from its
    last report (or its start) to the end in status.json.
    """
    from automl_nb.train.folder import TrialFolder

    trial = TrialFolder(folder)
    status = read_json(folder / "status.json") if (folder / "status.json").exists() else {}
    if status.get("status") not in ("Completed", "Failed"):
        return None
    rows = trial.metrics()
    elapsed = [0.0] + [row["elapsed_seconds"] for row in rows]
    durations = [round(b - a, 3) for a, b in zip(elapsed, elapsed[1:])]
    if status["status"] == "Failed":
        durations.append(round(max(status["ended"] - status["started"] - elapsed[-1], 0.0), 3))
    return {"trial_id": folder.name, "parameters": parameters,
            "values": [round(row[PRIMARY_METRIC], 5) for row in rows], "durations": durations}


def record(out: Path = CURVES, trials: int = 24, epochs: int = 15, train_images: int = 300,
           valid_images: int = 200, seed: int = 0, reverse: bool = False, keep: Path | None = None) -> Path | None:
    """Record every trial's curve and write them, with how they were made, to ``out``.

    With ``reverse`` the trials run last first; with ``keep`` their folders stay there, and trials
    already finished there are not run again: two processes, one each way, share the work, and
    ``assemble`` writes the JSON once every trial is in one of their folders.
    """
    torch.set_num_threads(1)
    started = time.time()
    draw = draw_trials(trials, epochs, seed)
    with tempfile.TemporaryDirectory() as work:
        trial_dir = keep or Path(work) / "trials"
        train = subset(DATASET, "train", train_images, Path(work) / "data", seed)
        valid = subset(DATASET, "valid", valid_images, Path(work) / "data", seed)
        for index in (reversed(range(trials)) if reverse else range(trials)):
            if read_trial(trial_dir / str(index), draw[index]) is None:
                record_trial(str(index), draw[index], train, valid, trial_dir)
            curve = read_trial(trial_dir / str(index), draw[index])
            print(f"trial {index:>2}: {_label(draw[index])}  {sum(curve['durations']):6.1f} s  accuracy "
                  f"{' '.join(f'{v:.2f}' for v in curve['values'])}", flush=True)
        return assemble(out, [trial_dir], trials, epochs, train_images, valid_images, seed, time.time() - started)


def assemble(out: Path, folders: list[Path], trials: int = 24, epochs: int = 15, train_images: int = 300,
             valid_images: int = 200, seed: int = 0, seconds: float | None = None) -> Path | None:
    """Write the JSON of the trials found finished in ``folders``; None (nothing written) when some are missing."""
    draw = draw_trials(trials, epochs, seed)
    curves = {}
    for index in range(trials):
        found = (read_trial(folder / str(index), draw[index]) for folder in folders)
        curves[index] = next((curve for curve in found if curve is not None), None)
    missing = [index for index, curve in curves.items() if curve is None]
    if missing:
        print(f"not finished yet: trials {missing}")
        return None
    took = "" if seconds is None else f"; {seconds:.0f} s in all"
    atomic_write_json(out, {
        "dataset": f"{DATASET}: {REAL_DATASETS[DATASET][2]}; seeded subset of {train_images} train / "
                   f"{valid_images} valid images",
        "task": TASK, "primary_metric": PRIMARY_METRIC, "epochs": epochs, "seed": seed,
        "space": {name: repr(dist) for name, dist in SPACE.items()},
        "recorded": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other "
                   f"jobs, 1 torch thread a trial{took}",
        "trials": [curves[index] for index in range(trials)],
    })
    print(f"wrote {out}")
    return out


def _label(parameters: dict) -> str:
    return f"{parameters['model_name']:<11} {parameters['optimizer']:<4} lr {parameters['learning_rate']:.2e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--train-images", type=int, default=300)
    parser.add_argument("--valid-images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data subset and the trial draw")
    parser.add_argument("--out", type=Path, help="default: bench/curves/digits.json, digits_seed<N>.json for a "
                        "seed N other than 0")
    parser.add_argument("--reverse", action="store_true", help="run the trials last first")
    parser.add_argument("--keep", type=Path, help="keep the trial folders here (and skip trials finished there)")
    parser.add_argument("--assemble", type=Path, nargs="+", metavar="FOLDER",
                        help="train nothing: write --out from the finished trials in these folders")
    args = parser.parse_args()
    sizes = (args.trials, args.epochs, args.train_images, args.valid_images, args.seed)
    out = args.out or (CURVES if args.seed == 0 else CURVES.with_name(f"digits_seed{args.seed}.json"))
    if args.assemble:
        assemble(out, args.assemble, *sizes)
    else:
        record(out, *sizes, reverse=args.reverse, keep=args.keep)


if __name__ == "__main__":
    main()
