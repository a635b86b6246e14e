"""Every job example of the seeds is accepted as written.

- 002_08d418e0c58276d2.txt (Azure CLI v2, Russian): each YAML example of a job. The seed's text lost
  its indentation; it is restored as Azure's page has it, nothing else is changed. An example
  that is a fragment of a job gets the seed's own task and data sections in front. (Its
  endpoint and deployment YAML configure Azure's serving, which has no counterpart here; its
  scoring request is answered in tests/infer/test_request_seed.py.)
- 003_fd4f31e025972ddf.txt / 004_7be708a07aadc019.txt (Azure SDK v2 reference): the signatures of
  ``ImageClassificationSearchSpace``, ``ImageInstanceSegmentationJob`` and its methods, called
  with every keyword they list.
- 001_4304b2577ab90c68.txt (SageMaker object detection): its hyperparameters, as a SageMaker
  training job passes them (every value a string).
"""

import re
from datetime import timedelta

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    BanditPolicy, Choice, DumpTargetExistsError, ImageClassificationSearchSpace, ImageInstanceSegmentationJob,
    ImageObjectDetectionJob, ImageObjectDetectionSearchSpace, Input, LogUniform, MedianStoppingPolicy, Output,
    QUniform, TruncationSelectionPolicy, Uniform, image_classification, image_instance_segmentation, load_job,
    uses_sagemaker_ssd,
)

# ----- 002: YAML
# 002, «Выберите тип задачи» ... «Например:»
TASK = """\
task: image_object_detection
"""
# 002, «Данные для обучения и проверки» ... «Например,»
DATA = """\
target_column_name: label
training_data:
  path: data/training-mltable-folder
  type: mltable
validation_data:
  path: data/validation-mltable-folder
  type: mltable
"""

FRAGMENTS = {
    # 002, «Вычисление для запуска эксперимента»
    "compute": """\
compute: azureml:gpu-cluster
""",
    # 002, «Ограничения заданий»
    "limits": """\
limits:
  timeout_minutes: 60
  max_trials: 10
  max_concurrent_trials: 2
""",
    # 002, «Активация автомоде»
    "automode": """\
limits:
  max_trials: 10
  max_concurrent_trials: 2
""",
    # 002, «Поддерживаемые архитектуры моделей» ... «Например,»
    "single-trial": """\
training_parameters:
  model_name: yolov5
""",
    # 002, «Гиперпараметры модели вручную»
    "search-space": """\
search_space:
  - model_name:
      type: choice
      values: [yolov5]
    learning_rate:
      type: uniform
      min_value: 0.0001
      max_value: 0.01
    model_size:
      type: choice
      values: [small, medium]

  - model_name:
      type: choice
      values: [fasterrcnn_resnet50_fpn]
    learning_rate:
      type: uniform
      min_value: 0.0001
      max_value: 0.001
    optimizer:
      type: choice
      values: [sgd, adam, adamw]
    min_size:
      type: choice
      values: [600, 800]
""",
    # 002, «Политика преждевременного завершения» ... «как показано в следующем примере»
    "sweep": """\
sweep:
  sampling_algorithm: random
  early_termination:
    type: bandit
    evaluation_interval: 2
    slack_factor: 0.2
    delay_evaluation: 6
""",
    # 002, «Фиксированные параметры»
    "fixed": """\
training_parameters:
  early_stopping: True
  evaluation_frequency: 1
""",
    # 002, «Дополнение данных» (three examples)
    "no-mosaic": """\
training_parameters:
  advanced_settings: >
    {"apply_mosaic_for_yolo": false}
""",
    "no-augmentations": """\
training_parameters:
  advanced_settings: >
    {"apply_automl_train_augmentations": false}
""",
    "neither": """\
training_parameters:
  advanced_settings: >
    {"apply_automl_train_augmentations": false, "apply_mosaic_for_yolo": false}
""",
    # 002, «Передача проверка point с помощью идентификатора задания»
    "checkpoint": """\
training_parameters:
  checkpoint_run_id : "target_checkpoint_run_id"
""",
    # 002, «Обучение с несколькими GPU и несколькими узлами»
    "nodes": """\
properties:
  node_count_per_trial: "2"
""",
    # 002, «Потоковая передача файлов изображений из хранилища»
    "streaming": """\
training_parameters:
  advanced_settings: >
    {"stream_image_files": true}
""",
}

# What each example must come out as; the two in a sweep-less job are single trials or AutoMode.
EXPECTED = {
    "compute": lambda job: job.compute == "azureml:gpu-cluster" and job.scheduler_address() is None,
    "limits": lambda job: (job.limits.timeout_minutes, job.limits.max_trials, job.limits.max_concurrent_trials)
    == (60, 10, 2),
    "automode": lambda job: job.run_mode == "automode" and job.limits.max_concurrent_trials == 2,
    "single-trial": lambda job: job.run_mode == "single"
    and job.resolved_training_parameters()["number_of_epochs"] == 30,  # yolov5's default
    "search-space": lambda job: job.search_space[1]["min_size"] == Choice([600, 800])
    and job.search_space[0]["learning_rate"] == Uniform(0.0001, 0.01),
    "sweep": lambda job: job.sweep.early_termination == BanditPolicy(evaluation_interval=2, slack_factor=0.2,
                                                                     delay_evaluation=6),
    "fixed": lambda job: job.training_parameters == {"early_stopping": True, "evaluation_frequency": 1},
    "no-mosaic": lambda job: job.training_parameters["advanced_settings"] == {"apply_mosaic_for_yolo": False},
    "no-augmentations": lambda job: job.training_parameters["advanced_settings"]
    == {"apply_automl_train_augmentations": False},
    "neither": lambda job: job.training_parameters["advanced_settings"]
    == {"apply_automl_train_augmentations": False, "apply_mosaic_for_yolo": False},
    "checkpoint": lambda job: job.training_parameters["checkpoint_run_id"] == "target_checkpoint_run_id",
    "nodes": lambda job: job.properties == {"node_count_per_trial": "2"},
    "streaming": lambda job: job.resolved_training_parameters()["advanced_settings"]["stream_image_files"] is True,
}

# The notice each example gets: it is accepted, and says what it does not do here.
NOTICES = {
    "compute": "compute 'azureml:gpu-cluster' is not a Dask scheduler address and is ignored",
    "checkpoint": "checkpoint_run_id: 'target_checkpoint_run_id' is not a local trial folder or checkpoint file",
    "nodes": "properties.node_count_per_trial: '2' is accepted but not acted on yet",
}


@pytest.mark.parametrize("name", FRAGMENTS)
def test_each_yaml_example_of_002_loads_as_written(name, recwarn):
    text = TASK + DATA + FRAGMENTS[name]
    # A search space and its sweep come together (a job with one needs the other): the seed's own.
    text += {"sweep": FRAGMENTS["search-space"], "search-space": FRAGMENTS["sweep"]}.get(name, "")
    job = load_job(text)
    assert EXPECTED[name](job)
    notices = [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)]
    if name in NOTICES:
        assert any(NOTICES[name] in notice for notice in notices), notices
    else:
        assert notices == []
    again = load_job(job.dump())  # and it round-trips, as every job does
    assert again == job


def test_the_002_examples_are_the_seeds_own():
    """Guard against the copies drifting: each example, indentation dropped, is in the seed's text."""
    from pathlib import Path

    seed = Path("/work/shared/seeds/002_08d418e0c58276d2.txt")
    if not seed.exists():
        pytest.skip("the seeds are not on this machine")
    flat = [line.strip() for line in seed.read_text(encoding="utf-8").splitlines()]
    for text in [TASK, DATA, *FRAGMENTS.values()]:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        starts = [i for i, line in enumerate(flat) if line == lines[0]]
        assert any(flat[i:i + len(lines)] == lines for i in starts), text


# ----- 003: ImageClassificationSearchSpace(*, ams_gradient: bool | SweepDistribution | None = None, ...)
SIGNATURE_003 = """\
ImageClassificationSearchSpace(*, ams_gradient: bool | SweepDistribution | None = None, beta1: float | SweepDistribution | None = None, beta2: float | SweepDistribution | None = None, distributed: bool | SweepDistribution | None = None, early_stopping: bool | SweepDistribution | None = None, early_stopping_delay: int | SweepDistribution | None = None, early_stopping_patience: int | SweepDistribution | None = None, enable_onnx_normalization: bool | SweepDistribution | None = None, evaluation_frequency: int | SweepDistribution | None = None, gradient_accumulation_step: int | SweepDistribution | None = None, layers_to_freeze: int | SweepDistribution | None = None, learning_rate: float | SweepDistribution | None = None, learning_rate_scheduler: str | SweepDistribution | None = None, model_name: str | SweepDistribution | None = None, momentum: float | SweepDistribution | None = None, nesterov: bool | SweepDistribution | None = None, number_of_epochs: int | SweepDistribution | None = None, number_of_workers: int | SweepDistribution | None = None, optimizer: str | SweepDistribution | None = None, random_seed: int | SweepDistribution | None = None, step_lr_gamma: float | SweepDistribution | None = None, step_lr_step_size: int | SweepDistribution | None = None, training_batch_size: int | SweepDistribution | None = None, validation_batch_size: int | SweepDistribution | None = None, warmup_cosine_lr_cycles: float | SweepDistribution | None = None, warmup_cosine_lr_warmup_epochs: int | SweepDistribution | None = None, weight_decay: float | SweepDistribution | None = None, training_crop_size: int | SweepDistribution | None = None, validation_crop_size: int | SweepDistribution | None = None, validation_resize_size: int | SweepDistribution | None = None, weighted_loss: int | SweepDistribution | None = None)
"""
# A value for each keyword, a distribution where one makes sense (003: "float | SweepDistribution").
VALUES_003 = {
    "ams_gradient": Choice([True, False]), "beta1": Uniform(0.85, 0.95), "beta2": 0.999, "distributed": False,
    "early_stopping": Choice([True]), "early_stopping_delay": QUniform(2, 6, 1), "early_stopping_patience": 5,
    "enable_onnx_normalization": False, "evaluation_frequency": 1, "gradient_accumulation_step": Choice([1, 2]),
    "layers_to_freeze": Choice([1, 2]), "learning_rate": LogUniform(-7, -3), "learning_rate_scheduler": Choice(["WarmupCosine", "Step"]),
    "model_name": Choice(["resnet18", "mobilenetv2"]), "momentum": Uniform(0.8, 0.99), "nesterov": True,
    "number_of_epochs": QUniform(5, 15, 1), "number_of_workers": 2, "optimizer": Choice(["Sgd", "Adam", "Adamw"]),
    "random_seed": 7, "step_lr_gamma": 0.5, "step_lr_step_size": 3, "training_batch_size": Choice([16, 32]),
    "validation_batch_size": 32, "warmup_cosine_lr_cycles": 0.45, "warmup_cosine_lr_warmup_epochs": 2,
    "weight_decay": Uniform(0.0001, 0.01), "training_crop_size": Choice([192, 224]), "validation_crop_size": 224,
    "validation_resize_size": 256, "weighted_loss": Choice([0, 1, 2]),
}


def _keywords(signature: str) -> list[str]:
    return re.findall(r"(\w+): ", signature)


def test_image_classification_search_space_takes_every_keyword_of_003():
    keywords = _keywords(SIGNATURE_003)
    assert sorted(keywords) == sorted(VALUES_003) and len(keywords) == 31
    assert set(keywords) <= set(ImageClassificationSearchSpace.parameter_names())
    space = ImageClassificationSearchSpace(**VALUES_003)
    assert space.learning_rate == LogUniform(-7, -3) and space.beta2 == 0.999
    job = image_classification(training_data="data/train")
    job.extend_search_space(space)
    job.set_sweep(sampling_algorithm="Random")
    job.validate()
    assert job.search_space[0]["optimizer"] == Choice(["sgd", "adam", "adamw"])
    assert job.search_space[0]["learning_rate_scheduler"] == Choice(["warmup_cosine", "step"])
    assert load_job(job.dump()) == job
    with pytest.raises(SpecError, match="learning_rat: 0.1: unknown hyperparameter of ImageClassificationSearchSpace; "
                                        "did you mean 'learning_rate'"):
        ImageClassificationSearchSpace(learning_rat=0.1)


# ----- 004: ImageInstanceSegmentationJob and its methods
# 004, «Конструктор»: ImageInstanceSegmentationJob(*, primary_metric: ..., **kwargs)
# 004, «set_training_parameters»
SIGNATURE_004 = """\
set_training_parameters(*, advanced_settings: str | None = None, ams_gradient: bool | None = None, beta1: float | None = None, beta2: float | None = None, checkpoint_frequency: int | None = None, checkpoint_run_id: str | None = None, distributed: bool | None = None, early_stopping: bool | None = None, early_stopping_delay: int | None = None, early_stopping_patience: int | None = None, enable_onnx_normalization: bool | None = None, evaluation_frequency: int | None = None, gradient_accumulation_step: int | None = None, layers_to_freeze: int | None = None, learning_rate: float | None = None, learning_rate_scheduler: str | LearningRateScheduler | None = None, model_name: str | None = None, momentum: float | None = None, nesterov: bool | None = None, number_of_epochs: int | None = None, number_of_workers: int | None = None, optimizer: str | StochasticOptimizer | None = None, random_seed: int | None = None, step_lr_gamma: float | None = None, step_lr_step_size: int | None = None, training_batch_size: int | None = None, validation_batch_size: int | None = None, warmup_cosine_lr_cycles: float | None = None, warmup_cosine_lr_warmup_epochs: int | None = None, weight_decay: float | None = None, box_detections_per_image: int | None = None, box_score_threshold: float | None = None, image_size: int | None = None, max_size: int | None = None, min_size: int | None = None, model_size: str | ModelSize | None = None, multi_scale: bool | None = None, nms_iou_threshold: float | None = None, tile_grid_size: str | None = None, tile_overlap_ratio: float | None = None, tile_predictions_nms_threshold: float | None = None, validation_iou_threshold: float | None = None, validation_metric_type: str | ValidationMetricType | None = None, log_training_metrics: str | LogTrainingMetrics | None = None, log_validation_loss: str | LogValidationLoss | None = None) -> None
"""
# Azure's enum spellings where 004 names an enum (LearningRateScheduler, StochasticOptimizer...).
VALUES_004 = {
    "advanced_settings": '{"apply_automl_train_augmentations": false}', "ams_gradient": False, "beta1": 0.9,
    "beta2": 0.999, "checkpoint_frequency": 2, "checkpoint_run_id": "CHECKPOINT", "distributed": False,
    "early_stopping": True, "early_stopping_delay": 5, "early_stopping_patience": 5,
    "enable_onnx_normalization": False, "evaluation_frequency": 1, "gradient_accumulation_step": 1,
    "layers_to_freeze": 2, "learning_rate": 0.005, "learning_rate_scheduler": "WarmupCosine", "model_name": "MODEL",
    "momentum": 0.9, "nesterov": True, "number_of_epochs": 15, "number_of_workers": 4, "optimizer": "Sgd",
    "random_seed": 0, "step_lr_gamma": 0.5, "step_lr_step_size": 5, "training_batch_size": 2,
    "validation_batch_size": 1, "warmup_cosine_lr_cycles": 0.45, "warmup_cosine_lr_warmup_epochs": 2,
    "weight_decay": 1e-4, "box_detections_per_image": 100, "box_score_threshold": 0.3, "image_size": 640,
    "max_size": 1333, "min_size": 600, "model_size": "Medium", "multi_scale": False, "nms_iou_threshold": 0.5,
    "tile_grid_size": "3x2", "tile_overlap_ratio": 0.25, "tile_predictions_nms_threshold": 0.25,
    "validation_iou_threshold": 0.5, "validation_metric_type": "Coco", "log_training_metrics": "Enable",
    "log_validation_loss": "Disable",
}
# 004 documents which keys are yolov5's only ("поддерживаются только для алгоритма yolov5") and
# which are not for it; tiling is for object detection (SPEC: not for segmentation).
YOLO_ONLY = {"image_size", "model_size", "multi_scale"}
NOT_YOLO = {"box_detections_per_image", "max_size", "min_size"}
TILING = {"tile_grid_size", "tile_overlap_ratio", "tile_predictions_nms_threshold"}


def test_set_training_parameters_takes_every_keyword_of_004(tmp_path):
    keywords = _keywords(SIGNATURE_004)
    assert sorted(keywords) == sorted(VALUES_004) and len(keywords) == 45
    (tmp_path / "earlier").mkdir()
    values = {**VALUES_004, "checkpoint_run_id": str(tmp_path / "earlier")}
    accepted = set()
    for job, model, left_out in [
        (ImageInstanceSegmentationJob(primary_metric="MeanAveragePrecision"), "maskrcnn_resnet50_fpn", YOLO_ONLY | TILING),
        (ImageObjectDetectionJob(), "fasterrcnn_resnet50_fpn", YOLO_ONLY),
        (ImageObjectDetectionJob(), "yolov5", NOT_YOLO),
    ]:
        job.set_data(training_data=Input(path="data/train", type="mltable"), target_column_name="label",
                     validation_data_size=0.2)
        job.set_training_parameters(**{k: v for k, v in values.items() if k not in left_out | {"model_name"}},
                                    model_name=model)
        job.validate()
        accepted |= set(job.training_parameters)
    assert accepted == set(keywords)


def test_the_methods_and_attributes_of_004(tmp_path):
    job = ImageInstanceSegmentationJob(primary_metric="MeanAveragePrecision")
    # set_data(*, training_data: Input, target_column_name: str, validation_data: Input | None = None,
    #          validation_data_size: float | None = None)
    job.set_data(training_data=Input(path="data/train", type="mltable"), target_column_name="label",
                 validation_data=Input(path="data/valid", type="mltable"))
    # set_limits(*, max_concurrent_trials, max_trials, timeout_minutes) "- timeout_minutes - timedelta"
    job.set_limits(max_concurrent_trials=2, max_trials=8, timeout_minutes=timedelta(hours=2))
    assert job.limits.timeout_minutes == 120
    # extend_search_space(value: SearchSpace | List[SearchSpace])
    job.extend_search_space([ImageObjectDetectionSearchSpace(model_name=Choice(["maskrcnn_resnet18_fpn"]),
                                                             learning_rate=Uniform(0.001, 0.01))])
    # set_sweep(*, sampling_algorithm: str | Random | Grid | Bayesian,
    #           early_termination: BanditPolicy | MedianStoppingPolicy | TruncationSelectionPolicy | None)
    for policy in (BanditPolicy(slack_factor=0.2, slack_amount=0, evaluation_interval=2),
                   MedianStoppingPolicy(delay_evaluation=5), TruncationSelectionPolicy(truncation_percentage=20)):
        job.set_sweep(sampling_algorithm="Random", early_termination=policy)
        assert job.sweep.early_termination == policy
    job.validate()
    # dump(dest): "Возникает, если dest является путем к файлу и файл уже существует."
    job.dump(tmp_path / "job.yml")
    with pytest.raises(DumpTargetExistsError):
        job.dump(tmp_path / "job.yml")
    # 004, «Атрибуты» (those of a job here; base_path, creation_context, id, log_files and studio_url
    # describe a job in Azure's workspace, which has no counterpart)
    assert job.task_type == "image_instance_segmentation" and job.type == "automl"
    assert job.status == "NotStarted" and job.primary_metric == "mean_average_precision"
    assert job.inputs == {"training_data": Input("data/train"), "validation_data": Input("data/valid")}
    assert job.test_data is None and job.outputs == {}
    assert job.training_data == Input("data/train") and job.validation_data == Input("data/valid")
    for name in ("limits", "log_verbosity", "search_space", "sweep", "training_parameters"):
        assert hasattr(job, name)
    job.test_data = Input(path="data/test", type="mltable")
    job.outputs = {"best_model": Output(type="mlflow_model")}
    with pytest.warns(UserWarning):
        assert load_job(job.dump()) == job


# ----- 001: SageMaker's object-detection hyperparameters
# 001, each "Nombre del parámetro" with the value it describes (defaults, or the seed's own example
# for freeze_layer_pattern and lr_scheduler_step); kv_store is left out, 001: "no es aplicable a
# la capacitación de una máquina". SageMaker passes every hyperparameter as a string.
SAGEMAKER_001 = {
    "num_classes": "3", "num_training_samples": "120", "base_network": "vgg-16", "early_stopping": "True",
    "early_stopping_min_epochs": "10", "early_stopping_patience": "5", "early_stopping_tolerance": "0.0",
    "image_shape": "300", "epochs": "30", "freeze_layer_pattern": "^(conv1_|conv2_).*", "label_width": "350",
    "learning_rate": "0.001", "lr_scheduler_factor": "0.1", "lr_scheduler_step": "10, 20", "mini_batch_size": "32",
    "momentum": "0.9", "nms_threshold": "0.45", "optimizer": "sgd", "overlap_threshold": "0.5",
    "use_pretrained_model": "1", "weight_decay": "0.0005",
}


def test_the_sagemaker_configuration_of_001():
    job = ImageObjectDetectionJob(training_data="data/train")
    job.set_training_parameters(**SAGEMAKER_001)
    job.validate()
    resolved = job.resolved_training_parameters()
    assert uses_sagemaker_ssd(resolved) and resolved["base_network"] == "vgg-16"
    assert (resolved["number_of_epochs"], resolved["training_batch_size"], resolved["nms_iou_threshold"]) == (30, 32, 0.45)
    assert resolved["lr_scheduler_step"] == "10,20" and resolved["early_stopping"] is True
    assert resolved["validation_iou_threshold"] == 0.5 and resolved["num_classes"] == 3
    assert load_job(job.dump()) == job
    for key, value in [("image_shape", "299"), ("lr_scheduler_factor", "1"), ("optimizer", "rmsprop2")]:
        with pytest.raises(SpecError, match=f"^{key}: '{value}'"):
            job.set_training_parameters(**{key: value})


def test_a_segmentation_job_from_the_factory_takes_004s_keywords_too():
    job = image_instance_segmentation(training_data="data/train", primary_metric="MeanAveragePrecision")
    job.set_training_parameters(model_name="maskrcnn_resnet18_fpn", log_training_metrics="Enable",
                                validation_metric_type="CocoVoc", learning_rate_scheduler="Step")
    assert job.training_parameters["validation_metric_type"] == "coco_voc"
    job.validate()
