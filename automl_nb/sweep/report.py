"""What a sweep shows: the leaderboard table and a learning-curves figure of every trial."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from automl_nb.sweep.store import TrialRecord

_LINE_STYLES = {"Completed": "-", "Canceled": "--", "Failed": ":"}


def leaderboard(records: Sequence[TrialRecord], primary_metric: str):
    """A pandas DataFrame of the trials, best primary metric first (trials without one last).

    Columns: trial, model, params (the sampled values), the primary metric, status, epochs,
    duration_s, notes.
    """
    import pandas as pd

    rows = [{
        "trial": r.trial_id,
        "model": r.parameters.get("model_name", ""),
        "params": {k: v for k, v in r.sampled.items() if k != "model_name"},
        primary_metric: r.best_metric,
        "status": r.status,
        "epochs": r.epochs,
        "duration_s": round(r.duration, 1) if r.duration is not None else None,
        "notes": "; ".join(r.notes + ([r.error] if r.error else [])),
    } for r in records]
    columns = ["trial", "model", "params", primary_metric, "status", "epochs", "duration_s", "notes"]
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values(primary_metric, ascending=False, na_position="last", kind="stable")
    return table.reset_index(drop=True)


def plot_sweep_curves(curves: dict[str, list[dict]], records: Sequence[TrialRecord], primary_metric: str,
                      path: str | Path, title: str = "") -> Path:
    """Validation metric and loss per epoch for every trial, best trial in bold, saved as PNG.

    Line style tells how a trial ended: solid completed, dashed canceled (e.g. early
    termination), dotted failed.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

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
    for axis in (metric_axis, loss_axis):
        axis.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_summary(run) -> None:
    """Write ``leaderboard.csv`` and ``learning_curves.png`` into the run folder."""
    from automl_nb._atomic import atomic_write_text

    records = run.trials()
    metric = run.store.load_job().primary_metric
    atomic_write_text(run.folder / "leaderboard.csv", leaderboard(records, metric).to_csv(index=False))
    curves = {r.trial_id: run.metrics(r.trial_id) for r in records}
    if any(curves.values()):
        plot_sweep_curves(curves, records, metric, run.folder / "learning_curves.png",
                          title=f"{len(records)} trials, best {metric} "
                                f"{max((r.best_metric for r in records if r.best_metric is not None), default=0):.3f}")
