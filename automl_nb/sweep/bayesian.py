"""The ``bayesian`` sampler: Optuna's TPE behind the sampler protocol of :mod:`automl_nb.sweep.samplers`.

Optuna's TPE (``multivariate=True, group=True``) in ask-and-tell. With several subspaces the
categorical ``subspace`` picks one and each key is named ``"{subspace}.{key}"``, so ``group``
models each subspace on its own. ``n_startup_trials`` (random trials before TPE models
anything) is ``min(10, max(3, max_trials // 4))``: a quarter of a short sweep, never more than
Optuna's default. Each ``ask`` uses a sampler seeded from ``(seed, index)``, so a draw depends
only on the seed, the index and the trials told so far: the same seed and the same tells give
the same sequence, also across a restore.

Distributions on Optuna (then the spec's own ``Distribution.sample`` applies exp and
quantisation to Optuna's draw, and ``sample_value`` clips and coerces):

====================================  ===============================================================
ours                                  Optuna
====================================  ===============================================================
choice(values)                        categorical over the values; over their indices when a value is
                                      not a str/int/float/bool/None or two compare equal (1 and True)
randint(upper)                        int in [0, upper - 1]
uniform, quniform                     float in [min_value, max_value]
loguniform, qloguniform               float in [exp(min_value), exp(max_value)], log=True
normal, qnormal                       float in mu +/- 3 sigma, cut to the parameter's bounds
lognormal, qlognormal                 float in exp(mu +/- 3 sigma), log=True, cut to the bounds
====================================  ===============================================================
"""

from __future__ import annotations

import copy
import math
import random
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

from automl_nb.spec import (
    Choice, Distribution, LogNormal, LogUniform, QLogNormal, QLogUniform, Randint, get_parameter,
)
from automl_nb.sweep.samplers import SUBSPACE, check_index, check_state_algorithm, draw_value

_PLAIN_TYPES = (str, int, float, bool, type(None))
# Normal distributions are unbounded; Optuna needs bounds. +/- 3 sigma holds 99.7% of the mass.
_SIGMAS = 3.0

class _Replay:
    """Stands in for ``random.Random`` and hands ``Distribution.sample`` Optuna's draw.

    So the spec's own code turns Optuna's number into a value (exp for the log distributions,
    quantisation for the q ones) and ``sample_value`` clips and coerces it, exactly as for a
    random draw.
    """

    def __init__(self, draw: Any) -> None:
        self._draw = draw

    def uniform(self, low: float, high: float) -> float:
        return self._draw

    def gauss(self, mu: float, sigma: float) -> float:
        return self._draw

    def randrange(self, stop: int) -> int:
        return self._draw

    def choice(self, values: Sequence) -> Any:
        return values[self._draw]


def _is_log(dist: Distribution) -> bool:
    return isinstance(dist, (LogUniform, QLogUniform, LogNormal, QLogNormal))


def _plain_choices(values: tuple) -> bool:
    """True when Optuna can hold the values themselves: plain types, no two equal (1 == True)."""
    return all(isinstance(value, _PLAIN_TYPES) for value in values) and len(set(values)) == len(values)


def _centred_bounds(dist: Distribution, key: str) -> tuple[float, float]:
    """mu +/- 3 sigma (in log space for the log ones), cut to the parameter's bounds."""
    low, high = dist.mu - _SIGMAS * dist.sigma, dist.mu + _SIGMAS * dist.sigma
    if _is_log(dist):
        low, high = math.exp(low), math.exp(high)
    param = get_parameter(key)
    # Mass outside the bounds would all be clipped onto one value: no use to TPE.
    if param.minimum is not None and param.minimum > low:
        low = param.minimum
    if param.maximum is not None and param.maximum < high:
        high = param.maximum
    return low, high


def _optuna_distribution(dist: Distribution, key: str) -> Any:
    """The Optuna distribution that stands for one of ours (see the module docstring)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dist, Choice):
        choices = dist.values if _plain_choices(dist.values) else tuple(range(len(dist.values)))
        return CategoricalDistribution(choices)
    if isinstance(dist, Randint):
        return IntDistribution(0, dist.upper - 1)
    if hasattr(dist, "min_value"):
        if _is_log(dist):
            return FloatDistribution(math.exp(dist.min_value), math.exp(dist.max_value), log=True)
        return FloatDistribution(dist.min_value, dist.max_value)
    low, high = _centred_bounds(dist, key)
    return FloatDistribution(low, high, log=_is_log(dist))


def _to_draw(dist: Distribution, optuna_value: Any) -> Any:
    """Optuna's value as the draw ``Distribution.sample`` expects from its random generator."""
    if isinstance(dist, Choice):
        return dist.values.index(optuna_value) if _plain_choices(dist.values) else optuna_value
    if _is_log(dist):
        return math.log(optuna_value)
    return optuna_value


def _from_value(dist: Distribution, value: Any) -> Any:
    """The Optuna value that stands for one of our values (for the first points of AutoMode)."""
    if isinstance(dist, Choice):
        return value if _plain_choices(dist.values) else dist.values.index(value)
    return value


@contextmanager
def _quiet_optuna() -> Iterator[Any]:
    """Optuna logs every study and trial at INFO; keep a notebook's output to our own progress.

    Optuna's verbosity is process-wide: it is raised to WARNING only inside the block and put back.
    """
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    try:
        with warnings.catch_warnings():
            # multivariate/group/constant_liar are "experimental" in some Optuna versions.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield optuna
    finally:
        optuna.logging.set_verbosity(level)


class BayesianSampler:
    """Optuna TPE in ask-and-tell over (conditional) subspaces; see the module docstring."""

    capacity: int | None = None

    def __init__(self, task: str, subspaces: Sequence[Mapping[str, Any]], seed: int, n_startup_trials: int,
                 first_points: Sequence[Mapping[str, Any]] = (), sagemaker: Sequence[bool] = ()) -> None:
        """Create the study.

        Args:
            task: the job's task.
            subspaces: checked subspaces (``check_search_space``).
            seed: the sweep's seed.
            n_startup_trials: random trials before TPE models anything.
            first_points: values that trials 0, 1... take as they are (AutoMode's baselines); each
                must be a point of one subspace. TPE learns from them like from any other trial.
            sagemaker: per subspace, whether it is in SageMaker mode (draws are clipped into
                SageMaker's ranges); default: none is.

        Raises:
            ValueError: a first point that is not a point of any subspace.
        """
        self._task = task
        self._subspaces = [dict(subspace) for subspace in subspaces]
        self._sagemaker = list(sagemaker) or [False] * len(self._subspaces)
        self._seed = seed
        self._n_startup_trials = n_startup_trials
        self._optuna_spaces = self._spaces()
        self._first = [self._locate_point(point) for point in first_points]
        self._numbers: dict[int, int] = {}  # sweep index -> Optuna trial number
        self._asked: dict[int, tuple[int, dict[str, Any], dict[str, Any]]] = {}  # index -> (subspace, params, values)
        with _quiet_optuna() as optuna:
            self._study = optuna.create_study(direction="maximize", sampler=self._tpe(0))

    def _spaces(self) -> list[dict[str, Any]]:
        """Per subspace, the Optuna distribution of each distributed key, by its Optuna name."""
        return [{self._name(chosen, key): _optuna_distribution(value, key)
                 for key, value in subspace.items() if isinstance(value, Distribution)}
                for chosen, subspace in enumerate(self._subspaces)]

    def _name(self, chosen: int, key: str) -> str:
        return f"{chosen}.{key}" if len(self._subspaces) > 1 else key

    def _tpe(self, index: int) -> Any:
        """A TPE sampler seeded from (seed, index): a draw never depends on earlier asks' randomness."""
        from optuna.samplers import TPESampler

        seed = random.Random(f"{self._seed}:{index}").getrandbits(32)
        with _quiet_optuna():
            return TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                              n_startup_trials=self._n_startup_trials)

    # ----- moving between our values and Optuna's params
    def _params_of(self, chosen: int, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """Optuna params of ``values`` as a point of subspace ``chosen``, None when it is not one."""
        subspace = self._subspaces[chosen]
        if set(values) != set(subspace):
            return None
        params = {SUBSPACE: chosen} if len(self._subspaces) > 1 else {}
        for key, dist in subspace.items():
            if not isinstance(dist, Distribution):
                if values[key] != dist:
                    return None
                continue
            name = self._name(chosen, key)
            try:
                param = _from_value(dist, values[key])
            except ValueError:  # not one of the choices
                return None
            if not _within(self._optuna_spaces[chosen][name], param):
                return None
            params[name] = param
        return params

    def _locate_point(self, point: Mapping[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
        values = {key: get_parameter(key).coerce(value, self._task) for key, value in point.items()}
        for chosen in range(len(self._subspaces)):
            params = self._params_of(chosen, values)
            if params is not None:
                return chosen, params, values
        raise ValueError(f"first_points: {dict(point)!r} is not a point of any subspace of the search space")

    def _values_of(self, chosen: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """Our canonical values from Optuna's params (through the spec's sample and sample_value)."""
        values = {}
        for key, value in self._subspaces[chosen].items():
            if isinstance(value, Distribution):
                draw = _to_draw(value, params[self._name(chosen, key)])
                values[key] = draw_value(self._task, key, value, _Replay(draw), self._sagemaker[chosen])
            else:
                values[key] = copy.deepcopy(value)
        return values

    def _values_for(self, index: int, chosen: int, params: Mapping[str, Any]) -> dict[str, Any]:
        # A first point keeps its exact values (exp(log(x)) may differ from x in the last bit).
        if index < len(self._first) and self._first[index][:2] == (chosen, dict(params)):
            return copy.deepcopy(self._first[index][2])
        return self._values_of(chosen, params)

    # ----- the Sampler interface
    def suggest(self, index: int) -> dict[str, Any]:
        """Ask TPE for trial ``index`` (asking again returns the same values)."""
        check_index(index)
        if index not in self._asked:
            self._ask(index)
        return copy.deepcopy(self._asked[index][2])

    def _ask(self, index: int) -> None:
        self._study.sampler = self._tpe(index)
        with _quiet_optuna():
            if index < len(self._first):
                # Enqueued right before the ask, so this ask takes it: the trial gets these params.
                self._study.enqueue_trial(self._first[index][1])
            trial = self._study.ask()
            chosen, params = 0, {}
            if len(self._subspaces) > 1:
                chosen = trial.suggest_categorical(SUBSPACE, list(range(len(self._subspaces))))
                params[SUBSPACE] = chosen
            for name, distribution in self._optuna_spaces[chosen].items():
                params[name] = _suggest(trial, name, distribution)
        self._numbers[index] = trial.number
        self._asked[index] = (chosen, params, self._values_for(index, chosen, params))

    def state(self, index: int) -> dict:
        """Return ``{"algorithm": "bayesian", "subspace": ..., "params": {Optuna name: value}}``.

        Raises:
            ValueError: ``index`` was never asked or restored.
        """
        if index not in self._asked:
            raise ValueError(f"index: {index!r} was never asked; call suggest({index!r}) first")
        chosen, params, values = self._asked[index]
        state = {"algorithm": "bayesian", "subspace": chosen, "params": copy.deepcopy(params)}
        # Optuna holds a choice of unplain values (dicts) by its index in the list of the space it
        # was asked in; the values themselves let a resume find them in whatever space it restores into.
        unplain = {self._name(chosen, key): copy.deepcopy(values[key]) for key, dist in self._subspaces[chosen].items()
                   if isinstance(dist, Choice) and not _plain_choices(dist.values)}
        if unplain:
            state["choices"] = unplain
        return state

    def restore(self, index: int, state: dict, value: float | None, finished: bool) -> None:
        """Add an earlier session's trial to the study: complete with its value, failed, or running.

        A running trial can still be told later; ``suggest(index)`` returns its values again.

        Raises:
            ValueError: ``index`` already asked here, or a state that does not fit the search space.
        """
        check_index(index)
        if index in self._asked:
            raise ValueError(f"index: {index!r} was already asked or restored in this session")
        chosen, params = self._check_state(state)
        with _quiet_optuna() as optuna:
            from optuna.trial import TrialState

            if not finished:
                trial_state, trial_value = TrialState.RUNNING, None
            elif _usable(value):
                trial_state, trial_value = TrialState.COMPLETE, float(value)
            else:
                trial_state, trial_value = TrialState.FAIL, None
            distributions = {name: self._distribution(chosen, name) for name in params}
            self._study.add_trial(optuna.trial.create_trial(
                state=trial_state, value=trial_value, params=params, distributions=distributions))
        self._numbers[index] = self._study.get_trials(deepcopy=False)[-1].number
        self._asked[index] = (chosen, params, self._values_for(index, chosen, params))

    def _distribution(self, chosen: int, name: str) -> Any:
        if name == SUBSPACE:
            from optuna.distributions import CategoricalDistribution

            return CategoricalDistribution(list(range(len(self._subspaces))))
        return self._optuna_spaces[chosen][name]

    def _check_state(self, state: Any) -> tuple[int, dict[str, Any]]:
        check_state_algorithm(state, "bayesian")
        chosen, params = state.get("subspace"), state.get("params")
        if not (isinstance(chosen, int) and 0 <= chosen < len(self._subspaces) and isinstance(params, Mapping)):
            raise ValueError(f"state: {state!r} does not fit this search space of {len(self._subspaces)} subspaces")
        params = {**params, **self._indices_of(chosen, state.get("choices") or {})}
        expected = set(self._optuna_spaces[chosen]) | ({SUBSPACE} if len(self._subspaces) > 1 else set())
        if set(params) != expected:
            raise ValueError(f"state: params {sorted(params)} do not fit subspace {chosen} ({sorted(expected)}); "
                             "was the search space changed since the sweep started?")
        for name, param in params.items():
            distribution = self._distribution(chosen, name)
            if not _within(distribution, param):
                raise ValueError(f"state: {name} {param!r} is outside {distribution}")
        return chosen, dict(params)

    def _indices_of(self, chosen: int, choices: Mapping[str, Any]) -> dict[str, int]:
        """The Optuna params of a state's unplain choice values, in this sampler's subspace ``chosen``."""
        subspace = self._subspaces[chosen]
        params = {}
        for name, value in choices.items():
            key = name.split(".", 1)[1] if len(self._subspaces) > 1 else name
            dist = subspace.get(key)
            if not isinstance(dist, Choice) or value not in dist.values:
                raise ValueError(f"state: {name} {value!r} is not a choice of subspace {chosen}; "
                                 "was the search space changed since the sweep started?")
            params[name] = _from_value(dist, value)
        return params

    def tell(self, index: int, value: float | None) -> None:
        """Tell TPE the trial's result; None (or NaN) marks the trial failed. Telling twice keeps the first.

        Raises:
            ValueError: ``index`` was never asked or restored.
        """
        if index not in self._numbers:
            raise ValueError(f"index: {index!r} was never asked; call suggest({index!r}) first")
        with _quiet_optuna() as optuna:
            number = self._numbers[index]
            if _usable(value):
                self._study.tell(number, float(value), skip_if_finished=True)
            else:
                self._study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)

    def narrow(self, subspaces: Sequence[Mapping[str, Any]], first_index: int, sagemaker: Sequence[bool] = ()) -> None:
        """Ask from ``subspaces`` (within the job's: same subspaces and keys) from now on, keeping the history.

        Optuna cannot change a categorical's choices within a study, so the study is made again with
        every earlier trial in it, in order (so trial numbers stay), with its state and value: a
        choice value still allowed is carried over, one no longer allowed is left out of that trial
        (TPE still learns from its other values); numbers keep their trial's own range (Optuna
        allows ranges to differ between trials).
        """
        old = self._subspaces
        self._subspaces = [dict(subspace) for subspace in subspaces]
        self._sagemaker = list(sagemaker) or [False] * len(self._subspaces)
        self._optuna_spaces = self._spaces()
        with _quiet_optuna() as optuna:
            study = optuna.create_study(direction="maximize", sampler=self._tpe(first_index))
            for trial in self._study.get_trials(deepcopy=False):
                carried = {name: self._carried(old, name, value, trial.distributions[name])
                           for name, value in trial.params.items()}
                carried = {name: pair for name, pair in carried.items() if pair is not None}
                study.add_trial(optuna.trial.create_trial(
                    state=trial.state, value=trial.value, params={name: pair[0] for name, pair in carried.items()},
                    distributions={name: pair[1] for name, pair in carried.items()}))
        self._study = study

    def _carried(self, old: list[dict], name: str, param: Any, distribution: Any) -> tuple[Any, Any] | None:
        """(param, distribution) of an earlier trial in the narrowed study; None when its choice is gone."""
        if name == SUBSPACE:
            return param, distribution
        chosen, key = (int(name.split(".", 1)[0]), name.split(".", 1)[1]) if len(old) > 1 else (0, name)
        before, now = old[chosen][key], self._subspaces[chosen][key]
        if not isinstance(before, Choice):
            return param, distribution
        value = param if _plain_choices(before.values) else before.values[param]
        if value not in now.values:
            return None
        return _from_value(now, value), self._optuna_spaces[chosen][name]

    @property
    def study(self) -> Any:
        """The Optuna study (for inspection: ``sampler.study.trials_dataframe()``)."""
        return self._study


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _within(distribution: Any, param: Any) -> bool:
    """True when an Optuna distribution can give ``param``."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return any(type(param) is type(choice) and param == choice for choice in distribution.choices)
    is_number = isinstance(param, (int, float)) and not isinstance(param, bool)
    return is_number and distribution.low <= param <= distribution.high


def _suggest(trial: Any, name: str, distribution: Any) -> Any:
    """Ask an Optuna trial for one parameter through its public suggest_* API."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, list(distribution.choices))
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high)
    return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
