"""Early termination on real learning curves: compute saved and best metric lost, ours against Optuna's.

Goals (issue 19): on at least 24 trials x 15 epochs of a real dataset, ASHA spends at least 3x
fewer trial-epochs than running every trial to the end, and bandit at least 2x, each with a best
metric within 1 point; and each of our policies is compared with the matching Optuna pruner,
replayed on the same curves.

Method:
1. The curves: ``bench/curves/digits.json``, recorded once by ``bench/record_curves.py`` (read its
   docstring): 24 trials x 15 epochs of real training on scikit-learn's digits, with a seeded
   draw of learning rate (1e-4..1, log), model (resnet18, mobilenetv2, random weights) and
   optimizer (sgd, adam); every trial ran to the end, its accuracy and the duration of each
   epoch recorded. ``--record`` records them again (about 30 minutes of one CPU thread).
2. The replay: :func:`automl_nb.sweep.replay.simulate`, the simulator ``Run.replay`` uses, with
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
   accuracy reached by any report that happened, and its difference from no policy in points.

The policy settings are fixed up front (defaults and common choices, not tuned to these curves):
bandit slack_factor 0.2, median_stopping, truncation_selection 25%, all with evaluation_interval 1
and delay_evaluation 2; asha and hyperband at their defaults (eta 3, min_resource 1, max_resource
the 15 epochs).

    python bench/early_termination.py [--curves bench/curves/digits.json] [--concurrent 2] [--record]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

from automl_nb.sweep.replay import Simulation, TrialCurve, policy_judge, prepare_policy, simulate

CURVES = Path(__file__).resolve().parent / "curves" / "digits.json"
CONCURRENT_TRIALS = 2
DELAY = 2
POLICIES: dict[str, dict[str, Any] | None] = {
    "none": None,
    "bandit f=0.2": {"type": "bandit", "slack_factor": 0.2, "delay_evaluation": DELAY},
    "median_stopping": {"type": "median_stopping", "delay_evaluation": DELAY},
    "truncation 25%": {"type": "truncation_selection", "truncation_percentage": 25, "delay_evaluation": DELAY},
    "asha": {"type": "asha"},
    "hyperband": {"type": "hyperband"},
}


def optuna_pruners(epochs: int) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Our policy's name -> (the matching Optuna pruner's name, a factory of it)."""
    from optuna.pruners import HyperbandPruner, MedianPruner, PercentilePruner, SuccessiveHalvingPruner

    return {
        "median_stopping": ("MedianPruner", lambda: MedianPruner(n_warmup_steps=DELAY)),
        # Optuna's percentile is the share kept: cutting the lowest 25% keeps the top 75%.
        "truncation 25%": ("PercentilePruner(75)", lambda: PercentilePruner(75.0, n_warmup_steps=DELAY)),
        "asha": ("SuccessiveHalvingPruner", lambda: SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)),
        "hyperband": ("HyperbandPruner",
                      lambda: HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)),
    }


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


# -- the report --------------------------------------------------------------------------------
def _label(curve: TrialCurve) -> str:
    p = curve.parameters
    return f"{p['model_name']:<11} {p['optimizer']:<4} lr {p['learning_rate']:.1e}"


def print_trials(curves: list[TrialCurve], outcomes: dict[str, Simulation]) -> None:
    """One line per trial: its parameters, best accuracy, and epochs run under each policy."""
    names = list(outcomes)
    print(f"\n{'trial':>5}  {'parameters':<29} {'best':>6}  " + " ".join(f"{n[:12]:>12}" for n in names))
    for curve in curves:
        best = max((v for v in curve.values if math.isfinite(v)), default=math.nan)
        runs = " ".join(f"{outcomes[n].epochs[curve.trial_id]:>12}" for n in names)
        print(f"{curve.trial_id:>5}  {_label(curve):<29} {best:>6.3f}{'F' if curve.failed else ' '} {runs}")


def print_summary(ours: dict[str, Simulation], theirs: dict[str, tuple[str, Simulation]]) -> None:
    """The Markdown table: each policy against no policy, and against the matching Optuna pruner."""
    base = ours["none"]
    print("\n| policy | trial-epochs | stopped | ratio vs none | best % | Δ best (points) | goal "
          "| Optuna pruner | its trial-epochs | its best % | its Δ best | compute, Optuna / ours |")
    print("|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|")
    goals = {"bandit f=0.2": 2.0, "asha": 3.0}
    for name, outcome in ours.items():
        ratio, delta = base.total_epochs / outcome.total_epochs, 100 * (outcome.best - base.best)
        goal = "-"
        if name in goals:
            met = ratio >= goals[name] and delta >= -1
            goal = f"{'met' if met else 'NOT met'} (>= {goals[name]:g}x, within 1 point)"
        row = (f"| {name} | {outcome.total_epochs} | {len(outcome.stops)} | {ratio:.2f}x | {100 * outcome.best:.1f} "
               f"| {delta:+.1f} | {goal} |")
        if name in theirs:
            pruner, other = theirs[name]
            row += (f" {pruner} | {other.total_epochs} | {100 * other.best:.1f} | {100 * (other.best - base.best):+.1f} "
                    f"| {other.total_epochs / outcome.total_epochs:.2f}x |")
        else:
            row += " - | | | | |"
        print(row)


def main() -> None:
    """Replay the recorded curves (recording them first with ``--record``) and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, default=CURVES, help="the recorded curves (JSON)")
    parser.add_argument("--concurrent", type=int, default=CONCURRENT_TRIALS, help="trials at once")
    parser.add_argument("--record", action="store_true",
                        help="record the curves again first (real training: about 30 minutes of one CPU thread)")
    args = parser.parse_args()
    if args.record:  # imports torch and trains: only when asked
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from record_curves import record

        record(args.curves)
    data, curves = load_curves(args.curves)
    epochs = data["epochs"]
    ours = {name: replay_ours(curves, settings, epochs, args.concurrent) for name, settings in POLICIES.items()}
    theirs = {name: (pruner, replay_optuna(curves, factory, args.concurrent))
              for name, (pruner, factory) in optuna_pruners(epochs).items()}
    print(f"{len(curves)} trials x {epochs} epochs, {data['dataset']}; recorded {data['recorded']} on "
          f"{data['machine']}; replayed {args.concurrent} at a time. Policies:")
    for name, settings in POLICIES.items():
        print(f"  {name}: {prepare_policy(settings, epochs)!r}")
    print_trials(curves, {**ours, **{f"optuna {p}": s for p, s in theirs.values()}})
    print_summary(ours, theirs)


if __name__ == "__main__":
    main()
