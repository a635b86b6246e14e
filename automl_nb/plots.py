"""Static plots written next to a run's results (PNG), readable without a kernel."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence


def plot_sweep_curves(curves: dict[str, list[dict]], records: Sequence, primary_metric: str,
                      path: str | Path, title: str = "") -> Path:
    """Validation metric and loss per epoch for every trial of a sweep, best trial in bold, as PNG.

    Args:
        curves: trial id -> its metrics.jsonl rows.
        records: the sweep's trial records (``trial_id``, ``status``, ``best_metric``, ``parameters``).
        primary_metric: the metric plotted on the left.
        path: where the PNG goes.
        title: figure title.

    Line style tells how a trial ended: solid completed, dashed canceled (e.g. early
    termination), dotted failed. Past :data:`TOP_CURVES` trials only the best ones get a line
    and a legend entry; the others are faint grey lines (1,000 trials draw in about a second).
    """
    plt = _pyplot()
    scored = [r for r in records if r.best_metric is not None]
    best = max(scored, key=lambda r: r.best_metric).trial_id if scored else None
    fig, (metric_axis, loss_axis) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    drawn = [r for r in records if curves.get(r.trial_id)]
    ranked = sorted((r for r in drawn if r.best_metric is not None), key=lambda r: -r.best_metric)
    chosen = {r.trial_id for r in (drawn if len(drawn) <= TOP_CURVES else ranked[:TOP_CURVES])}
    others = [curves[r.trial_id] for r in drawn if r.trial_id not in chosen]
    if others:
        _draw_faint(metric_axis, others, lambda row: row.get(primary_metric, math.nan))
        _draw_faint(loss_axis, others, lambda row: row.get("validation_loss", math.nan))
    for record in drawn:
        rows = curves[record.trial_id]
        if record.trial_id not in chosen:
            continue
        epochs = [row["epoch"] for row in rows]
        style = dict(linestyle=_LINE_STYLES.get(record.status, "-"), linewidth=2.8 if record.trial_id == best else 1.2,
                     marker="o", markersize=3)
        label = f"{record.trial_id}: {record.parameters.get('model_name', '')}"
        line, = metric_axis.plot(epochs, [row.get(primary_metric, math.nan) for row in rows], label=label, **style)
        loss_axis.plot(epochs, [row.get("validation_loss", math.nan) for row in rows], color=line.get_color(), **style)
    metric_axis.set(xlabel="epoch", ylabel=primary_metric, title=f"Validation {primary_metric}", ylim=(0, 1.02))
    loss_axis.set(xlabel="epoch", ylabel="loss (log scale)", title="Validation loss", yscale="log")
    metric_axis.legend(fontsize=7, ncol=2, title="trial: model" + (f" (+{len(others)} others, grey)" if others else ""),
                       title_fontsize=7)
    return _save(fig, (metric_axis, loss_axis), path, title)


_LINE_STYLES = {"Completed": "-", "Canceled": "--", "Failed": ":"}
# Past this many trials only the best get a line and a legend entry (the others: faint grey).
TOP_CURVES = 10


def _draw_faint(axis, curves: list[list[dict]], value) -> None:
    """Curves as one faint grey collection (drawn at once, however many)."""
    from matplotlib.collections import LineCollection

    axis.add_collection(LineCollection([[(row["epoch"], value(row)) for row in rows] for rows in curves],
                                       colors="grey", linewidths=0.7,
                                       alpha=max(0.04, min(0.3, 8 / len(curves)))))
    axis.autoscale_view()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, axes, path: str | Path, title: str) -> Path:
    """Grid the axes, title the figure, write it as PNG and free it."""
    for axis in axes:
        axis.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path
