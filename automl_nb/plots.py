"""Static plots written next to a run's results (PNG), readable without a kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def plot_learning_curves(rows: Sequence[dict], primary_metric: str, path: str | Path, title: str = "") -> Path:
    """Losses and the primary metric per epoch, side by side, saved as a PNG.

    Args:
        rows: metrics.jsonl rows (``epoch``, ``train_loss``, ``validation_loss``, metric).
        primary_metric: the key plotted on the right.
        path: where the PNG goes.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (losses, metric) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    losses.plot(epochs, [r["train_loss"] for r in rows], "o-", label="training")
    losses.plot(epochs, [r["validation_loss"] for r in rows], "o-", label="validation")
    losses.set(xlabel="epoch", ylabel="loss (log scale)", title="Loss", yscale="log")
    losses.legend()
    values = [r[primary_metric] for r in rows]
    metric.plot(epochs, values, "o-", color="tab:green")
    best = max(range(len(values)), key=values.__getitem__)
    metric.annotate(f"best {values[best]:.3f}", (epochs[best], values[best]),
                    textcoords="offset points", xytext=(0, -16), ha="center")
    metric.set(xlabel="epoch", ylabel=primary_metric, title=f"Validation {primary_metric}", ylim=(0, 1.02))
    for axis in (losses, metric):
        axis.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
