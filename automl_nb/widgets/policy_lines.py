"""The early-termination policy's live threshold lines, for the dashboard's chart.

The dashboard rebuilds the job's policy (:func:`automl_nb.sweep.policies.make_policy`) and feeds
it the curves of the run folder, so the lines are drawn by the very code that decides: the
value drawn at a report is the one a trial reaching it now is compared with. ASHA's and
Hyperband's rung results come from the snapshot (``run.json``, where the driver keeps them).
"""

from __future__ import annotations

from typing import Any

from automl_nb.widgets.snapshot import RunSnapshot


class PolicyLines:
    """The thresholds of a run's early-termination policy, kept up to date from snapshots.

    Args:
        job: the run's job (``job.sweep.early_termination`` names the policy).

    Example:
        >>> lines = PolicyLines(run.store.load_job())
        >>> lines.thresholds(reader.take())   # [Threshold(report=1, value=0.62, label='bandit: best/(1+0.2)'), ...]
    """

    def __init__(self, job: Any) -> None:
        from automl_nb.sweep.policies import make_policy

        sweep = getattr(job, "sweep", None)
        self.policy = make_policy(sweep.early_termination) if sweep is not None else None
        self.curves: dict[str, list[float]] = {}  # trial -> primary metric per report, as the driver has them
        self._read: dict[str, tuple] = {}  # trial -> the snapshot curve taken in (an ended trial's stays the same)
        self._state: dict | None = None

    def thresholds(self, snapshot: RunSnapshot) -> list:
        """The policy's :class:`~automl_nb.sweep.policies.Threshold` points now ([] without a policy)."""
        if self.policy is None:
            return []
        if hasattr(self.policy, "restore"):  # ASHA, Hyperband: the rung results the driver recorded
            state = snapshot.policy_state
            if state != self._state:
                self._state = state
                self.policy.restore(state)
            return self.policy.thresholds()
        metric = snapshot.primary_metric
        seen = set()
        for row in snapshot.rows:
            seen.add(row.trial_id)
            if self._read.get(row.trial_id) is not row.curve:
                self._read[row.trial_id] = row.curve
                self.curves[row.trial_id] = [entry[metric] for entry in row.curve if metric in entry]
        for gone in set(self.curves) - seen:
            del self.curves[gone], self._read[gone]
        finished = {row.trial_id for row in snapshot.rows if not row.active}
        return self.policy.thresholds({trial: curve for trial, curve in self.curves.items() if curve}, finished)
