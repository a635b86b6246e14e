"""ASHA and Hyperband (our policies beyond Azure's): promotions and stops hand-checked on given
curves, judged asynchronously (only what is recorded so far), and rung results that survive a
resume. Unit tests drive the policy object with made-up reports, as the driver does; one
scripted sweep checks the run store keeps the rungs across sessions."""

import json
import math

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec.sweep_settings import AshaPolicy, HyperbandPolicy
from automl_nb.sweep.policies import Asha, EarlyTermination, Hyperband, make_policy


def report(policy, curves, trial_id, value):
    """Append one report to ``trial_id``'s curve and ask the policy, as the driver does."""
    curves.setdefault(trial_id, []).append(value)
    return policy.should_stop(trial_id, curves, set())


# The hand-checked cases below use eta 3 and rungs from report 1 (1, 3, 9, ...), not the defaults.
R1 = {"reduction_factor": 3, "min_resource": 1}


def verdicts(policy):
    """Each row's (trial, rung, promoted), in the order judged."""
    return [(row["trial"], row["rung"], row["promoted"]) for row in policy.state()["rungs"]]


# -- ASHA -----------------------------------------------------------------------------------
def test_asha_rungs_are_at_min_resource_times_powers_of_eta_below_max_resource():
    assert Asha(**R1, max_resource=9).rungs() == [1, 3]  # 9 is the end, not a rung
    assert Asha(**R1, max_resource=10).rungs() == [1, 3, 9]
    assert Asha(reduction_factor=2, min_resource=3, max_resource=25).rungs() == [3, 6, 12, 24]
    assert Asha(**R1).rungs(up_to=30) == [1, 3, 9, 27]  # no bound until the driver gives the epochs


def test_asha_keeps_the_top_third_of_the_results_recorded_so_far_at_rung_1():
    policy, curves = Asha(**R1, max_resource=9), {}
    # n results so far (this one included), top = max(1, n // 3); ties at the cut-off continue.
    assert report(policy, curves, "a", 0.50) is False  # n 1, top 1: the first always goes on
    assert report(policy, curves, "b", 0.40) is True   # n 2, top 1: 0.40 < 0.50
    assert report(policy, curves, "c", 0.60) is False  # n 3, top 1: the best
    assert report(policy, curves, "d", 0.55) is True   # n 4, top 1: 0.55 < 0.60
    assert report(policy, curves, "e", 0.60) is False  # n 5, top 1: ties the cut-off 0.60
    assert report(policy, curves, "f", 0.58) is True   # n 6, top 2: cut-off is the 2nd best, 0.60
    assert report(policy, curves, "g", 0.59) is True   # n 7, top 2: 0.59 < 0.60
    assert report(policy, curves, "h", 0.45) is True   # n 8, top 2
    assert report(policy, curves, "i", 0.61) is False  # n 9, top 3: cut-off 0.60 (.61 .60 .60)
    assert policy.results(0, 1) == {"a": 0.5, "b": 0.4, "c": 0.6, "d": 0.55, "e": 0.6, "f": 0.58, "g": 0.59,
                                    "h": 0.45, "i": 0.61}


def test_asha_is_asynchronous_a_verdict_uses_only_what_was_recorded_and_stays():
    policy, curves = Asha(**R1, max_resource=9), {}
    assert report(policy, curves, "early", 0.30) is False  # alone at rung 1: nothing to wait for
    for trial_id, value in (("x", 0.9), ("y", 0.8), ("z", 0.7)):
        report(policy, curves, trial_id, value)
    # Judged again at the same report (describe, a replayed report): the first verdict, not a new one.
    assert policy.should_stop("early", curves, set()) is False
    assert policy.describe("early", curves) == (
        "asha: 0.300 >= 0.300 = cut-off for the top 1 of 1 at rung 1 (1/3 continue) at report 1")
    assert report(policy, curves, "early", 0.31) is False  # report 2: no rung
    assert policy.describe("early", curves) == "asha: no rung at report 2 (next rung at report 3)"


def test_asha_judges_each_rung_among_the_trials_that_reached_it():
    policy, curves = Asha(**R1, max_resource=9), {}
    full = {"a": [0.5, 0.6, 0.7, 0.8], "b": [0.6, 0.6, 0.6], "c": [0.4], "d": [0.9, 0.9, 0.65]}
    stopped = {}
    for k in range(4):  # the trials report in turn, one report each
        for trial_id, values in full.items():
            if trial_id not in stopped and k < len(values) and report(policy, curves, trial_id, values[k]):
                stopped[trial_id] = k + 1
    # Rung 1: a (first), b .6 >= .6 (top 1 of 2), c .4 < .6 stops, d .9 best of 4.
    # Rung 3: a .7 first, b .6 < .7 stops, d .65 < .7 stops (top 1 of 3); report 4 is no rung.
    assert stopped == {"c": 1, "b": 3, "d": 3}
    assert verdicts(policy) == [("a", 1, True), ("b", 1, True), ("c", 1, False), ("d", 1, True),
                                      ("a", 3, True), ("b", 3, False), ("d", 3, False)]
    assert policy.describe("d", curves) == (
        "asha: 0.650 < 0.700 = cut-off for the top 1 of 3 at rung 3 (1/3 continue) at report 3")
    assert policy.describe("a", curves) == "asha: no rung at report 4 (no rung left below max_resource)"
    verdict = policy.verdict("d", curves)  # the numbers behind the reason, for a dashboard's cut-off line
    assert (verdict.stop, verdict.rule, verdict.report) == (True, "asha", 3)
    assert (verdict.value, verdict.threshold) == (0.65, 0.7)


def test_asha_min_resource_is_the_grace_period_and_eta_the_share_kept():
    policy, curves = Asha(reduction_factor=2, min_resource=2, max_resource=8), {}
    assert report(policy, curves, "a", 0.9) is False
    assert report(policy, curves, "b", 0.1) is False  # report 1: before the grace period
    assert report(policy, curves, "a", 0.8) is False  # rung 2, alone
    assert report(policy, curves, "b", 0.7) is True  # rung 2: n 2, top 1: 0.7 < 0.8
    assert policy.results(0, 2) == {"a": 0.8, "b": 0.7}


def test_asha_non_finite_value_stops_and_counts_as_the_worst():
    policy, curves = Asha(**R1, max_resource=9), {}
    assert report(policy, curves, "nan", math.nan) is True  # even alone at the rung
    assert report(policy, curves, "a", 0.1) is False  # n 2, top 1: nan is below anything
    assert policy.describe("nan", curves) == (
        "asha: not a number at rung 1 (non-finite values stop) at report 1")
    assert policy.results(0, 1) == {"nan": None, "a": 0.1}


def test_asha_state_round_trips_through_json_and_a_restored_policy_judges_the_same():
    policy, curves = Asha(**R1, max_resource=9), {}
    for trial_id, value in (("a", 0.5), ("b", 0.4), ("c", 0.6)):
        report(policy, curves, trial_id, value)
    saved = json.loads(json.dumps(policy.state()))
    again = Asha(**R1, max_resource=9)
    again.restore(saved, reports=50)  # the saved bound wins over the reports
    assert again.state() == saved and again.limit == 9
    # b was stopped at rung 1: replaying its report (a resumed trial) gives the same stop.
    assert again.should_stop("b", {"b": [0.99]}, set()) is True
    assert again.describe("b", {"b": [0.99]}).startswith("asha: 0.400 < 0.500")
    # A new trial is judged among the restored results: 0.55 < 0.6 (top 1 of 4).
    assert again.should_stop("d", {"d": [0.55]}, set()) is True and policy.should_stop("d", {"d": [0.55]}, set())
    assert again.state() == policy.state()


def test_restore_without_state_takes_the_reports_as_max_resource():
    policy = Asha(**R1)
    policy.restore(None, reports=9)
    assert policy.rungs() == [1, 3]
    bounded = Asha(**R1, max_resource=4)
    bounded.restore(None, reports=9)
    assert bounded.rungs() == [1, 3]  # max_resource, when set, wins


def test_by_default_no_trial_is_judged_on_its_first_report():
    # One epoch ranks trials by how they start: on bench/early_termination.py's recorded curves a
    # rung at report 1 stopped the two best trials. The default grace period is longer.
    for policy in (Asha(max_resource=15), Hyperband(brackets=1, max_resource=15)):
        curves = {}
        assert [report(policy, curves, t, v) for t, v in (("a", 0.9), ("b", 0.1), ("c", 0.0))] == [False] * 3
        assert policy.state()["rungs"] == [] and policy.rungs()[0] > 1
        stops = [[report(policy, curves, t, v) for t, v in (("a", 0.9), ("b", 0.1))]
                 for _ in range(2, policy.rungs()[0] + 1)]
        assert stops[-1] == [False, True] and not any(map(any, stops[:-1]))  # judged at the first rung only


# -- Hyperband ------------------------------------------------------------------------------
def test_hyperband_brackets_have_growing_grace_periods():
    policy = Hyperband(**R1, max_resource=9)
    assert policy.bracket_total() == 3
    assert [policy.rungs(s) for s in range(3)] == [[1, 3], [3], []]
    assert Hyperband(**R1, max_resource=8).bracket_total() == 2  # grace 1, 3 (9 > 8)
    policy = Hyperband(**R1)
    policy.restore(None, reports=27)
    assert policy.bracket_total() == 4
    with pytest.raises(SpecError, match="^brackets: none given and no max_resource"):
        Hyperband().bracket_total()


def test_hyperband_assigns_brackets_in_turn_and_each_bracket_competes_alone():
    policy, curves = Hyperband(**R1, max_resource=9), {}
    # Brackets in the order of first reports: t0 -> 0, t1 -> 1, t2 -> 2, t3 -> 0, t4 -> 1, t5 -> 2.
    assert report(policy, curves, "t0", 0.5) is False  # bracket 0, rung 1, alone
    assert report(policy, curves, "t1", 0.9) is False  # bracket 1: no rung before report 3
    assert report(policy, curves, "t2", 0.9) is False  # bracket 2: no rung at all below 9
    assert report(policy, curves, "t3", 0.4) is True  # bracket 0, rung 1: 0.4 < 0.5 (t1, t2 do not count)
    assert report(policy, curves, "t4", 0.1) is False  # bracket 1: still in its grace period
    assert report(policy, curves, "t5", 0.0) is False  # bracket 2 never stops
    assert policy.state()["bracket_of"] == {"t0": 0, "t1": 1, "t2": 2, "t3": 0, "t4": 1, "t5": 2}
    for value in (0.9, 0.9):  # t1 reaches its first rung at report 3, alone in bracket 1
        stop = report(policy, curves, "t1", value)
    assert stop is False
    for value in (0.2, 0.3):  # t4: 0.3 < 0.9 at bracket 1's rung 3
        stop = report(policy, curves, "t4", value)
    assert stop is True
    assert policy.describe("t4", curves) == (
        "hyperband bracket 1: 0.300 < 0.900 = cut-off for the top 1 of 2 at rung 3 (1/3 continue) at report 3")
    assert policy.results(0, 3) == {}  # bracket 0's rung 3 is its own
    assert policy.verdict("t4", curves).rule == "hyperband bracket 1"


def test_hyperband_with_one_bracket_is_asha():
    curves = {"a": [0.5], "b": [0.4], "c": [0.6]}
    one, asha = Hyperband(**R1, brackets=1, max_resource=9), Asha(**R1, max_resource=9)
    assert [one.should_stop(t, curves) for t in curves] == [asha.should_stop(t, curves) for t in curves]
    assert [row["promoted"] for row in one.rows] == [True, False, True]


# -- make_policy and the spec ---------------------------------------------------------------
def test_make_policy_maps_the_records_and_yaml_mappings():
    asha = make_policy({"type": "asha", "reduction_factor": 2, "min_resource": 2, "max_resource": 16})
    assert isinstance(asha, Asha) and not isinstance(asha, Hyperband) and isinstance(asha, EarlyTermination)
    assert (asha.reduction_factor, asha.min_resource, asha.max_resource) == (2, 2, 16)
    assert repr(asha) == "Asha(reduction_factor=2, min_resource=2, max_resource=16)"
    hyperband = make_policy(HyperbandPolicy(brackets=2))
    assert isinstance(hyperband, Hyperband) and hyperband.brackets == 2
    defaults = make_policy(AshaPolicy())  # the spec's defaults, taken as they are
    assert (defaults.reduction_factor, defaults.min_resource) == (AshaPolicy.reduction_factor, AshaPolicy.min_resource)
    assert (hyperband.reduction_factor, hyperband.min_resource) == (HyperbandPolicy.reduction_factor,
                                                                    HyperbandPolicy.min_resource)


@pytest.mark.parametrize("mapping, message", [
    ({"type": "asha", "reduction_factor": 1}, "^reduction_factor: 1 is out of range; allowed: int >= 2"),
    ({"type": "asha", "reduction_factor": 2.5}, "^reduction_factor: 2.5 is not an int; allowed: int >= 2"),
    ({"type": "asha", "min_resource": 0}, "^min_resource: 0 is out of range; allowed: int >= 1"),
    ({"type": "asha", "min_resource": 3, "max_resource": 3}, "^max_resource: 3 is out of range; allowed: int > "
                                                             "min_resource \\(3\\)"),
    ({"type": "asha", "delay_evaluation": 2}, "^delay_evaluation: 2: not a field of asha .*min_resource is the "
                                              "grace period"),
    ({"type": "hyperband", "evaluation_interval": 2}, "^evaluation_interval: 2: not a field of hyperband"),
    ({"type": "asha", "grace_period": 2}, "^grace_period: 2: not a field of asha \\(Ray Tune's grace_period is "
                                          "min_resource here\\)"),
    ({"type": "asha", "brackets": 2}, "^brackets: 2: unknown field of asha; allowed: reduction_factor, "
                                      "min_resource, max_resource"),
    ({"type": "hyperband", "brackets": 0}, "^brackets: 0 is out of range; allowed: int >= 1"),
    ({"type": "hyperband", "min_resource": 1, "max_resource": 9, "brackets": 4}, "^brackets: 4 is out of range; "
                                                                                 "allowed: int in \\[1, 3\\]"),
    ({"type": "ashaa"}, "^type: 'ashaa' is not an early-termination policy; .*did you mean 'asha'"),
])
def test_bad_asha_settings_give_one_clear_error(mapping, message):
    with pytest.raises(SpecError, match=message):
        make_policy(mapping)


# -- a scripted sweep, stopped and resumed --------------------------------------------------
CURVES = {0.5: [0.5, 0.6, 0.7, 0.8], 0.6: [0.6, 0.6, 0.6, 0.6], 0.4: [0.4] * 4, 0.9: [0.9, 0.9, 0.65, 0.65]}


def test_rungs_live_in_the_run_store_and_a_resumed_sweep_judges_with_them(tmp_path):
    from automl_nb.data.synthetic import make_dataset
    from automl_nb.spec import load_job
    from automl_nb.sweep.executor import InProcessExecutor
    from automl_nb.sweep.store import RunStore
    from automl_nb.testing import ScriptedTrial

    make_dataset("image_classification", 12, 32, tmp_path / "data", seed=0)
    job = load_job(f"""\
task: image_classification
target_column_name: label
training_data: {{path: {tmp_path / 'data'}, type: mltable}}
limits: {{max_trials: 4, max_concurrent_trials: 1}}
sweep:
  sampling_algorithm: grid
  early_termination: {{type: asha, reduction_factor: 3, min_resource: 1}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: choice, values: [0.5, 0.6, 0.4, 0.9]}}
training_parameters: {{number_of_epochs: 4}}
""")
    script = ScriptedTrial(lambda params: CURVES[params["learning_rate"]], seconds_per_epoch=0.15)
    run = job.submit(tmp_path / "run", check_data=False, executor=InProcessExecutor(script))
    # Cancel as the last trial passes rung 1: it stops at its next report (2), before rung 3. (The
    # listener runs on the driver's thread, so the cancel is seen before report 2 gets its verdict.)
    run.subscribe(lambda event: run.cancel() if event["kind"] == "report" and event["trial"] == "3"
                  and event["epoch"] == 1 else None)
    assert run.wait(60, report=None) == "Canceled"
    first = RunStore(run.folder).run_info()["policy_state"]
    assert first["max_resource"] == 4  # the job's number_of_epochs: rungs 1 and 3
    assert [(row["trial"], row["rung"], row["promoted"]) for row in first["rungs"]] == [
        ("0", 1, True), ("0", 3, True), ("1", 1, True), ("1", 3, False), ("2", 1, False), ("3", 1, True)]
    assert run.resume(check_data=False, executor=InProcessExecutor(script)).wait(60, report=None) == "Completed"
    final = RunStore(run.folder).run_info()["policy_state"]
    assert final["rungs"][:len(first["rungs"])] == first["rungs"]  # the first session's rungs, unchanged
    assert [(row["trial"], row["rung"], row["promoted"]) for row in final["rungs"][len(first["rungs"]):]] == [
        ("3", 3, False)]  # judged among a 0.7 and b 0.6, recorded before the resume: 0.65 < 0.7
    trials = {trial.trial_id: trial for trial in run.trials()}
    assert [trials[t].status for t in "0123"] == ["Completed", "Canceled", "Canceled", "Canceled"]
    assert trials["3"].stopped_by == "policy" and trials["3"].epochs == 3
    assert trials["3"].notes[-1] == ("early termination: asha: 0.650 < 0.700 = cut-off for the top 1 of 3 at "
                                     "rung 3 (1/3 continue) at report 3")


def test_the_default_max_resource_counts_reports_not_epochs():
    from automl_nb.spec import load_job
    from automl_nb.sweep.policies import trial_report_count
    from automl_nb.sweep.replay import prepare_policy

    job = load_job("task: image_classification\ntraining_data: {path: data, type: mltable}\n"
                   "training_parameters: {number_of_epochs: 20, evaluation_frequency: 2}\n")
    assert trial_report_count(job) == 10  # validations at epochs 2, 4, ..., 20
    assert prepare_policy({"type": "asha"}, trial_report_count(job)).rungs() == [2, 6]  # 18 is never reached
