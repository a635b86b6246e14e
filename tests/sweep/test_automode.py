"""AutoMode: the portfolio per task and hardware, baselines first, every suggestion resolvable."""

from __future__ import annotations

import math
import random

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    CLASSIFICATION_TASKS, DEFAULT_MODEL, DETECTION, MODEL_NAME, MULTICLASS, MULTILABEL, SEGMENTATION, TASKS, check_search_space,
    default_value, resolve_parameters,
)
from automl_nb.sweep.automode import (
    ADAPTIVE_LEARNING_RATE, ADAPTIVE_OPTIMIZER, BASELINE_AUGMENTATION, FEW_IMAGES, LEARNING_RATE_FACTORS, automode_portfolio, automode_sampler, device_tier, portfolio_models,
)

DEVICES = ("cpu", "cuda")
MANY, FEW = 10 * FEW_IMAGES, FEW_IMAGES // 5
# What docs/automode.md promises for a CPU: small, fast models only.
SMALL_MODELS = {"mobilenetv2", "resnet18", "resnet34", "fasterrcnn_resnet18_fpn", "fasterrcnn_resnet34_fpn",
                "maskrcnn_resnet18_fpn", "maskrcnn_resnet34_fpn"}


def sweep(task, fixed, *, device, n_images=MANY, count=15, seed=0):
    """Ask ``count`` suggestions in order, telling each a seeded random metric."""
    sampler = automode_sampler(task, fixed, n_images=n_images, device=device, seed=seed, max_trials=count)
    rng = random.Random(seed)
    suggestions = []
    for index in range(count):
        values = sampler.suggest(index)
        if values is None:
            break
        suggestions.append(values)
        sampler.tell(index, rng.random())
    return sampler, suggestions


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_images", (MANY, FEW))
def test_every_suggestion_resolves_through_the_spec(task, device, n_images):
    fixed = {"early_stopping": True}
    baselines, subspaces = automode_portfolio(task, fixed, n_images=n_images, device=device)
    assert check_search_space(task, subspaces, fixed) == subspaces
    models = set(portfolio_models(task, n_images=n_images, device=device))
    _, suggestions = sweep(task, fixed, device=device, n_images=n_images)
    assert len(suggestions) == 15
    for values in suggestions:
        resolved = resolve_parameters(task, {**fixed, **values})
        assert resolved["model_name"] in models
        assert resolved["early_stopping"] is True


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("device", DEVICES)
def test_first_two_trials_are_two_models_at_their_defaults(task, device):
    """With large images and no budget: the defaults, but for the light augmentation of classifiers."""
    models = portfolio_models(task, n_images=MANY, device=device)
    _, suggestions = sweep(task, {}, device=device, count=3)
    augmentation = {"augmentation": BASELINE_AUGMENTATION[task]} if task in CLASSIFICATION_TASKS else {}
    for index in (0, 1):
        assert suggestions[index]["model_name"] == models[index]
        expected = resolve_parameters(task, {MODEL_NAME: models[index], **augmentation})
        assert resolve_parameters(task, suggestions[index]) == expected
    assert models[0] != models[1]


def test_baselines_are_told_to_the_bayesian_sampler():
    from optuna.trial import TrialState

    sampler, _ = sweep(MULTICLASS, {}, device="cuda", count=2)
    trials = sampler.study.trials
    assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 2
    random_values = random.Random(0)
    assert [trial.value for trial in trials] == [random_values.random(), random_values.random()]


@pytest.mark.parametrize("task", TASKS)
def test_cpu_portfolio_is_small_models_and_cuda_stronger(task):
    for n_images in (MANY, FEW):
        cpu = portfolio_models(task, n_images=n_images, device="cpu")
        assert set(cpu) <= SMALL_MODELS
        cuda = portfolio_models(task, n_images=n_images, device="cuda")
        assert cuda[0] == DEFAULT_MODEL[task]  # trial 0 on a GPU is what a single trial would run
        assert not set(cuda) <= SMALL_MODELS
        assert set(cpu) != set(cuda)


def test_few_images_favour_smaller_models():
    assert "vitb16r224" in portfolio_models(MULTICLASS, n_images=MANY, device="cuda")
    assert "vitb16r224" not in portfolio_models(MULTICLASS, n_images=FEW, device="cuda")
    assert "yolov5" not in portfolio_models(DETECTION, n_images=FEW, device="cuda")
    assert "maskrcnn_resnet101_fpn" not in portfolio_models(SEGMENTATION, n_images=FEW, device="cuda")
    assert "resnet34" not in portfolio_models(MULTILABEL, n_images=FEW, device="cpu")


@pytest.mark.parametrize("task", TASKS)
def test_learning_rate_ranges_surround_each_models_default(task):
    _, subspaces = automode_portfolio(task, {}, n_images=MANY, device="cuda")
    for subspace in subspaces:
        (model,) = subspace[MODEL_NAME].values
        default = default_value("learning_rate", task, model)
        low, high = subspace["learning_rate"].support()
        assert math.isclose(low, default * LEARNING_RATE_FACTORS[0])
        assert math.isclose(high, min(1.0, default * LEARNING_RATE_FACTORS[1]))


@pytest.mark.parametrize("task", CLASSIFICATION_TASKS)
def test_classifiers_from_random_weights_take_adamw_around_its_own_rate(task):
    scratch = {"use_pretrained_model": False}
    baselines, subspaces = automode_portfolio(task, scratch, n_images=MANY, device="cpu")
    low, high = (ADAPTIVE_LEARNING_RATE * factor for factor in LEARNING_RATE_FACTORS)
    for baseline, subspace in zip(baselines, subspaces):
        assert baseline["optimizer"] == ADAPTIVE_OPTIMIZER and baseline["learning_rate"] == ADAPTIVE_LEARNING_RATE
        assert all(math.isclose(a, b) for a, b in zip(subspace["learning_rate"].support(), (low, high)))
    _, suggestions = sweep(task, scratch, device="cpu")
    assert all(values["optimizer"] == ADAPTIVE_OPTIMIZER and low <= values["learning_rate"] <= high
               for values in suggestions)
    # Pretrained weights, or an optimizer or rate the user fixed, keep the spec's SGD defaults.
    for fixed in ({}, {**scratch, "learning_rate": 0.02}, {**scratch, "optimizer": "sgd"}):
        baselines, subspaces = automode_portfolio(task, fixed, n_images=MANY, device="cpu")
        assert all("optimizer" not in point for point in baselines + subspaces)
    # adam fixed by the user: the range sits around adam's rate, not the SGD default.
    baselines, _ = automode_portfolio(task, {"optimizer": "adam"}, n_images=MANY, device="cpu")
    assert all(baseline["learning_rate"] == ADAPTIVE_LEARNING_RATE for baseline in baselines)


def test_user_fixed_keys_never_appear_in_suggestions():
    fixed = {"learning_rate": 0.02, "number_of_epochs": 3}
    _, suggestions = sweep(MULTICLASS, fixed, device="cuda")
    assert all(set(values) == {MODEL_NAME, "augmentation"} for values in suggestions)
    assert all(resolve_parameters(MULTICLASS, {**fixed, **values})["learning_rate"] == 0.02 for values in suggestions)


def test_fixed_model_name_narrows_the_portfolio_to_it():
    fixed = {"model_name": "yolov5"}
    baselines, subspaces = automode_portfolio(DETECTION, fixed, n_images=MANY, device="cpu")
    assert baselines == [{"learning_rate": default_value("learning_rate", DETECTION, "yolov5"),
                          "model_size": default_value("model_size", DETECTION, "yolov5")}]
    assert len(subspaces) == 1 and MODEL_NAME not in subspaces[0]
    _, suggestions = sweep(DETECTION, fixed, device="cpu")
    assert all(MODEL_NAME not in values for values in suggestions)
    assert all(resolve_parameters(DETECTION, {**fixed, **values})["model_name"] == "yolov5" for values in suggestions)


def test_a_fixed_model_specific_key_keeps_the_models_it_fits():
    # model_size is yolov5's; the CPU tier has no yolov5, so AutoMode falls back to it.
    baselines, subspaces = automode_portfolio(DETECTION, {"model_size": "small"}, n_images=MANY, device="cpu")
    assert [baseline[MODEL_NAME] for baseline in baselines] == ["yolov5"]
    assert "model_size" not in subspaces[0]
    # seresnext takes no other crop size: it leaves the GPU portfolio; ViTs need the two crops equal.
    crops = {"training_crop_size": 256, "validation_crop_size": 256}
    baselines, _ = automode_portfolio(MULTICLASS, crops, n_images=MANY, device="cuda")
    assert [baseline[MODEL_NAME] for baseline in baselines] == ["vitb16r224", "resnet50"]
    baselines, _ = automode_portfolio(MULTICLASS, {"training_crop_size": 256}, n_images=MANY, device="cuda")
    assert [baseline[MODEL_NAME] for baseline in baselines] == ["resnet50"]


def test_nothing_left_to_sweep_gives_the_baseline_only():
    fixed = {"model_name": "resnet18", "learning_rate": 0.05, "augmentation": "none"}
    sampler = automode_sampler(MULTICLASS, fixed, n_images=MANY, device="cpu", seed=0, max_trials=10)
    assert sampler.capacity == 1
    assert sampler.suggest(0) == {} and sampler.suggest(1) is None


def test_automode_is_reproducible_per_seed():
    assert sweep(DETECTION, {}, device="cuda", seed=3)[1] == sweep(DETECTION, {}, device="cuda", seed=3)[1]
    assert sweep(DETECTION, {}, device="cuda", seed=3)[1] != sweep(DETECTION, {}, device="cuda", seed=4)[1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="device: 'tpu' is not allowed"):
        automode_portfolio(MULTICLASS, {}, n_images=MANY, device="tpu")
    with pytest.raises(ValueError, match="n_images: -1 is not allowed"):
        automode_portfolio(MULTICLASS, {}, n_images=-1, device="cpu")
    with pytest.raises(SpecError, match="learning_rate: 2 is out of range"):
        automode_portfolio(MULTICLASS, {"learning_rate": 2}, n_images=MANY, device="cpu")
    with pytest.raises(ValueError, match="max_trials: 0 is not allowed"):
        automode_sampler(MULTICLASS, {}, n_images=MANY, device="cpu", seed=0, max_trials=0)
    assert device_tier("cuda:1") == "cuda" and device_tier("mps") == "cpu"
