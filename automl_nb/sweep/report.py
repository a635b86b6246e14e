"""What a sweep shows when it ends: the leaderboard table, and a learning-curves figure of every trial."""

from __future__ import annotations

from typing import Sequence

from automl_nb.sweep.store import TrialRecord


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


def write_summary(run) -> None:
    """Write ``leaderboard.csv`` and ``learning_curves.png`` into the run folder."""
    from automl_nb._atomic import atomic_write_text
    from automl_nb.plots import plot_sweep_curves

    records = run.trials()
    metric = run.store.load_job().primary_metric
    atomic_write_text(run.folder / "leaderboard.csv", leaderboard(records, metric).to_csv(index=False))
    curves = {r.trial_id: run.metrics(r.trial_id) for r in records}
    if any(curves.values()):
        plot_sweep_curves(curves, records, metric, run.folder / "learning_curves.png",
                          title=f"{len(records)} trials, best {metric} "
                                f"{max((r.best_metric for r in records if r.best_metric is not None), default=0):.3f}")
