"""A job given SageMaker keys trains SageMaker's SSD with SageMaker's schedule, freezing and checks."""

import json

import pytest
import torch

from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import SpecError
from automl_nb.models.detection import detector_from_params
from automl_nb.spec import DETECTION, resolve_parameters
from automl_nb.train import Trial, run_trial
from automl_nb.train.restore import load_best_model
from automl_nb.train.setup import check_declared_counts

# resnet-50: a quarter of vgg-16's compute at 300 px (test_detection_models builds both bases).
SSD_JOB = {"base_network": "resnet-50", "image_shape": 300, "use_pretrained_model": 0, "epochs": 2,
           "mini_batch_size": 4, "learning_rate": 0.001, "lr_scheduler_step": "1", "lr_scheduler_factor": 0.5,
           "freeze_layer_pattern": r"^backbone\.body\.conv1\.", "num_classes": 3, "num_training_samples": 10,
           "random_seed": 0}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_dataset(DETECTION, 10, 64, tmp_path_factory.mktemp("ssd"), seed=0)


@pytest.mark.slow
def test_a_sagemaker_job_trains_the_ssd_with_its_schedule_and_frozen_layers(shapes, tmp_path):
    result = run_trial(Trial("0", DETECTION, SSD_JOB, str(shapes), str(tmp_path)))
    assert result.status == "Completed"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # lr_scheduler_step "1": the rate is multiplied by the factor once epoch 1 is done, and only
    # then (a row logs the rate after its epoch's schedule step, the one the next epoch trains with).
    assert [row["learning_rate"] for row in rows] == pytest.approx([0.0005, 0.0005])

    model, record = load_best_model(tmp_path)
    assert type(model).__name__ == "SSD" and model.transform.fixed_size == (300, 300)
    # The same seed builds the same initial weights: the frozen layer kept them, the next one moved.
    torch.manual_seed(record["params"]["random_seed"])
    initial = dict(detector_from_params(record["params"], 3, pretrained=False).named_parameters())
    trained = dict(model.named_parameters())
    assert torch.equal(trained["backbone.body.conv1.weight"], initial["backbone.body.conv1.weight"])
    assert not torch.equal(trained["backbone.body.layer1.0.conv1.weight"], initial["backbone.body.layer1.0.conv1.weight"])


def test_declared_counts_must_match_the_data():
    params = resolve_parameters(DETECTION, {"num_classes": 3, "num_training_samples": 10})
    check_declared_counts(params, num_classes=3, num_training_images=10)
    with pytest.raises(SpecError, match="num_classes: 4 does not match the training data, which has 3 classes"):
        check_declared_counts({**params, "num_classes": 4}, num_classes=3, num_training_images=10)
    with pytest.raises(SpecError, match="num_training_samples: 10 does not match the training data, which has 12 "
                                        "images; set num_training_samples: 12 or leave it out"):
        check_declared_counts(params, num_classes=3, num_training_images=12)


def test_a_wrong_num_classes_fails_the_trial_before_training(shapes, tmp_path):
    with pytest.raises(SpecError, match="num_classes: 5 does not match the training data"):
        run_trial(Trial("0", DETECTION, {**SSD_JOB, "num_classes": 5}, str(shapes), str(tmp_path)))
    assert not (tmp_path / "metrics.jsonl").exists()
