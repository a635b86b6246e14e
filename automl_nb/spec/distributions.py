"""Search-space distributions (SPEC section 5), in the Azure ML SDK v2 / CLI v2 shape.

Semantics follow Azure ML's documented sweep distributions:

- ``choice(values)``: one of the values.
- ``randint(upper)``: an int in ``[0, upper)``.
- ``uniform(min_value, max_value)``: a float in ``[min_value, max_value]``.
- ``loguniform(min_value, max_value)``: ``exp(uniform(min_value, max_value))``; the bounds are
  exponents (natural log), as in Azure, so ``loguniform(-9.2, -2.3)`` spans about 1e-4..0.1.
- ``quniform(min_value, max_value, q)``: ``round(uniform(min_value, max_value) / q) * q``.
- ``qloguniform(min_value, max_value, q)``: ``round(exp(uniform(min_value, max_value)) / q) * q``.
- ``normal(mu, sigma)``, ``lognormal(mu, sigma)`` = ``exp(normal(mu, sigma))``, and their ``q``
  variants ``qnormal``/``qlognormal`` rounded as above.

Checking a distribution against a parameter (:func:`check_distribution`):

- ``choice``: every value is checked (and canonicalised) by the parameter.
- bounded distributions (randint, uniform and loguniform families): every value they can give
  must be allowed; ``uniform(0, 2)`` for ``learning_rate`` (float in [0, 1]) is rejected.
- unbounded distributions (normal and lognormal families) are accepted when their centre
  (``mu``, or ``exp(mu)`` for the log ones) is allowed; a sample outside the range is clipped
  to the nearest allowed value by :func:`sample_value`. Rejecting them would make them useless,
  since nearly every parameter is bounded.
- an int parameter needs a distribution of ints: choice, randint, or a q-variant with an
  integer ``q``; bool and choice parameters take choice (or randint over allowed ints);
  string and JSON parameters take choice only.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from automl_nb.errors import SpecError
from automl_nb.spec._checks import did_you_mean, fail, is_number, show, to_float, to_int
from automl_nb.spec.parameter import Parameter


def _number(dist_type: str, name: str, value: Any) -> float:
    """A finite number; numeric strings (YAML reads ``1e-4`` as text) become floats."""
    try:
        number = to_float(value) if isinstance(value, str) else value
    except ValueError:
        number = None
    if not (is_number(number) and math.isfinite(number)):
        fail(dist_type, f"{name} {show(value)} is not a finite number")
    return number


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _quantize(x: float, q: float) -> float:
    return round(x / q) * q


class Distribution:
    """Base of the distributions: ``to_dict``, ``sample`` and the YAML ``type`` name."""

    type: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the YAML form, e.g. ``{"type": "uniform", "min_value": 0.0, "max_value": 1.0}``."""
        result: dict[str, Any] = {"type": self.type}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            result[item.name] = list(value) if isinstance(value, tuple) else value
        return result

    def sample(self, rng: random.Random) -> Any:
        """Draw one value with ``rng``."""
        raise NotImplementedError

    def support(self) -> tuple[float, float] | None:
        """The smallest and largest value it can give, or None when unbounded."""
        return None

    def gives_ints(self) -> bool:
        """True when every sample is an integer (so it may drive an int parameter)."""
        return False


@dataclass(frozen=True)
class Choice(Distribution):
    """One of ``values`` (any values the parameter allows)."""

    values: tuple
    type: ClassVar[str] = "choice"

    def __post_init__(self) -> None:
        if isinstance(self.values, (str, bytes, Mapping)) or not hasattr(self.values, "__iter__"):
            fail(self.type, f"values {show(self.values)} is not a list")
        values = tuple(self.values)
        if not values:
            fail(self.type, "values is empty; give at least one value")
        object.__setattr__(self, "values", values)

    def sample(self, rng: random.Random) -> Any:
        return copy.deepcopy(rng.choice(self.values))


@dataclass(frozen=True)
class Randint(Distribution):
    """An int in ``[0, upper)``."""

    upper: int
    type: ClassVar[str] = "randint"

    def __post_init__(self) -> None:
        try:
            upper = to_int(self.upper)
        except ValueError:
            upper = 0
        if upper < 1:
            fail(self.type, f"upper {show(self.upper)} is not allowed; allowed: int >= 1")
        object.__setattr__(self, "upper", upper)

    def sample(self, rng: random.Random) -> int:
        return rng.randrange(self.upper)

    def support(self) -> tuple[float, float]:
        return (0, self.upper - 1)

    def gives_ints(self) -> bool:
        return True


@dataclass(frozen=True)
class _Bounded(Distribution):
    min_value: float
    max_value: float

    def __post_init__(self) -> None:
        for name in ("min_value", "max_value"):
            object.__setattr__(self, name, _number(self.type, name, getattr(self, name)))
        if not self.min_value < self.max_value:
            fail(self.type, f"min_value {show(self.min_value)} must be less than max_value {show(self.max_value)}")
        _check_q(self)


@dataclass(frozen=True)
class _Centred(Distribution):
    mu: float
    sigma: float

    def __post_init__(self) -> None:
        for name in ("mu", "sigma"):
            object.__setattr__(self, name, _number(self.type, name, getattr(self, name)))
        if not self.sigma > 0:
            fail(self.type, f"sigma {show(self.sigma)} is not allowed; allowed: float > 0")
        _check_q(self)

    def centre(self) -> float:
        """The median of the distribution: ``mu``, or ``exp(mu)`` for the log ones."""
        return self.mu


def _check_q(dist: Distribution) -> None:
    if not hasattr(dist, "q"):
        return
    object.__setattr__(dist, "q", _number(dist.type, "q", dist.q))
    if not dist.q > 0:
        fail(dist.type, f"q {show(dist.q)} is not allowed; allowed: number > 0")


def _integral(q: float) -> bool:
    return float(q).is_integer()


@dataclass(frozen=True)
class Uniform(_Bounded):
    """A float in ``[min_value, max_value]``."""

    type: ClassVar[str] = "uniform"

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.min_value, self.max_value)

    def support(self) -> tuple[float, float]:
        return (self.min_value, self.max_value)


@dataclass(frozen=True)
class LogUniform(_Bounded):
    """``exp(uniform(min_value, max_value))``: the bounds are natural-log exponents (Azure)."""

    type: ClassVar[str] = "loguniform"

    def sample(self, rng: random.Random) -> float:
        return _exp(rng.uniform(self.min_value, self.max_value))

    def support(self) -> tuple[float, float]:
        return (_exp(self.min_value), _exp(self.max_value))


@dataclass(frozen=True)
class QUniform(_Bounded):
    """``round(uniform(min_value, max_value) / q) * q``."""

    q: float
    type: ClassVar[str] = "quniform"

    def sample(self, rng: random.Random) -> float:
        return _quantize(rng.uniform(self.min_value, self.max_value), self.q)

    def support(self) -> tuple[float, float]:
        return (_quantize(self.min_value, self.q), _quantize(self.max_value, self.q))

    def gives_ints(self) -> bool:
        return _integral(self.q)


@dataclass(frozen=True)
class QLogUniform(_Bounded):
    """``round(exp(uniform(min_value, max_value)) / q) * q``."""

    q: float
    type: ClassVar[str] = "qloguniform"

    def sample(self, rng: random.Random) -> float:
        return _quantize(_exp(rng.uniform(self.min_value, self.max_value)), self.q)

    def support(self) -> tuple[float, float]:
        return (_quantize(_exp(self.min_value), self.q), _quantize(_exp(self.max_value), self.q))

    def gives_ints(self) -> bool:
        return _integral(self.q)


@dataclass(frozen=True)
class Normal(_Centred):
    """``normal(mu, sigma)`` (unbounded: samples are clipped to the parameter's range)."""

    type: ClassVar[str] = "normal"

    def sample(self, rng: random.Random) -> float:
        return rng.gauss(self.mu, self.sigma)


@dataclass(frozen=True)
class LogNormal(_Centred):
    """``exp(normal(mu, sigma))``."""

    type: ClassVar[str] = "lognormal"

    def sample(self, rng: random.Random) -> float:
        return _exp(rng.gauss(self.mu, self.sigma))

    def centre(self) -> float:
        return _exp(self.mu)


@dataclass(frozen=True)
class QNormal(_Centred):
    """``round(normal(mu, sigma) / q) * q``."""

    q: float
    type: ClassVar[str] = "qnormal"

    def sample(self, rng: random.Random) -> float:
        return _quantize(rng.gauss(self.mu, self.sigma), self.q)

    def gives_ints(self) -> bool:
        return _integral(self.q)


@dataclass(frozen=True)
class QLogNormal(_Centred):
    """``round(exp(normal(mu, sigma)) / q) * q``."""

    q: float
    type: ClassVar[str] = "qlognormal"

    def sample(self, rng: random.Random) -> float:
        return _quantize(_exp(rng.gauss(self.mu, self.sigma)), self.q)

    def centre(self) -> float:
        return _exp(self.mu)

    def gives_ints(self) -> bool:
        return _integral(self.q)


DISTRIBUTIONS: Mapping[str, type] = MappingProxyType({
    cls.type: cls for cls in (Choice, Randint, Uniform, LogUniform, QUniform, QLogUniform,
                              Normal, LogNormal, QNormal, QLogNormal)
})


def distribution_from_dict(data: Mapping[str, Any], key: str | None = None) -> Distribution:
    """Build a distribution from its YAML form ``{type: uniform, min_value: .., max_value: ..}``.

    Args:
        data: a mapping with ``type`` (case-insensitive) and the fields of that type.
        key: the hyperparameter it is for, put at the start of error messages.

    Returns:
        The distribution.

    Raises:
        SpecError: unknown type or field, missing field, invalid field value.

    Example:
        >>> distribution_from_dict({"type": "choice", "values": [600, 800]})
        Choice(values=(600, 800))
    """
    try:
        return _from_dict(data)
    except SpecError as error:
        if key is None:
            raise
        raise SpecError(f"{key}: {error}") from None


def _from_dict(data: Mapping[str, Any]) -> Distribution:
    if not isinstance(data, Mapping) or "type" not in data:
        fail("distribution", f"{show(data)} has no type; allowed: a mapping with type: one of {', '.join(DISTRIBUTIONS)}")
    name = str(data["type"]).strip().lower()
    if name not in DISTRIBUTIONS:
        fail("type", f"{show(data['type'])} is not a distribution; allowed: one of "
             f"{', '.join(DISTRIBUTIONS)}{did_you_mean(name, DISTRIBUTIONS)}")
    cls = DISTRIBUTIONS[name]
    fields = [item.name for item in dataclasses.fields(cls)]
    for field_name in data:
        if field_name != "type" and field_name not in fields:
            fail(name, f"{show(field_name)} is not a field of {name}; allowed: {', '.join(fields)}"
                 f"{did_you_mean(str(field_name), fields)}")
    missing = [field_name for field_name in fields if field_name not in data]
    if missing:
        fail(name, f"missing {', '.join(missing)}; {name} needs {', '.join(fields)}")
    return cls(**{field_name: data[field_name] for field_name in fields})


def as_distribution(value: Any, key: str | None = None) -> Distribution | None:
    """Return the distribution a search-space value stands for, or None for a fixed value.

    Accepts our distributions, YAML mappings with a ``type``, and objects with a ``type``
    attribute naming a distribution and fields as attributes (e.g. azure-ai-ml's ``Uniform``).

    Raises:
        SpecError: for a malformed distribution.
    """
    if isinstance(value, Distribution):
        return value
    if isinstance(value, Mapping):
        return distribution_from_dict(value, key) if "type" in value else None
    kind = getattr(value, "type", None)
    if isinstance(kind, str) and kind.strip().lower() in DISTRIBUTIONS:
        fields = {name: item for name, item in vars(value).items() if not name.startswith("_")}
        return distribution_from_dict(fields, key)
    return None


def check_distribution(param: Parameter, dist: Distribution, task: str, key: str | None = None) -> Distribution:
    """Check that every value a distribution can give suits the parameter.

    Args:
        param: the hyperparameter.
        dist: the distribution for it.
        task: the job's task (choices depend on it).
        key: the name for messages (default: the parameter's name).

    Returns:
        The distribution; a Choice comes back with canonical values (``"Adam"`` -> ``"adam"``).

    Raises:
        SpecError: naming the key, the distribution and what is allowed.
    """
    key = key or param.name
    allowed = param.allowed_text(task)
    if isinstance(dist, Choice):
        values = []
        for value in dist.values:
            try:
                values.append(param.coerce(value, task))
            except SpecError as error:
                raise SpecError(f"{key}: choice value {str(error).split(': ', 1)[1]}") from None
        return Choice(tuple(values))
    if param.kind not in ("int", "float"):
        if isinstance(dist, Randint) and param.kind in ("bool", "choice"):
            for value in range(dist.upper):
                try:
                    param.coerce(value, task)
                except SpecError:
                    fail(key, f"randint(upper={dist.upper}) can give {value}, which is not allowed; allowed: {allowed}")
            return dist
        fail(key, f"a {dist.type} distribution cannot drive a {param.kind} parameter; use choice "
             f"(e.g. {{type: choice, values: [...]}}); allowed values: {allowed}")
    if param.kind == "int" and not dist.gives_ints():
        fail(key, f"{dist.type} gives floats but {key} is an int; use choice, randint or a q-distribution "
             f"with an integer q (e.g. quniform with q: 1); allowed: {allowed}")
    support = dist.support()
    if support is not None:
        low, high = support
        if not (param.in_range(low) and param.in_range(high)):
            fail(key, f"{_describe(dist)} can give values in [{low:g}, {high:g}], outside what is allowed; "
                 f"allowed: {allowed}")
    else:
        centre = dist.centre()
        if not param.in_range(centre):
            fail(key, f"{_describe(dist)} is centred at {centre:g}, outside what is allowed; allowed: {allowed}")
    return dist


def _describe(dist: Distribution) -> str:
    fields = ", ".join(f"{name}={value!r}" for name, value in dist.to_dict().items() if name != "type")
    return f"{dist.type}({fields})"


def sample_value(dist: Distribution, param: Parameter, task: str, rng: random.Random) -> Any:
    """Draw a value for a parameter: sample, clip an unbounded draw into range, canonicalise.

    Args:
        dist: a distribution that passed :func:`check_distribution` for ``param``.
        param: the hyperparameter.
        task: the job's task.
        rng: the random generator (owned by the caller).

    Returns:
        A value the parameter accepts (an int for int parameters).
    """
    value = dist.sample(rng)
    if param.kind in ("int", "float") and is_number(value):
        value = param.clip(value)
        if param.kind == "int":
            value = int(round(value))
    return param.coerce(value, task)
