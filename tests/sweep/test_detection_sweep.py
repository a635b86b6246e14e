"""The seed's detection sweep (yolov5 small/medium and fasterrcnn_resnet50_fpn subspaces) on CPU."""

import pytest

from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import load_job

pytestmark = pytest.mark.slow

# The how-to page's search space, at small image sizes (its min_size is 600 or 800) and with
# image_size and max_size fixed inside their subspaces, so a CPU runs it in about a minute.
JOB = """\
task: image_object_detection
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: 4, max_concurrent_trials: 2}}
sweep: {{sampling_algorithm: random}}
search_space:
  - model_name: {{type: choice, values: [yolov5]}}
    learning_rate: {{type: uniform, min_value: 0.0001, max_value: 0.01}}
    model_size: {{type: choice, values: [small, medium]}}
    image_size: {{type: choice, values: [64]}}
  - model_name: {{type: choice, values: [fasterrcnn_resnet50_fpn]}}
    learning_rate: {{type: uniform, min_value: 0.0001, max_value: 0.001}}
    optimizer: {{type: choice, values: [sgd, adam, adamw]}}
    min_size: {{type: choice, values: [64, 96]}}
    max_size: {{type: choice, values: [96]}}
training_parameters:
  use_pretrained_model: false
  number_of_epochs: 1
  training_batch_size: 4
  random_seed: 0
  advanced_settings: '{{"box_batch_size_per_image": 64}}'  # Faster R-CNN: 3x faster on a CPU
"""


def test_the_seeds_yolov5_and_faster_rcnn_sweep_runs(tmp_path):
    data = tmp_path / "shapes"
    make_dataset("image_object_detection", 12, 64, data, seed=0)
    run = load_job(JOB.format(data=data)).submit(tmp_path / "run")
    assert run.wait() == "Completed"
    trials = run.trials()
    assert [t.status for t in trials] == ["Completed"] * 4
    assert {t.parameters["model_name"] for t in trials} == {"yolov5", "fasterrcnn_resnet50_fpn"}
    for trial in trials:
        rate = trial.parameters["learning_rate"]
        if trial.parameters["model_name"] == "yolov5":
            assert 0.0001 <= rate <= 0.01 and trial.parameters["model_size"] in ("small", "medium")
        else:
            assert 0.0001 <= rate <= 0.001 and trial.parameters["min_size"] in (64, 96)
            assert trial.parameters["optimizer"] in ("sgd", "adam", "adamw")
        assert "mean_average_precision" in run.metrics(trial.trial_id)[0]
    assert len(run.leaderboard()) == 4
