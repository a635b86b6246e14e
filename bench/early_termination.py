"""Early termination: compute saved and best metric lost by bandit, median and truncation policies.

Goal (from the issue): on a fixed space of at least 12 trials, a policy spends at least 2x
fewer trial-epochs than running every trial to the end, for a best metric within 1 point.

Method:
1. A synthetic dataset of ``--classes`` shape classes (``--images`` images of ``--size`` px).
2. A fixed list of ``--trials`` parameter sets, drawn once with a seeded generator from
   ``learning_rate ~ loguniform(1e-4, 1)`` and ``model_name ~ choice(resnet18, mobilenetv2)``
   on top of ``automl_nb.testing.FAST_CLASSIFICATION`` (random weights, 28 px crops), with
   ``--epochs`` epochs, an evaluation every epoch and no early stopping. The wide learning
   rate range gives trials that learn fast, slowly, or not at all.
3. Every trial runs to completion once, in-process, with ``run_trial``; its accuracy per
   report and the duration of each epoch are cached as JSON (``bench/.cache/``), so
   ``--reuse`` replays without training. A trial whose loss becomes non-finite fails; its
   last, failed epoch still counts as spent.
4. The sweep is replayed in simulated time with 2 concurrent trials, taken in trial order:
   report k of a trial happens at its start time plus its first k epoch durations. After each
   report the policy is asked ``should_stop(trial_id, curves_so_far, finished)`` exactly as
   the sweep driver asks it, where ``curves_so_far`` holds only the reports that have happened
   by then. A stopped, failed or completed trial frees its slot for the next trial.
5. For each policy: trial-epochs spent, trials stopped, simulated sweep time, and the best
   accuracy reached by any report that happened. The ratio is epochs(no policy) /
   epochs(policy); the best-metric difference is in accuracy points (percent).

The policy settings are fixed up front (common defaults, not tuned to this data):
bandit slack_factor 0.2, median_stopping and truncation_selection 25%, all with
evaluation_interval 1 and delay_evaluation 2.

    python bench/early_termination.py [--trials 16] [--epochs 10] [--images 200] [--size 32]
                                      [--classes 3] [--reuse]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from automl_nb.data.synthetic import SHAPES, make_dataset
from automl_nb.errors import TrialError
from automl_nb.spec import Choice, LogUniform
from automl_nb.sweep.policies import Bandit, EarlyTermination, MedianStopping, TruncationSelection
from automl_nb.testing import FAST_CLASSIFICATION
from automl_nb.train import Trial, run_trial

TASK = "image_classification"
PRIMARY_METRIC = "accuracy"
CONCURRENT_TRIALS = 2
CACHE_DIR = Path(__file__).parent / ".cache"
SPACE = {
    "learning_rate": LogUniform(math.log(1e-4), math.log(1.0)),
    "model_name": Choice(["resnet18", "mobilenetv2"]),
}
POLICIES: dict[str, EarlyTermination | None] = {
    "none": None,
    "bandit f=0.2": Bandit(slack_factor=0.2, evaluation_interval=1, delay_evaluation=2),
    "median_stopping": MedianStopping(evaluation_interval=1, delay_evaluation=2),
    "truncation 25%": TruncationSelection(truncation_percentage=25, evaluation_interval=1, delay_evaluation=2),
}


@dataclass(frozen=True)
class Curve:
    """One trial run to the end: its accuracy per report and each epoch's duration in seconds.

    ``durations`` has one more entry than ``values`` when the trial failed in its last epoch.
    """

    trial_id: str
    parameters: dict[str, Any]
    values: list[float]
    durations: list[float]

    @property
    def failed(self) -> bool:
        return len(self.durations) > len(self.values)


# -- step 2 and 3: the trials, trained once ----------------------------------------------------
def draw_trials(count: int, epochs: int, seed: int) -> list[dict[str, Any]]:
    """The fixed list of trial parameters: a seeded random draw from ``SPACE``."""
    rng = random.Random(seed)
    trials = []
    for index in range(count):
        sampled = {name: dist.sample(rng) for name, dist in SPACE.items()}
        trials.append({**FAST_CLASSIFICATION, **sampled, "number_of_epochs": epochs,
                       "evaluation_frequency": 1, "early_stopping": False, "random_seed": index})
    return trials


class _TimingReporter:
    """Records each report's accuracy and the epoch durations (from the trainer's elapsed_seconds)."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.durations: list[float] = []
        self._last_elapsed = 0.0

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        self.values.append(float(metrics[PRIMARY_METRIC]))
        self.durations.append(metrics["elapsed_seconds"] - self._last_elapsed)
        self._last_elapsed = metrics["elapsed_seconds"]

    def should_stop(self) -> bool:
        return False  # every trial runs to the end; policies are applied in the replay


def train_curve(trial_id: str, parameters: dict[str, Any], jsonl: Path, out_dir: Path) -> Curve:
    """Run one trial to completion and return its curve."""
    reporter = _TimingReporter()
    started = time.perf_counter()
    try:
        run_trial(Trial(trial_id, TASK, parameters, str(jsonl), str(out_dir / trial_id),
                        validation_data_size=0.2), reporter)
    except TrialError:
        # Diverged: the failed epoch took from the last report (or the start) until now.
        spent = time.perf_counter() - started
        reporter.durations.append(max(spent - sum(reporter.durations), 0.0))
    return Curve(trial_id, parameters, reporter.values, reporter.durations)


def load_or_train(args: argparse.Namespace) -> list[Curve]:
    """Train every trial, or read the cached curves of the same settings with ``--reuse``."""
    key = f"t{args.trials}_e{args.epochs}_n{args.images}_s{args.size}_c{args.classes}_seed{args.seed}"
    cache = CACHE_DIR / f"early_termination_{key}.json"
    if args.reuse and cache.exists():
        print(f"reusing {cache}")
        return [Curve(**row) for row in json.loads(cache.read_text())]
    curves = []
    with tempfile.TemporaryDirectory() as work:
        jsonl = make_dataset(TASK, args.images, args.size, Path(work) / "data", seed=args.seed,
                             classes=SHAPES[:args.classes])
        for index, parameters in enumerate(draw_trials(args.trials, args.epochs, args.seed)):
            curve = train_curve(str(index), parameters, jsonl, Path(work) / "trials")
            print(f"trial {index:>2}: {_label(curve)}  accuracy {' '.join(f'{v:.2f}' for v in curve.values)}"
                  f"{'  FAILED' if curve.failed else ''}", flush=True)
            curves.append(curve)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps([asdict(curve) for curve in curves], indent=1))
    return curves


# -- step 4: the replay -------------------------------------------------------------------------
@dataclass
class Outcome:
    """What one policy did to the sweep."""

    epochs_run: dict[str, int]
    stopped: list[str]
    sweep_seconds: float
    best: float


def replay(curves: list[Curve], policy: EarlyTermination | None, slots: int = CONCURRENT_TRIALS) -> Outcome:
    """Replay the sweep event by event in simulated time, asking ``policy`` after each report."""
    by_id = {curve.trial_id: curve for curve in curves}
    waiting = [curve.trial_id for curve in curves]
    seen: dict[str, list[float]] = {curve.trial_id: [] for curve in curves}
    finished: set[str] = set()
    epochs_run = {curve.trial_id: 0 for curve in curves}
    stopped: list[str] = []
    events: list[tuple[float, int, str]] = []  # (time, order, trial): the trial's next epoch ends
    order = 0
    now = 0.0

    def start_next(at: float) -> None:
        nonlocal order
        if waiting:
            trial_id = waiting.pop(0)
            heapq.heappush(events, (at + by_id[trial_id].durations[0], order, trial_id))
            order += 1

    for _ in range(slots):
        start_next(0.0)
    while events:
        now, _, trial_id = heapq.heappop(events)
        curve, k = by_id[trial_id], epochs_run[trial_id]
        epochs_run[trial_id] = k + 1
        if k < len(curve.values):
            seen[trial_id].append(curve.values[k])  # report k + 1 happens now
        ended = k + 1 == len(curve.durations)  # completed, or failed in this epoch
        if not ended and policy is not None and policy.should_stop(trial_id, seen, finished):
            stopped.append(trial_id)
            ended = True
        if ended:
            finished.add(trial_id)
            start_next(now)
        else:
            heapq.heappush(events, (now + curve.durations[k + 1], order, trial_id))
            order += 1
    values = [v for values in seen.values() for v in values if math.isfinite(v)]
    return Outcome(epochs_run, stopped, now, max(values, default=math.nan))


# -- step 5: the report -------------------------------------------------------------------------
def _label(curve: Curve) -> str:
    return f"{curve.parameters['model_name']:<11} lr {curve.parameters['learning_rate']:.2e}"


def print_trials(curves: list[Curve], outcomes: dict[str, Outcome]) -> None:
    """One line per trial: its parameters, best accuracy, and epochs run under each policy."""
    names = list(outcomes)
    print(f"\n{'trial':>5}  {'parameters':<27} {'best acc':>8}  " + "  ".join(f"{n:>15}" for n in names))
    for curve in curves:
        best = max((v for v in curve.values if math.isfinite(v)), default=math.nan)
        runs = "  ".join(f"{outcomes[n].epochs_run[curve.trial_id]:>15}" for n in names)
        print(f"{curve.trial_id:>5}  {_label(curve):<27} {best:>8.3f}{'F' if curve.failed else ' '} {runs}")


def print_summary(outcomes: dict[str, Outcome]) -> None:
    """The table of compute and best metric per policy, against no policy."""
    base = outcomes["none"]
    base_epochs = sum(base.epochs_run.values())
    print(f"\n{'policy':<16} {'trial-epochs':>12} {'stopped':>7} {'sim. sweep s':>12} {'best acc %':>10} "
          f"{'compute ratio':>13} {'best diff':>9}  goal (>= 2x, within 1 point)")
    for name, outcome in outcomes.items():
        epochs = sum(outcome.epochs_run.values())
        ratio = base_epochs / epochs
        difference = 100 * (outcome.best - base.best)
        goal = "-" if outcome is base else ("met" if ratio >= 2 and difference >= -1 else "NOT met")
        print(f"{name:<16} {epochs:>12} {len(outcome.stopped):>7} {outcome.sweep_seconds:>12.1f} "
              f"{100 * outcome.best:>10.1f} {ratio:>12.2f}x {difference:>+9.1f}  {goal}")


def main() -> None:
    """Train (or reuse) the trials, replay the sweep under each policy, print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="number of trials (>= 12 for the goal)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per trial")
    parser.add_argument("--images", type=int, default=200, help="images in the synthetic dataset")
    parser.add_argument("--size", type=int, default=32, help="image size in pixels")
    parser.add_argument("--classes", type=int, default=3, choices=range(2, len(SHAPES) + 1),
                        help="number of shape classes (more is harder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dataset and the trial draw")
    parser.add_argument("--reuse", action="store_true", help="reuse cached curves of the same settings")
    args = parser.parse_args()
    curves = load_or_train(args)
    outcomes = {name: replay(curves, policy) for name, policy in POLICIES.items()}
    print(f"\n{len(curves)} trials x {args.epochs} epochs on {args.images} images of {args.size} px, "
          f"{args.classes} classes; {CONCURRENT_TRIALS} concurrent; policies:")
    for name, policy in POLICIES.items():
        print(f"  {name}: {policy!r}")
    print_trials(curves, outcomes)
    print_summary(outcomes)


if __name__ == "__main__":
    main()
