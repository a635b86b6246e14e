"""TrialFolder, the one reader and writer of a trial folder: params.json round-trips a Trial,
and reading a folder loads no torch (the sweep reads folders in the notebook kernel)."""

import subprocess
import sys

import pytest

from automl_nb.errors import TrialError
from automl_nb.train.folder import BEST_CHECKPOINT, TrialFolder
from automl_nb.train.trial import Trial


def test_params_json_rebuilds_the_trial(tmp_path):
    trial = Trial(trial_id="3", task="image_object_detection", parameters={"learning_rate": 0.1},
                  training_data="data/train.jsonl", output_dir=str(tmp_path), validation_data="data/valid.jsonl",
                  validation_data_size=0.3, target_column_name="objects", resume=True)
    folder = TrialFolder(tmp_path)
    folder.write_description(trial, {"learning_rate": 0.1, "random_seed": 7})
    assert folder.params() == {"learning_rate": 0.1, "random_seed": 7}
    rebuilt = folder.trial()
    assert rebuilt.parameters == {"learning_rate": 0.1, "random_seed": 7}  # the resolved ones
    assert rebuilt.output_dir == str(tmp_path) and not rebuilt.resume
    for name in ("trial_id", "task", "training_data", "validation_data", "validation_data_size",
                 "target_column_name"):
        assert getattr(rebuilt, name) == getattr(trial, name), name


def test_a_folder_without_params_json_is_not_a_trial_folder(tmp_path):
    folder = TrialFolder(tmp_path)
    with pytest.raises(TrialError, match="not a trial folder .no params.json"):
        folder.description()
    assert folder.settings() == {} and folder.metrics() == []
    assert not folder.has_best_model() and not folder.has_resume_point()
    assert folder.best_checkpoint == tmp_path / BEST_CHECKPOINT


def test_metrics_rows_append_truncate_and_clear(tmp_path):
    folder = TrialFolder(tmp_path)
    for epoch in (1, 2, 3):
        folder.append_metrics({"epoch": epoch, "accuracy": epoch / 10})
    folder.truncate_metrics(2)
    assert [row["epoch"] for row in folder.metrics()] == [1, 2]
    folder.clear_metrics()
    assert folder.metrics() == []


def test_reading_a_trial_folder_loads_no_torch():
    code = ("import sys\nfrom automl_nb.train.folder import TrialFolder\n"
            "TrialFolder('.').settings()\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
