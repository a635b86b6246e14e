"""Early termination on real learning curves: compute saved and best metric lost, ours against Optuna's.

Goals (issue 19): on at least 24 trials x 15 epochs of a real dataset, ASHA spends at least 3x
fewer trial-epochs than running every trial to the end, and bandit at least 2x, each with a best
metric within 1 point; and each of our policies is compared with the matching Optuna pruner,
replayed on the same curves. Optuna has no bandit pruner (its ThresholdPruner stops below a fixed
value, PatientPruner on a trial's own stalled curve, WilcoxonPruner on a paired test whose steps
are problem instances, not epochs): bandit is compared with no policy only.

Method:
1. The curves: ``bench/curves/digits.json`` (seed 0) and ``digits_seed1.json`` (seed 1), each
   recorded once by ``bench/record_curves.py`` (read its docstring): 24 trials x 15 epochs of
   real training on scikit-learn's digits, with a seeded draw of learning rate (1e-4..1, log),
   model (resnet18, mobilenetv2, random weights) and optimizer (sgd, adam) and a seeded subset
   of the images; every trial ran to the end, its accuracy and the duration of each epoch
   recorded. ``--record`` records the first file again, with its seed (about 30 minutes of one CPU thread).
2. The replay: :func:`automl_nb.sweep.simulate.simulate`, the simulator ``Run.replay`` uses, with
   2 concurrent trials taken in trial order: report k of a trial happens at its start time plus
   its first k epoch durations; after each report the policy is asked ``should_stop`` exactly as
   the sweep driver asks it, with only the reports that have happened by then. A stopped, failed
   or completed trial frees its slot for the next trial.
3. Optuna: each pruner is replayed by the same simulator on the same curves. A trial is
   ``study.ask()``-ed at its first report; each report is ``trial.report(value, k)`` then
   ``trial.should_prune()``; an ended trial is told COMPLETE with its best value, PRUNED, or FAIL
   (no finite value). The settings both sides have are the same (warm-up = delay_evaluation,
   reduction factor, min/max resource); Optuna's own ones keep their defaults (``n_startup_trials``
   5: its median and percentile pruners compare with completed trials only, and wait for 5).
4. For each policy: trial-epochs spent, the ratio epochs(no policy) / epochs(policy), the best
   accuracy reached by any report that happened, its difference from no policy in points, and
   whether the recorded best trial reached its best (was not stopped before it).
5. ``--orders N``: the asynchronous policies depend on which trials report first, so each policy
   is also replayed with the trials started in N seeded random orders; per policy the median and
   range of the compute ratio, the median and worst difference in best, and the share of orders
   within 1 point and meeting the goal. ``--grid`` does the same for ASHA and Hyperband over
   reduction_factor 2..4 x min_resource 1..3: how their defaults were chosen (docs/sweeps.md).

The policy settings are fixed up front (defaults and common choices, not tuned to these curves):
bandit slack_factor 0.2, median_stopping, truncation_selection 25%, all with evaluation_interval 1
and delay_evaluation 2; asha and hyperband at their defaults (``automl_nb.spec.sweep_settings``),
and asha with ``min_resource: 1`` (the old default) to show what the grace period does.

    python bench/early_termination.py [--curves FILE...] [--concurrent 2] [--orders 100] [--grid] [--record]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

from automl_nb.sweep.replay import prepare_policy
from automl_nb.sweep.simulate import Simulation, TrialCurve, policy_judge, simulate

CURVES = Path(__file__).resolve().parent / "curves" / "digits.json"
SECOND_CURVES = CURVES.with_name("digits_seed1.json")
CONCURRENT_TRIALS = 2
DELAY = 2
POLICIES: dict[str, dict[str, Any] | None] = {
    "none": None,
    "bandit f=0.2": {"type": "bandit", "slack_factor": 0.2, "delay_evaluation": DELAY},
    "median_stopping": {"type": "median_stopping", "delay_evaluation": DELAY},
    "truncation 25%": {"type": "truncation_selection", "truncation_percentage": 25, "delay_evaluation": DELAY},
    "asha": {"type": "asha"},
    "asha min_resource 1": {"type": "asha", "min_resource": 1},
    "hyperband": {"type": "hyperband"},
}
GOALS = {"bandit f=0.2": 2.0, "asha": 3.0}  # compute ratio at least this, best within 1 point
WITHIN = 1.0  # points
BANDIT_NOTE = "none: Optuna has no bandit pruner"


def optuna_pruners(epochs: int) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Our policy's name -> (the matching Optuna pruner's name, a factory of it), with our settings."""
    from optuna.pruners import HyperbandPruner, MedianPruner, PercentilePruner, SuccessiveHalvingPruner

    pruners: dict[str, tuple[str, Callable[[], Any]]] = {
        "median_stopping": ("MedianPruner", lambda: MedianPruner(n_warmup_steps=DELAY)),
        # Optuna's percentile is the share kept: cutting the lowest 25% keeps the top 75%.
        "truncation 25%": ("PercentilePruner(75)", lambda: PercentilePruner(75.0, n_warmup_steps=DELAY)),
    }
    for name, settings in POLICIES.items():
        if settings is None or settings["type"] not in ("asha", "hyperband"):
            continue
        ours = prepare_policy(settings, epochs)  # our defaults, passed on: the same rungs both sides
        eta, grace = ours.reduction_factor, ours.min_resource
        if settings["type"] == "asha":
            pruners[name] = (f"SuccessiveHalvingPruner(min_resource={grace}, reduction_factor={eta})",
                             lambda grace=grace, eta=eta: SuccessiveHalvingPruner(min_resource=grace,
                                                                                  reduction_factor=eta))
        else:
            pruners[name] = (f"HyperbandPruner(min_resource={grace}, max_resource={epochs}, reduction_factor={eta})",
                             lambda grace=grace, eta=eta: HyperbandPruner(min_resource=grace, max_resource=epochs,
                                                                          reduction_factor=eta))
    return pruners


class OptunaJudge:
    """An Optuna pruner behind the simulator's judge interface: ask, report, should_prune, tell."""

    def __init__(self, pruner: Any, curves: list[TrialCurve]) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.study = optuna.create_study(study_name="replay", direction="maximize", pruner=pruner,
                                         sampler=optuna.samplers.RandomSampler(seed=0))
        self.curves = {curve.trial_id: curve for curve in curves}
        self.trials: dict[str, Any] = {}

    def __call__(self, trial_id: str, curves: dict, finished: Any) -> str | None:
        if trial_id not in self.trials:
            self.trials[trial_id] = self.study.ask()
        trial, k = self.trials[trial_id], len(curves[trial_id])
        trial.report(curves[trial_id][-1], k)
        return f"pruned at step {k}" if trial.should_prune() else None

    def ended(self, trial_id: str, stopped: bool) -> None:
        trial = self.trials.get(trial_id)
        if trial is None:  # never reported
            return
        state = self.optuna.trial.TrialState
        finite = [v for v in self.curves[trial_id].values if math.isfinite(v)]
        if stopped:
            self.study.tell(trial, state=state.PRUNED)
        elif finite and not self.curves[trial_id].failed:
            self.study.tell(trial, max(finite))
        else:
            self.study.tell(trial, state=state.FAIL)


def load_curves(path: Path) -> tuple[dict, list[TrialCurve]]:
    """The recording's description and its trials as :class:`TrialCurve` s."""
    data = json.loads(path.read_text())
    curves = [TrialCurve(row["trial_id"], row["values"], row["durations"], parameters=row["parameters"])
              for row in data["trials"]]
    return data, curves


def replay_ours(curves: list[TrialCurve], settings: dict | None, epochs: int, slots: int) -> Simulation:
    """One of our policies, prepared as the driver prepares it, replayed on the curves."""
    return simulate(curves, policy_judge(prepare_policy(settings, epochs)), slots=slots)


def replay_optuna(curves: list[TrialCurve], factory: Callable[[], Any], slots: int) -> Simulation:
    """An Optuna pruner replayed on the curves by the same simulator."""
    judge = OptunaJudge(factory(), curves)
    return simulate(curves, judge, slots=slots, on_end=judge.ended)


# -- the measures ------------------------------------------------------------------------------
def _best(values) -> float:
    return max((v for v in values if math.isfinite(v)), default=math.nan)


def best_trial(curves: list[TrialCurve]) -> TrialCurve:
    """The trial with the best recorded value (the first of equals)."""
    return max(curves, key=lambda curve: (_best(curve.values), -curves.index(curve)))


def best_survives(curves: list[TrialCurve], outcome: Simulation) -> bool:
    """The recorded best trial reached its best value in the replay (was not stopped before it)."""
    best = best_trial(curves)
    return _best(outcome.seen.get(best.trial_id, ())) >= _best(best.values)


def measures(base: Simulation, outcome: Simulation) -> tuple[float, float]:
    """(compute ratio against no policy, difference in best in points)."""
    return base.total_epochs / outcome.total_epochs, 100 * (outcome.best - base.best)


def goal(name: str, ratio: float, delta: float) -> str:
    """"met" / "missed" for a policy with a goal, "" for the others."""
    if name not in GOALS:
        return ""
    return "met" if ratio >= GOALS[name] and delta >= -WITHIN else "missed"


# -- the report --------------------------------------------------------------------------------
def _label(curve: TrialCurve) -> str:
    p = curve.parameters
    return f"{p['model_name']:<11} {p['optimizer']:<4} lr {p['learning_rate']:.1e}"


def print_trials(curves: list[TrialCurve], outcomes: dict[str, Simulation]) -> None:
    """One line per trial: its parameters, best accuracy, and epochs run under each policy."""
    names = list(outcomes)
    print(f"\n{'trial':>5}  {'parameters':<29} {'best':>6}  " + " ".join(f"{n[:12]:>12}" for n in names))
    for curve in curves:
        runs = " ".join(f"{outcomes[n].epochs[curve.trial_id]:>12}" for n in names)
        print(f"{curve.trial_id:>5}  {_label(curve):<29} {_best(curve.values):>6.3f}{'F' if curve.failed else ' '} {runs}")


def print_summary(curves: list[TrialCurve], ours: dict[str, Simulation],
                  theirs: dict[str, tuple[str, Simulation]]) -> None:
    """The Markdown table: each policy against no policy, and against the matching Optuna pruner."""
    base = ours["none"]
    print("\n| policy | trial-epochs | stopped | compute vs none | best % | Δ best (points) | best trial survives "
          "| goal | Optuna pruner | its trial-epochs | its best % | its Δ best | compute, Optuna / ours |")
    print("|---|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|")
    for name, outcome in ours.items():
        ratio, delta = measures(base, outcome)
        verdict = goal(name, ratio, delta)
        verdict = f"{verdict} (>= {GOALS[name]:g}x, within {WITHIN:g} point)" if verdict else "-"
        row = (f"| {name} | {outcome.total_epochs} | {len(outcome.stops)} | {ratio:.2f}x | {100 * outcome.best:.1f} "
               f"| {delta:+.1f} | {'yes' if best_survives(curves, outcome) else 'no'} | {verdict} |")
        if name in theirs:
            pruner, other = theirs[name]
            row += (f" {pruner} | {other.total_epochs} | {100 * other.best:.1f} | {100 * (other.best - base.best):+.1f} "
                    f"| {other.total_epochs / outcome.total_epochs:.2f}x |")
        else:
            row += f" {BANDIT_NOTE if name.startswith('bandit') else '-'} | | | | |"
        print(row)


def orders(curves: list[TrialCurve], count: int) -> list[list[TrialCurve]]:
    """The recorded start order, then ``count`` seeded random ones."""
    return [list(curves)] + [random.Random(seed).sample(curves, len(curves)) for seed in range(count)]


def print_robustness(curves: list[TrialCurve], policies: dict[str, dict | None], epochs: int, slots: int,
                     count: int, title: str) -> None:
    """Each policy replayed with the trials started in ``count`` random orders (and the recorded one)."""
    starts = orders(curves, count)
    bases = [simulate(order, None, slots=slots) for order in starts]
    print(f"\n{title}: the recorded start order and {count} seeded random ones ({len(starts)} replays each):\n")
    print("| policy | compute vs none: recorded order | median [min, max] | Δ best: recorded | median | worst "
          "| within 1 point | goal met |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for name, settings in policies.items():
        if settings is None:
            continue
        results = [measures(base, replay_ours(order, settings, epochs, slots)) for order, base in zip(starts, bases)]
        ratios, deltas = [r for r, _ in results], [d for _, d in results]
        within = sum(d >= -WITHIN for d in deltas) / len(deltas)
        target = GOALS.get(name, GOALS["asha"] if settings["type"] == "asha" else None)
        met = f"{sum(r >= target and d >= -WITHIN for r, d in results) / len(results):.0%}" if target else "-"
        print(f"| {name} | {ratios[0]:.2f}x | {statistics.median(ratios):.2f}x [{min(ratios):.2f}, {max(ratios):.2f}] "
              f"| {deltas[0]:+.1f} | {statistics.median(deltas):+.1f} | {min(deltas):+.1f} | {within:.0%} | {met} |")


def grid() -> dict[str, dict]:
    """ASHA and Hyperband over reduction_factor 2..4 x min_resource 1..3."""
    return {f"{kind} eta {eta} min_resource {grace}": {"type": kind, "reduction_factor": eta, "min_resource": grace}
            for kind in ("asha", "hyperband") for eta in (2, 3, 4) for grace in (1, 2, 3)}


def report(path: Path, slots: int, count: int, with_grid: bool) -> None:
    """Everything for one recording: the policies, the trials, the table, and the robustness tables."""
    data, curves = load_curves(path)
    epochs = data["epochs"]
    ours = {name: replay_ours(curves, settings, epochs, slots) for name, settings in POLICIES.items()}
    theirs = {name: (pruner, replay_optuna(curves, factory, slots))
              for name, (pruner, factory) in optuna_pruners(epochs).items()}
    best = best_trial(curves)
    print(f"\n## {path.name}\n\n{len(curves)} trials x {epochs} epochs, {data['dataset']}; seed {data.get('seed', 0)}; "
          f"recorded {data['recorded']} on {data['machine']}; replayed {slots} at a time; the best trial is "
          f"{best.trial_id} ({100 * _best(best.values):.1f} %). Policies:")
    for name, settings in POLICIES.items():
        print(f"  {name}: {prepare_policy(settings, epochs)!r}")
    print_trials(curves, {**ours, **{f"optuna {p}": s for p, s in theirs.values()}})
    print_summary(curves, ours, theirs)
    if count:
        print_robustness(curves, POLICIES, epochs, slots, count, "Start orders")
    if with_grid:
        print_robustness(curves, grid(), epochs, slots, count, "ASHA and Hyperband settings")


def main() -> None:
    """Replay the recorded curves (recording them first with ``--record``) and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, nargs="+", default=[CURVES, SECOND_CURVES],
                        help="the recorded curves (JSON), one table each")
    parser.add_argument("--concurrent", type=int, default=CONCURRENT_TRIALS, help="trials at once")
    parser.add_argument("--orders", type=int, default=0, metavar="N",
                        help="also replay our policies with the trials started in N seeded random orders")
    parser.add_argument("--grid", action="store_true", help="also replay ASHA and Hyperband over a grid of settings")
    parser.add_argument("--record", action="store_true",
                        help="record the first curves file again first (real training: about 30 minutes of one "
                             "CPU thread)")
    args = parser.parse_args()
    if args.record:  # imports torch and trains: only when asked
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from record_curves import record

        first = args.curves[0]
        record(first, seed=json.loads(first.read_text()).get("seed", 0) if first.exists() else 0)
    for path in args.curves:
        report(path, args.concurrent, args.orders, args.grid)


if __name__ == "__main__":
    main()
