"""SweepDashboard stays light on a big sweep: a refresh reads only the files that changed, a
leaderboard of 1,000 trials makes a page of row widgets, and a resume that runs nothing leaves
the learning curves file alone. Hand-made run folders and a tiny scripted run (no training)."""

import json
import os

import pytest

from automl_nb._atomic import append_jsonl
from automl_nb.spec import load_job
from automl_nb.sweep import load_run
from automl_nb.sweep.store import RunStore, TrialRecord

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: {trials}, max_concurrent_trials: 2}}
sweep: {{sampling_algorithm: random}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: uniform, min_value: 0.001, max_value: 0.1}}
training_parameters:
  use_pretrained_model: false
  number_of_epochs: 2
  early_stopping: false
  random_seed: 0
"""


def make_run(folder, trials: int, running: int = 0):
    """A run folder written by hand: ``trials`` trials of two evaluations each, the last
    ``running`` of them still running after one (the first, the worst so far)."""
    store = RunStore(folder)
    store.create(load_job(JOB.format(data=folder / "data", trials=trials)))
    store.write_run(status="Running" if running else "Completed", max_trials=trials)
    for i in range(trials):
        live = i < running
        metric = round(0.1 + 0.8 * i / trials, 4)
        record = TrialRecord(trial_id=str(i), index=i, sampled={"model_name": "resnet18", "learning_rate": 0.01 + i},
                             parameters={"model_name": "resnet18", "learning_rate": 0.01 + i, "number_of_epochs": 2},
                             status="Running" if live else "Completed", best_metric=metric, epochs=1 if live else 2,
                             started=1.0, ended=None if live else 2.0)
        folder_of = store.trial_folder(str(i))
        folder_of.mkdir(parents=True)
        # Plain writes: the store's atomic, synced ones cost a sync per file.
        (folder_of / "trial.json").write_text(json.dumps(record.__dict__))
        rows = [{"epoch": e, "accuracy": metric * e / 2, "train_loss": 1 - metric, "validation_loss": 1 - metric}
                for e in range(1, 2 if live else 3)]
        (folder_of / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return load_run(folder)


def bump(path):
    """Move a file's modification time on, as a later write would (a clock may not tick between writes)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))


def test_a_refresh_after_one_report_reads_only_the_changed_files(tmp_path):
    from automl_nb.widgets.snapshot import SnapshotReader

    run = make_run(tmp_path / "run", trials=4, running=2)
    reader = SnapshotReader(run)
    first = reader.take()
    assert len(reader.last_read) == 8  # every trial.json and metrics.jsonl, once
    assert reader.take().rows and reader.last_read == []  # nothing changed: nothing read
    trial = run.store.trial_folder("1")
    append_jsonl(trial / "metrics.jsonl", {"epoch": 2, "accuracy": 0.95, "train_loss": 0.1, "validation_loss": 0.1})
    record = json.loads((trial / "trial.json").read_text())
    (trial / "trial.json").write_text(json.dumps({**record, "epochs": 2, "best_metric": 0.95}))
    bump(trial / "trial.json")
    snapshot = reader.take()
    assert sorted(path.name for path in reader.last_read) == ["metrics.jsonl", "trial.json"]
    assert {path.parent.name for path in reader.last_read} == {"1"}
    row = snapshot.rows[0]  # the best now, first
    assert row.trial_id == "1" and row.epochs == 2 and [r["epoch"] for r in row.curve] == [1, 2]
    assert snapshot.rows[1] is next(r for r in first.rows if r.trial_id == "3")  # an ended row is kept as it was
    # A line being appended (no newline yet) waits for its end; a rewritten file is read afresh.
    with open(trial / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "accuracy"')
    assert len(reader.take().rows[0].curve) == 2
    with open(trial / "metrics.jsonl", "a") as f:
        f.write(': 0.96}\n')
    assert [r["epoch"] for r in reader.take().rows[0].curve] == [1, 2, 3]
    (trial / "metrics.jsonl").unlink()  # a trial that starts over
    assert reader.take().rows[0].curve == ()
    (trial / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "accuracy": 0.2}) + "\n")
    assert [r["accuracy"] for r in reader.take().rows[0].curve] == [0.2]


def test_a_thousand_trials_make_a_page_of_row_widgets_and_show_more_adds_one(tmp_path):
    from automl_nb.widgets import SweepDashboard

    run = make_run(tmp_path / "run", trials=1000, running=3)
    dashboard = SweepDashboard(run, page_size=20)
    try:
        shown = [box for box in dashboard.table.children[1:]]
        assert len(dashboard._rows) == len(shown) == 23  # the 20 best and the 3 running, not 1,000
        best = {str(i) for i in range(980, 1000)}
        assert set(dashboard._rows) == best | {"0", "1", "2"}
        assert dashboard._page_row.layout.display is None
        assert dashboard.page_note.value.startswith("23 of 1000 trials shown")
        dashboard.show_more.click()
        assert len(dashboard._rows) == len(dashboard.table.children) - 1 == 43
        dashboard.sort_by("trial", descending=True)  # a column clicked: its first rows, and the running ones
        shown_ids = [trial_id for trial_id in dashboard._order if trial_id in dashboard._rows]
        assert shown_ids == [str(i) for i in range(999, 959, -1)] + ["2", "1", "0"]
        assert len(dashboard.table.children) - 1 == 43
        # The chart: the best 10 and the running ones as lines (a legend entry each), the rest one band.
        facts = dashboard.curves.facts
        assert len(facts) == 1000 and {t for t, f in facts.items() if f["top"]} == {
            str(i) for i in range(990, 1000)} | {"0", "1", "2"}
        dashboard.select("500")  # a curve clicked: its row, off the page, shows and is marked
        assert "500" in dashboard._rows and "automl-selected" in dashboard._rows["500"].box._dom_classes
    finally:
        dashboard.close()


def test_a_resume_that_runs_nothing_leaves_the_curves_file_alone(tmp_path):
    from automl_nb.data.synthetic import make_dataset
    from automl_nb.sweep.executor import InProcessExecutor
    from automl_nb.sweep.report import write_summary
    from automl_nb.testing import ScriptedTrial

    data = make_dataset("image_classification", 8, 32, tmp_path / "data", seed=0).parent
    script = ScriptedTrial([0.3, 0.6])
    run = load_job(JOB.format(data=data, trials=3)).submit(tmp_path / "run", check_data=False,
                                                           executor=InProcessExecutor(script))
    assert run.wait(60, report=None) == "Completed"
    curves, table = run.folder / "learning_curves.png", run.folder / "leaderboard.csv"
    written = curves.stat().st_mtime_ns, table.stat().st_mtime_ns
    assert run.resume(check_data=False, executor=InProcessExecutor(script)).wait(60, report=None) == "Completed"
    assert (curves.stat().st_mtime_ns, table.stat().st_mtime_ns) == written
    # A trial that changed after the summary was written: drawn again.
    metrics = run.store.trial_folder("1") / "metrics.jsonl"
    metrics.write_text(metrics.read_text())
    bump(metrics)
    write_summary(run)
    assert curves.stat().st_mtime_ns != written[0]


@pytest.mark.parametrize("count, expected", [(5, 5), (40, 13)])
def test_only_the_best_and_the_running_curves_are_drawn_in_colour(count, expected):
    from automl_nb.widgets.figures import curves_figure
    from automl_nb.widgets.snapshot import RunSnapshot, TrialRow

    rows = tuple(TrialRow(trial_id=str(i), model="resnet18", params={}, metric=i / 100,
                          status="Running" if i < 3 else "Completed", epochs=1, total_epochs=1, stopped_by=None,
                          notes="", duration_s=1.0, curve=({"epoch": 1, "accuracy": i / 100, "train_loss": 1.0,
                                                            "validation_loss": 1.0},))
                 for i in reversed(range(count)))
    snapshot = RunSnapshot(folder="x", task="image_classification", primary_metric="accuracy", status="Running",
                           max_trials=count, rows=rows, elapsed_s=1.0, taken=0.0)
    metric_axis = curves_figure(snapshot).axes[0]
    coloured = {line.get_label().split(":")[0] for line in metric_axis.get_lines()}
    assert len(coloured) == expected
    if count > 10:
        assert coloured == {str(i) for i in range(30, 40)} | {"0", "1", "2"}  # the 10 best, the 3 running
        assert len(metric_axis.collections[0].get_segments()) == count - expected  # the others, faint


EXIT_SCRIPT = """
import sys
from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import load_job
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.testing import ScriptedTrial
from automl_nb.widgets import SweepDashboard

data = make_dataset("image_classification", 8, 32, "data", seed=0).parent
job = load_job(sys.argv[1].format(data=data, trials=20))
run = job.submit("run", check_data=False, executor=InProcessExecutor(ScriptedTrial([0.3, 0.6]), 2))
SweepDashboard(run, min_interval=0.05)
print(run.wait(report=None))
"""


@pytest.mark.slow
def test_a_script_that_ends_right_after_wait_with_a_dashboard_exits_cleanly(tmp_path):
    import subprocess
    import sys

    # The updater used to be drawing when the interpreter went down: "terminate called without
    # an active exception", exit status 134.
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, JOB], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("Completed") and "terminate called" not in done.stderr
