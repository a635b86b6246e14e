"""The leaderboard's logic, apart from any widget: which hyperparameters get a column, the
order of the rows, and how long a trial and the job still have to go.

Plain functions of a :class:`~automl_nb.widgets.snapshot.RunSnapshot`, shared by the live
dashboard and its static HTML form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from automl_nb.train.folder import EXPORT_COLUMNS
from automl_nb.widgets.snapshot import RunSnapshot, TrialRow

MODEL = "model_name"
# Columns a user can sort by besides the hyperparameters (the header's names for them).
FIXED_SORT_KEYS = ("trial", "metric", "status", "epochs", "time", "left")
DEFAULT_SORT = ("trial", False)


@dataclass(frozen=True)
class ParameterColumns:
    """The hyperparameters as the leaderboard shows them.

    Attributes:
        swept: names that differ across trials (or may, by the search space), one column each;
            ``model_name`` first when it is one of them; then, when any trial was exported to
            ONNX, its parity columns (:data:`~automl_nb.train.folder.EXPORT_COLUMNS`), empty for the
            trials not exported: columns only once some trial was exported, so the table does not
            grow for everyone.
        constant: name -> value for those every trial shares; shown once, above the table.
    """

    swept: tuple[str, ...]
    constant: dict

    @property
    def hyperparameters(self) -> tuple[str, ...]:
        """The swept hyperparameters: :attr:`swept` without the export columns."""
        return tuple(name for name in self.swept if name not in EXPORT_COLUMNS)


def trial_values(row: TrialRow) -> dict[str, Any]:
    """The trial's values as the leaderboard knows them: its model and sampled values, and its
    ONNX parity columns when it was exported."""
    values = {MODEL: row.model} if row.model else {}
    values.update(row.params)
    values.update(row.export)
    return values


def declared_swept(search_space: Sequence[dict]) -> tuple[str, ...]:
    """Names a search space can give more than one value: a distribution other than a
    one-value choice, values that differ between subspaces, or a name some subspaces lack."""
    from automl_nb.spec.distributions import Choice, Distribution

    names: list[str] = []
    for subspace in search_space:
        names += [name for name in subspace if name not in names]
    swept = []
    for name in names:
        seen: set[str] = set()
        for subspace in search_space:
            if name not in subspace:
                seen.add("<absent>")
                continue
            value = subspace[name]
            if isinstance(value, Choice):
                seen.update(repr(choice) for choice in value.values)
            elif isinstance(value, Distribution):
                seen.update(("<range>", "<another>"))  # a range gives many values
            else:
                seen.add(repr(value))
        if len(seen) > 1:
            swept.append(name)
    return tuple(swept)


def parameter_columns(rows: Iterable[TrialRow], declared: Sequence[str] = ()) -> ParameterColumns:
    """Split the trials' hyperparameters into swept ones (a column each) and constant ones.

    Args:
        rows: the trials.
        declared: names the search space sweeps (see :func:`declared_swept`): columns from the
            first trial on, so columns do not appear one by one as trials start.
    """
    rows = list(rows)
    names: list[str] = [MODEL] if any(row.model for row in rows) or MODEL in declared else []
    for row in rows:
        names += [name for name in row.params if name not in names]
    names += [name for name in declared if name not in names]
    swept, constant = [], {}
    for name in names:
        values = {repr(trial_values(row).get(name, "<absent>")) for row in rows}
        if name in declared or len(values) > 1:
            swept.append(name)
        elif rows:
            constant[name] = trial_values(rows[0])[name]
    if any(row.export for row in rows):  # last, and a column even when one trial has them all
        swept += [name for name in EXPORT_COLUMNS if name not in swept]
    return ParameterColumns(swept=tuple(swept), constant=constant)


def sort_value(row: TrialRow, key: str, now: float | None = None) -> tuple:
    """What ``row`` sorts by under column ``key``; a missing value sorts last either way
    (see :func:`sort_rows`), and numbers before text so mixed columns still sort."""
    value: Any
    if key == "trial":
        value = int(row.trial_id) if row.trial_id.isdigit() else row.trial_id
    elif key == "metric":
        value = row.metric
    elif key == "status":
        value = row.status
    elif key == "epochs":
        value = row.epochs
    elif key == "time":
        value = row.duration_s
    elif key == "left":
        value = trial_eta(row)
    else:
        value = trial_values(row).get(key)
    if value is None:
        return (1, 0, "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return (0, 1, str(value))
    return (0, 0, value)


def sort_rows(rows: Iterable[TrialRow], key: str, descending: bool = False) -> list[TrialRow]:
    """The rows sorted by column ``key``; ties keep trial order, missing values go last.

    Raises:
        ValueError: ``key`` is not a column (a hyperparameter name or one of FIXED_SORT_KEYS).
    """
    rows = list(rows)
    known = set(FIXED_SORT_KEYS) | {name for row in rows for name in trial_values(row)}
    if key not in known and rows:
        raise ValueError(f"sort key {key!r} is not a leaderboard column; use one of {sorted(known)}")
    in_trial_order = sorted(rows, key=lambda row: sort_value(row, "trial"))
    present = [row for row in in_trial_order if sort_value(row, key)[0] == 0]
    missing = [row for row in in_trial_order if sort_value(row, key)[0] == 1]
    return sorted(present, key=lambda row: sort_value(row, key)[1:], reverse=descending) + missing


def arrange(previous: Sequence[str], rows: Sequence[TrialRow], key: str, descending: bool,
            resort: bool) -> list[str]:
    """The order of the rows on screen (trial ids).

    While a sweep runs the order stays put: rows already shown keep their places and new
    trials are added at the end, so the Stop button under the cursor stays with its trial.
    The order is sorted afresh only when ``resort`` is set: the user clicked a column, or the
    sweep ended.
    """
    ids = {row.trial_id for row in rows}
    if resort or not previous:
        return [row.trial_id for row in sort_rows(rows, key, descending)]
    kept = [trial_id for trial_id in previous if trial_id in ids]
    shown = set(kept)
    new = [row for row in rows if row.trial_id not in shown]
    return kept + [row.trial_id for row in sort_rows(new, "trial")]


def visible(order: Sequence[str], rows: Sequence[TrialRow], limit: int, best_first: bool) -> list[str]:
    """The rows a page of the leaderboard shows (trial ids, in ``order``): all of them up to
    ``limit``; past it the running ones and ``limit`` more, so a 1,000-trial sweep does not
    make a widget row per trial.

    Args:
        order: every trial id, in the order on screen (see :func:`arrange`).
        rows: the trials.
        limit: how many rows besides the running ones.
        best_first: take the ``limit`` best by the metric (the order is the default trial
            order); otherwise the first ``limit`` of ``order`` (the user sorted by a column).
    """
    if len(order) <= limit:
        return list(order)
    if best_first:
        chosen = {row.trial_id for row in sort_rows(rows, "metric", descending=True)[:limit]}
    else:
        chosen = set(order[:limit])
    chosen |= {row.trial_id for row in rows if row.active}
    return [trial_id for trial_id in order if trial_id in chosen]


def trial_eta(row: TrialRow) -> float | None:
    """Seconds a running trial still needs, at its pace so far (None before its first epoch)."""
    if row.status != "Running" or not row.epochs or not row.total_epochs or row.duration_s is None:
        return None
    return row.duration_s / row.epochs * max(0, row.total_epochs - row.epochs)


def job_eta(snapshot: RunSnapshot) -> float | None:
    """Seconds the sweep still needs, about: the epochs left (of running trials, and of the
    trials not started, at the mean planned epochs) at the mean pace per epoch so far, spread
    over the concurrent trials; never more than its timeout leaves. An upper bound where
    early termination cuts trials. None when it has ended or nothing has reported yet."""
    if not snapshot.active:
        return None
    timed = [row for row in snapshot.rows if row.epochs and row.duration_s]
    if not timed:
        return None
    per_epoch = sum(row.duration_s for row in timed) / sum(row.epochs for row in timed)
    planned = [row.total_epochs for row in snapshot.rows if row.total_epochs]
    mean_planned = sum(planned) / len(planned) if planned else 0.0
    running = [row for row in snapshot.rows if row.status == "Running"]
    not_started = sum(1 for row in snapshot.rows if row.status == "Queued")
    not_started += max(0, snapshot.max_trials - len(snapshot.rows))
    epochs_left = sum(max(0, (row.total_epochs or row.epochs) - row.epochs) for row in running)
    epochs_left += not_started * mean_planned
    longest = max((trial_eta(row) or 0.0 for row in running), default=0.0)
    eta = max(longest, epochs_left * per_epoch / max(1, snapshot.max_concurrent_trials))
    if snapshot.timeout_s is not None and snapshot.elapsed_s is not None:
        eta = min(eta, max(0.0, snapshot.timeout_s - snapshot.elapsed_s))
    return eta


def starting(snapshot: RunSnapshot) -> bool:
    """The sweep is going but no trial has reported an epoch yet (its workers are starting)."""
    return snapshot.active and not any(row.epochs or not row.active for row in snapshot.rows)
