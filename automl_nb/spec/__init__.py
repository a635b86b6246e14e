"""The job specification: tasks, the hyperparameter table, search spaces, jobs and YAML I/O.

This is the bottom layer of automl_nb: it imports only the standard library and PyYAML, so
``import automl_nb.spec`` stays fast.

Example:
    >>> from automl_nb.spec import image_object_detection, Choice, Uniform
    >>> job = image_object_detection(training_data="data/train.jsonl")
    >>> job.set_limits(max_trials=4, max_concurrent_trials=2)
    >>> job.extend_search_space({"model_name": Choice(["yolov5"]), "learning_rate": Uniform(1e-4, 1e-2)})
    >>> job.set_sweep(sampling_algorithm="random")
    >>> job.validate()
"""

from automl_nb.spec.advanced_settings import ADVANCED_SETTINGS, AdvancedSetting
from automl_nb.spec.distributions import (
    DISTRIBUTIONS, Choice, Distribution, LogNormal, LogUniform, Normal, QLogNormal, QLogUniform,
    QNormal, QUniform, Randint, Uniform, as_distribution, check_distribution, distribution_from_dict,
    sample_value,
)
from automl_nb.spec.inputs import (
    DEFAULT_TARGET_COLUMN_NAME, DEFAULT_VALIDATION_DATA_SIZE, INPUT_TYPES, OUTPUT_TYPES, Input, Output,
)
from automl_nb.spec.job import (
    JOB_CLASSES, DumpTargetExistsError, ImageClassificationJob,
    ImageClassificationMultilabelJob, ImageInstanceSegmentationJob, ImageJob, ImageObjectDetectionJob,
    image_classification, image_classification_multilabel, image_instance_segmentation,
    image_object_detection, is_scheduler_address, job_from_dict,
)
from automl_nb.spec.limits import Limits
from automl_nb.spec.parameter import MODEL_NAME, Parameter
from automl_nb.spec.properties import NODE_COUNT_PER_TRIAL, check_properties, node_count_per_trial
from automl_nb.spec.resolve import (
    check_parameters, check_required, coerce_value, default_value, get_parameter, is_sagemaker_mode,
    parameters_for, resolve_parameters, uses_sagemaker_ssd,
)
from automl_nb.spec.search_space import check_grid, check_search_space, parse_search_space
from automl_nb.spec.search_space_classes import (
    ImageClassificationSearchSpace, ImageInstanceSegmentationSearchSpace, ImageObjectDetectionSearchSpace,
    SearchSpace,
)
from automl_nb.spec.sweep_settings import (
    POLICIES, SAMPLING_ALGORITHMS, AshaPolicy, BanditPolicy, HyperbandPolicy, MedianStoppingPolicy, Sweep,
    TruncationSelectionPolicy, policy_from_dict,
)
from automl_nb.spec.table import FREEZE_LAYER_ORDER, PARAMETERS
from automl_nb.spec.tasks import (
    CLASSIFICATION_TASKS, DEFAULT_MODEL, DETECTION, MODELS, MULTICLASS, MULTILABEL, PRIMARY_METRICS,
    SEGMENTATION, TASKS, check_model, check_task, is_classification, model_family,
    normalize_primary_metric,
)
from automl_nb.spec.yaml_io import load_job

__all__ = [
    # tasks
    "MULTICLASS", "MULTILABEL", "DETECTION", "SEGMENTATION", "TASKS", "CLASSIFICATION_TASKS",
    "PRIMARY_METRICS", "MODELS", "DEFAULT_MODEL", "check_task", "check_model", "is_classification",
    "model_family", "normalize_primary_metric",
    # parameters
    "PARAMETERS", "Parameter", "MODEL_NAME", "ADVANCED_SETTINGS", "AdvancedSetting", "FREEZE_LAYER_ORDER",
    "parameters_for", "default_value", "resolve_parameters", "check_parameters", "coerce_value",
    "get_parameter", "uses_sagemaker_ssd", "is_sagemaker_mode", "check_required",
    # distributions
    "Distribution", "Choice", "Randint", "Uniform", "LogUniform", "QUniform", "QLogUniform", "Normal",
    "LogNormal", "QNormal", "QLogNormal", "DISTRIBUTIONS", "distribution_from_dict", "as_distribution",
    "check_distribution", "sample_value",
    # search space and sweep
    "parse_search_space", "check_search_space", "check_grid", "Sweep", "SAMPLING_ALGORITHMS", "SearchSpace",
    "ImageClassificationSearchSpace", "ImageObjectDetectionSearchSpace", "ImageInstanceSegmentationSearchSpace",
    "BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy", "AshaPolicy", "HyperbandPolicy", "POLICIES",
    "policy_from_dict",
    # jobs
    "Input", "INPUT_TYPES", "Output", "OUTPUT_TYPES", "DEFAULT_TARGET_COLUMN_NAME", "Limits", "ImageJob",
    "NODE_COUNT_PER_TRIAL", "check_properties", "node_count_per_trial",
    "ImageClassificationJob", "ImageClassificationMultilabelJob",
    "ImageObjectDetectionJob", "ImageInstanceSegmentationJob", "JOB_CLASSES", "DumpTargetExistsError",
    "DEFAULT_VALIDATION_DATA_SIZE", "image_classification", "image_classification_multilabel",
    "image_object_detection", "image_instance_segmentation", "is_scheduler_address", "job_from_dict",
    "load_job",
]
