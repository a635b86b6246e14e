"""Matplotlib figures as PNG bytes, drawn without pyplot.

The dashboard draws from the sweep driver's thread while the user may be plotting in a
cell: pyplot's global state is not thread-safe, a ``Figure`` with its own Agg canvas is.
"""

from __future__ import annotations

import functools
import io
import math
import zlib
from typing import Callable

from automl_nb.plots import TOP_CURVES
from automl_nb.widgets.snapshot import RunSnapshot, TrialRow

# Line style by how a trial ended; an early-terminated trial is also cut with a cross.
_STYLES = {"Completed": "-", "Running": "-", "Queued": "-", "Canceled": "--", "Failed": ":"}
_CUT_MARKER = dict(marker="X", markersize=9, markeredgecolor="black", markeredgewidth=0.6, linestyle="none")
# With many trials only the best TOP_CURVES (and the running ones) get a line of their own and a
# legend entry, as in learning_curves.png; the others are one faint grey collection: a figure of
# 1,000 trials draws in well under a second, and can still be read.
_OTHERS = dict(colors="grey", linewidths=0.7)


@functools.lru_cache(maxsize=None)
def _palette() -> tuple[str, ...]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    palette = colormaps["tab10"]
    return tuple(to_hex(palette(i)) for i in range(palette.N))


def trial_colour(trial_id: str) -> str:
    """The colour of a trial (``#rrggbb``): its curves in the figures and its swatch on the
    leaderboard, so a row and its curve are told apart the same way. By trial number, so a
    trial keeps its colour while others start (the palette repeats every 10 trials)."""
    palette = _palette()
    index = int(trial_id) if trial_id.isdigit() else zlib.crc32(trial_id.encode())
    return palette[index % len(palette)]


def new_figure(width: float, height: float, columns: int = 1, rows: int = 1, layout: str | None = "constrained"):
    """A figure with its own Agg canvas and a grid of axes (``fig, axes`` as a flat list).

    ``layout=None`` leaves the margins to the caller: constrained layout costs about half the
    drawing time of a simple figure (the live curves are drawn again and again)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False)
    return fig, [axis for row in axes for axis in row]


def to_png(fig, dpi: int = 80) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def curves_png(snapshot: RunSnapshot, dpi: int = 80) -> bytes:
    """:func:`curves_figure` as PNG bytes."""
    return to_png(curves_figure(snapshot), dpi)


def curves_figure(snapshot: RunSnapshot):
    """Learning curves of every trial: the primary metric, validation loss and training loss per epoch.

    Each trial has its :func:`trial_colour`; the best trial is drawn bold; an early-terminated
    trial is dashed and ends in a cross where the policy cut it; a failed one is dotted. Past
    :data:`TOP_CURVES` trials only the best ones and the running ones are drawn so (see
    :func:`highlighted`); the others are faint grey lines.
    """
    fig, (metric_axis, valid_axis, train_axis) = new_figure(12, 3.3, columns=3, layout=None)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.16, top=0.9, wspace=0.22)
    best = snapshot.best.trial_id if snapshot.best else None
    panels: list[tuple[object, str, Callable[[dict], float]]] = [
        (metric_axis, f"validation {snapshot.primary_metric}", lambda row: row.get(snapshot.primary_metric, math.nan)),
        (valid_axis, "validation loss", lambda row: row.get("validation_loss", math.nan)),
        (train_axis, "training loss", lambda row: row.get("train_loss", math.nan)),
    ]
    drawn = [row for row in snapshot.rows if row.curve]
    chosen = highlighted(drawn)
    others = [row for row in drawn if row.trial_id not in chosen]
    for trial in sorted(drawn, key=lambda row: _index(row.trial_id)):
        if trial.trial_id not in chosen:
            continue
        for axis, _, value in panels:
            _draw_trial(axis, trial, value, bold=trial.trial_id == best, color=trial_colour(trial.trial_id))
    if others:
        _draw_others([(axis, value) for axis, _, value in panels], others)
    from matplotlib.ticker import MaxNLocator, NullFormatter

    for axis, title, _ in panels:
        axis.set(title=title, xlabel="epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        if "loss" in title and _positive_values(axis):
            axis.set_yscale("log")
            axis.yaxis.set_minor_formatter(NullFormatter())
    if drawn:
        title = "trial: model" + (f" (+{len(others)} others, grey)" if others else "")
        metric_axis.legend(fontsize=7, title=title, title_fontsize=7, loc="best")
    else:
        metric_axis.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=metric_axis.transAxes,
                         color="grey")
    return fig


def highlighted(rows, top: int = TOP_CURVES) -> set[str]:
    """The trials drawn in colour: all of up to ``top``, else the ``top`` best by the primary
    metric and the running ones."""
    rows = list(rows)
    if len(rows) <= top:
        return {row.trial_id for row in rows}
    scored = sorted((row for row in rows if row.metric is not None), key=lambda row: -row.metric)
    return {row.trial_id for row in scored[:top]} | {row.trial_id for row in rows if row.active}


def _draw_others(panels, rows) -> None:
    """The trials not highlighted: one faint collection of lines per panel (fast to draw)."""
    from matplotlib.collections import LineCollection

    for axis, value in panels:
        segments = [[(row_["epoch"], value(row_)) for row_ in trial.curve] for trial in rows]
        # Fainter the more there are: a band where many trials went, not a grey slab.
        axis.add_collection(LineCollection(segments, alpha=max(0.04, min(0.3, 8 / len(rows))), **_OTHERS))
        axis.autoscale_view()


def _draw_trial(axis, trial: TrialRow, value: Callable[[dict], float], bold: bool, color: str) -> None:
    epochs = [row["epoch"] for row in trial.curve]
    values = [value(row) for row in trial.curve]
    style = _STYLES.get(trial.status, "-")
    if trial.early_terminated or trial.stopped_by == "user":
        style = "--"
    line, = axis.plot(epochs, values, linestyle=style, linewidth=2.8 if bold else 1.3, marker="o", markersize=3,
                      color=color, label=f"{trial.trial_id}: {trial.model}" + (" (cut)" if trial.early_terminated else ""))
    if trial.early_terminated and epochs:
        axis.plot(epochs[-1:], values[-1:], color=line.get_color(), **_CUT_MARKER)


def _positive_values(axis) -> bool:
    values = [v for line in axis.get_lines() for v in line.get_ydata() if isinstance(v, float) and math.isfinite(v)]
    for collection in axis.collections:
        values += [v for segment in collection.get_segments() for v in segment[:, 1] if math.isfinite(v)]
    return bool(values) and min(values) > 0


def _index(trial_id: str) -> tuple:
    return (0, int(trial_id)) if trial_id.isdigit() else (1, trial_id)



