"""Early-termination policies on hand-made curves; every expected stop is worked out by hand.

Values are chosen to be exact in binary (0.25, 0.375, ...) so "equal to the threshold" is
really equal; ``below(x)`` is the float just under ``x``.
"""

import math

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy
from automl_nb.sweep.policies import (
    Asha, Bandit, EarlyTermination, Hyperband, MedianStopping, Threshold, TruncationSelection, make_policy,
)

NAN = float("nan")
NOTHING = frozenset()


def below(x):
    return math.nextafter(x, -math.inf)


def stops(policy, trial_id, curves, finished=NOTHING):
    return policy.should_stop(trial_id, curves, finished)


def stop_reports(policy, trial_id, curves):
    """Reports k (1-based) at which the policy would stop ``trial_id``, each trial cut to k reports.

    This is what the driver sees when all trials report in lock step.
    """
    length = len(curves[trial_id])
    return [k for k in range(1, length + 1)
            if stops(policy, trial_id, {t: c[:k] for t, c in curves.items()})]


# -- bandit ---------------------------------------------------------------------------------
def test_bandit_slack_factor_stops_just_below_threshold_not_at_it():
    policy = Bandit(slack_factor=0.5)  # best 0.75 -> threshold 0.75 / 1.5 = 0.5
    assert stops(policy, "t", {"best": [0.75], "t": [below(0.5)]})
    assert not stops(policy, "t", {"best": [0.75], "t": [0.5]})


def test_bandit_slack_factor_example_from_the_spec():
    policy = Bandit(slack_factor=0.2)  # best 0.8 -> stop below 0.8 / 1.2 = 0.6667
    assert stops(policy, "t", {"best": [0.8], "t": [0.666]})
    assert not stops(policy, "t", {"best": [0.8], "t": [0.667]})
    assert not stops(policy, "t", {"best": [0.8], "t": [0.8 / 1.2]})


def test_bandit_slack_amount_stops_just_below_threshold_not_at_it():
    policy = Bandit(slack_amount=0.25)  # best 0.75 -> threshold 0.5
    assert stops(policy, "t", {"best": [0.75], "t": [below(0.5)]})
    assert not stops(policy, "t", {"best": [0.75], "t": [0.5]})
    # The same curves stop under a factor of 0.2 (threshold 0.625): the two slacks differ.
    assert stops(Bandit(slack_factor=0.2), "t", {"best": [0.75], "t": [0.5]})


def test_bandit_best_is_taken_at_the_same_report():
    policy = Bandit(slack_amount=0.25)
    # "a" is great at report 2, but at report 1 the best value is 0.5, so t (0.375) survives.
    assert not stops(policy, "t", {"a": [0.5, 1.0], "t": [0.375]})
    # At report 2 only t has a value: it is its own best and never stops.
    assert not stops(policy, "t", {"a": [1.0], "t": [0.0, 0.0]})
    # The best trial itself never stops.
    assert not stops(policy, "a", {"a": [0.5, 1.0], "t": [0.375, 0.25]})


def test_bandit_respects_evaluation_interval_and_delay():
    curves = {"best": [1.0] * 8, "t": [0.0] * 8}  # t is terrible at every report
    assert stop_reports(Bandit(slack_factor=0.2), "t", curves) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert stop_reports(Bandit(slack_factor=0.2, evaluation_interval=2), "t", curves) == [2, 4, 6, 8]
    assert stop_reports(Bandit(slack_factor=0.2, delay_evaluation=5), "t", curves) == [5, 6, 7, 8]
    # Multiples of 3 that are >= 4: 6 only (3 is before the delay).
    assert stop_reports(Bandit(slack_factor=0.2, evaluation_interval=3, delay_evaluation=4), "t", curves) == [6]


def test_bandit_nan_is_worse_than_anything():
    policy = Bandit(slack_amount=0.25)
    assert stops(policy, "t", {"a": [0.25], "t": [NAN]})
    # A nan does not become "best": b (0.5) is compared with itself and survives.
    assert not stops(policy, "b", {"a": [NAN], "b": [0.5]})
    assert not stops(policy, "t", {"a": [NAN], "t": [NAN]})  # nothing to compare with
    assert stops(policy, "t", {"a": [0.0], "t": [math.inf]})  # inf is non-finite too


# -- median stopping ------------------------------------------------------------------------
def test_median_with_odd_count():
    # Running averages at report 2: a 0.75, b 0.5, c 0.25 -> median 0.5.
    others = {"a": [0.5, 1.0], "b": [0.25, 0.75], "c": [0.0, 0.5]}
    policy = MedianStopping()
    assert stops(policy, "t", {**others, "t": [0.25, 0.375]})  # best 0.375 < 0.5
    assert stops(policy, "t", {**others, "t": [0.25, below(0.5)]})
    assert not stops(policy, "t", {**others, "t": [0.25, 0.5]})  # equal: no stop
    # The trial's best so far counts, not its latest value.
    assert not stops(policy, "t", {**others, "t": [0.625, 0.125]})


def test_median_with_even_count_averages_the_middle_two():
    # Running averages at report 1: 0.0, 0.25, 0.75, 1.0 -> median (0.25 + 0.75) / 2 = 0.5.
    others = {"a": [0.0], "b": [0.25], "c": [0.75], "d": [1.0]}
    policy = MedianStopping()
    assert stops(policy, "t", {**others, "t": [0.375]})  # the low median (0.25) would not stop it
    assert not stops(policy, "t", {**others, "t": [0.625]})  # the high median (0.75) would


def test_median_excludes_the_trial_itself_and_uses_the_first_k_reports():
    policy = MedianStopping()
    # Only a counts: its average over reports 1..2 is 0.0 (not 0.5 over all 4), so t survives.
    assert not stops(policy, "t", {"a": [0.0, 0.0, 1.0, 1.0], "t": [0.25, 0.25]})
    # Others' averages 0.5 and 0.125 -> median 0.3125 > 0.25: stop. Counting t's own average
    # (0.25) would make the median 0.25 and let it run.
    assert stops(policy, "t", {"a": [0.5], "b": [0.125], "t": [0.25]})


def test_median_trial_without_peers_never_stops():
    policy = MedianStopping()
    assert not stops(policy, "t", {"t": [0.0, 0.0]})
    # a has only one report, so at report 2 t has no peer; at report 1 it had one.
    assert not stops(policy, "t", {"a": [1.0], "t": [0.0, 0.0]})
    assert stops(policy, "t", {"a": [1.0], "t": [0.0]})


def test_median_respects_delay_and_interval():
    curves = {"a": [1.0] * 6, "b": [1.0] * 6, "t": [0.0] * 6}
    assert stop_reports(MedianStopping(delay_evaluation=3), "t", curves) == [3, 4, 5, 6]
    assert stop_reports(MedianStopping(evaluation_interval=4), "t", curves) == [4]


def test_median_nan_handling():
    policy = MedianStopping()
    # A nan in a's history makes its running average worse than anything: median of
    # (-inf, 0.5) is -inf, so t survives however low it is.
    assert not stops(policy, "t", {"a": [NAN, 1.0], "b": [0.5, 0.5], "t": [0.0, 0.0]})
    # A trial whose values are all nan stops against any finite peer.
    assert stops(policy, "t", {"a": [0.0], "t": [NAN]})
    # A nan report is ignored by the max as long as a real value exists: best 0.25 > average 0.0.
    assert not stops(policy, "t", {"a": [0.0, 0.0], "t": [NAN, 0.25]})


# -- truncation selection -------------------------------------------------------------------
FIVE = {"a": [0.9], "b": [0.8], "c": [0.7], "d": [0.6], "e": [0.5]}


def test_truncation_20_percent_of_5_stops_only_the_strict_worst():
    policy = TruncationSelection(truncation_percentage=20)  # cut = floor(5 * 0.2) = 1
    assert [t for t in FIVE if stops(policy, t, FIVE)] == ["e"]


def test_truncation_40_percent_of_5_stops_the_two_lowest():
    policy = TruncationSelection(truncation_percentage=40)  # cut = 2
    assert [t for t in FIVE if stops(policy, t, FIVE)] == ["d", "e"]


def test_truncation_ties_protect():
    policy = TruncationSelection(truncation_percentage=20)
    tied = {**FIVE, "d": [0.5]}  # d and e share the lowest value
    assert [t for t in tied if stops(policy, t, tied)] == []
    equal = {t: [0.5] for t in "abcde"}
    assert [t for t in equal if stops(policy, t, equal)] == []


def test_truncation_cut_of_zero_never_stops():
    policy = TruncationSelection(truncation_percentage=25)  # 3 trials: floor(0.75) = 0
    assert not stops(policy, "c", {"a": [1.0], "b": [0.5], "c": [0.0]})
    # With a fourth trial the cut becomes 1 and the worst stops.
    assert stops(policy, "c", {"a": [1.0], "b": [0.5], "c": [0.0], "d": [0.75]})


def test_truncation_compares_only_trials_at_the_same_report():
    policy = TruncationSelection(truncation_percentage=50)
    # At report 2 only t and a are compared (n = 2, cut = 1): t is the worse one.
    curves = {"a": [0.5, 0.5], "b": [0.0], "c": [0.0], "t": [0.25, 0.25]}
    assert stops(policy, "t", curves)
    # At report 1, b and c (0.0) are below t: n = 4, cut = 2, two others at or below.
    assert not stops(policy, "t", {t: c[:1] for t, c in curves.items()})


def test_truncation_exclude_finished_jobs_changes_the_outcome():
    # a finished low; it protects t only while it is compared. n = 5 -> cut 1; n = 4 -> cut 1.
    curves = {"a": [0.25, 0.25], "b": [0.5, 0.5], "c": [0.75, 0.75], "d": [1.0, 1.0], "t": [0.375, 0.375]}
    finished = {"a"}
    keep = TruncationSelection(truncation_percentage=25)
    drop = TruncationSelection(truncation_percentage=25, exclude_finished_jobs=True)
    assert not stops(keep, "t", curves, finished)
    assert stops(drop, "t", curves, finished)
    assert not stops(drop, "t", curves, NOTHING)  # same curves, nothing finished


def test_truncation_respects_interval_and_delay():
    curves = {t: c * 6 for t, c in FIVE.items()}
    policy = TruncationSelection(truncation_percentage=20, evaluation_interval=2, delay_evaluation=3)
    assert stop_reports(policy, "e", curves) == [4, 6]
    assert stop_reports(policy, "d", curves) == []


def test_truncation_nan_is_the_worst():
    policy = TruncationSelection(truncation_percentage=20)
    curves = {**FIVE, "e": [NAN], "f": [0.0]}  # 6 trials, cut 1: nan is below 0.0
    assert [t for t in curves if stops(policy, t, curves)] == ["e"]


# -- describe -------------------------------------------------------------------------------
def test_describe_gives_the_numbers_of_the_rule():
    curves = {"a": [0.5, 0.6, 0.7, 0.8], "t": [0.3, 0.35, 0.4, 0.41]}
    assert Bandit(slack_factor=0.2).describe("t", curves) == "bandit: 0.410 < 0.800/(1+0.2)=0.667 at report 4"
    assert Bandit(slack_amount=0.25).describe("t", curves) == "bandit: 0.410 < 0.800-0.25=0.550 at report 4"
    assert MedianStopping().describe("t", curves) == (
        "median_stopping: best 0.410 < median 0.650 of 1 running averages at report 4")
    assert "no evaluation at report 4" in Bandit(slack_factor=0.2, evaluation_interval=3).describe("t", curves)
    text = TruncationSelection(truncation_percentage=50).describe("t", curves)
    assert text.startswith("truncation_selection: 0.410 in the lowest 1 of 2") and text.endswith("at report 4")


def test_verdict_carries_the_rule_value_threshold_and_report():
    curves = {"a": [0.5, 0.6, 0.7, 0.8], "b": [0.9, 0.9, 0.9, 0.9], "t": [0.3, 0.35, 0.4, 0.41]}
    bandit = Bandit(slack_factor=0.2).verdict("t", curves)
    assert (bandit.stop, bandit.rule, bandit.report, bandit.value) == (True, "bandit", 4, 0.41)
    assert bandit.threshold == pytest.approx(0.9 / 1.2)
    assert bandit.reason == "bandit: 0.410 < 0.900/(1+0.2)=0.750 at report 4"
    median = MedianStopping().verdict("t", curves)  # averages 0.65 and 0.9: median 0.775; best 0.41
    assert (median.stop, median.value, median.threshold) == (True, 0.41, pytest.approx(0.775))
    # 3 trials, 40%: cut 1; the threshold is the lowest other value at report 4 (0.8).
    truncation = TruncationSelection(truncation_percentage=40).verdict("t", curves)
    assert (truncation.stop, truncation.value, truncation.threshold) == (True, 0.41, 0.8)
    kept = TruncationSelection(truncation_percentage=40).verdict("a", curves)
    assert (kept.stop, kept.value, kept.threshold) == (False, 0.8, 0.41)
    waiting = Bandit(slack_factor=0.2, evaluation_interval=3).verdict("t", curves)
    assert (waiting.stop, waiting.rule, waiting.value, waiting.threshold) == (False, "", None, None)


# -- make_policy and construction -----------------------------------------------------------
def test_make_policy_maps_each_record():
    bandit = make_policy(BanditPolicy(slack_factor=0.2, evaluation_interval=2, delay_evaluation=6))
    assert isinstance(bandit, Bandit)
    assert (bandit.slack_factor, bandit.slack_amount, bandit.evaluation_interval, bandit.delay_evaluation) == (
        0.2, None, 2, 6)
    amount = make_policy(BanditPolicy(slack_amount=0.1))
    assert (amount.slack_factor, amount.slack_amount) == (None, 0.1)
    median = make_policy(MedianStoppingPolicy(delay_evaluation=3))
    assert isinstance(median, MedianStopping) and median.delay_evaluation == 3
    truncation = make_policy(TruncationSelectionPolicy(truncation_percentage=30, exclude_finished_jobs=True,
                                                       evaluation_interval=4))
    assert isinstance(truncation, TruncationSelection)
    assert (truncation.truncation_percentage, truncation.exclude_finished_jobs, truncation.evaluation_interval) == (
        30, True, 4)
    for policy in (bandit, amount, median, truncation):
        assert isinstance(policy, EarlyTermination)


def test_make_policy_none_means_no_policy_and_yaml_mappings_work():
    assert make_policy(None) is None
    policy = make_policy({"type": "Bandit", "slack_amount": 0.25, "delay_evaluation": 2})
    assert isinstance(policy, Bandit) and policy.slack_amount == 0.25 and policy.delay_evaluation == 2


@pytest.mark.parametrize("build, key", [
    (lambda: Bandit(), "early_termination"),
    (lambda: Bandit(slack_factor=0.2, slack_amount=0.1), "early_termination"),
    (lambda: Bandit(slack_factor=-0.2), "slack_factor"),
    (lambda: Bandit(slack_amount=0.1, evaluation_interval=0), "evaluation_interval"),
    (lambda: MedianStopping(delay_evaluation=-1), "delay_evaluation"),
    (lambda: MedianStopping(evaluation_interval=True), "evaluation_interval"),
    (lambda: TruncationSelection(truncation_percentage=100), "truncation_percentage"),
    (lambda: TruncationSelection(truncation_percentage=20, exclude_finished_jobs="yes"), "exclude_finished_jobs"),
])
def test_constructors_reject_bad_arguments_naming_the_key(build, key):
    with pytest.raises(ValueError, match=f"^{key}:"):
        build()
    with pytest.raises(SpecError):
        build()


# -- as the driver calls it -----------------------------------------------------------------
def test_replay_in_report_order_stops_the_laggard_once_the_delay_is_over():
    """Two trials report alternately; the driver asks after each report with the curves so far."""
    full = {"good": [0.5, 0.625, 0.75, 0.875], "slow": [0.375, 0.375, 0.375, 0.375]}
    policy = Bandit(slack_factor=0.5, delay_evaluation=2)  # at report k: stop below best_k / 1.5
    curves, stopped = {"good": [], "slow": []}, {}
    for k in range(4):
        for trial_id in ("good", "slow"):
            if trial_id in stopped:
                continue
            curves[trial_id].append(full[trial_id][k])
            if policy.should_stop(trial_id, curves, set(stopped)):
                stopped[trial_id] = len(curves[trial_id])
    # Report 1: 0.375 < 0.5/1.5 = 0.333? no (and before the delay anyway).
    # Report 2: 0.375 < 0.625/1.5 = 0.4167 -> stop.
    assert stopped == {"slow": 2}


# -- live thresholds, for the dashboard ----------------------------------------------------
THRESHOLD_CURVES = {"a": [0.5, 0.75, 0.875], "b": [0.25, 0.5], "c": [0.375]}


@pytest.mark.parametrize("policy", [Bandit(slack_factor=0.5), Bandit(slack_amount=0.125), MedianStopping(),
                                    TruncationSelection(truncation_percentage=50)], ids=repr)
def test_each_threshold_is_the_one_a_trial_reaching_that_report_now_is_compared_with(policy):
    """The line drawn at report k is the threshold of the verdict of a new trial just under it."""
    lines = policy.thresholds(THRESHOLD_CURVES)
    assert [line.report for line in lines] == [1, 2, 3]
    for line in lines:
        k = line.report
        curves = {**THRESHOLD_CURVES, "new": [below(line.value)] * k}
        verdict = type(policy)(**policy._arguments()).verdict("new", curves)
        assert verdict.stop and verdict.threshold == line.value, (line, verdict)
        assert line.label.startswith(policy.name)


def test_thresholds_by_hand_and_only_at_evaluation_points():
    # bandit: best 0.5, 0.75, 0.875 at reports 1..3; slack 0.125
    assert [(t.report, t.value) for t in Bandit(slack_amount=0.125).thresholds(THRESHOLD_CURVES)] == [
        (1, 0.375), (2, 0.625), (3, 0.75)]
    # median of the running averages: report 1 of 0.5, 0.25, 0.375 -> 0.375; report 2 of 0.625, 0.375 -> 0.5
    assert [(t.report, t.value) for t in MedianStopping().thresholds(THRESHOLD_CURVES)] == [
        (1, 0.375), (2, 0.5), (3, (0.5 + 0.75 + 0.875) / 3)]
    assert [t.report for t in Bandit(slack_factor=0.5, evaluation_interval=2).thresholds(THRESHOLD_CURVES)] == [2]
    assert [t.report for t in Bandit(slack_factor=0.5, delay_evaluation=3).thresholds(THRESHOLD_CURVES)] == [3]
    # A value that is not a number draws nothing there; thresholds decide nothing.
    policy = Bandit(slack_factor=0.5)
    assert policy.thresholds({"x": [NAN, 0.5]}) == [Threshold(2, 0.5 / 1.5, "bandit: best/(1+0.5)")]
    assert not policy.should_stop("x", {"x": [NAN, 0.5]})


def test_truncation_threshold_leaves_finished_trials_out_when_asked():
    curves = {"a": [0.25], "b": [0.5], "c": [0.75], "d": [0.875], "e": [0.9375]}
    # With a newcomer 6 trials, 40%: cut 2, below the second lowest (0.5).
    assert TruncationSelection(truncation_percentage=40).thresholds(curves, {"a"})[0].value == 0.5
    excluding = TruncationSelection(truncation_percentage=40, exclude_finished_jobs=True)
    assert excluding.thresholds(curves, {"a"})[0].value == 0.75  # b..e and a newcomer: 5, cut 2
    assert excluding.thresholds(curves, set())[0].value == 0.5  # a no longer finished (a resumed trial)


# -- incremental state: the same verdicts as recomputed from scratch ------------------------
def reference(policy, trial_id, curves, finished):
    """The rules recomputed from every curve, as written in the docstrings: (stop, threshold)."""
    k = len(curves[trial_id])
    if not policy.evaluates_at(k):
        return False, None
    score = lambda v: v if math.isfinite(v) else -math.inf  # noqa: E731
    value = score(curves[trial_id][k - 1])
    at_k = {t: c for t, c in curves.items() if len(c) >= k}
    if isinstance(policy, Bandit):
        threshold = policy.threshold(max(score(c[k - 1]) for c in at_k.values()))
        return value < threshold, threshold if math.isfinite(threshold) else None
    if isinstance(policy, MedianStopping):
        averages = sorted(sum(score(v) for v in c[:k]) / k for t, c in at_k.items() if t != trial_id)
        if not averages:
            return False, None
        n = len(averages)
        median = averages[n // 2] if n % 2 else (averages[n // 2 - 1] + averages[n // 2]) / 2
        return max(score(v) for v in curves[trial_id]) < median, median if math.isfinite(median) else None
    others = sorted(score(c[k - 1]) for t, c in at_k.items()
                    if t != trial_id and not (policy.exclude_finished_jobs and t in finished))
    cut = (len(others) + 1) * policy.truncation_percentage // 100
    threshold = others[cut - 1] if cut else None
    return sum(o <= value for o in others) < cut, threshold if threshold is None or math.isfinite(threshold) else None


@pytest.mark.parametrize("make", [lambda: Bandit(slack_factor=0.3),
                                  lambda: Bandit(slack_amount=0.1, delay_evaluation=2),
                                  lambda: MedianStopping(evaluation_interval=2),
                                  lambda: TruncationSelection(truncation_percentage=30),
                                  lambda: TruncationSelection(truncation_percentage=50, exclude_finished_jobs=True)])
def test_incremental_verdicts_equal_recomputed_ones_on_random_reports(make):
    """Three hundred random reports: new trials, resumed trials whose curves are cut back, trials
    that end or go, values that are not numbers. One long-lived policy (updated as reports come)
    gives the verdicts of a fresh one and of the rules recomputed from every curve."""
    import random

    rng = random.Random(7)
    policy, curves, finished = make(), {}, set()
    for step in range(300):
        trial = str(rng.randrange(12))
        curve = curves.setdefault(trial, [])
        roll = rng.random()
        if roll < 0.05 and curve:
            del curve[rng.randrange(len(curve)):]  # resumed from an earlier checkpoint
        elif roll < 0.08:
            finished.add(trial)
        elif roll < 0.1 and len(curves) > 2:
            del curves[trial]
            finished.discard(trial)
            continue
        curve.append(rng.choice([NAN, math.inf]) if rng.random() < 0.05 else rng.choice([0.25, 0.5, rng.random()]))
        verdict = policy.verdict(trial, curves, finished)
        fresh = make().verdict(trial, {t: list(c) for t, c in curves.items()}, set(finished))
        assert verdict == fresh, step
        assert (verdict.stop, verdict.threshold) == reference(policy, trial, curves, finished), step
        assert policy.thresholds(curves, finished) == make().thresholds(curves, finished), step


@pytest.mark.parametrize("make", [lambda: Asha(reduction_factor=2, max_resource=8),
                                  lambda: Hyperband(reduction_factor=2, max_resource=8)])
def test_asha_rung_cutoffs_are_what_the_next_trial_there_must_reach(make):
    import random

    rng = random.Random(3)
    policy = make()
    for trial in range(40):
        policy.verdict(str(trial), {str(trial): [rng.choice([0.25, 0.5, rng.random()]) for _ in range(8)]})
    lines = policy.thresholds()
    assert lines and {line.report for line in lines} <= {1, 2, 4}
    for line in lines:
        bracket = int(line.label.split()[-1]) if line.label.startswith("hyperband") else 0
        recorded = sorted(policy.results(bracket, line.report).values(), reverse=True)
        top = max(1, (len(recorded) + 1) // 2)
        assert line.value == recorded[top - 1]  # ties continue: at the cut-off goes on, just under stops
        for value, stops_there in ((line.value, False), (below(line.value), True)):
            trial_policy = make()
            trial_policy.restore(policy.state())
            trial_policy._bracket_of.update({"new": bracket})
            curve = [1.0] * (line.report - 1) + [value]
            verdict = trial_policy.verdict("new", {"new": curve})
            if stops_there:
                assert verdict.stop and verdict.threshold == line.value and verdict.report == line.report
            else:
                assert not verdict.stop or verdict.report != line.report
