"""What a sweep shows when it ends: the leaderboard table, and a learning-curves figure of every trial."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from automl_nb.sweep.store import TrialRecord
from automl_nb.train.folder import EXPORT_COLUMNS, TrialFolder


def leaderboard(records: Sequence[TrialRecord], primary_metric: str, trial_folder: Callable[[str], Path] | None = None):
    """A pandas DataFrame of the trials, best primary metric first (trials without one last).

    Columns: trial, model, params (the sampled values), the primary metric, status, epochs,
    duration_s, notes; with ``trial_folder`` (trial id -> its folder) and a trial exported to
    ONNX, also its parity check: ``onnx_parity`` (passed / FAILED), ``onnx_max_abs_diff`` and
    ``onnx_speedup_batch1`` (PyTorch latency over ONNX Runtime's at batch 1), empty for the others.
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
    exported = {r.trial_id: TrialFolder(trial_folder(r.trial_id)).parity_columns() for r in records} if trial_folder else {}
    if any(exported.values()):
        for row in rows:
            row.update(exported[row["trial"]])
        columns += list(EXPORT_COLUMNS)
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values(primary_metric, ascending=False, na_position="last", kind="stable")
    return table.reset_index(drop=True)


def write_summary(run) -> None:
    """Write ``leaderboard.csv`` and ``learning_curves.png`` into the run folder, unless they
    are newer than every trial's record and metrics (e.g. a resume that ran nothing)."""
    from automl_nb._atomic import atomic_write_text
    from automl_nb.plots import plot_sweep_curves

    if _summary_is_current(run.folder):
        return
    records = run.trials()
    metric = run.store.load_job().primary_metric
    atomic_write_text(run.folder / "leaderboard.csv", leaderboard(records, metric).to_csv(index=False))
    curves = {r.trial_id: run.metrics(r.trial_id) for r in records}
    if any(curves.values()):
        plot_sweep_curves(curves, records, metric, run.folder / "learning_curves.png",
                          title=f"{len(records)} trials, best {metric} "
                                f"{max((r.best_metric for r in records if r.best_metric is not None), default=0):.3f}")


def _summary_is_current(folder) -> bool:
    """``leaderboard.csv`` (and ``learning_curves.png``, once there are curves) were written
    after the last change to any ``trial.json`` or ``metrics.jsonl``: nothing to redraw."""
    table, curves = folder / "leaderboard.csv", folder / "learning_curves.png"
    if not table.exists():
        return False
    written = table.stat().st_mtime_ns
    newest, any_curve = 0, False
    for trial in (folder / "trials").glob("*"):
        for name in ("trial.json", "metrics.jsonl"):
            try:
                newest = max(newest, (trial / name).stat().st_mtime_ns)
            except OSError:  # not there (yet), or not a trial folder
                continue
            any_curve = any_curve or name == "metrics.jsonl"
    if any_curve:
        if not curves.exists():
            return False
        written = min(written, curves.stat().st_mtime_ns)
    return written > newest
