"""A trial's folder on disk: the one truth about the trial, written atomically.

Layout::

    params.json      resolved training parameters and the trial's data
    labels.json      class names, in the model's output order
    settings.json    inference settings (SPEC section 9)
    metrics.jsonl    one row per evaluation
    status.json      Running / Completed / Failed / Canceled, best metric, error
    model_best.pt    weights at the best primary metric
    last.pt          everything needed to resume from the last evaluation (while unfinished)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from automl_nb._atomic import append_jsonl, atomic_write_bytes, atomic_write_json, atomic_writer, read_jsonl_rows

BEST_CHECKPOINT = "model_best.pt"
LAST_CHECKPOINT = "last.pt"


class TrialFolder:
    """Reads and writes the files of one trial folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.path / name, obj)

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text(encoding="utf-8"))

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        append_jsonl(self.path / "metrics.jsonl", dict(row))

    def metrics(self) -> list[dict]:
        """The complete rows of metrics.jsonl."""
        return read_jsonl_rows(self.path / "metrics.jsonl")

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop rows after ``last_epoch`` (rows written after the checkpoint we resume from)."""
        rows = [r for r in self.metrics() if r["epoch"] <= last_epoch]
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        atomic_write_bytes(self.path / "metrics.jsonl", text.encode())

    def write_status(self, status: str, **fields: Any) -> None:
        self.write_json("status.json", {"status": status, "updated": time.time(), **fields})

    def save_checkpoint(self, name: str, state: Mapping[str, Any]) -> Path:
        """``torch.save`` through an atomic write: no half checkpoint after a crash."""
        with atomic_writer(self.path / name) as f:
            torch.save(dict(state), f)
        return self.path / name

    def load_checkpoint(self, name: str, device: str | torch.device = "cpu") -> dict:
        return torch.load(self.path / name, map_location=device, weights_only=False)

    def has(self, name: str) -> bool:
        return (self.path / name).exists()
