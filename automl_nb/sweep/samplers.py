"""Samplers of a sweep: which hyperparameters each trial gets (SPEC section 5).

A sampler is a plug-in with no I/O: the sweep driver asks ``suggest(index)`` for trial 0, 1, 2...,
stores ``state(index)`` in the run folder, and ``tell(index, value)`` the trial's final best
primary metric (maximised; None when it failed). After a kernel restart a new driver session
``restore``s the earlier trials and carries on.

Every value a sampler returns is canonical: distributions are drawn through
:func:`automl_nb.spec.sample_value`, which clips unbounded draws into the parameter's range and
coerces them (an int parameter gets an int), and fixed values were canonicalised by
:func:`automl_nb.spec.check_search_space`.

- ``random``: trial ``i`` draws with ``random.Random(f"{seed}:{i}")``: a subspace uniformly, then
  each key in order. Stateless, so a resumed sweep reproduces the same sequence.
- ``grid``: every point of every subspace, in subspace order, then the cartesian product of the
  choices in key order (the last key varies fastest). Points two subspaces share are tried
  twice. ``capacity`` is the number of points; ``suggest`` returns None past the end.
- ``bayesian``: Optuna's TPE in ask-and-tell, see :mod:`automl_nb.sweep.bayesian`.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any, Mapping, Protocol, Sequence

from automl_nb.errors import SpecError
from automl_nb.spec import (
    Choice, Distribution, check_grid, check_search_space, get_parameter, is_sagemaker_mode, sample_value,
)
from automl_nb.spec.sweep_settings import check_sampling_algorithm

SUBSPACE = "subspace"


class Sampler(Protocol):
    """What the sweep driver asks of a sampler.

    Attributes:
        capacity: the number of distinct points (grid), None when unbounded.
    """

    capacity: int | None

    def suggest(self, index: int) -> dict[str, Any] | None:
        """Sampled values for trial ``index`` (asked in increasing order); None when exhausted."""

    def state(self, index: int) -> dict:
        """A JSON-able record of what was asked for ``index``, for :meth:`restore`."""

    def restore(self, index: int, state: dict, value: float | None, finished: bool) -> None:
        """Re-register a trial asked by an earlier driver session."""

    def tell(self, index: int, value: float | None) -> None:
        """Report the trial's final best primary metric (maximised); None: failed, no metric."""

    def narrow(self, subspaces: list[dict], first_index: int, sagemaker: Sequence[bool] = ()) -> None:
        """Draw trials ``first_index`` on from ``subspaces`` (checked to lie within the job's space,
        same subspaces and keys; see ``automl_nb.sweep.steering.check_narrow``). Optional: a
        sampler without it cannot be narrowed."""


def startup_trials(max_trials: int) -> int:
    """Random trials the bayesian sampler runs before TPE models anything: ``min(10, max(3, max_trials // 4))``."""
    return min(10, max(3, max_trials // 4))


def make_sampler(algorithm: str, task: str, subspaces: list[dict], training_parameters: Mapping[str, Any],
                 seed: int, max_trials: int) -> Sampler:
    """Build the sampler of a manual sweep.

    Args:
        algorithm: ``random``, ``grid`` or ``bayesian`` (any casing).
        task: the job's task.
        subspaces: ``job.search_space``: subspaces mapping keys to Distributions or fixed values.
        training_parameters: the job's fixed training parameters (not part of the suggestions).
        seed: the sweep's seed.
        max_trials: the sweep's trial budget (sizes the bayesian sampler's random start).

    Returns:
        A :class:`Sampler`.

    Raises:
        SpecError: unknown algorithm, empty or invalid search space, grid over a non-choice.
        ValueError: seed or max_trials not an int (max_trials >= 1).

    Example:
        >>> from automl_nb.spec import Choice, Uniform
        >>> space = [{"model_name": Choice(["yolov5"]), "learning_rate": Uniform(1e-4, 1e-2)}]
        >>> sampler = make_sampler("random", "image_object_detection", space, {}, seed=0, max_trials=4)
        >>> sorted(sampler.suggest(0))
        ['learning_rate', 'model_name']
    """
    algorithm = check_sampling_algorithm(algorithm)
    check_int("seed", seed, None)
    check_int("max_trials", max_trials, 1)
    if not subspaces:
        raise SpecError(f"search_space: {subspaces!r} is empty; {algorithm} sampling needs at least one subspace")
    checked = check_search_space(task, subspaces, training_parameters)
    modes = sagemaker_modes(checked, training_parameters)
    if algorithm == "random":
        return RandomSampler(task, checked, seed, modes)
    if algorithm == "grid":
        return GridSampler(task, checked)
    from automl_nb.sweep.bayesian import BayesianSampler

    return BayesianSampler(task, checked, seed, startup_trials(max_trials), sagemaker=modes)


def check_int(name: str, value: Any, minimum: int | None) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        allowed = "int" if minimum is None else f"int >= {minimum}"
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: {allowed}")


def check_index(index: Any) -> None:
    """Raise ValueError unless ``index`` is a trial index (an int >= 0)."""
    check_int("index", index, 0)


def check_state_algorithm(state: Any, algorithm: str) -> None:
    """Raise ValueError unless ``state`` was saved by a sampler of ``algorithm``."""
    if not isinstance(state, Mapping) or state.get("algorithm") != algorithm:
        raise ValueError(f"state: {state!r} was not made by a {algorithm} sampler; resume the sweep with the "
                         f"sampling_algorithm it was started with")


def draw_value(task: str, key: str, value: Any, rng: Any, sagemaker_mode: bool = False) -> Any:
    """One key of a suggestion: a distribution drawn through the spec (clipped into the range of the
    job's mode: SageMaker's where ``sagemaker_mode``), a fixed value copied."""
    if isinstance(value, Distribution):
        parameter = get_parameter(key)
        return sample_value(value, parameter.in_sagemaker_mode() if sagemaker_mode else parameter, task, rng)
    return copy.deepcopy(value)


def sagemaker_modes(subspaces: Sequence[Mapping[str, Any]], training_parameters: Mapping[str, Any]) -> list[bool]:
    """Per subspace, whether its trials train SageMaker's SSD (SageMaker keys and no model_name)."""
    return [is_sagemaker_mode({**training_parameters, **subspace}) for subspace in subspaces]


# ----- random
class RandomSampler:
    """Independent random draws: trial ``i``'s values depend only on ``(seed, i)``."""

    capacity: int | None = None

    def __init__(self, task: str, subspaces: Sequence[Mapping[str, Any]], seed: int,
                 sagemaker: Sequence[bool] = ()) -> None:
        """Args: task; checked subspaces (``check_search_space``); seed; per subspace, whether it is in
        SageMaker mode (:func:`sagemaker_modes`; default: none is)."""
        self._task = task
        self._subspaces = [dict(subspace) for subspace in subspaces]
        self._seed = seed
        self._sagemaker = list(sagemaker) or [False] * len(self._subspaces)

    def _choose(self, index: int) -> tuple[int, dict[str, Any]]:
        # A string seed is hashed with SHA-512 by random.Random: stable across processes and versions.
        rng = random.Random(f"{self._seed}:{index}")
        chosen = rng.randrange(len(self._subspaces))
        subspace = self._subspaces[chosen]
        mode = self._sagemaker[chosen]
        return chosen, {key: draw_value(self._task, key, value, rng, mode) for key, value in subspace.items()}

    def suggest(self, index: int) -> dict[str, Any]:
        """Return the values of trial ``index`` (never exhausted)."""
        check_index(index)
        return self._choose(index)[1]

    def state(self, index: int) -> dict:
        """Return ``{"algorithm": "random", "seed": ..., "subspace": ...}``."""
        check_index(index)
        return {"algorithm": "random", "seed": self._seed, "subspace": self._choose(index)[0]}

    def restore(self, index: int, state: dict, value: float | None, finished: bool) -> None:
        """Check the state came from this sampler; draws are stateless, so nothing is re-registered.

        Raises:
            ValueError: a state of another algorithm or seed (the sequence would not be reproduced).
        """
        check_index(index)
        check_state_algorithm(state, "random")
        if state.get("seed") != self._seed:
            raise ValueError(f"state: seed {state.get('seed')!r} differs from this sweep's seed {self._seed!r}; "
                             "resume with the seed the sweep started with")

    def tell(self, index: int, value: float | None) -> None:
        """Random sampling learns nothing from results."""

    def narrow(self, subspaces: list[dict], first_index: int, sagemaker: Sequence[bool] = ()) -> None:
        """Draw from ``subspaces`` from now on (draws stay a function of ``(seed, index)``)."""
        self._subspaces = [dict(subspace) for subspace in subspaces]
        self._sagemaker = list(sagemaker) or [False] * len(self._subspaces)


# ----- grid
class GridSampler:
    """Every point of every subspace, in subspace order, then key order (last key fastest)."""

    def __init__(self, task: str, subspaces: Sequence[Mapping[str, Any]]) -> None:
        """Args: task; checked subspaces whose distributions are all choices.

        Raises:
            SpecError: a distribution that is not a choice.
        """
        check_grid(list(subspaces))
        self._task = task
        # One axis per key: (key, canonical values); a fixed value is an axis of one value.
        self._axes: list[list[tuple[str, tuple]]] = []
        for subspace in subspaces:
            axes = []
            for key, value in subspace.items():
                values = value.values if isinstance(value, Choice) else (value,)
                axes.append((key, tuple(get_parameter(key).coerce(item, task) for item in values)))
            self._axes.append(axes)
        self._sizes = [math.prod(len(values) for _, values in axes) for axes in self._axes]
        self._first = 0  # the sweep index of grid point 0 (moved by narrow)
        self.capacity: int | None = sum(self._sizes)

    def _locate(self, index: int) -> tuple[int, int] | None:
        """(subspace, position inside it) of grid point ``index``, None past the end."""
        index -= self._first
        if index < 0:  # drawn before a narrow: not a point of this grid
            return None
        for chosen, size in enumerate(self._sizes):
            if index < size:
                return chosen, index
            index -= size
        return None

    def suggest(self, index: int) -> dict[str, Any] | None:
        """Return grid point ``index``, or None when every point was given."""
        check_index(index)
        located = self._locate(index)
        if located is None:
            return None
        chosen, position = located
        point = {}
        # Mixed-radix decoding, last axis fastest, so the grid is never built in memory.
        for key, values in reversed(self._axes[chosen]):
            position, digit = divmod(position, len(values))
            point[key] = copy.deepcopy(values[digit])
        return {key: point[key] for key, _ in self._axes[chosen]}

    def state(self, index: int) -> dict:
        """Return ``{"algorithm": "grid", "subspace": ..., "point": ...}`` (point inside the subspace)."""
        check_index(index)
        chosen, position = self._locate(index) or (None, None)
        return {"algorithm": "grid", "subspace": chosen, "point": position}

    def restore(self, index: int, state: dict, value: float | None, finished: bool) -> None:
        """Check the state came from a grid sampler; the grid order is fixed, so nothing else to do."""
        check_index(index)
        check_state_algorithm(state, "grid")

    def tell(self, index: int, value: float | None) -> None:
        """Grid sampling learns nothing from results."""

    def narrow(self, subspaces: list[dict], first_index: int, sagemaker: Sequence[bool] = ()) -> None:
        """Enumerate the grid of ``subspaces`` from trial ``first_index`` on (points tried before may come again)."""
        narrowed = GridSampler(self._task, subspaces)
        self._axes, self._sizes, self._first = narrowed._axes, narrowed._sizes, first_index
        self.capacity = first_index + sum(self._sizes)


# ----- bayesian (Optuna TPE)
