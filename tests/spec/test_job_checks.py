"""Whole-job checks and the Azure SDK v2 shapes a job accepts: properties, checkpoint paths, keys not
acted on yet, policies as objects, timedelta limits, test_data and outputs."""

import warnings
from datetime import timedelta

import pytest

import automl_nb
from automl_nb.errors import SpecError
from automl_nb.spec import (
    Choice, Input, Output, image_classification, image_object_detection, is_sagemaker_mode, load_job,
)

BASE = "task: image_classification\ntraining_data: {path: d, type: mltable}\n"


def _warnings(action) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [str(w.message) for w in caught]


# ----- properties (002: properties: {node_count_per_trial: "2"})
def test_properties_are_kept_and_node_count_per_trial_is_checked():
    job = load_job(BASE + 'properties: {node_count_per_trial: "1", team: vision}\n')
    assert job.properties == {"node_count_per_trial": "1", "team": "vision"}
    assert job.dump().endswith("properties:\n  node_count_per_trial: '1'\n  team: vision\n")
    assert load_job(job.dump()) == job
    for value in ("0", "two", 1.5):
        with pytest.raises(SpecError, match=r"^<yaml>:3: properties.node_count_per_trial: .* is not allowed; "
                                            r"allowed: an int >= 1"):
            load_job(BASE + f"properties: {{node_count_per_trial: {value!r}}}\n")
    with pytest.raises(SpecError, match="properties: 'x' is not a mapping"):
        load_job(BASE + "properties: x\n")


def test_a_misspelt_property_is_kept_with_a_notice():
    notices = _warnings(lambda: load_job(BASE + "properties: {node_count_per_trail: '2'}\n"))
    assert any("properties.node_count_per_trail; did you mean 'node_count_per_trial'?" in n for n in notices)


# ----- checkpoint_run_id and freeze_layer_pattern, checked before any work starts
def test_a_checkpoint_path_must_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "a" / "trials" / "0").mkdir(parents=True)
    (tmp_path / "model.pt").write_bytes(b"")
    for value in ("runs/a/trials/0", "./model.pt", str(tmp_path / "model.pt")):
        load_job(BASE + f"training_parameters: {{checkpoint_run_id: '{value}'}}\n")
    for value in ("runs/a/trials/1", "./missing.pt", "old.pth"):
        with pytest.raises(SpecError) as info:
            load_job(BASE + f"training_parameters:\n  checkpoint_run_id: '{value}'\n")
        assert str(info.value) == (f"<yaml>:4: training_parameters.checkpoint_run_id: '{value}' does not exist; "
                                   "allowed: a trial folder of an earlier run or a checkpoint file (.pt, .pth, .ckpt)")
    # A URL is left to the trial, a bare (Azure) run id gets a notice; neither is refused.
    assert _warnings(lambda: load_job(BASE + "training_parameters: {checkpoint_run_id: 's3://b/run/0'}\n")) == []
    (notice,) = _warnings(lambda: load_job(BASE + "training_parameters: {checkpoint_run_id: 'run_42'}\n"))
    assert notice.startswith("training_parameters.checkpoint_run_id: 'run_42' is not a local trial folder")


def test_a_checkpoint_in_a_search_space(tmp_path):
    job = image_classification(training_data="d")
    job.extend_search_space({"model_name": Choice(["resnet18"]), "checkpoint_run_id": str(tmp_path / "gone.pt")})
    job.set_sweep(sampling_algorithm="random")
    with pytest.raises(SpecError, match=r"^search_space\[0\].checkpoint_run_id: '.*gone.pt' does not exist"):
        job.validate()
    # A choice's values are left to their trials (a failed trial is recorded and the sweep goes on).
    job = image_classification(training_data="d")
    job.extend_search_space({"model_name": Choice(["resnet18"]), "checkpoint_run_id": Choice(["/no/such/run"])})
    job.set_sweep(sampling_algorithm="random")
    job.validate()


def test_freeze_layer_pattern_is_a_valid_regex_at_load():
    text = ("task: image_object_detection\ntraining_data: {path: d, type: mltable}\ntraining_parameters:\n"
            "  num_classes: 2\n  num_training_samples: 10\n  freeze_layer_pattern: '^(conv1_'\n")
    with pytest.raises(SpecError, match=r"^<yaml>:6: freeze_layer_pattern: '\^\(conv1_' is not a valid regular "
                                        r"expression"):
        load_job(text)


# ----- keys accepted but not acted on yet (none in the table now; distributed trains with DDP)
def test_distributed_is_acted_on_and_gets_no_notice():
    job = image_classification(training_data="d")
    job.set_training_parameters(distributed=True)
    assert _warnings(job.validate) == []
    job = image_classification(training_data="d")
    job.extend_search_space({"model_name": Choice(["resnet18"]), "distributed": Choice([False, True])})
    job.set_sweep(sampling_algorithm="grid")
    assert _warnings(job.validate) == []


def test_a_plain_job_gets_no_notice():
    assert _warnings(lambda: load_job(BASE + "training_parameters: {model_name: resnet18}\n")) == []


# ----- Azure SDK v2 shapes
def test_policies_and_search_spaces_are_importable_where_azure_has_them():
    from automl_nb.sweep import BanditPolicy, Choice as SweepChoice, MedianStoppingPolicy, TruncationSelectionPolicy

    assert SweepChoice is Choice
    assert BanditPolicy is automl_nb.spec.BanditPolicy
    assert {MedianStoppingPolicy.type, TruncationSelectionPolicy.type} == {"median_stopping", "truncation_selection"}
    assert automl_nb.ImageClassificationSearchSpace is automl_nb.spec.ImageClassificationSearchSpace
    assert "ImageObjectDetectionSearchSpace" in dir(automl_nb) and automl_nb.Output is Output
    assert automl_nb.ImageInstanceSegmentationSearchSpace.tasks == ("image_instance_segmentation",)


def test_a_bandit_as_the_azure_sdk_fills_it_in():
    from automl_nb.sweep import BanditPolicy

    azure_style = BanditPolicy(slack_factor=0.2, slack_amount=0, evaluation_interval=2, delay_evaluation=6)
    assert azure_style == BanditPolicy(slack_factor=0.2, evaluation_interval=2, delay_evaluation=6)
    assert azure_style.to_dict() == {"type": "bandit", "evaluation_interval": 2, "delay_evaluation": 6,
                                     "slack_factor": 0.2}
    assert BanditPolicy(slack_factor=0, slack_amount=0.1).slack_amount == 0.1
    job = load_job(BASE + "training_parameters: {model_name: resnet18}\nlimits: {max_trials: 2}\nsweep:\n"
                   "  sampling_algorithm: random\n  early_termination: {type: bandit, slack_factor: 0.1, slack_amount: 0}\n")
    assert job.sweep.early_termination == BanditPolicy(slack_factor=0.1)
    with pytest.raises(SpecError, match="got neither"):
        BanditPolicy(slack_factor=0, slack_amount=0)
    with pytest.raises(SpecError, match="slack_amount: -0.1 is out of range"):
        BanditPolicy(slack_factor=0.2, slack_amount=-0.1)


def test_timeout_minutes_takes_a_timedelta_of_whole_minutes():
    job = image_classification(training_data="d")
    job.set_limits(timeout_minutes=timedelta(hours=1, minutes=30))
    assert job.limits.timeout_minutes == 90 and "timeout_minutes: 90" in job.dump()
    with pytest.raises(SpecError, match=r"timeout_minutes: datetime.timedelta\(seconds=90\) is not a whole number "
                                        r"of minutes"):
        job.set_limits(timeout_minutes=timedelta(seconds=90))
    with pytest.raises(SpecError, match="timeout_minutes: 0 is out of range"):
        job.set_limits(timeout_minutes=timedelta(0))


def test_sampling_algorithm_objects_give_their_type():
    class RandomSamplingAlgorithm:  # the shape of azure-ai-ml's
        type = "random"

    job = image_classification(training_data="d")
    job.set_sweep(sampling_algorithm=RandomSamplingAlgorithm())
    assert job.sweep.sampling_algorithm == "random"


def test_test_data_outputs_and_inputs():
    job = image_object_detection(training_data="data/train", test_data={"path": "data/test", "type": "uri_file"},
                                 outputs={"best_model": {"type": "mlflow_model", "path": "out/model"}})
    assert job.test_data == Input("data/test", "uri_file") and job.task_type == "image_object_detection"
    assert job.inputs == {"training_data": Input("data/train"), "test_data": Input("data/test", "uri_file")}
    assert job.outputs == {"best_model": Output(type="mlflow_model", path="out/model")}
    notices = _warnings(job.validate)
    assert [n.split(":")[0] for n in notices] == ["test_data", "outputs"]
    assert "no trial reads it yet" in notices[0] and "a run writes its models and metrics to its run folder" in notices[1]
    text = job.dump()
    assert "test_data: {path: data/test, type: uri_file}" in text
    assert "best_model: {type: mlflow_model, path: out/model}" in text
    with pytest.warns(UserWarning):
        assert load_job(text) == job
    job.test_data = None
    assert "test_data" not in job.dump()
    with pytest.raises(SpecError, match="test_data.type: 'csv' is not an input type"):
        job.test_data = {"path": "t", "type": "csv"}
    with pytest.raises(SpecError, match="outputs.best_model.type: 'model' is not an output type"):
        image_object_detection(training_data="d", outputs={"best_model": {"type": "model"}})
    class AzureOutput:  # the shape of azure-ai-ml's Output
        type, path, mode = "uri_folder", "out/folder", "rw_mount"

    job.outputs = {"model": {"type": "custom_model"}, "folder": AzureOutput(), "plain": "out/plain"}
    assert job.outputs == {"model": Output(type="custom_model"), "folder": Output("uri_folder", "out/folder", "rw_mount"),
                           "plain": Output(path="out/plain")}
    with pytest.raises(SpecError, match="outputs.best_model.kind: 'x': unknown output field"):
        image_object_detection(training_data="d", outputs={"best_model": {"kind": "x"}})


def test_is_sagemaker_mode_is_public():
    assert is_sagemaker_mode({"mini_batch_size": 8}) is True
