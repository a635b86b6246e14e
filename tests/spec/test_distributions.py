"""Distributions: construction checks, YAML form round trip, sampling, and checks against parameters."""

import math
import random

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    DETECTION, DISTRIBUTIONS, MULTICLASS, PARAMETERS, Choice, LogNormal, LogUniform, Normal, QLogNormal,
    QLogUniform, QNormal, QUniform, Randint, Uniform, as_distribution, check_distribution,
    distribution_from_dict, sample_value,
)

EXAMPLES = [
    Choice([600, 800]), Choice(["sgd", "adam"]), Randint(5), Uniform(0.0001, 0.01), LogUniform(-9.2, -2.3),
    QUniform(1, 10, 1), QLogUniform(0, 3, 2), Normal(0.5, 0.1), LogNormal(-3, 0.5), QNormal(16, 4, 2),
    QLogNormal(3, 0.5, 1),
]


@pytest.mark.parametrize("dist", EXAMPLES, ids=lambda d: d.type)
def test_round_trip(dist):
    data = dist.to_dict()
    assert data["type"] == dist.type
    assert distribution_from_dict(data) == dist
    assert as_distribution(data) == dist


def test_every_type_has_an_example():
    assert {d.type for d in EXAMPLES} == set(DISTRIBUTIONS)
    assert set(DISTRIBUTIONS) == {"choice", "randint", "uniform", "loguniform", "quniform", "qloguniform",
                                  "normal", "lognormal", "qnormal", "qlognormal"}


def test_yaml_forms():
    assert Uniform(0.1, 0.2).to_dict() == {"type": "uniform", "min_value": 0.1, "max_value": 0.2}
    assert Choice((1, 2)).to_dict() == {"type": "choice", "values": [1, 2]}
    assert Randint(3).to_dict() == {"type": "randint", "upper": 3}
    assert QNormal(1, 2, 3).to_dict() == {"type": "qnormal", "mu": 1, "sigma": 2, "q": 3}
    assert distribution_from_dict({"type": "LogUniform", "min_value": "-9", "max_value": "1e-1"}) == LogUniform(-9, 0.1)


@pytest.mark.parametrize("build, pattern", [
    (lambda: Choice([]), "choice: values is empty"),
    (lambda: Choice("abc"), "choice: values 'abc' is not a list"),
    (lambda: Randint(0), "randint: upper 0 is not allowed"),
    (lambda: Randint(2.5), "randint: upper 2.5 is not allowed"),
    (lambda: Uniform(1, 1), "uniform: min_value 1 must be less than max_value 1"),
    (lambda: Uniform(2, 1), "uniform: min_value 2 must be less than max_value 1"),
    (lambda: LogUniform(0, float("inf")), "loguniform: max_value inf is not a finite number"),
    (lambda: QUniform(0, 1, 0), "quniform: q 0 is not allowed"),
    (lambda: QLogUniform(0, 1, -1), "qloguniform: q -1 is not allowed"),
    (lambda: Normal(0, 0), "normal: sigma 0 is not allowed"),
    (lambda: LogNormal(0, -1), "lognormal: sigma -1 is not allowed"),
    (lambda: QNormal(0, 1, 0), "qnormal: q 0 is not allowed"),
    (lambda: QLogNormal("x", 1, 1), "qlognormal: mu 'x' is not a finite number"),
    (lambda: Uniform(True, 2), "uniform: min_value True is not a finite number"),
])
def test_constructors_validate(build, pattern):
    with pytest.raises(SpecError, match=pattern):
        build()


@pytest.mark.parametrize("data, pattern", [
    ({"type": "unifrom", "min_value": 0, "max_value": 1}, "type: 'unifrom' is not a distribution.*did you mean 'uniform'"),
    ({"type": "uniform", "min_value": 0}, "uniform: missing max_value"),
    ({"type": "uniform", "min_value": 0, "max_value": 1, "q": 1}, "uniform: 'q' is not a field of uniform"),
    ({"type": "choice", "value": [1]}, "did you mean 'values'"),
    ({"min_value": 0}, "distribution: .* has no type"),
])
def test_from_dict_errors(data, pattern):
    with pytest.raises(SpecError, match=pattern):
        distribution_from_dict(data)


def test_from_dict_error_names_the_key():
    with pytest.raises(SpecError, match="^learning_rate: uniform: min_value 2 must be less"):
        distribution_from_dict({"type": "uniform", "min_value": 2, "max_value": 1}, "learning_rate")


def test_as_distribution_fixed_values_and_foreign_objects():
    assert as_distribution(0.01) is None
    assert as_distribution({"apply_mosaic_for_yolo": False}) is None

    class AzureUniform:  # the shape of azure-ai-ml's sweep distributions
        def __init__(self):
            self.type = "uniform"
            self.min_value = 0.1
            self.max_value = 0.2
            self._private = "ignored"

    assert as_distribution(AzureUniform()) == Uniform(0.1, 0.2)


@pytest.mark.parametrize("dist", EXAMPLES, ids=lambda d: d.type)
def test_samples_lie_in_support(dist):
    rng = random.Random(1)
    for _ in range(200):
        value = dist.sample(rng)
        support = dist.support()
        if isinstance(dist, Choice):
            assert value in dist.values
        elif support is not None:
            assert support[0] - 1e-12 <= value <= support[1] + 1e-12
        if dist.gives_ints():
            assert float(value).is_integer()
        if hasattr(dist, "q"):
            assert math.isclose(value / dist.q, round(value / dist.q), abs_tol=1e-9)


def test_sampling_is_reproducible():
    first = [d.sample(random.Random(7)) for d in EXAMPLES]
    second = [d.sample(random.Random(7)) for d in EXAMPLES]
    assert first == second


def test_loguniform_uses_exponents():
    rng = random.Random(0)
    values = [LogUniform(math.log(1e-4), math.log(1e-2)).sample(rng) for _ in range(500)]
    assert 1e-4 <= min(values) and max(values) <= 1e-2
    below = sum(v < 1e-3 for v in values)
    assert 180 < below < 320  # half the mass below the geometric middle


def test_quniform_semantics():
    assert QUniform(1, 10, 4).support() == (0, 8)  # round(1/4)*4, round(10/4)*4 (Python rounds 2.5 to 2)
    assert QUniform(1, 11, 4).support() == (0, 12)
    assert Randint(3).support() == (0, 2)


# ----- checks against parameters
def test_choice_values_checked_and_canonicalised():
    assert check_distribution(PARAMETERS["optimizer"], Choice(["SGD", "Adam"]), MULTICLASS) == Choice(["sgd", "adam"])
    with pytest.raises(SpecError, match="^optimizer: choice value 'lion' is not allowed"):
        check_distribution(PARAMETERS["optimizer"], Choice(["sgd", "lion"]), MULTICLASS)
    with pytest.raises(SpecError, match="^learning_rate: choice value 2 is out of range"):
        check_distribution(PARAMETERS["learning_rate"], Choice([0.1, 2]), MULTICLASS)


def test_bounded_distribution_must_stay_in_range():
    with pytest.raises(SpecError) as info:
        check_distribution(PARAMETERS["learning_rate"], Uniform(0, 2), MULTICLASS)
    assert str(info.value).startswith("learning_rate: uniform(min_value=0, max_value=2) can give values in [0, 2]")
    assert "allowed: float in [0, 1]" in str(info.value)
    assert check_distribution(PARAMETERS["learning_rate"], Uniform(0, 1), MULTICLASS) == Uniform(0, 1)
    assert check_distribution(PARAMETERS["learning_rate"], LogUniform(-9, 0), MULTICLASS)
    with pytest.raises(SpecError, match="loguniform.*can give values in"):
        check_distribution(PARAMETERS["learning_rate"], LogUniform(-9, 1), MULTICLASS)


def test_open_bound_rejects_reaching_it():
    with pytest.raises(SpecError, match="tile_overlap_ratio"):
        check_distribution(PARAMETERS["tile_overlap_ratio"], Uniform(0, 1), DETECTION)
    assert check_distribution(PARAMETERS["tile_overlap_ratio"], Uniform(0, 0.5), DETECTION)
    with pytest.raises(SpecError, match="number_of_epochs: randint.*can give values in \\[0, 9\\]"):
        check_distribution(PARAMETERS["number_of_epochs"], Randint(10), MULTICLASS)


def test_int_parameters_need_int_distributions():
    param = PARAMETERS["number_of_epochs"]
    with pytest.raises(SpecError, match="number_of_epochs: uniform gives floats but number_of_epochs is an int"):
        check_distribution(param, Uniform(1, 10), MULTICLASS)
    with pytest.raises(SpecError, match="quniform gives floats"):
        check_distribution(param, QUniform(1, 10, 0.5), MULTICLASS)
    assert check_distribution(param, QUniform(1, 10, 1), MULTICLASS)
    assert check_distribution(param, QUniform(2, 10, 2.0), MULTICLASS)
    assert check_distribution(param, QLogUniform(0, 3, 1), MULTICLASS)
    assert check_distribution(param, Choice([5, 10]), MULTICLASS)
    assert check_distribution(PARAMETERS["number_of_workers"], Randint(4), MULTICLASS)
    with pytest.raises(SpecError, match="normal gives floats"):
        check_distribution(param, Normal(10, 2), MULTICLASS)


def test_quniform_rounding_past_the_bound_is_caught():
    # round(1 / 4) * 4 == 0, which number_of_epochs does not allow
    with pytest.raises(SpecError, match="can give values in \\[0, 8\\]"):
        check_distribution(PARAMETERS["number_of_epochs"], QUniform(1, 10, 4), MULTICLASS)


def test_non_numeric_parameters_take_choice_only():
    with pytest.raises(SpecError, match="optimizer: a uniform distribution cannot drive a choice parameter"):
        check_distribution(PARAMETERS["optimizer"], Uniform(0, 1), MULTICLASS)
    with pytest.raises(SpecError, match="tile_grid_size: a randint distribution cannot drive a str parameter"):
        check_distribution(PARAMETERS["tile_grid_size"], Randint(3), DETECTION)
    assert check_distribution(PARAMETERS["nesterov"], Randint(2), MULTICLASS)
    assert check_distribution(PARAMETERS["weighted_loss"], Randint(3), MULTICLASS)
    with pytest.raises(SpecError, match="weighted_loss: randint\\(upper=4\\) can give 3"):
        check_distribution(PARAMETERS["weighted_loss"], Randint(4), MULTICLASS)


def test_unbounded_distributions_accepted_when_centred_in_range_and_clipped():
    param = PARAMETERS["learning_rate"]
    assert check_distribution(param, Normal(0.5, 10), MULTICLASS)
    assert check_distribution(param, LogNormal(-4, 2), MULTICLASS)
    with pytest.raises(SpecError, match="learning_rate: normal\\(mu=5, sigma=1\\) is centred at 5"):
        check_distribution(param, Normal(5, 1), MULTICLASS)
    rng = random.Random(3)
    values = [sample_value(Normal(0.5, 10), param, MULTICLASS, rng) for _ in range(200)]
    assert all(0 <= v <= 1 for v in values) and 0.0 in values and 1.0 in values


def test_sample_value_gives_valid_ints():
    rng = random.Random(4)
    epochs = PARAMETERS["number_of_epochs"]
    values = [sample_value(QNormal(2, 5, 1), epochs, MULTICLASS, rng) for _ in range(200)]
    assert all(type(v) is int and v >= 1 for v in values)
    ratio = PARAMETERS["tile_overlap_ratio"]
    values = [sample_value(Normal(0.9, 1), ratio, DETECTION, rng) for _ in range(200)]
    assert all(0 <= v < 1 for v in values)


def test_distributions_are_frozen():
    with pytest.raises(Exception):
        Uniform(0, 1).min_value = 3
