"""Parallel coordinates of a sweep: one vertical axis per swept hyperparameter and one for the
primary metric, one line per scored trial, coloured by its metric (the best drawn bold).

Read it from the right: follow the bright lines (high metric) to the left to see which values
they share. Numeric hyperparameters spanning more than a decade (learning rates) are on a log
scale; choices (models, optimizers) are evenly spaced, in sorted order.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from automl_nb.widgets.figures import new_figure, to_png
from automl_nb.widgets.leaderboard import trial_values
from automl_nb.widgets.snapshot import RunSnapshot

# A numeric axis whose values span more than this factor is drawn on a log scale.
LOG_SPAN = 10.0


def parallel_png(snapshot: RunSnapshot, swept: Sequence[str], dpi: int = 80) -> bytes | None:
    """:func:`parallel_figure` as PNG bytes; None when there is nothing to compare."""
    fig = parallel_figure(snapshot, swept)
    return None if fig is None else to_png(fig, dpi)


def parallel_figure(snapshot: RunSnapshot, swept: Sequence[str]):
    """The parallel-coordinates figure of the trials with a metric; None with fewer than two of
    them or nothing swept.

    Args:
        snapshot: the sweep as the dashboard reads it.
        swept: the hyperparameters that differ across trials (the leaderboard's columns).
    """
    scored = [row for row in snapshot.rows if row.metric is not None and math.isfinite(row.metric)]
    if len(scored) < 2 or not swept:
        return None
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    names = list(swept) + [snapshot.primary_metric]
    columns = [_axis([trial_values(row).get(name) for row in scored]) for name in swept]
    columns.append(_axis([row.metric for row in scored], numeric_only=True))
    fig, (axis,) = new_figure(max(4.0, 1.6 * len(names)), 3.2, layout=None)
    fig.subplots_adjust(left=0.06, right=0.94, bottom=0.14, top=0.86)
    metrics = [row.metric for row in scored]
    norm = Normalize(min(metrics), max(metrics) if max(metrics) > min(metrics) else min(metrics) + 1e-9)
    colours = colormaps["viridis"](norm(metrics))
    lines = [[(x, column.positions[i]) for x, column in enumerate(columns)] for i in range(len(scored))]
    best = max(range(len(scored)), key=lambda i: metrics[i])
    widths = [2.8 if i == best else 1.0 for i in range(len(scored))]
    axis.add_collection(LineCollection(lines, colors=colours, linewidths=widths, alpha=0.85))
    for x, (name, column) in enumerate(zip(names, columns)):
        axis.axvline(x, color="grey", linewidth=0.8)
        axis.text(x, 1.06, name, ha="center", va="bottom", fontsize=8, fontweight="bold")
        for position, label in column.ticks:
            axis.text(x + 0.03, position, label, ha="left", va="center", fontsize=7, color="dimgrey")
    axis.set(xlim=(-0.2, len(names) - 0.5), ylim=(-0.05, 1.05))
    axis.axis("off")
    axis.set_title(f"{len(scored)} trials: hyperparameters to {snapshot.primary_metric} (best bold)", fontsize=9,
                   pad=22)
    return fig


class _Column:
    """An axis: each trial's position in [0, 1] (nan when it has no value) and the tick labels."""

    def __init__(self, positions: list[float], ticks: list[tuple[float, str]]) -> None:
        self.positions, self.ticks = positions, ticks


def _axis(values: list[Any], numeric_only: bool = False) -> _Column:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if numeric_only or (numbers and len(numbers) == sum(v is not None for v in values)):
        return _numeric_axis(values, numbers)
    labels = sorted({str(v) for v in values if v is not None})
    spot = {label: (i / (len(labels) - 1) if len(labels) > 1 else 0.5) for i, label in enumerate(labels)}
    return _Column([spot[str(v)] if v is not None else math.nan for v in values],
                   [(position, label) for label, position in spot.items()])


def _numeric_axis(values: list[Any], numbers: list[float]) -> _Column:
    low, high = min(numbers), max(numbers)
    log = low > 0 and high / low > LOG_SPAN
    scale = (lambda v: math.log10(v)) if log else (lambda v: v)
    span = scale(high) - scale(low)

    def position(value: Any) -> float:
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return math.nan
        return (scale(value) - scale(low)) / span if span else 0.5

    ticks = [(position(low), _number(low)), (position(high), _number(high))] if span else [(0.5, _number(low))]
    return _Column([position(v) for v in values], ticks)


def _number(value: float) -> str:
    return f"{value:.3g}"
