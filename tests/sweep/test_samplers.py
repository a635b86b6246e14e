"""Random, grid and bayesian samplers: determinism, supports, conditional spaces, restore, learning."""

from __future__ import annotations

import json
import math
import random

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    DETECTION, MULTICLASS, Choice, LogNormal, LogUniform, Normal, QLogNormal, QLogUniform, QNormal,
    QUniform, Randint, Uniform, check_search_space, get_parameter, parse_search_space, resolve_parameters,
)
from automl_nb.sweep.bayesian import BayesianSampler
from automl_nb.sweep.samplers import GridSampler, RandomSampler, make_sampler, startup_trials

ALGORITHMS = ("random", "bayesian")
FIXED = {"early_stopping": True}


def detection_space():
    """The conditional space of the SPEC's YAML example (two subspaces, one model each)."""
    return check_search_space(DETECTION, parse_search_space([
        {"model_name": Choice(["yolov5"]), "learning_rate": Uniform(0.0001, 0.01),
         "model_size": Choice(["small", "medium"])},
        {"model_name": Choice(["fasterrcnn_resnet50_fpn"]), "learning_rate": Uniform(0.0001, 0.001),
         "optimizer": Choice(["sgd", "adam", "adamw"]), "min_size": Choice([600, 800])},
    ]), FIXED)


def every_distribution_space():
    """One key per distribution type, each on a parameter it suits (all classification keys)."""
    return [{
        "optimizer": Choice(["sgd", "adam"]),
        "number_of_workers": Randint(4),
        "momentum": Uniform(0.8, 0.99),
        "learning_rate": LogUniform(math.log(1e-4), math.log(1e-1)),
        "number_of_epochs": QUniform(5, 20, 1),
        "training_batch_size": QLogUniform(math.log(8), math.log(64), 8),
        "weight_decay": Normal(1e-4, 1e-4),  # half its mass is below 0: clipped
        "step_lr_gamma": LogNormal(math.log(0.5), 0.5),  # some mass above 1: clipped
        "early_stopping_patience": QNormal(3, 3, 1),  # some mass at <= 0 for an int > 0
        "step_lr_step_size": QLogNormal(math.log(5), 0.5, 1),
    }]


def run(sampler, count, objective=None, seed=0):
    """Ask ``count`` suggestions in order, telling each one's objective (or a seeded random value)."""
    rng = random.Random(seed)
    suggestions = []
    for index in range(count):
        values = sampler.suggest(index)
        suggestions.append(values)
        sampler.tell(index, objective(values) if objective else rng.random())
    return suggestions


def lr_objective(values):
    return -(math.log10(values["learning_rate"]) + 2.5) ** 2


# ----- determinism
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_seed_same_sequence_different_seed_differs(algorithm):
    def sequence(seed):
        return run(make_sampler(algorithm, DETECTION, detection_space(), FIXED, seed=seed, max_trials=20), 20)

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)


def test_random_is_stateless_per_index():
    space = detection_space()
    in_order = RandomSampler(DETECTION, space, seed=3)
    expected = [in_order.suggest(index) for index in range(10)]
    # Asked out of order, or by a fresh sampler for one index alone: the same draw.
    out_of_order = RandomSampler(DETECTION, space, seed=3)
    assert [out_of_order.suggest(index) for index in reversed(range(10))] == expected[::-1]
    assert RandomSampler(DETECTION, space, seed=3).suggest(7) == expected[7]


def test_random_uses_both_subspaces():
    suggestions = run(make_sampler("random", DETECTION, detection_space(), FIXED, seed=0, max_trials=40), 40)
    assert {values["model_name"] for values in suggestions} == {"yolov5", "fasterrcnn_resnet50_fpn"}


# ----- grid
def grid_space():
    return check_search_space(DETECTION, parse_search_space([
        {"model_name": Choice(["yolov5"]), "model_size": Choice(["small", "medium"]),
         "image_size": Choice([320, 640, 960])},
        {"model_name": Choice(["fasterrcnn_resnet50_fpn"]), "optimizer": "adam", "min_size": Choice([600, 800])},
    ]), {})


def test_grid_enumerates_every_point_in_documented_order():
    sampler = make_sampler("grid", DETECTION, grid_space(), {}, seed=0, max_trials=100)
    points = []
    while (values := sampler.suggest(len(points))) is not None:
        points.append(values)
    yolo = [{"model_name": "yolov5", "model_size": size, "image_size": image_size}
            for size in ("small", "medium") for image_size in (320, 640, 960)]
    faster = [{"model_name": "fasterrcnn_resnet50_fpn", "optimizer": "adam", "min_size": min_size}
              for min_size in (600, 800)]
    assert points == yolo + faster
    assert sampler.capacity == 8
    assert sampler.suggest(8) is None and sampler.suggest(100) is None
    assert sampler.state(7) == {"algorithm": "grid", "subspace": 1, "point": 1}


def test_grid_rejects_a_non_choice_distribution():
    with pytest.raises(SpecError, match=r"search_space\[2\]\.learning_rate: .* grid sampling needs choice"):
        make_sampler("grid", DETECTION, grid_space() + [{"learning_rate": Uniform(0.001, 0.01)}], {},
                     seed=0, max_trials=4)
    with pytest.raises(SpecError, match="grid sampling needs choice"):
        GridSampler(DETECTION, detection_space())


def test_grid_canonicalises_choice_values():
    space = [{"model_name": Choice(["YOLOv5"]), "model_size": Choice(["Small"]), "multi_scale": Choice([1, 0])}]
    sampler = GridSampler(DETECTION, space)
    assert [sampler.suggest(i) for i in range(2)] == [
        {"model_name": "yolov5", "model_size": "small", "multi_scale": True},
        {"model_name": "yolov5", "model_size": "small", "multi_scale": False},
    ]


# ----- supports and canonical values
def check_within(dist, value):
    """The value is one the distribution can give, up to the parameter's clipping."""
    if isinstance(dist, Choice):
        assert value in dist.values
        return
    support = dist.support()
    if support is not None:
        low, high = support
        assert low * (1 - 1e-9) <= value <= high * (1 + 1e-9)
    if getattr(dist, "q", None):
        assert math.isclose(value / dist.q, round(value / dist.q), abs_tol=1e-9)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_suggestion_within_support_and_canonical(algorithm):
    space = check_search_space(MULTICLASS, every_distribution_space(), {})
    sampler = make_sampler(algorithm, MULTICLASS, space, {}, seed=1, max_trials=40)
    for values in run(sampler, 40):
        assert set(values) == set(space[0])
        for key, value in values.items():
            param = get_parameter(key)
            canonical = param.coerce(value, MULTICLASS)
            assert canonical == value and type(canonical) is type(value), (key, value)
            assert param.kind != "int" or type(value) is int
            check_within(space[0][key], value)
        resolve_parameters(MULTICLASS, values)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unbounded_draws_are_clipped_into_range(algorithm):
    space = check_search_space(MULTICLASS, every_distribution_space(), {})
    suggestions = run(make_sampler(algorithm, MULTICLASS, space, {}, seed=2, max_trials=60), 60)
    assert all(values["weight_decay"] >= 0 and values["step_lr_gamma"] <= 1 for values in suggestions)
    assert all(values["early_stopping_patience"] >= 1 for values in suggestions)


# ----- conditional spaces
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conditional_space_keeps_the_keys_of_one_subspace(algorithm):
    space = detection_space()
    key_sets = [set(subspace) for subspace in space]
    suggestions = run(make_sampler(algorithm, DETECTION, space, FIXED, seed=4, max_trials=30), 30)
    for values in suggestions:
        assert set(values) in key_sets
        chosen = space[key_sets.index(set(values))]
        assert values["model_name"] in chosen["model_name"].values
        assert chosen["learning_rate"].min_value <= values["learning_rate"] <= chosen["learning_rate"].max_value
        resolve_parameters(DETECTION, {**FIXED, **values})
    assert {values["model_name"] for values in suggestions} == {"yolov5", "fasterrcnn_resnet50_fpn"}


# ----- bayesian specifics
def test_bayesian_state_is_json_and_holds_the_subspace():
    sampler = make_sampler("bayesian", DETECTION, detection_space(), FIXED, seed=0, max_trials=10)
    values = sampler.suggest(0)
    state = json.loads(json.dumps(sampler.state(0)))
    assert state["algorithm"] == "bayesian"
    chosen = state["subspace"]
    assert state["params"]["subspace"] == chosen
    assert state["params"][f"{chosen}.model_name"] == values["model_name"]
    assert sampler.suggest(0) == values  # asking again gives the same values


def test_bayesian_choice_of_non_plain_values_uses_indices():
    settings = [{"stream_image_files": True}, {"stream_image_files": False}]
    space = check_search_space(MULTICLASS, [{"advanced_settings": Choice(settings)}], {})
    sampler = make_sampler("bayesian", MULTICLASS, space, {}, seed=0, max_trials=8)
    for index, values in enumerate(run(sampler, 8)):
        assert values["advanced_settings"] in settings
        assert sampler.state(index)["params"]["advanced_settings"] in (0, 1)


def test_bayesian_tell_none_marks_the_trial_failed():
    from optuna.trial import TrialState

    sampler = make_sampler("bayesian", DETECTION, detection_space(), FIXED, seed=0, max_trials=10)
    sampler.suggest(0)
    sampler.suggest(1)
    sampler.tell(0, None)
    sampler.tell(1, 0.5)
    assert [trial.state for trial in sampler.study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert sampler.study.trials[1].value == 0.5
    with pytest.raises(ValueError, match="never asked"):
        sampler.tell(5, 0.1)


def test_bayesian_learns_where_the_optimum_is():
    space = [{"learning_rate": LogUniform(math.log(1e-6), math.log(1.0))}]
    for seed in range(3):
        sampler = make_sampler("bayesian", MULTICLASS, space, {}, seed=seed, max_trials=30)
        distances = [abs(math.log10(values["learning_rate"]) + 2.5) for values in run(sampler, 30, lr_objective)]
        first, last = sum(distances[:10]) / 10, sum(distances[-10:]) / 10
        assert last < first, (seed, first, last)


def test_startup_trials_scale_with_max_trials():
    assert [startup_trials(n) for n in (1, 10, 20, 40, 1000)] == [3, 3, 5, 10, 10]


# ----- restore
def test_random_and_grid_restore_then_continue():
    space = detection_space()
    first = RandomSampler(DETECTION, space, seed=5)
    expected = [first.suggest(index) for index in range(8)]
    resumed = RandomSampler(DETECTION, space, seed=5)
    for index in range(5):
        resumed.restore(index, first.state(index), 0.1, True)
    assert [resumed.suggest(index) for index in range(5, 8)] == expected[5:]
    with pytest.raises(ValueError, match="seed 5 differs"):
        RandomSampler(DETECTION, space, seed=6).restore(0, first.state(0), 0.1, True)

    grid = GridSampler(DETECTION, grid_space())
    resumed_grid = GridSampler(DETECTION, grid_space())
    for index in range(3):
        resumed_grid.restore(index, grid.state(index), None, True)
    assert resumed_grid.suggest(3) == grid.suggest(3)
    with pytest.raises(ValueError, match="not made by a grid sampler"):
        resumed_grid.restore(0, first.state(0), None, True)


def test_bayesian_restore_then_continue_reproduces_the_sequence():
    from optuna.trial import TrialState

    space = detection_space()
    uninterrupted = BayesianSampler(DETECTION, space, seed=9, n_startup_trials=3)
    expected = run(uninterrupted, 14, lr_objective)
    states = [uninterrupted.state(index) for index in range(14)]

    resumed = BayesianSampler(DETECTION, space, seed=9, n_startup_trials=3)
    for index in range(7):
        resumed.restore(index, json.loads(json.dumps(states[index])), lr_objective(expected[index]), True)
    trials = resumed.study.trials
    assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 7
    assert [trial.value for trial in trials] == [lr_objective(values) for values in expected[:7]]
    assert [resumed.suggest(index) for index in range(7)] == expected[:7]
    continued = []
    for index in range(7, 14):
        continued.append(resumed.suggest(index))
        resumed.tell(index, lr_objective(continued[-1]))
    assert continued == expected[7:]


def test_bayesian_restore_running_and_failed_trials():
    from optuna.trial import TrialState

    first = BayesianSampler(DETECTION, detection_space(), seed=0, n_startup_trials=3)
    states = [first.state(index) for index in range(3) if first.suggest(index)]
    resumed = BayesianSampler(DETECTION, detection_space(), seed=0, n_startup_trials=3)
    resumed.restore(0, states[0], 0.3, True)
    resumed.restore(1, states[1], None, True)
    resumed.restore(2, states[2], None, False)
    assert [trial.state for trial in resumed.study.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING]
    resumed.tell(2, 0.4)  # the running trial finishes later
    assert resumed.study.trials[2].value == 0.4
    assert resumed.suggest(3) is not None and len(resumed.study.trials) == 4
    with pytest.raises(ValueError, match="already asked or restored"):
        resumed.restore(0, states[0], 0.3, True)


def test_bayesian_restore_rejects_a_state_of_another_space():
    sampler = BayesianSampler(DETECTION, detection_space(), seed=0, n_startup_trials=3)
    with pytest.raises(ValueError, match="do not fit subspace 0"):
        sampler.restore(0, {"algorithm": "bayesian", "subspace": 0, "params": {"subspace": 0, "0.lr": 0.1}}, 0.1, True)
    with pytest.raises(ValueError, match="not made by a bayesian sampler"):
        sampler.restore(0, {"algorithm": "random", "seed": 0, "subspace": 0}, 0.1, True)


# ----- make_sampler checks
def test_make_sampler_rejects_bad_arguments():
    with pytest.raises(SpecError, match="sampling_algorithm: 'randon' is not allowed.*did you mean 'random'"):
        make_sampler("randon", DETECTION, detection_space(), FIXED, seed=0, max_trials=4)
    with pytest.raises(SpecError, match="search_space: .* is empty"):
        make_sampler("random", DETECTION, [], FIXED, seed=0, max_trials=4)
    with pytest.raises(ValueError, match="seed: '1' is not allowed"):
        make_sampler("random", DETECTION, detection_space(), FIXED, seed="1", max_trials=4)
    with pytest.raises(ValueError, match="max_trials: 0 is not allowed"):
        make_sampler("bayesian", DETECTION, detection_space(), FIXED, seed=0, max_trials=0)
    with pytest.raises(SpecError, match=r"search_space\[0\]\.learning_rate: .* is also set in training_parameters"):
        make_sampler("random", DETECTION, detection_space(), {"learning_rate": 0.01}, seed=0, max_trials=4)


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, automl_nb.sweep.samplers; "
            "print(sorted(m for m in ('optuna', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("algorithm", ["random", "bayesian"])
def test_draws_are_clipped_into_sagemaker_ranges_in_sagemaker_mode(algorithm):
    # SageMaker's learning_rate is in (0, 1]; Azure's in [0, 1]. A normal around 0.001 often draws below 0.
    fixed = {"epochs": 2, "num_classes": 3, "num_training_samples": 10}  # SageMaker keys, no model_name
    space = [{"learning_rate": Normal(0.001, 0.01), "base_network": Choice(["vgg-16"])}]
    sampler = make_sampler(algorithm, DETECTION, space, fixed, seed=0, max_trials=8)
    rates = [sampler.suggest(i)["learning_rate"] for i in range(8)]
    assert all(rate > 0 for rate in rates)
    for rate in rates:  # each trial's parameters resolve in SageMaker mode
        resolve_parameters(DETECTION, {**fixed, "base_network": "vgg-16", "learning_rate": rate})
    azure = make_sampler("random", DETECTION, [{"learning_rate": Normal(0.001, 0.01),
                                                "model_name": Choice(["yolov5"])}], {}, seed=0, max_trials=8)
    assert 0.0 in [azure.suggest(i)["learning_rate"] for i in range(8)]  # Azure's range includes 0
