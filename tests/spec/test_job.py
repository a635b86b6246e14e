"""Job classes and factories: the Azure SDK v2 shaped Python API."""

import io
import warnings
from pathlib import Path

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    BanditPolicy, Choice, DumpTargetExistsError, ImageClassificationJob, ImageClassificationMultilabelJob,
    ImageInstanceSegmentationJob, ImageObjectDetectionJob, Input, Limits, Sweep,
    Uniform, image_classification, image_classification_multilabel, image_instance_segmentation,
    image_object_detection, load_job,
)


# ----- Input
def test_input():
    assert Input("data/x") == Input("data/x", type="mltable")
    assert Input(Path("a/b.jsonl"), "URI_FILE").to_dict() == {"path": "a/b.jsonl", "type": "uri_file"}
    with pytest.raises(SpecError, match="type: 'table' is not an input type.*did you mean 'mltable'"):
        Input("x", "table")
    with pytest.raises(SpecError, match="path: '' is not a path"):
        Input("")


# ----- Limits
def test_limits_defaults():
    assert Limits() == Limits(max_trials=1, max_concurrent_trials=1, timeout_minutes=10080)


def test_limits_capping():
    limits = Limits(max_trials=2, max_concurrent_trials=4)
    assert limits.max_concurrent_trials == 2 and limits.max_trials == 2
    assert Limits(max_trials=10, max_concurrent_trials=4).max_concurrent_trials == 4


@pytest.mark.parametrize("field, inside, outside", [
    ("max_trials", 1, 0), ("max_trials", 1000, 1001),
    ("max_concurrent_trials", 1, 0), ("max_concurrent_trials", 100, 101),
    ("timeout_minutes", 1, 0), ("timeout_minutes", 86400, 86401),
])
def test_limits_ranges(field, inside, outside):
    extra = {"max_trials": 1000} if field == "max_concurrent_trials" else {}
    assert getattr(Limits(**{**extra, field: inside}), field) == inside
    with pytest.raises(SpecError, match=f"{field}: {outside} is out of range; allowed: int in"):
        Limits(**{field: outside})


def test_limits_types_and_dict():
    with pytest.raises(SpecError, match="max_trials: 'many' is not an int"):
        Limits(max_trials="many")
    with pytest.raises(SpecError, match="max_trial: 3: unknown limit; did you mean 'max_trials'"):
        Limits.from_dict({"max_trial": 3})
    assert Limits.from_dict(Limits(5, 2, 60).to_dict()) == Limits(5, 2, 60)


# ----- factories and attributes
@pytest.mark.parametrize("factory, cls, metric", [
    (image_classification, ImageClassificationJob, "accuracy"),
    (image_classification_multilabel, ImageClassificationMultilabelJob, "iou"),
    (image_object_detection, ImageObjectDetectionJob, "mean_average_precision"),
    (image_instance_segmentation, ImageInstanceSegmentationJob, "mean_average_precision"),
])
def test_factories(factory, cls, metric):
    job = factory(training_data=Input("data/train"), name="j1", experiment_name="exp", tags={"team": "cv"})
    assert type(job) is cls and job.task == cls.task
    assert job.primary_metric == metric
    assert job.status == "NotStarted"
    assert job.target_column_name == "label"
    assert job.limits == Limits()
    assert job.training_parameters == {} and job.search_space == [] and job.sweep is None
    assert job.validation_data is None and job.validation_data_size is None
    assert job.effective_validation_data_size() == 0.2
    assert job.name == "j1" and job.experiment_name == "exp" and job.tags == {"team": "cv"}
    assert factory.__name__ == cls.task


def test_base_class_needs_a_task():
    from automl_nb.spec import ImageJob
    with pytest.raises(TypeError):
        ImageJob()


def test_primary_metric_azure_spelling():
    assert image_classification_multilabel(primary_metric="IOU").primary_metric == "iou"
    with pytest.raises(SpecError, match="primary_metric: 'accuracy' is not a primary metric of image_object_detection"):
        image_object_detection(primary_metric="accuracy")


def test_set_data():
    job = image_classification()
    job.set_data(training_data="data/train.jsonl", target_column_name="category", validation_data_size=0.3)
    assert job.training_data == Input("data/train.jsonl", "uri_file")
    assert job.target_column_name == "category" and job.validation_data_size == 0.3
    for bad in (0, 1, 1.5, "x"):
        with pytest.raises(SpecError, match="validation_data_size: .* is out of range; allowed: float in \\(0, 1\\)"):
            job.set_data(training_data="t", target_column_name="label", validation_data_size=bad)
    with pytest.raises(SpecError, match="validation_data_size: 0.3 is given with validation_data"):
        job.set_data(training_data="t", target_column_name="label", validation_data="v", validation_data_size=0.3)
    with pytest.raises(SpecError, match="target_column_name: '' is not allowed"):
        job.set_data(training_data="t", target_column_name="")
    with pytest.raises(SpecError, match="training_data.typ: 'mltable': unknown input field; did you mean 'type'"):
        job.set_data(training_data={"path": "t", "typ": "mltable"}, target_column_name="label")


def test_set_limits_keeps_unset_values():
    job = image_object_detection()
    job.set_limits(max_trials=10, max_concurrent_trials=4)
    job.set_limits(timeout_minutes=60)
    assert job.limits == Limits(10, 4, 60)
    job.set_limits(max_trials=2)
    assert job.limits.max_concurrent_trials == 2
    with pytest.raises(SpecError, match="max_trials: 0 is out of range"):
        job.set_limits(max_trials=0)
    assert job.limits == Limits(2, 2, 60)


def test_set_training_parameters_validates_and_stores_only_given():
    job = image_object_detection()
    job.set_training_parameters(model_name="YOLOv5", model_size="Small", early_stopping=1)
    assert job.training_parameters == {"model_name": "yolov5", "model_size": "small", "early_stopping": True}
    job.set_training_parameters(learning_rate=0.02)
    assert job.training_parameters["learning_rate"] == 0.02 and job.training_parameters["model_size"] == "small"
    job.set_training_parameters(model_size=None)
    assert "model_size" not in job.training_parameters
    with pytest.raises(SpecError, match="training_crop_size: 224 does not apply to image_object_detection.*classification"):
        job.set_training_parameters(training_crop_size=224)
    with pytest.raises(SpecError, match="min_size: 600 does not apply to model yolov5"):
        job.set_training_parameters(min_size=600)
    with pytest.raises(SpecError, match="did you mean 'learning_rate'"):
        job.set_training_parameters(learnin_rate=0.1)
    assert job.training_parameters == {"model_name": "yolov5", "early_stopping": True, "learning_rate": 0.02}


def test_resolved_training_parameters():
    job = image_object_detection(training_data="t")
    job.set_training_parameters(model_name="yolov5")
    resolved = job.resolved_training_parameters()
    assert resolved["number_of_epochs"] == 30 and resolved["training_batch_size"] == 16
    assert job.trial_parameters({"learning_rate": 0.001})["learning_rate"] == 0.001


def test_extend_search_space_and_sweep():
    job = image_object_detection(training_data="t")
    job.set_limits(max_trials=4)
    job.extend_search_space({"model_name": Choice(["yolov5"]), "learning_rate": Uniform(1e-4, 1e-2)})
    job.extend_search_space([{"model_name": {"type": "choice", "values": ["fasterrcnn_resnet50_fpn"]},
                              "min_size": {"type": "choice", "values": [600, 800]}}])
    assert len(job.search_space) == 2 and job.search_space[1]["min_size"] == Choice([600, 800])
    assert job.run_mode == "sweep"
    with pytest.raises(SpecError, match="search_space: needs a sweep, which is missing"):
        job.validate()
    job.set_sweep(sampling_algorithm="Random", early_termination=BanditPolicy(slack_factor=0.1))
    job.validate()
    assert job.sweep == Sweep("random", {"type": "bandit", "slack_factor": 0.1})
    job.set_sweep(sampling_algorithm="grid")
    with pytest.raises(SpecError, match="search_space\\[0\\].learning_rate: .*grid sampling needs choice"):
        job.validate()


def test_validate_catches_direct_edits():
    job = image_classification(training_data="t")
    job.training_parameters["learning_rate"] = 3
    with pytest.raises(SpecError, match="^training_parameters.learning_rate: 3 is out of range"):
        job.validate()


def test_validate_requires_training_data():
    with pytest.raises(SpecError, match="training_data: missing"):
        image_classification().validate()


def test_validate_single_trial_checks_model_rules():
    job = image_classification(training_data="t")
    job.set_training_parameters(training_crop_size=256)  # fine for the task...
    with pytest.raises(SpecError, match="training_parameters.training_crop_size: 256 is not allowed for seresnext"):
        job.validate()  # ...but not for the default model of a single trial
    job.set_limits(max_trials=10)
    job.validate()  # AutoMode picks the models: checked against the task only
    assert job.run_mode == "automode"


def test_grid_without_search_space():
    job = image_classification(training_data="t")
    job.set_sweep(sampling_algorithm="grid")
    with pytest.raises(SpecError, match="sweep: grid sampling needs a search_space"):
        job.validate()


def test_training_parameters_checked_against_subspace_models():
    job = image_object_detection(training_data="t")
    job.set_training_parameters(model_size="small")
    job.set_sweep(sampling_algorithm="random")
    job.extend_search_space([{"model_name": Choice(["yolov5"])}])
    job.validate()
    with pytest.raises(SpecError, match="search_space\\[1\\].model_size: 'small' does not apply to model retinanet"):
        job.extend_search_space([{"model_name": Choice(["retinanet_resnet50_fpn"])}])
    job.search_space.append({"model_name": Choice(["retinanet_resnet50_fpn"])})  # bypassing the setter
    with pytest.raises(SpecError, match="search_space\\[1\\].model_size: 'small' does not apply to model retinanet"):
        job.validate()


# ----- compute and cluster
def test_compute_scheduler_address_is_used():
    job = image_classification(compute="tcp://10.0.0.1:8786")
    assert job.scheduler_address() == "tcp://10.0.0.1:8786"
    assert image_classification(cluster="tls://h:8786").scheduler_address() == "tls://h:8786"
    assert image_classification().scheduler_address() is None


def test_azure_compute_is_ignored_with_a_notice():
    with pytest.warns(UserWarning, match="compute 'azureml:gpu-cluster' is not a Dask scheduler address"):
        job = image_classification(compute="azureml:gpu-cluster")
    assert job.compute == "azureml:gpu-cluster" and job.scheduler_address() is None


def test_two_scheduler_addresses_conflict():
    with pytest.raises(SpecError, match="cluster: 'tcp://a:1' differs from compute 'tcp://b:1'"):
        image_classification(cluster="tcp://a:1", compute="tcp://b:1")


# ----- paths
def test_resolve_data_path(tmp_path):
    job = image_classification(base_dir=tmp_path)
    assert job.resolve_data_path("data/train") == str(tmp_path / "data" / "train")
    assert job.resolve_data_path(Input("data/train")) == str(tmp_path / "data" / "train")
    assert job.resolve_data_path("https://example.com/a.jsonl") == "https://example.com/a.jsonl"
    assert job.resolve_data_path("s3://bucket/a") == "s3://bucket/a"
    assert job.resolve_data_path("azureml:my-data:1") == "azureml:my-data:1"
    assert job.resolve_data_path("/abs/path") == "/abs/path"
    assert image_classification().base_dir == Path.cwd()


# ----- dump
def test_dump_refuses_to_overwrite(tmp_path):
    job = image_classification(training_data="t")
    dest = tmp_path / "job.yml"
    text = job.dump(dest)
    assert dest.read_text() == text
    with pytest.raises(DumpTargetExistsError, match="already exists"):
        job.dump(dest)
    with pytest.raises(FileExistsError):
        job.dump(str(dest))
    with pytest.raises(SpecError):
        job.dump(dest)
    assert dest.read_text() == text


def test_dump_to_stream_and_text():
    job = image_classification(training_data="t")
    stream = io.StringIO()
    assert job.dump(stream) == stream.getvalue() == job.dump()
    assert "task: image_classification" in job.dump()


def test_equality_ignores_status_and_base_dir(tmp_path):
    first = image_classification(training_data="t", base_dir=tmp_path)
    second = image_classification(training_data="t")
    second.status = "Running"
    assert first == second
    second.set_training_parameters(learning_rate=0.1)
    assert first != second
    assert image_classification(training_data="t") != image_classification_multilabel(training_data="t")


def test_load_from_file_sets_base_dir(tmp_path):
    job = image_object_detection(training_data="data/train", validation_data="data/valid")
    path = tmp_path / "sub" / "job.yml"
    path.parent.mkdir()
    job.dump(path)
    loaded = load_job(path)
    assert loaded == job
    assert loaded.base_dir == path.parent.resolve()
    assert loaded.resolve_data_path(loaded.training_data) == str(path.parent.resolve() / "data" / "train")
    assert load_job(str(path)) == job


def test_constructor_keywords():
    job = image_object_detection(training_data="t", limits={"max_trials": 3}, training_parameters={"epochs": 3},
                                 search_space=[{"model_name": Choice(["yolov5"])}], sweep={"sampling_algorithm": "grid"})
    assert job.limits.max_trials == 3 and job.training_parameters == {"epochs": 3}
    assert job.sweep == Sweep("grid")
    job.validate()


def test_no_warning_for_plain_job():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image_classification(training_data="t").validate()


def test_empty_subspace_rejected():
    job = image_classification(training_data="t")
    with pytest.raises(SpecError, match="search_space\\[0\\]: empty subspace"):
        job.extend_search_space({})


def test_a_sweep_needs_a_metric_to_compare_its_trials():
    from automl_nb.spec import Choice, image_object_detection

    job = image_object_detection(training_data="data/train.jsonl")
    job.set_training_parameters(validation_metric_type="none")
    job.validate()  # one trial: nothing to compare
    job.set_limits(max_trials=4)
    with pytest.raises(SpecError, match="training_parameters.validation_metric_type: 'none' computes no "
                                        "mean_average_precision, so the trials of this automode cannot be compared"):
        job.validate()
    swept = image_object_detection(training_data="data/train.jsonl")
    swept.extend_search_space({"validation_metric_type": Choice(["voc", "none"])})
    swept.set_sweep(sampling_algorithm="random")
    with pytest.raises(SpecError, match="search_space.validation_metric_type"):
        swept.validate()
