"""Replay of a finished sweep under another policy: one scripted sweep (ScriptedTrial through the
InProcessExecutor, no training) is recorded once, then replayed; every expected stop, epoch count
and ratio below is worked out by hand from CURVES. Scripted trials record no elapsed_seconds, so
every report takes 1 simulated second and the replay's order is fixed."""

import math

import pytest

from automl_nb.errors import RunFolderError, SpecError
from automl_nb.sweep.policies import Asha, Bandit
from automl_nb.sweep.replay import parse_policy_text, replay, replay_from_text
from automl_nb.sweep.simulate import TrialCurve, policy_judge, simulate

# learning_rate -> the accuracy per epoch. The sweep ran with bandit slack_amount 0.4, one trial at a
# time (trial order 0..3): trial 2 (0.05 < 0.5 - 0.4 at report 1) was stopped, the others completed.
CURVES = {0.1: [0.5, 0.6, 0.7, 0.8], 0.2: [0.2, 0.3, 0.35, 0.4], 0.3: [0.05, 0.1, 0.1, 0.1],
          0.4: [0.3, 0.5, 0.75, 0.9]}


def stops(result):
    """Trial -> the report the replayed policy stopped it at, from the result's table."""
    stopped = result.table.dropna(subset=["stopped_at"])
    return dict(zip(stopped["trial"], stopped["stopped_at"]))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from automl_nb.data.synthetic import make_dataset
    from automl_nb.spec import load_job
    from automl_nb.sweep.executor import InProcessExecutor
    from automl_nb.testing import ScriptedTrial

    root = tmp_path_factory.mktemp("replay")
    make_dataset("image_classification", 12, 32, root / "data", seed=0)
    job = load_job(f"""\
task: image_classification
target_column_name: label
training_data: {{path: {root / 'data'}, type: mltable}}
limits: {{max_trials: 4, max_concurrent_trials: 2}}
sweep:
  sampling_algorithm: grid
  early_termination: {{type: bandit, slack_amount: 0.4}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: choice, values: [0.1, 0.2, 0.3, 0.4]}}
training_parameters: {{number_of_epochs: 4}}
""")
    script = ScriptedTrial(lambda params: CURVES[params["learning_rate"]])
    with pytest.MonkeyPatch.context() as patch:  # the leaderboard and its PNG: seconds, and not replayed
        patch.setattr("automl_nb.sweep.report.write_summary", lambda run: None)
        run = job.submit(root / "run", check_data=False, executor=InProcessExecutor(script))
        assert run.wait(60, report=None) == "Completed"
    assert [(t.status, t.epochs) for t in run.trials()] == [
        ("Completed", 4), ("Completed", 4), ("Canceled", 1), ("Completed", 4)]
    return run


def test_replay_without_a_policy_spends_exactly_the_recorded_epochs(run):
    result = replay(run, None)
    assert result.recorded_epochs == result.epochs == 4 + 4 + 1 + 4
    assert result.compute_ratio == 1.0
    assert list(result.table["trial_epochs"]) == [4, 4, 1, 4]
    assert result.table["stopped_at"].isna().all()
    assert (result.best, result.recorded_best, result.best_trial, result.best_survives) == (0.9, 0.9, "3", True)
    # Trial 2's curve ends where the sweep's bandit stopped it: the replay cannot run it longer.
    assert result.cut_short == ["2"]
    assert result.table.loc[2, "note"] == "curve ends at report 1: stopped in the sweep"
    assert any("could not run them longer" in line for line in result.lines())


def test_bandit_replay_stops_the_trials_worked_out_by_hand(run):
    # 2 at a time, 1 s a report, delay 2. t=2: trial 0 reports 0.6, trial 1 0.3 < 0.6/1.5 = 0.4: stops
    # at report 2 and trial 2 starts. t=3: trial 2's only report (not judged before report 2): its
    # curve ends, trial 3 starts. Trial 3 at report 2: 0.5 >= 0.6/1.5; report 3: the best, 0.75.
    result = replay(run, {"type": "bandit", "slack_factor": 0.5, "delay_evaluation": 2})
    assert stops(result) == {"1": 2}
    assert result.table.loc[1, "reason"] == "bandit: 0.300 < 0.600/(1+0.5)=0.400 at report 2"
    assert list(result.table["trial_epochs"]) == [4, 2, 1, 4]
    assert result.epochs == 11 and result.compute_ratio == pytest.approx(13 / 11)
    assert result.cut_short == ["2"] and result.best_survives and result.best == 0.9
    assert result.replayed.sweep_seconds == 7.0  # trial 3 starts at t=3 and reports 4 times


def test_a_harsh_replay_can_stop_the_recorded_best_and_says_so(run):
    # Delay 0, 2 at a time: trials 1 (0.2), 2 (0.05) and 3 (0.3) all fall below 0.5/1.5 at report 1,
    # judged against trial 0's 0.5; the late bloomer (trial 3, 0.9 at the end) is lost.
    result = replay_from_text(run, "type: bandit, slack_factor: 0.5")
    assert stops(result) == {"1": 1, "2": 1, "3": 1}
    assert result.epochs == 7 and result.compute_ratio == pytest.approx(13 / 7)
    assert (result.best, result.recorded_best, result.best_survives) == (0.8, 0.9, False)
    assert result.cut_short == []  # trial 2 is stopped by the replay where its curve ends
    assert "is stopped before its best" in repr(result)
    html = result._repr_html_()
    assert "is stopped before its best" in html and "data:image/png;base64," in html and "<table" in html


def test_concurrency_changes_what_an_asynchronous_policy_sees(run):
    # One at a time, ASHA (eta 3, rungs 1 and 3 below 4 epochs) judges each trial at rung 1 against
    # the trials before it: trial 1 (0.2 < 0.5) and 2 (0.05) stop, trial 3 (0.3) too: the best is lost.
    result = replay(run, {"type": "asha", "min_resource": 1}, max_concurrent=1)
    assert stops(result) == {"1": 1, "2": 1, "3": 1}
    assert result.best_survives is False


def test_the_replay_does_not_change_a_policy_object_it_is_given(run):
    policy = Asha(reduction_factor=2)
    replay(run, policy)
    assert policy.state()["rungs"] == []


def test_plot_marks_each_stop(run):
    fig = replay(run, {"type": "bandit", "slack_factor": 0.5, "delay_evaluation": 2}).plot()
    crosses = [line for line in fig.axes[0].lines if line.get_marker() == "x"]
    assert [(list(c.get_xdata()), list(c.get_ydata())) for c in crosses] == [([2], [0.3])]


def test_bad_run_folders_and_settings_give_one_clear_error(run, tmp_path):
    from automl_nb.sweep.store import RunStore

    with pytest.raises(RunFolderError, match="'.*nowhere' is not a run folder"):
        replay(tmp_path / "nowhere", None)
    empty = RunStore(tmp_path / "empty")
    empty.create(run.store.load_job())
    with pytest.raises(RunFolderError, match="no finished trial with a accuracy row"):
        replay(empty.folder, None)
    with pytest.raises(SpecError, match="bandit needs exactly one of slack_factor and slack_amount"):
        replay(run, "bandit")
    with pytest.raises(SpecError, match="max_concurrent: 0 is not valid"):
        replay(run, None, max_concurrent=0)


def test_policy_text_forms():
    assert repr(parse_policy_text("type: bandit, slack_factor: 0.1")) == repr(Bandit(slack_factor=0.1))
    assert repr(parse_policy_text("{type: asha, reduction_factor: 2}")) == repr(Asha(reduction_factor=2))
    assert repr(parse_policy_text("median_stopping")) == "MedianStopping(evaluation_interval=1, delay_evaluation=0)"
    assert parse_policy_text("none") is None
    with pytest.raises(SpecError, match="is not YAML"):
        parse_policy_text("type: [bandit")


def test_simulate_times_reports_and_counts_a_failed_epoch():
    # Slot 1: "slow" reports at 3 and 6. Slot 2: "fast" reports at 1 and 2; then "fails" starts at 2,
    # reports 0.1 at 3 (after slow's report at 3: it was scheduled first) and fails in its second
    # epoch, at 5.5 (that epoch is spent); "late" takes the slot and reports at 6.5.
    curves = [TrialCurve("slow", [0.9, 0.95], [3, 3]), TrialCurve("fast", [0.5, 0.6], [1, 1]),
              TrialCurve("fails", [0.1], [1, 2.5]), TrialCurve("late", [0.2], [1])]
    seen_by_judge = []

    def judge(trial_id, curves_so_far, finished):
        seen_by_judge.append((trial_id, {t: len(v) for t, v in curves_so_far.items()}, set(finished)))
        return None

    result = simulate(curves, judge, slots=2)
    assert result.epochs == {"slow": 2, "fast": 2, "fails": 2, "late": 1}
    assert result.sweep_seconds == 6.5 and math.isclose(result.best, 0.95)
    assert [(t, n) for t, n, _ in seen_by_judge] == [
        ("fast", {"fast": 1}), ("fast", {"fast": 2}), ("slow", {"fast": 2, "slow": 1}),
        ("fails", {"fast": 2, "slow": 1, "fails": 1}), ("slow", {"fast": 2, "slow": 2, "fails": 1}),
        ("late", {"fast": 2, "slow": 2, "fails": 1, "late": 1})]
    assert seen_by_judge[-1][2] == {"fast", "fails", "slow"}
    stopped = simulate(curves, policy_judge(Bandit(slack_amount=0.5)), slots=2).stops
    assert stopped == {"fails": (1, "bandit: 0.100 < 0.900-0.5=0.400 at report 1")}


def test_automl_replay_magic_binds_the_result_and_turns_mistakes_into_usage_errors(run):
    from IPython.core.error import UsageError
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "automl_nb")
    result = shell.run_line_magic("automl", f"replay -r {run.folder} -o again type: bandit, slack_factor: 0.5, "
                                            "delay_evaluation: 2")
    assert shell.user_ns["again"] is result and stops(result) == {"1": 2}
    with pytest.raises(UsageError, match="bandit needs exactly one of slack_factor and slack_amount"):
        shell.run_line_magic("automl", f"replay -r {run.folder} bandit")
