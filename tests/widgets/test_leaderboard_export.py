"""The live leaderboard shows an exported trial's ONNX parity (as run.leaderboard() does), and only once a
trial was exported: a scripted two-trial sweep in process, one trial's onnx/parity.json written as
`automl-nb export` writes it."""

import json

import pytest

from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import load_job
from automl_nb.testing import ScriptedTrial

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: 2, max_concurrent_trials: 1}}
sweep: {{sampling_algorithm: grid}}
search_space:
  - learning_rate: {{type: choice, values: [0.02, 0.01]}}
training_parameters: {{model_name: resnet18, use_pretrained_model: false, number_of_epochs: 2, random_seed: 0}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from automl_nb.sweep.executor import InProcessExecutor

    root = tmp_path_factory.mktemp("leaderboard_export")
    make_dataset("image_classification", 12, 32, root / "shapes", seed=0)
    script = ScriptedTrial(lambda params: [params["learning_rate"] * 10, params["learning_rate"] * 20])
    run = load_job(JOB.format(data=root / "shapes")).submit(root / "run", executor=InProcessExecutor(script),
                                                             check_data=False)
    assert run.wait(report=None) == "Completed"
    return run


def _write_parity(run, trial_id, passed=True):
    """onnx/parity.json as an export writes it (the fields the leaderboard reads)."""
    folder = run.store.trial_folder(trial_id) / "onnx"
    folder.mkdir(exist_ok=True)
    report = {"passed": passed, "images": 4, "max_abs_diff": 3.5e-6,
              "metric": {"name": "accuracy", "pytorch": 0.5, "onnxruntime": 0.5, "difference_points": 0.0},
              "latency_ms": {"pytorch": {"1": 12.0}, "onnxruntime": {"1": 4.0}}}
    (folder / "parity.json").write_text(json.dumps(report))


def test_parity_columns_appear_for_exported_trials_only_once_one_is_exported(run):
    from automl_nb.train.folder import EXPORT_COLUMNS
    from automl_nb.widgets import SweepDashboard
    from automl_nb.widgets.html import leaderboard_table, row_cells
    from automl_nb.widgets.leaderboard import parameter_columns, sort_rows
    from automl_nb.widgets.snapshot import SnapshotReader

    reader = SnapshotReader(run)
    before = reader.take()
    columns = parameter_columns(before.rows, before.swept)
    assert columns.swept == ("learning_rate",) and not any(row.export for row in before.rows)

    _write_parity(run, "1")
    after = reader.take()  # the ended trial's cached row is read again: its export came after it
    exported = {row.trial_id: row.export for row in after.rows}
    assert exported["0"] == {}
    assert exported["1"] == {"onnx_parity": "passed", "onnx_max_abs_diff": 3.5e-6, "onnx_speedup_batch1": 3.0}
    columns = parameter_columns(after.rows, after.swept)
    assert columns.swept == ("learning_rate", *EXPORT_COLUMNS) and columns.hyperparameters == ("learning_rate",)
    # A column even when every trial's values are alike (here: the one exported trial), never the caption.
    assert not set(EXPORT_COLUMNS) & set(columns.constant)
    assert run.leaderboard().set_index("trial").loc["1", "onnx_speedup_batch1"] == exported["1"]["onnx_speedup_batch1"]
    by_id = {row.trial_id: row for row in after.rows}
    assert "passed" in row_cells(by_id["1"], False, columns.swept)
    assert "passed" not in row_cells(by_id["0"], False, columns.swept)
    assert [row.trial_id for row in sort_rows(after.rows, "onnx_speedup_batch1")] == ["1", "0"]  # unexported last
    assert "onnx_parity" in leaderboard_table(after) and "passed" in leaderboard_table(after)

    # The live dashboard's header and rows, on the finished run; a failed check says FAILED.
    _write_parity(run, "0", passed=False)
    dashboard = SweepDashboard(run, poll_seconds=0.5, min_interval=0.2)
    try:
        assert "onnx_parity" in dashboard._header.buttons
        assert "passed" in dashboard._rows["1"].cells.value and "FAILED" in dashboard._rows["0"].cells.value
    finally:
        dashboard.close()
