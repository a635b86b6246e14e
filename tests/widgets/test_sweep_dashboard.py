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
    assert dashboard.curves.value[:4] == b"\x89PNG"
    assert "Canceled (by user)" in dashboard._rows["1"].cells.value
    assert dashboard.static_html().count('class="automl-row"') == 3

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
    shown = re.search(r'<span style="color:#b3261e">(.*?)</span>', cells).group(1)
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
        busy = run_cell("import time\nwhile not any(r.epochs >= 1 for r in run.trials()):\n    time.sleep(0.2)\n"
                        "time.sleep(2.5)\nprint('busy cell done')")
        assert output_of(busy) == "busy cell done\n"
        during_busy = [m for m in messages if m["parent_header"].get("msg_id") == busy and m["msg_type"] == "comm_msg"]
        cells = [_comm_state(m).get("value", "") for m in during_busy]
        assert any(re.search(r">[01]\.\d{4}<", str(value)) and "Running" in str(value) for value in cells), \
            "no leaderboard row with a metric reached the frontend while the other cell ran"
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
