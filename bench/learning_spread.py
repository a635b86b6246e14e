"""How far the learning tests' figures move across seeds and thread counts on this machine.

A learning test asserts that a model learned ("best > threshold"), and its threshold must sit
well below the worst case on any CPU. This runs every learning test under 3 training seeds and
with 1 and 2 CPU cores (``taskset``: torch and the Dask cluster both follow the affinity mask),
and prints each figure's minimum and maximum next to the threshold the test asserts.

    python bench/learning_spread.py              # all learning tests, seeds 0 1 2, cores 1 and 2
    python bench/learning_spread.py -k yolov5    # one of them

Each test writes its figures through the ``record_learning`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEARNING_TESTS = [
    "tests/train/test_trial.py::test_multiclass_trial_learns_and_writes_its_folder",
    "tests/train/test_trial.py::test_multilabel_trial_improves_iou",
    "tests/train/test_yolo_trial.py::test_a_small_yolov5_learns_the_synthetic_shapes_and_predicts_them",
    "tests/test_cli_detection.py::test_a_detection_job_learns_the_shapes_and_its_model_predicts_boxes",
    "tests/test_cli.py::test_readme_python_example_runs_as_written",
    "tests/explain/test_explain_sanity.py",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default=None, help="pytest -k expression to pick tests")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cores", default="0;0,1", help="taskset CPU lists, ';'-separated")
    parser.add_argument("--log", type=Path, help="append figures here (default: a new temporary file); runs "
                        "on separate cores can share one log, then --report alone prints it")
    parser.add_argument("--report", action="store_true", help="only print the table of --log")
    args = parser.parse_args()
    log = args.log or Path(tempfile.mkdtemp()) / "learning.jsonl"
    if not args.report:
        measure(args, log)
    report(log)


def measure(args, log: Path) -> None:
    for seed in args.seeds.split(","):
        for cores in args.cores.split(";"):
            env = {**os.environ, "AUTOML_NB_LEARNING_SEED": seed, "AUTOML_NB_LEARNING_LOG": str(log),
                   "HF_HUB_OFFLINE": "1"}
            command = ["taskset", "-c", cores, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       "-o", "addopts=", *LEARNING_TESTS] + (["-k", args.k] if args.k else [])
            result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            print(f"seed {seed}, cores {cores}: {result.stdout.strip().splitlines()[-1]}", flush=True)


def report(log: Path) -> None:
    spread: dict[tuple[str, str], list[float]] = defaultdict(list)
    for line in log.read_text().splitlines():
        row = json.loads(line)
        for name, value in row.items():
            if name not in ("test", "seed", "threads") and isinstance(value, (int, float)):
                spread[(row["test"].split("::")[-1], name)].append(value)
    print(f"\n{'test':<70} {'figure':<12} {'min':>7} {'max':>7}  n")
    for (test, name), values in sorted(spread.items()):
        print(f"{test[:70]:<70} {name:<12} {min(values):7.3f} {max(values):7.3f}  {len(values)}")


if __name__ == "__main__":
    main()
