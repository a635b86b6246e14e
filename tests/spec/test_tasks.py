"""Tasks, models and primary metrics."""

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    DEFAULT_MODEL, DETECTION, MODELS, MULTICLASS, MULTILABEL, PRIMARY_METRICS, SEGMENTATION, TASKS,
    check_model, check_task, is_classification, model_family, normalize_primary_metric,
)


def test_tasks_and_metrics():
    assert TASKS == (MULTICLASS, MULTILABEL, DETECTION, SEGMENTATION)
    assert PRIMARY_METRICS == {
        "image_classification": "accuracy",
        "image_classification_multilabel": "iou",
        "image_object_detection": "mean_average_precision",
        "image_instance_segmentation": "mean_average_precision",
    }


def test_default_models_follow_the_hyperparameter_page():
    assert DEFAULT_MODEL[MULTICLASS] == "seresnext"
    assert DEFAULT_MODEL[MULTILABEL] == "seresnext"
    assert DEFAULT_MODEL[DETECTION] == "fasterrcnn_resnet50_fpn"
    assert DEFAULT_MODEL[SEGMENTATION] == "maskrcnn_resnet50_fpn"
    for task in TASKS:
        assert DEFAULT_MODEL[task] in MODELS[task]


def test_models_per_task():
    assert len(MODELS[MULTICLASS]) == 12
    assert "yolov5" in MODELS[DETECTION] and "retinanet_resnet50_fpn" in MODELS[DETECTION]
    assert all(name.startswith("maskrcnn_") for name in MODELS[SEGMENTATION])


@pytest.mark.parametrize("name, family", [
    ("vits16r224", "vit"), ("vitl16r224", "vit"), ("resnet18", "resnet"), ("resnest101", "resnest"),
    ("seresnext", "seresnext"), ("mobilenetv2", "mobilenetv2"), ("yolov5", "yolov5"),
    ("fasterrcnn_resnet101_fpn", "fasterrcnn"), ("retinanet_resnet50_fpn", "retinanet"),
    ("maskrcnn_resnet18_fpn", "maskrcnn"),
])
def test_model_family(name, family):
    assert model_family(name) == family


def test_every_model_has_a_family():
    for task in TASKS:
        for name in MODELS[task]:
            model_family(name)


def test_unknown_family_and_task():
    with pytest.raises(SpecError, match="model_name: 'alexnet'"):
        model_family("alexnet")
    with pytest.raises(SpecError, match="did you mean 'image_classification'"):
        check_task("image_clasification")
    assert check_task("ImageObjectDetection") == DETECTION


def test_check_model():
    assert check_model(DETECTION, "YOLOv5") == "yolov5"
    with pytest.raises(SpecError, match="not a model for image_classification.*did you mean 'resnet50'"):
        check_model(MULTICLASS, "resnet_50")
    with pytest.raises(SpecError, match="not a model for image_object_detection"):
        check_model(DETECTION, "maskrcnn_resnet50_fpn")


def test_is_classification():
    assert is_classification(MULTICLASS) and is_classification(MULTILABEL)
    assert not is_classification(DETECTION) and not is_classification(SEGMENTATION)


@pytest.mark.parametrize("task, spelling", [
    (MULTICLASS, "accuracy"), (MULTICLASS, "Accuracy"), (MULTILABEL, "IOU"), (MULTILABEL, "iou"),
    (DETECTION, "MeanAveragePrecision"), (DETECTION, "mean_average_precision"),
    (SEGMENTATION, "meanAveragePrecision"), (SEGMENTATION, None),
])
def test_primary_metric_spellings(task, spelling):
    assert normalize_primary_metric(task, spelling) == PRIMARY_METRICS[task]


@pytest.mark.parametrize("task, metric", [(MULTICLASS, "iou"), (DETECTION, "accuracy"), (MULTILABEL, "f1")])
def test_primary_metric_must_fit_task(task, metric):
    with pytest.raises(SpecError, match=f"primary_metric: '{metric}' is not a primary metric of {task}"):
        normalize_primary_metric(task, metric)
