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
    termination), dotted failed.
    """
    plt = _pyplot()
    scored = [r for r in records if r.best_metric is not None]
    best = max(scored, key=lambda r: r.best_metric).trial_id if scored else None
    fig, (metric_axis, loss_axis) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for record in records:
        rows = curves.get(record.trial_id, [])
        if not rows:
            continue
        epochs = [row["epoch"] for row in rows]
        style = dict(linestyle=_LINE_STYLES.get(record.status, "-"), linewidth=2.8 if record.trial_id == best else 1.2,
                     marker="o", markersize=3)
        label = f"{record.trial_id}: {record.parameters.get('model_name', '')}"
        line, = metric_axis.plot(epochs, [row.get(primary_metric, math.nan) for row in rows], label=label, **style)
        loss_axis.plot(epochs, [row.get("validation_loss", math.nan) for row in rows], color=line.get_color(), **style)
    metric_axis.set(xlabel="epoch", ylabel=primary_metric, title=f"Validation {primary_metric}", ylim=(0, 1.02))
    loss_axis.set(xlabel="epoch", ylabel="loss (log scale)", title="Validation loss", yscale="log")
    metric_axis.legend(fontsize=7, ncol=2, title="trial: model", title_fontsize=7)
    return _save(fig, (metric_axis, loss_axis), path, title)


_LINE_STYLES = {"Completed": "-", "Canceled": "--", "Failed": ":"}


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
