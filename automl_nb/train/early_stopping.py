"""Early stopping on the primary metric (always maximised)."""

from __future__ import annotations

from typing import Mapping


def early_stopping_delay(params: Mapping) -> int:
    """Evaluations to wait before tracking: ``early_stopping_delay``, or with SageMaker keys the
    evaluations that fall within the first ``early_stopping_min_epochs`` epochs, whichever is more."""
    delay = params["early_stopping_delay"]
    if "early_stopping_min_epochs" in params:
        delay = max(delay, params["early_stopping_min_epochs"] // params["evaluation_frequency"])
    return delay


class EarlyStopping:
    """Stop when the primary metric has not improved for ``patience`` evaluations.

    The first ``delay`` evaluations are not tracked (Azure's ``early_stopping_delay``), so
    a slow start does not end a trial. A gain counts only when it exceeds ``tolerance``
    relative to the best so far (SageMaker's ``early_stopping_tolerance``; 0 by default).

    Args:
        patience: evaluations without gain before stopping, > 0.
        delay: evaluations to wait before tracking, >= 0.
        tolerance: relative gain below which an evaluation counts as no gain.
    """

    def __init__(self, patience: int, delay: int = 0, tolerance: float = 0.0) -> None:
        if patience < 1:
            raise ValueError(f"early_stopping_patience: {patience} must be >= 1")
        if delay < 0:
            raise ValueError(f"early_stopping_delay: {delay} must be >= 0")
        self.patience, self.delay, self.tolerance = patience, delay, tolerance
        self.evaluations = 0
        self.best: float | None = None
        self.since_best = 0

    def update(self, metric: float) -> bool:
        """Record one evaluation's metric; return True when training should stop."""
        self.evaluations += 1
        if self.evaluations <= self.delay:
            return False
        if self.best is None or metric > self.best + abs(self.best) * self.tolerance:
            self.best, self.since_best = metric, 0
            return False
        self.since_best += 1
        return self.since_best >= self.patience

    def state_dict(self) -> dict:
        return {"evaluations": self.evaluations, "best": self.best, "since_best": self.since_best}

    def load_state_dict(self, state: dict) -> None:
        self.evaluations, self.best, self.since_best = state["evaluations"], state["best"], state["since_best"]
