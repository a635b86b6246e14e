"""The dashboard's live chart: points sent as deltas, the best trials as lines and the rest as a
band, each policy's threshold lines as its verdicts compute them, a click on a curve marking its
row. Hand-made snapshots and run folders (nothing trains)."""

import json

import pytest

from automl_nb.spec import load_job
from automl_nb.sweep import load_run
from automl_nb.sweep.policies import make_policy
from automl_nb.sweep.store import RunStore, TrialRecord
from automl_nb.widgets.live_chart import LiveChart, threshold_lines
from automl_nb.widgets.policy_lines import PolicyLines
from automl_nb.widgets.snapshot import RunSnapshot, SnapshotReader, TrialRow

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: {trials}, max_concurrent_trials: 2}}
sweep:
  sampling_algorithm: random
  early_termination: {{type: bandit, slack_amount: 0.125}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: uniform, min_value: 0.001, max_value: 0.1}}
training_parameters: {{number_of_epochs: 3}}
"""


def row(trial_id, values, status="Running", **more):
    curve = tuple({"epoch": e, "accuracy": v, "validation_loss": 1 - v, "train_loss": 1.5 - v}
                  for e, v in enumerate(values, 1))
    fields = dict(trial_id=trial_id, model="resnet18", params={"learning_rate": 0.01}, metric=max(values, default=None),
                  status=status, epochs=len(values), total_epochs=3, stopped_by=None, notes="", duration_s=1.0,
                  curve=curve)
    return TrialRow(**{**fields, **more})


def snapshot(rows, status="Running"):
    rows = sorted(rows, key=lambda r: (r.metric is None, -(r.metric or 0.0)))
    return RunSnapshot(folder="runs/x", task="image_classification", primary_metric="accuracy", status=status,
                       max_trials=len(rows), rows=tuple(rows), elapsed_s=1.0, taken=0.0)


def test_only_new_points_are_sent_numbered_and_a_view_can_ask_for_the_history():
    chart = LiveChart("accuracy")
    deltas = []
    chart.observe(lambda change: deltas.append(change.new), "delta")
    assert chart.update(snapshot([row("0", [0.5]), row("1", [0.25])]))
    assert chart.update(snapshot([row("0", [0.5, 0.625]), row("1", [0.25])]))
    assert not chart.update(snapshot([row("0", [0.5, 0.625]), row("1", [0.25])]))  # nothing new: nothing sent
    assert [d["seq"] for d in deltas] == [1, 2]
    assert deltas[0]["points"] == {"0": [[1, 0.5, 0.5, 1.0]], "1": [[1, 0.25, 0.75, 1.25]]}
    assert deltas[1]["points"] == {"0": [[2, 0.625, 0.375, 0.875]]} and deltas[1]["trials"] == {}
    # A trial resumed from an earlier checkpoint starts its points over.
    chart.update(snapshot([row("0", [0.5, 0.75, 0.875]), row("1", [0.25], status="Canceled")]))
    assert deltas[-1]["reset"] == ["0"] and [p[1] for p in deltas[-1]["points"]["0"]] == [0.5, 0.75, 0.875]
    assert deltas[-1]["trials"]["1"]["style"] == "dashed" and "1" not in deltas[-1]["points"]
    sent = []
    chart.send = sent.append
    chart._on_message(chart, {"type": "history"}, [])
    assert sent == [{"type": "history", "seq": 3, "points": chart.points, "trials": chart.facts}]
    assert [p[1] for p in sent[0]["points"]["0"]] == [0.5, 0.75, 0.875]
    chart.close()


def test_the_best_trials_and_the_running_ones_are_lines_the_rest_one_band():
    rows = [row(str(i), [i / 20], status="Completed") for i in range(15)] + [row("15", [0.0])]
    chart = LiveChart("accuracy")
    chart.update(snapshot(rows))
    top = {trial for trial, facts in chart.facts.items() if facts["top"]}
    assert top == {str(i) for i in range(5, 15)} | {"15"}  # the 10 best, and the running one
    assert chart.facts["14"]["best"] and not chart.facts["13"]["best"]
    assert chart.facts["3"]["params"] == "learning_rate=0.01"
    chart.close()


def test_non_numbers_travel_as_none():
    chart = LiveChart("accuracy")
    chart.update(snapshot([row("0", [float("nan"), 0.5])]))
    assert chart.points["0"][0][1] is None and chart.points["0"][1][1] == 0.5
    json.dumps(chart.delta, allow_nan=False)  # JSON without NaN, as the browser's parser needs
    chart.close()


class _Job:
    def __init__(self, policy):
        self.sweep = type("Sweep", (), {"early_termination": policy})()


CURVES = {"0": [0.5, 0.75, 0.875], "1": [0.25, 0.5], "2": [0.375]}


@pytest.mark.parametrize("policy", [{"type": "bandit", "slack_factor": 0.5}, {"type": "bandit", "slack_amount": 0.125},
                                    {"type": "median_stopping"},
                                    {"type": "truncation_selection", "truncation_percentage": 50}])
def test_threshold_lines_from_the_folder_are_the_verdicts_thresholds(policy):
    """The line at report k, computed from the snapshot, is what a trial reaching k just under it
    is compared with by the policy the driver runs."""
    lines = PolicyLines(_Job(policy))
    points = lines.thresholds(snapshot([row(t, values) for t, values in CURVES.items()]))
    assert [p.report for p in points] == [1, 2, 3]
    for point in points:
        newcomer = [point.value - 1e-9] * point.report
        verdict = make_policy(policy).verdict("new", {**CURVES, "new": newcomer})
        assert verdict.stop and verdict.threshold == pytest.approx(point.value, abs=0)
    (line,) = threshold_lines(points)
    assert line["points"] == [[p.report, p.value] for p in points] and line["label"].startswith(policy["type"])
    assert PolicyLines(_Job(None)).thresholds(snapshot([row("0", [0.5])])) == []


def test_asha_lines_come_from_the_rung_results_the_driver_recorded(tmp_path):
    run = make_run(tmp_path / "run", 3, running=3)
    policy = make_policy({"type": "asha", "reduction_factor": 2, "min_resource": 1, "max_resource": 4})
    for trial, value in (("a", 0.5), ("b", 0.75), ("c", 0.25)):
        policy.verdict(trial, {trial: [value]})
    run.store.write_run(policy_state=policy.state())
    lines = PolicyLines(_Job({"type": "asha", "reduction_factor": 2, "min_resource": 1, "max_resource": 4}))
    taken = SnapshotReader(run).take()  # run.json's policy_state comes with the snapshot
    assert lines.thresholds(taken) == policy.thresholds()
    (point,) = lines.thresholds(taken)
    assert (point.report, point.value) == (1, 0.5)  # 4 at rung 1 with the next one: the top 2 go on


def make_run(folder, trials, running=0):
    """A run folder by hand: trial i has reached 0.05 * (i + 1) after one evaluation; the first
    ``running`` run on, the others completed."""
    store = RunStore(folder)
    store.create(load_job(JOB.format(data=folder / "data", trials=trials)))
    store.write_run(status="Running" if running else "Completed", max_trials=trials)
    for i in range(trials):
        metric = round(0.05 * (i + 1), 4)
        record = TrialRecord(trial_id=str(i), index=i, sampled={"model_name": "resnet18", "learning_rate": 0.01 + i},
                             parameters={"model_name": "resnet18", "learning_rate": 0.01 + i, "number_of_epochs": 3},
                             status="Running" if i < running else "Completed", best_metric=metric, epochs=1,
                             started=1.0, ended=None if i < running else 2.0)
        trial = store.trial_folder(str(i))
        trial.mkdir(parents=True)
        (trial / "trial.json").write_text(json.dumps(record.__dict__))
        (trial / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "accuracy": metric}) + "\n")
    return load_run(folder)


def test_a_click_on_a_curve_marks_its_row_and_the_policy_line_is_drawn(tmp_path):
    from automl_nb.widgets import SweepDashboard

    dashboard = SweepDashboard(make_run(tmp_path / "run", 12), page_size=2, poll_seconds=60)
    try:
        assert set(dashboard._rows) == {"11", "10"}  # a page of the 2 best
        (line,) = dashboard.curves.thresholds  # the bandit's: the best at report 1 (0.6) less 0.125
        assert line["label"] == "bandit: best-0.125" and line["points"] == [[1, pytest.approx(0.475)]]
        dashboard.curves.selected = "5"  # what the chart's click sets, through the comm
        assert dashboard.selected == "5"
        marked = [t for t, view in dashboard._rows.items() if "automl-selected" in view.box._dom_classes]
        assert marked == ["5"] and dashboard._rows["5"].box in dashboard.table.children
        with pytest.raises(ValueError, match="trial '99' is not in this run"):
            dashboard.select("99")
        dashboard.select("")
        assert not any("automl-selected" in view.box._dom_classes for view in dashboard._rows.values())
    finally:
        dashboard.close()


def test_a_stopped_trials_row_says_which_rule_stopped_it_and_the_numbers():
    from html import escape

    from automl_nb.widgets.html import leaderboard_table, row_cells

    reason = "bandit: 0.410 < 0.800/(1+0.2)=0.667 at report 4"
    stopped = row("3", [0.41], status="Canceled", stopped_by="policy",
                  notes=f"resumed from its last checkpoint; early termination: {reason}")
    cells = row_cells(stopped, False, ())
    assert f">{escape('Canceled: ' + reason)}<" in cells  # beside the row...
    assert f'title="{escape("resumed from its last checkpoint; early termination: " + reason)}"' in cells  # ...on hover
    assert escape(f"Canceled: {reason}") in leaderboard_table(snapshot([stopped]))  # the saved notebook's table too
    by_user = row("4", [0.41], status="Canceled", stopped_by="policy", notes="stopped by the user")
    assert ">Canceled (by user)<" in row_cells(by_user, False, ())
    # The chart cuts the policy's stop with a cross, and says why on hover; a Stop button's stop is no cut.
    chart = LiveChart("accuracy")
    chart.update(snapshot([stopped, by_user]))
    assert chart.facts["3"]["cut"] and chart.facts["3"]["status"] == f"Canceled: {reason}"
    assert not chart.facts["4"]["cut"] and chart.facts["4"]["style"] == "dashed"
    chart.close()
