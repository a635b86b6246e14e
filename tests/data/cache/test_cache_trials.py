"""Whole trials with ``stream_image_files``: images from an HTTP server, the same metrics as from files."""

import pytest

from automl_nb.data.cache.settings import CACHE_ROOT_VARIABLE
from automl_nb.testing import FAST_CLASSIFICATION
from automl_nb.train import Trial, run_trial
from automl_nb.train.folder import TrialFolder

pytestmark = pytest.mark.slow

STREAM = {"advanced_settings": {"stream_image_files": True}}
# Columns that measure time, not learning.
TIMING = ("train_images_per_second", "elapsed_seconds")


def metrics(tmp_path, task, data, params, name):
    result = run_trial(Trial("0", task, params, str(data), str(tmp_path / name), validation_data_size=0.25))
    assert result.status == "Completed"
    return [{k: v for k, v in row.items() if k not in TIMING} for row in TrialFolder(result.output_dir).metrics()]


def test_a_streamed_classification_trial_matches_one_from_files(serve_dataset, image_server, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ROOT_VARIABLE, str(tmp_path / "cache"))
    local_jsonl, http_jsonl, _, _ = serve_dataset("image_classification", 20, 32)
    params = {**FAST_CLASSIFICATION, "number_of_epochs": 2}  # one batch of 15 an epoch
    from_files = metrics(tmp_path, "image_classification", local_jsonl, params, "files")
    streamed = metrics(tmp_path, "image_classification", http_jsonl, {**params, **STREAM}, "streamed")
    assert image_server.total() == 20  # every image fetched once, over two epochs
    assert streamed == from_files and len(streamed) == 2
    # A later trial (another seed, so another split) reads the same cache and fetches nothing.
    later = {**params, **STREAM, "random_seed": 1, "number_of_epochs": 1}
    metrics(tmp_path, "image_classification", http_jsonl, later, "later")
    assert image_server.total() == 20


def test_a_streamed_detection_trial_matches_one_from_files(serve_dataset, image_server, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ROOT_VARIABLE, str(tmp_path / "cache"))
    local_jsonl, http_jsonl, _, _ = serve_dataset("image_object_detection", 10, 64)
    params = {"model_name": "fasterrcnn_resnet18_fpn", "use_pretrained_model": False, "number_of_epochs": 1,
              "training_batch_size": 4, "validation_batch_size": 4, "learning_rate": 0.01, "min_size": 64,
              "max_size": 64, "random_seed": 0, "early_stopping": False, "log_validation_loss": False}
    from_files = metrics(tmp_path, "image_object_detection", local_jsonl, params, "files")
    streamed = metrics(tmp_path, "image_object_detection", http_jsonl, {**params, **STREAM}, "streamed")
    assert image_server.total() == 10
    assert streamed == from_files and "mean_average_precision" in streamed[0]
