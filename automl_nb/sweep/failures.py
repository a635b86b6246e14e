"""Failed trials in one line each, told once: what ``run.wait()``, ``%automl status`` and the
CLI print, and what a leaderboard row shows.

``trial 3 failed: OutOfMemoryError: CUDA out of memory ...`` for each failure, and, when a
sweep ended with every trial failed, ``all 4 trials failed; the first (trial 0): ...``.
"""

from __future__ import annotations

from typing import Sequence

from automl_nb.sweep.store import FAILED, TrialRecord

# A printed line stays one terminal line or two; the record keeps the whole error and traceback.
LINE_LIMIT = 200


def one_line(text: str, limit: int) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters with an ellipsis."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"


def failure_reason(record: TrialRecord) -> str:
    """Why a Failed trial failed, its first line (its error, else its last note)."""
    text = record.error or (record.notes[-1] if record.notes else "") or "no reason recorded"
    return one_line(text, LINE_LIMIT)


def failure_line(record: TrialRecord) -> str:
    """``trial 3 failed: <reason>``."""
    return f"trial {record.trial_id} failed: {failure_reason(record)}"


def all_failed_sentence(records: Sequence[TrialRecord]) -> str | None:
    """``all 4 trials failed; the first (trial 0): <reason>``, or None unless every trial failed."""
    if not records or any(record.status != FAILED for record in records):
        return None
    first = records[0]
    if len(records) == 1:
        return f"the only trial (trial {first.trial_id}) failed: {failure_reason(first)}"
    return f"all {len(records)} trials failed; the first (trial {first.trial_id}): {failure_reason(first)}"


class FailureWatch:
    """Remembers which failed trials were told, so each failure is told once."""

    def __init__(self) -> None:
        self.told: set[str] = set()

    def news(self, records: Sequence[TrialRecord], ended: bool) -> list[str]:
        """A line for each failure not told yet, then, if the sweep ``ended`` with every trial
        failed, the sentence saying so (every time: it is why the run is Failed).

        Args:
            records: every trial record, in order (``run.trials()``).
            ended: the sweep has ended (no more trials will start in this session).
        """
        lines = []
        for record in records:
            if record.status == FAILED and record.trial_id not in self.told:
                self.told.add(record.trial_id)
                lines.append(failure_line(record))
        sentence = all_failed_sentence(records) if ended else None
        return lines + ([sentence] if sentence else [])
