"""Search spaces, the sweep's sampling algorithm and the early-termination policies."""

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    DETECTION, MULTICLASS, SEGMENTATION, BanditPolicy, Choice, MedianStoppingPolicy, QUniform, Randint,
    Sweep, TruncationSelectionPolicy, Uniform, check_grid, check_search_space, parse_search_space,
    load_job, policy_from_dict,
)
from automl_nb.spec.sweep_settings import AshaPolicy, HyperbandPolicy


def check(task, space, fixed=None):
    return check_search_space(task, parse_search_space(space), fixed or {})


def test_single_mapping_is_one_subspace():
    space = check(MULTICLASS, {"learning_rate": {"type": "uniform", "min_value": 0.001, "max_value": 0.1}})
    assert space == [{"learning_rate": Uniform(0.001, 0.1)}]


def test_conditional_subspaces_checked_per_model():
    space = check(DETECTION, [
        {"model_name": {"type": "choice", "values": ["yolov5"]}, "model_size": Choice(["Small", "medium"])},
        {"model_name": Choice(["fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn"]), "min_size": Choice([600, 800])},
    ])
    assert space[0]["model_size"] == Choice(["small", "medium"])
    assert space[1]["model_name"] == Choice(["fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn"])


def test_key_invalid_for_a_model_of_the_subspace():
    with pytest.raises(SpecError) as info:
        check(DETECTION, [{"model_name": Choice(["yolov5", "fasterrcnn_resnet50_fpn"]), "model_size": Choice(["small"])}])
    message = str(info.value)
    assert message.startswith("search_space[0].model_size: ")
    assert "does not apply to model fasterrcnn_resnet50_fpn" in message


def test_subspace_without_model_uses_fixed_or_default_model():
    with pytest.raises(SpecError, match="search_space\\[0\\].model_size: .* does not apply to model fasterrcnn_resnet50_fpn"):
        check(DETECTION, {"model_size": Choice(["small"])})
    assert check(DETECTION, {"model_size": Choice(["small"])}, {"model_name": "yolov5"})


def test_model_name_must_be_a_choice():
    with pytest.raises(SpecError, match="search_space\\[0\\].model_name: 'yolov5' is not a choice; write model_name as"):
        check(DETECTION, [{"model_name": "yolov5"}])
    with pytest.raises(SpecError, match="search_space\\[1\\].model_name: choice value 'resnet50' is not a model for image_object_detection"):
        check(DETECTION, [{"model_name": Choice(["yolov5"])}, {"model_name": Choice(["resnet50"])}])


def test_model_name_in_both_places():
    with pytest.raises(SpecError, match="model_name: .* is also fixed in training_parameters"):
        check(DETECTION, [{"model_name": Choice(["yolov5"])}], {"model_name": "yolov5"})


def test_key_in_both_training_parameters_and_space():
    with pytest.raises(SpecError, match="search_space\\[0\\].learning_rate: .* is also set in training_parameters"):
        check(MULTICLASS, {"learning_rate": Uniform(0.001, 0.1)}, {"learning_rate": 0.01})
    with pytest.raises(SpecError, match="search_space\\[0\\].number_of_epochs: .* is also set in training_parameters"):
        check(DETECTION, {"number_of_epochs": Choice([5])}, {"epochs": 5})


def test_unknown_key_in_space_suggests():
    with pytest.raises(SpecError, match="search_space\\[0\\].learning_rat: unknown training parameter; did you mean 'learning_rate'"):
        check(MULTICLASS, {"learning_rat": Uniform(0, 1)})


def test_task_applicability_in_space():
    with pytest.raises(SpecError, match="search_space\\[0\\].tile_grid_size: .* does not apply to image_instance_segmentation"):
        check(SEGMENTATION, {"tile_grid_size": Choice(["3x2"])})


def test_fixed_values_in_space_are_coerced():
    space = check(MULTICLASS, {"optimizer": "ADAM", "nesterov": "false"})
    assert space == [{"optimizer": "adam", "nesterov": False}]


def test_fixed_cross_field_rules_checked():
    with pytest.raises(SpecError, match="search_space\\[0\\].training_crop_size: 288 differs from validation_crop_size 224"):
        check(MULTICLASS, {"model_name": Choice(["vitb16r224"]), "training_crop_size": 288})
    # sampled crop sizes cannot be checked before sampling: accepted
    assert check(MULTICLASS, {"model_name": Choice(["vitb16r224"]), "training_crop_size": Choice([288]),
                              "validation_crop_size": Choice([288])})
    with pytest.raises(SpecError, match="seresnext"):
        check(MULTICLASS, {"validation_crop_size": 256})


def test_distribution_checked_against_parameter():
    with pytest.raises(SpecError, match="search_space\\[0\\].learning_rate: uniform\\(min_value=0, max_value=2\\)"):
        check(MULTICLASS, {"learning_rate": Uniform(0, 2)})
    with pytest.raises(SpecError, match="search_space\\[0\\].learning_rate: uniform: min_value 2 must be less"):
        check(MULTICLASS, {"learning_rate": {"type": "uniform", "min_value": 2, "max_value": 1}})


def test_sagemaker_aliases_in_space():
    space = check(DETECTION, {"epochs": Choice([10, 20])})
    assert space == [{"epochs": Choice([10, 20])}]
    with pytest.raises(SpecError, match="epochs: .* repeats number_of_epochs"):
        check(DETECTION, {"number_of_epochs": Choice([5]), "epochs": Choice([5])})


def test_objects_as_subspaces():
    class Space:
        def __init__(self):
            self.model_name = Choice(["resnet50"])
            self.learning_rate = Uniform(0.01, 0.1)
            self.momentum = None  # unset attributes are left out

    assert check(MULTICLASS, [Space()]) == [{"model_name": Choice(["resnet50"]), "learning_rate": Uniform(0.01, 0.1)}]
    with pytest.raises(SpecError, match="search_space\\[0\\]: 3 is not a mapping"):
        parse_search_space([3])


def test_grid_needs_choices():
    check_grid([{"model_name": Choice(["yolov5"]), "learning_rate": Choice([0.01, 0.02]), "optimizer": "sgd"}])
    for dist in (Uniform(0.01, 0.02), Randint(3), QUniform(1, 3, 1)):
        with pytest.raises(SpecError, match=f"search_space\\[1\\].x: .* is a {dist.type} distribution; grid sampling needs choice"):
            check_grid([{}, {"x": dist}])


# ----- sweep settings
@pytest.mark.parametrize("spelling, value", [("random", "random"), ("Random", "random"), ("GRID", "grid"),
                                             ("Bayesian", "bayesian")])
def test_sampling_algorithm_spellings(spelling, value):
    assert Sweep(spelling).sampling_algorithm == value


def test_sampling_algorithm_invalid():
    with pytest.raises(SpecError, match="sampling_algorithm: 'randm' is not allowed.*did you mean 'random'"):
        Sweep("randm")


def test_sweep_from_dict():
    sweep = Sweep.from_dict({"sampling_algorithm": "random",
                             "early_termination": {"type": "bandit", "evaluation_interval": 2, "slack_factor": 0.2,
                                                   "delay_evaluation": 6}})
    assert sweep.early_termination == BanditPolicy(evaluation_interval=2, slack_factor=0.2, delay_evaluation=6)
    assert Sweep.from_dict(sweep.to_dict()) == sweep
    with pytest.raises(SpecError, match="sampling_algorithm: missing"):
        Sweep.from_dict({"early_termination": None})
    with pytest.raises(SpecError, match="early_terminaton: unknown sweep setting; did you mean 'early_termination'"):
        Sweep.from_dict({"sampling_algorithm": "grid", "early_terminaton": {}})


# ----- policies
def test_policy_defaults_and_dicts():
    assert MedianStoppingPolicy().to_dict() == {"type": "median_stopping", "evaluation_interval": 1, "delay_evaluation": 0}
    policy = TruncationSelectionPolicy(truncation_percentage=20, exclude_finished_jobs="true")
    assert policy.exclude_finished_jobs is True
    assert policy_from_dict(policy.to_dict()) == policy
    bandit = BanditPolicy(slack_amount=0.05)
    assert bandit.to_dict() == {"type": "bandit", "evaluation_interval": 1, "delay_evaluation": 0, "slack_amount": 0.05}
    assert policy_from_dict(bandit.to_dict()) == bandit


@pytest.mark.parametrize("spelling, cls", [("Bandit", BanditPolicy), ("MedianStopping", MedianStoppingPolicy),
                                           ("TruncationSelectionPolicy", TruncationSelectionPolicy)])
def test_policy_type_spellings(spelling, cls):
    extra = {"slack_factor": 0.1} if cls is BanditPolicy else {}
    extra = {"truncation_percentage": 10} if cls is TruncationSelectionPolicy else extra
    assert type(policy_from_dict({"type": spelling, **extra})) is cls


@pytest.mark.parametrize("build, pattern", [
    (lambda: BanditPolicy(), "bandit needs exactly one of slack_factor and slack_amount \\(> 0\\); got neither"),
    (lambda: BanditPolicy(slack_factor=0.1, slack_amount=0.1), "got both"),
    (lambda: BanditPolicy(slack_factor=0), "got neither"),  # 0 is the Azure SDK's "not set"
    (lambda: BanditPolicy(slack_factor="x"), "slack_factor: 'x' is not a number; allowed: float > 0"),
    (lambda: BanditPolicy(slack_amount=-1), "slack_amount: -1 is out of range"),
    (lambda: BanditPolicy(slack_factor=0.1, evaluation_interval=0), "evaluation_interval: 0 is out of range; allowed: int >= 1"),
    (lambda: MedianStoppingPolicy(delay_evaluation=-1), "delay_evaluation: -1 is out of range; allowed: int >= 0"),
    (lambda: MedianStoppingPolicy(delay_evaluation=1.5), "delay_evaluation: 1.5 is not an int"),
    (lambda: TruncationSelectionPolicy(truncation_percentage=0), "truncation_percentage: 0 is out of range; allowed: int in \\[1, 99\\]"),
    (lambda: TruncationSelectionPolicy(truncation_percentage=100), "truncation_percentage: 100 is out of range"),
    (lambda: TruncationSelectionPolicy(truncation_percentage=10, exclude_finished_jobs="perhaps"), "exclude_finished_jobs: 'perhaps' is not a bool"),
    (lambda: policy_from_dict({"type": "median_stoping"}), "type: 'median_stoping' is not an early-termination policy.*did you mean 'median_stopping'"),
    (lambda: policy_from_dict({"type": "truncation_selection"}), "needs truncation_percentage"),
    (lambda: policy_from_dict({"type": "median_stopping", "slack_factor": 0.1}), "slack_factor: 0.1: unknown field of median_stopping"),
    (lambda: policy_from_dict({"slack_factor": 0.1}), "early_termination: type is missing"),
])
def test_policies_validated(build, pattern):
    with pytest.raises(SpecError, match=pattern):
        build()


def test_asha_and_hyperband_defaults_spellings_and_round_trip():
    assert AshaPolicy().to_dict() == {"type": "asha", "reduction_factor": 3, "min_resource": 2}
    assert type(policy_from_dict({"type": "ASHA"})) is AshaPolicy
    hyperband = policy_from_dict({"type": "HyperbandPolicy", "reduction_factor": "2", "min_resource": 1,
                                  "max_resource": 16, "brackets": 5})
    assert hyperband == HyperbandPolicy(reduction_factor=2, min_resource=1, max_resource=16, brackets=5)  # grace 1..16
    assert policy_from_dict(hyperband.to_dict()) == hyperband
    sweep = Sweep.from_dict({"sampling_algorithm": "random", "early_termination": {"type": "asha", "min_resource": 2}})
    assert Sweep.from_dict(sweep.to_dict()) == sweep and sweep.early_termination.min_resource == 2


def test_a_bad_asha_setting_in_yaml_names_key_value_and_what_is_allowed():
    text = ("task: image_classification\ntarget_column_name: label\ntraining_data: {path: data, type: mltable}\n"
            "sweep:\n  sampling_algorithm: random\n  early_termination: {type: hyperband, min_resource: 1, "
            "max_resource: 9, brackets: 4}\nsearch_space:\n  - model_name: {type: choice, values: [resnet18]}\n")
    with pytest.raises(SpecError, match="brackets: 4 is out of range; allowed: int in \\[1, 3\\]"):
        load_job(text)


def test_truncation_boundaries_accepted():
    assert TruncationSelectionPolicy(truncation_percentage=1).truncation_percentage == 1
    assert TruncationSelectionPolicy(truncation_percentage=99).truncation_percentage == 99
