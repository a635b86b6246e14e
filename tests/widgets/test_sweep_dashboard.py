"""SweepDashboard on sweeps through a real Dask LocalCluster (scripted trials, and tiny real ones in
the kernel test): it fills in while trials run,
its Stop buttons stop a trial, it re-attaches to a run folder, and in a real kernel its updates
reach the frontend while another cell runs and its Stop job click is handled during %automl wait."""

import json
import re
import time

import pytest

from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import load_job
from automl_nb.sweep.driver import USER_STOP_NOTE as STOP_NOTE
from automl_nb.testing import ScriptedTrial

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: 3, max_concurrent_trials: 2}}
sweep: {{sampling_algorithm: grid}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: choice, values: [0.02, 0.01, 0.005]}}
training_parameters:
  use_pretrained_model: false
  number_of_epochs: {epochs}
  training_batch_size: 16
  training_crop_size: 28
  validation_resize_size: 32
  validation_crop_size: 28
  early_stopping: false
  random_seed: 0
"""


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    make_dataset("image_classification", 60, 32, folder, seed=0)
    return folder


def test_dashboard_follows_a_sweep_stops_a_trial_and_reattaches(shapes, tmp_path):
    from automl_nb.widgets import SweepDashboard

    script = ScriptedTrial(lambda params: [params["learning_rate"] * 10 * e for e in range(1, 7)], seconds_per_epoch=0.4)
    run = load_job(JOB.format(data=shapes, epochs=6)).submit(tmp_path / "run", trial_function=script)
    dashboard = SweepDashboard(run, poll_seconds=0.5, min_interval=0.2)
    samples, clicked = [], None
    while run.running:
        rows = dict(dashboard._rows)
        samples.append((dashboard.snapshot.status, {tid: view.bar.value for tid, view in rows.items()}))
        if clicked is None and "1" in rows and rows["1"].bar.value >= 1 and not rows["1"].stop.disabled:
            rows["1"].stop.click()  # as a click in the browser does
            clicked = rows["1"].stop.description
        time.sleep(0.2)
    assert run.wait() == "Completed"
    # The widgets changed while the sweep ran (pushed by the updater, not read at the end).
    running = [bars for status, bars in samples if status == "Running" and bars]
    assert running and max(max(bars.values()) for bars in running) > min(min(bars.values()) for bars in running)
    assert clicked == "Stopping"
    stopped = next(r for r in run.trials() if r.trial_id == "1")
    assert stopped.status == "Canceled" and stopped.epochs < 6
    assert any(STOP_NOTE in note for note in stopped.notes)
    assert stopped.finished  # final: resume() leaves it alone
    time.sleep(1.0)  # the updater's last refresh after the driver's thread ended
    final = dashboard.snapshot
    assert final.status == "Completed" and final.ended_trials == 3 and dashboard.progress.value == 3
    assert "Completed; 3/3 trials ended" in dashboard.summary.value
    assert all(view.stop.disabled for view in dashboard._rows.values()) and dashboard.stop_job.disabled
    assert dashboard.curves_png()[:4] == b"\x89PNG"  # the static form's curves
    # The live chart got every point, sent as deltas, and the best trial marked.
    assert {t: len(points) for t, points in dashboard.curves.points.items()} == {
        row.trial_id: len(row.curve) for row in final.rows if row.curve}
    assert dashboard.curves.facts[final.best.trial_id]["best"]
    assert "Canceled (by user)" in dashboard._rows["1"].cells.value
    assert dashboard.static_html().count('class="automl-row"') == 3
    # Finished: no Stop buttons; the swept rate has a column, the one model is in the caption.
    assert dashboard.stop_job.layout.display == "none"
    assert all(view.stop.layout.display == "none" for view in dashboard._rows.values())
    assert "learning_rate" in dashboard._sort_buttons and "model_name" not in dashboard._sort_buttons
    assert dashboard.caption.value == "same in every trial: model resnet18"
    assert dashboard._order == ["0", "1", "2"]  # trial order unless a column is clicked
    metric_of = {row.trial_id: row.metric for row in final.rows}
    dashboard._sort_buttons["metric"].click()  # best first...
    assert [metric_of[t] for t in dashboard._order] == sorted(metric_of.values(), reverse=True)
    assert "▼" in dashboard._sort_buttons["metric"].description
    dashboard._sort_buttons["metric"].click()  # ...then the other way
    assert [metric_of[t] for t in dashboard._order] == sorted(metric_of.values())
    listed = re.findall(r'<tr class="automl-row"[^>]*><td[^>]*>.*?</td><td style="padding:2px 8px">(\w+)',
                        dashboard.static_html())
    assert listed == dashboard._order  # the saved notebook lists them as shown
    with pytest.raises(ValueError, match="'optimizer' is not on the leaderboard"):
        dashboard.sort_by("optimizer")

    again = SweepDashboard(str(run.folder))  # e.g. after a kernel restart
    assert [row.trial_id for row in again.snapshot.rows] == [row.trial_id for row in final.rows]
    assert [row.metric for row in again.snapshot.rows] == [row.metric for row in final.rows]
    assert again._updater is None  # a finished run is not polled
    assert all(view.stop.disabled for view in again._rows.values())
    bundle = again._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "automl-dashboard-static" in bundle["text/html"]
    dashboard.close()
    again.close()


def test_a_failed_trial_shows_why_on_its_row_in_one_line(shapes, tmp_path):
    from automl_nb.widgets import SweepDashboard

    reason = "CUDA out of memory. Tried to allocate 20.00 MiB; GPU 0 has 15.78 GiB, of which 3.12 MiB is free"

    def fails_at_rate_001(params):
        if params["learning_rate"] == 0.01:
            raise RuntimeError(reason + "\nsecond line of the message")
        return [0.5]

    run = load_job(JOB.format(data=shapes, epochs=1)).submit(tmp_path / "run",
                                                             trial_function=ScriptedTrial(fails_at_rate_001))
    dashboard = SweepDashboard(run, poll_seconds=0.5, min_interval=0.2)
    assert run.wait(120, report=None) == "Completed"
    snapshot = dashboard.refresh()
    (failed,) = [row for row in snapshot.rows if row.status == "Failed"]
    cells = dashboard._rows[failed.trial_id].cells.value
    shown = re.search(r'<span class="automl-status" style="color:var\(--jp-error-color1, #b3261e\)">(.*?)</span>',
                      cells).group(1)
    assert shown.startswith("Failed: RuntimeError: CUDA out of memory. Tried to allocate")
    assert shown.endswith("…") and "is free" not in shown  # cut to one line...
    assert f"RuntimeError: {reason}" in cells  # ...the whole error in its tooltip
    assert all("Failed" not in dashboard._rows[row.trial_id].cells.value for row in snapshot.rows if row is not failed)
    static = dashboard.static_html()
    assert shown in static and reason in static  # the saved notebook's table: reason in status, all in notes
    dashboard.close()


def _comm_state(message) -> dict:
    return message["content"].get("data", {}).get("state", {})


@pytest.mark.slow
def test_in_a_kernel_updates_flow_while_a_cell_runs_and_clicks_work_while_waiting(shapes, tmp_path):
    from jupyter_client.manager import start_new_kernel

    kernel, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    messages: list = []

    def run_cell(code: str, during=None, timeout: float = 300) -> str:
        msg_id = client.execute(code)
        while True:
            message = client.get_iopub_msg(timeout=timeout)
            messages.append(message)
            if during is not None:
                during(message)
            if message["parent_header"].get("msg_id") == msg_id and message["msg_type"] == "status" \
                    and message["content"]["execution_state"] == "idle":
                return msg_id

    def output_of(msg_id: str) -> str:
        return "".join(m["content"].get("text", "") for m in messages
                       if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream")

    try:
        run_cell("%load_ext automl_nb")
        run_cell("%%automl -o run --output sweep\n" + JOB.format(data=shapes, epochs=8))
        # Another cell runs until a trial has evaluated, and a little longer (the dashboard redraws
        # at most once a second).
        began = len(messages)
        busy = run_cell("import time\nwhile not any(r.epochs >= 1 for r in run.trials()):\n    time.sleep(0.2)\n"
                        "time.sleep(2.5)\nprint('busy cell done')")
        assert output_of(busy) == "busy cell done\n"
        # Updates that arrived while the cell ran (in arrival order; a widget's messages may carry the
        # header of the cell that was running when its first update went out).
        during_busy = [m for m in messages[began:] if m["msg_type"] == "comm_msg"]
        cells = [_comm_state(m).get("value", "") for m in during_busy]
        assert any(re.search(r">[01]\.\d{4}<", str(value)) and "Running" in str(value) for value in cells), \
            f"no leaderboard row with a metric reached the frontend while the other cell ran: {cells}"
        epoch_bars = {m["content"]["comm_id"] for m in messages if m["msg_type"] == "comm_open"
                      and _comm_state(m).get("_model_name") == "IntProgressModel" and not _comm_state(m).get("description")}
        progress = [_comm_state(m).get("value") for m in during_busy if m["content"]["comm_id"] in epoch_bars]
        assert any(isinstance(value, int) and value >= 1 for value in progress)

        stop_job = next(m["content"]["comm_id"] for m in messages if m["msg_type"] == "comm_open"
                        and _comm_state(m).get("description") == "Stop job")
        click = client.session.msg("comm_msg", {"comm_id": stop_job,
                                                "data": {"method": "custom", "content": {"event": "click"}}})
        waiting, queued = client.execute("%automl wait"), None
        while True:
            message = client.get_iopub_msg(timeout=300)
            messages.append(message)
            parent = message["parent_header"].get("msg_id")
            if queued is None and parent == waiting and message["msg_type"] == "execute_input":
                client.shell_channel.send(click)  # as the browser does, while the kernel is busy waiting
                queued = client.execute("print('after', run.status)")
            if parent == waiting and message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
        assert output_of(waiting).strip() == "sweep: Canceled"  # the click was handled during the wait
        trials = [json.loads(path.read_text()) for path in (tmp_path / "sweep" / "trials").glob("*/trial.json")]
        assert trials and all(t["status"] in ("Canceled", "Completed") for t in trials)
        assert any(t["status"] == "Canceled" and t["stopped_by"] == "user" and t["epochs"] < 8 for t in trials)
        # The cell sent during the wait ran after it, as queued cells do.
        deadline = time.monotonic() + 60
        while "after" not in output_of(queued):
            messages.append(client.get_iopub_msg(timeout=max(1, deadline - time.monotonic())))
        assert output_of(queued) == "after Canceled\n"
        reply = client.get_shell_msg(timeout=10)
        while reply["parent_header"].get("msg_id") != queued:
            reply = client.get_shell_msg(timeout=10)
        assert reply["content"]["status"] == "ok"
    finally:
        client.stop_channels()
        kernel.shutdown_kernel(now=True)


# -- the leaderboard's logic, on hand-made snapshots (no sweep) ---------------------------------

def trial_row(trial_id, metric=None, status="Completed", epochs=4, total=4, duration=40.0, model="resnet18",
              curve=(), **params):
    from automl_nb.widgets.snapshot import TrialRow

    return TrialRow(trial_id=trial_id, model=model, params=params, metric=metric, status=status, epochs=epochs,
                    total_epochs=total, stopped_by=None, notes="", duration_s=duration, curve=curve)


def snapshot_of(rows, status="Running", max_trials=None, concurrent=1, timeout_s=None, elapsed=100.0, swept=()):
    from automl_nb.widgets.snapshot import RunSnapshot

    return RunSnapshot(folder="runs/x", task="image_classification", primary_metric="accuracy", status=status,
                       max_trials=max_trials or len(rows), rows=tuple(rows), elapsed_s=elapsed, taken=0.0,
                       swept=swept, max_concurrent_trials=concurrent, timeout_s=timeout_s)


def test_a_column_per_swept_hyperparameter_and_the_shared_ones_in_a_caption():
    from automl_nb.widgets.html import caption_text, row_cells
    from automl_nb.widgets.leaderboard import parameter_columns

    rows = [trial_row(str(i), learning_rate=0.009101, optimizer=name)
            for i, name in enumerate(["sgd", "adam", "adamw"])]
    columns = parameter_columns(rows)
    assert columns.swept == ("optimizer",)
    assert columns.constant == {"model_name": "resnet18", "learning_rate": 0.009101}
    assert caption_text(columns.constant) == "same in every trial: model resnet18, learning_rate 0.009101"
    cells = row_cells(rows[1], False, columns.swept)
    assert ">adam</span>" in cells and "learning_rate" not in cells and "resnet18" not in cells
    # What the search space sweeps is a column from the first trial on, before values differ.
    assert parameter_columns(rows[:1], ("learning_rate",)).swept == ("learning_rate",)
    # A model that differs is a column too, first.
    mixed = rows[:2] + [trial_row("2", model="mobilenetv2", learning_rate=0.009101, optimizer="sgd")]
    assert parameter_columns(mixed).swept == ("model_name", "optimizer")


def test_what_a_search_space_sweeps():
    from automl_nb.spec.distributions import Choice, Uniform
    from automl_nb.widgets.leaderboard import declared_swept

    space = [{"model_name": Choice(["resnet18"]), "learning_rate": Uniform(0.001, 0.01), "optimizer": Choice(["sgd"])},
             {"model_name": Choice(["resnet18"]), "learning_rate": 0.01, "optimizer": Choice(["adam"]),
              "weight_decay": Choice([0.0001])}]
    assert declared_swept(space) == ("learning_rate", "optimizer", "weight_decay")  # weight_decay: absent in one
    assert declared_swept(space[:1]) == ("learning_rate",)
    assert declared_swept([]) == ()


def test_sorting_by_any_column_missing_values_last():
    from automl_nb.widgets.leaderboard import sort_rows

    rows = [trial_row("0", 0.5, optimizer="sgd"), trial_row("1", None, status="Failed", optimizer="adam"),
            trial_row("2", 0.7, optimizer="adam"), trial_row("10", 0.5, optimizer="sgd")]
    ids = lambda rows: [row.trial_id for row in rows]  # noqa: E731
    assert ids(sort_rows(rows, "trial")) == ["0", "1", "2", "10"]  # by number, not text
    assert ids(sort_rows(rows, "metric", descending=True)) == ["2", "0", "10", "1"]  # ties in trial order
    assert ids(sort_rows(rows, "metric")) == ["0", "10", "2", "1"]  # no metric: last either way
    assert ids(sort_rows(rows, "optimizer")) == ["1", "2", "0", "10"]
    assert ids(sort_rows(rows, "status")) == ["0", "2", "10", "1"]
    with pytest.raises(ValueError, match="'momentum' is not a leaderboard column"):
        sort_rows(rows, "momentum")


def test_rows_stay_put_while_running_and_are_sorted_on_a_click_or_at_the_end():
    from automl_nb.widgets.leaderboard import arrange

    first = [trial_row("0", 0.2, "Running"), trial_row("1", 0.4, "Running")]
    order = arrange([], first, "metric", True, resort=False)
    assert order == ["1", "0"]
    # Trial 0 overtakes trial 1 and trial 2 starts: nothing moves under the cursor, 2 comes last.
    later = [trial_row("0", 0.9, "Running"), trial_row("1", 0.4, "Running"), trial_row("2", 0.95, "Running")]
    assert arrange(order, later, "metric", True, resort=False) == ["1", "0", "2"]
    assert arrange(order, later, "metric", True, resort=True) == ["2", "0", "1"]  # a click, or the sweep ended


def test_time_left_per_trial_and_for_the_job():
    from automl_nb.widgets.html import summary_text
    from automl_nb.widgets.leaderboard import job_eta, trial_eta

    running = trial_row("1", 0.4, "Running", epochs=2, total=10, duration=20.0)  # 10 s an epoch, 8 to go
    assert trial_eta(running) == pytest.approx(80.0)
    assert trial_eta(trial_row("0", 0.5)) is None  # ended
    assert trial_eta(trial_row("2", None, "Running", epochs=0, duration=3.0)) is None  # no epoch yet
    rows = [trial_row("0", 0.5, epochs=10, total=10, duration=100.0), running]
    # 10 s an epoch; 8 epochs of trial 1 and 2 trials not started of 10 epochs: 280 s of work on 2 workers.
    snapshot = snapshot_of(rows, max_trials=4, concurrent=2)
    assert job_eta(snapshot) == pytest.approx(140.0)
    assert job_eta(snapshot_of(rows, max_trials=2, concurrent=2)) == pytest.approx(80.0)  # the longest running
    assert job_eta(snapshot_of(rows, max_trials=4, concurrent=2, timeout_s=130.0)) == pytest.approx(30.0)
    assert job_eta(snapshot_of(rows, status="Completed")) is None
    assert summary_text(snapshot).endswith("1:40 elapsed, about 2:20 left")


def test_starting_workers_before_the_first_report():
    from automl_nb.widgets.html import summary_text
    from automl_nb.widgets.leaderboard import starting

    assert starting(snapshot_of([], status="Starting", max_trials=3))
    queued = [trial_row("0", None, "Running", epochs=0, duration=1.0), trial_row("1", None, "Queued", epochs=0)]
    assert starting(snapshot_of(queued, max_trials=3)) and "starting workers" in summary_text(snapshot_of(queued))
    reported = [trial_row("0", 0.3, "Running", epochs=1)] + queued[1:]
    assert not starting(snapshot_of(reported, max_trials=3))
    assert not starting(snapshot_of(queued, status="Canceled"))


def test_a_rows_swatch_is_its_curves_colour_and_colours_follow_the_theme():
    from automl_nb.widgets.figures import curves_figure, trial_colour
    from automl_nb.widgets.html import BEST_MARKER, leaderboard_table, row_cells

    curve = ({"epoch": 1, "accuracy": 0.3, "train_loss": 0.9, "validation_loss": 0.8},)
    rows = [trial_row("0", 0.3, curve=curve), trial_row("1", None, status="Failed"), trial_row("2", 0.6, curve=curve)]
    colours = {trial_colour(row.trial_id) for row in rows}
    assert len(colours) == 3
    figure = curves_figure(snapshot_of(rows, status="Completed"))
    for axis in figure.axes:
        drawn = {line.get_label().split(":")[0]: line.get_color() for line in axis.get_lines()}
        # Trial 1 has no curve: trial 2 keeps its own colour all the same.
        assert drawn == {"0": trial_colour("0"), "2": trial_colour("2")}
    best = row_cells(rows[2], True, ())
    assert f"background:{trial_colour('2')}" in best and BEST_MARKER in best
    assert "var(--jp-layout-color2" in best and "#e3f4ea" not in best  # readable in the dark theme
    table = leaderboard_table(snapshot_of(rows, status="Completed"))
    assert all(f"background:{trial_colour(row.trial_id)}" in table for row in rows)
    assert "var(--jp-error-color1" in table


def test_parallel_coordinates_place_each_trial_on_every_swept_axis_and_the_metric():
    from matplotlib.collections import LineCollection

    from automl_nb.widgets.parallel import parallel_figure

    rows = [trial_row("0", 0.5, learning_rate=0.001, optimizer="adam"),
            trial_row("1", 0.9, learning_rate=0.01, optimizer="sgd"),
            trial_row("2", 0.7, learning_rate=0.1, optimizer="adam"),
            trial_row("3", None, status="Running", learning_rate=0.05, optimizer="sgd")]  # no metric: not drawn
    fig = parallel_figure(snapshot_of(rows), ("learning_rate", "optimizer"))
    (lines,) = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    drawn = [segment[:, 1].round(6).tolist() for segment in lines.get_segments()]
    # Log-scaled rates (a decade apart: 0, 0.5, 1), sorted choices (adam 0, sgd 1), metric scaled to its range.
    assert drawn == [[0.0, 0.0, 0.0], [0.5, 1.0, 1.0], [1.0, 0.0, 0.5]]
    assert list(lines.get_linewidths()) == [1.0, 2.8, 1.0]  # the best trial bold
    labels = {text.get_text() for text in fig.axes[0].texts}
    assert {"learning_rate", "optimizer", "accuracy", "adam", "sgd", "0.001", "0.1"} <= labels
    assert parallel_figure(snapshot_of(rows[:1]), ("learning_rate",)) is None  # one scored trial: nothing to compare
    assert parallel_figure(snapshot_of(rows), ()) is None


def test_the_steering_bar_extends_a_trial_and_requeues_the_failed_ones_at_resume(shapes, tmp_path, monkeypatch):
    from automl_nb.sweep import load_run
    from automl_nb.sweep.executor import InProcessExecutor
    from automl_nb.widgets import SweepDashboard

    def fails_at_rate_001(params):
        if params["learning_rate"] == 0.01:
            raise RuntimeError("CUDA out of memory")
        return [0.5, 0.6]

    monkeypatch.setattr("automl_nb.sweep.report.write_summary", lambda run: None)  # the end's plots: not tested here

    job = load_job(JOB.format(data=shapes, epochs=2))
    run = job.submit(tmp_path / "run", check_data=False, executor=InProcessExecutor(ScriptedTrial(fails_at_rate_001)))
    assert run.wait(60, report=None) == "Completed"
    dashboard = SweepDashboard(run, poll_seconds=0.5, min_interval=0.2)
    bar = dashboard.steering
    failed = [row.trial_id for row in dashboard.snapshot.rows if row.status == "Failed"]
    assert len(failed) == 1 and failed[0] not in bar.trial.options and len(bar.trial.options) == 2
    assert not bar.requeue.disabled
    dashboard.select(bar.trial.options[1])  # a click on its curve chooses the trial to extend
    chosen = bar.trial.value
    assert chosen == bar.trial.options[1]
    bar.epochs.value = 3
    bar.extend.click()
    assert re.fullmatch(rf"extend trial {chosen} by 3 epochs: request \w+ logged; applied when the run resumes",
                        bar.message.value)
    bar.requeue.click()
    assert "requeue every Failed trial: request" in bar.message.value
    dashboard.close()

    good = ScriptedTrial(lambda params: [0.5, 0.6, 0.7, 0.8, 0.9])
    resumed = load_run(run.folder).resume(check_data=False, executor=InProcessExecutor(good))
    assert resumed.wait(60, report=None) == "Completed"
    assert [(r["kind"], r["outcome"]) for r in resumed.steering()] == [("extend", "applied"), ("requeue", "applied")]
    trials = {t.trial_id: t for t in resumed.trials()}
    assert trials[failed[0]].status == "Completed"  # requeued, and it ran
    extension = [t for t in trials.values() if t.origin and t.origin["kind"] == "extend"]
    assert [(t.origin["source"], t.parameters["number_of_epochs"]) for t in extension] == [(chosen, 3)]
