"""LiveChart: the sweep's learning curves as an interactive chart that grows as reports arrive.

The chart itself is a small SVG drawing in ``static/live_chart.js`` (shipped in the package,
loaded by anywidget: nothing is fetched at run time). Python keeps every point and sends only
what is new: each :meth:`LiveChart.update` sets ``delta`` to the points appended and the trial
facts changed since the last one, numbered, so a view that missed one asks for the whole
history (a custom message) and goes on from there. The best trials (and the running ones) are
lines with a legend entry that hides them; the rest are one band (the 10-90% of their values at
each epoch) and need no legend entry. Hovering a line shows the trial's parameters and, for a
stopped one, the policy's reason; a click on it sets ``selected`` (the dashboard observes it and
marks the trial's row). ``thresholds`` are the early-termination policy's live lines
(:meth:`automl_nb.sweep.policies.EarlyTermination.thresholds`), drawn dashed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import anywidget
import traitlets

from automl_nb.widgets.figures import highlighted, trial_colour
from automl_nb.widgets.html import format_params, status_text, stop_reason
from automl_nb.widgets.snapshot import RunSnapshot, TrialRow

STATIC = Path(__file__).parent / "static"
# What a point holds, after its epoch: the series the chart can show, in this order.
SERIES = ("validation loss", "training loss")
_SERIES_KEYS = ("validation_loss", "train_loss")


class LiveChart(anywidget.AnyWidget):
    """An interactive chart of the trials' learning curves, fed from run snapshots.

    Args:
        metric: the primary metric's name (the first series, on which thresholds are drawn).

    Attributes:
        delta: the last update sent: ``{"seq", "points": {trial: [[epoch, metric, validation
            loss, training loss], ...]}, "reset": [trials whose points start over], "trials":
            {trial: its facts}}``.
        thresholds: the policy's lines: ``[{"label", "points": [[report, value], ...]}]``.
        selected: the trial whose curve was clicked last ("" for none).

    Example:
        >>> chart = LiveChart("accuracy")
        >>> chart.update(snapshot, thresholds=policy.thresholds(curves))
        >>> chart.observe(lambda change: print(change.new), "selected")
    """

    _esm = STATIC / "live_chart.js"
    metric = traitlets.Unicode("").tag(sync=True)
    series = traitlets.List(traitlets.Unicode(), list(SERIES)).tag(sync=True)
    delta = traitlets.Dict().tag(sync=True)
    thresholds = traitlets.List().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)

    def __init__(self, metric: str = "", **kwargs) -> None:
        super().__init__(metric=metric, **kwargs)
        self.points: dict[str, list[list]] = {}  # trial -> every point sent, the history a new view asks for
        self.facts: dict[str, dict] = {}  # trial -> what the chart shows about it (label, params, top, ...)
        self.seq = 0  # the number of the last delta sent
        self._shown: dict[str, tuple] = {}  # trial -> (its row, top, best) as last sent
        self.on_msg(self._on_message)

    def update(self, snapshot: RunSnapshot, thresholds: Iterable = ()) -> bool:
        """Send the points and trial facts that changed since the last update, and the threshold lines.

        Args:
            snapshot: the sweep now.
            thresholds: :class:`~automl_nb.sweep.policies.Threshold` points (one line per label).

        Returns:
            True when a delta was sent.
        """
        metric = snapshot.primary_metric
        drawn = [row for row in snapshot.rows if row.curve]
        top = highlighted(drawn)
        best = snapshot.best.trial_id if snapshot.best else None
        new_points, reset, facts = {}, [], {}
        for row in drawn:
            shown = (row, row.trial_id in top, row.trial_id == best)
            if self._shown.get(row.trial_id) == shown:  # the same row object (an ended trial): nothing new
                continue
            self._shown[row.trial_id] = shown
            sent = self.points.setdefault(row.trial_id, [])
            if len(row.curve) < len(sent) or (sent and _point(row.curve[len(sent) - 1], metric) != sent[-1]):
                sent.clear()  # the trial started over (resumed from a checkpoint): its points are sent again
                reset.append(row.trial_id)
            if len(row.curve) > len(sent):
                added = [_point(entry, metric) for entry in row.curve[len(sent):]]
                sent.extend(added)
                new_points[row.trial_id] = added
            fact = trial_facts(*shown)
            if self.facts.get(row.trial_id) != fact:
                self.facts[row.trial_id] = facts[row.trial_id] = fact
        lines = threshold_lines(thresholds)
        if lines != self.thresholds:
            self.thresholds = lines
        if metric != self.metric:
            self.metric = metric
        if not (new_points or reset or facts):
            return False
        self.seq += 1
        self.delta = {"seq": self.seq, "points": new_points, "reset": reset, "trials": facts}
        return True

    def history(self) -> dict:
        """Everything sent so far, as one message: what a view that opens now (or missed a delta) draws."""
        return {"type": "history", "seq": self.seq, "points": self.points, "trials": self.facts}

    def _on_message(self, _widget, content: dict, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "history":
            self.send(self.history())


def trial_facts(row: TrialRow, top: bool, best: bool) -> dict:
    """What the chart shows about a trial: its line's label and colour, its parameters and
    status (with the policy's reason when it was stopped) for the hover, and how it is drawn
    (``cut``: stopped by the policy, not by its Stop button)."""
    return {"label": f"{row.trial_id}: {row.model}", "colour": trial_colour(row.trial_id),
            "params": format_params(row.params), "status": status_text(row), "top": top, "best": best,
            "cut": bool(stop_reason(row)), "style": _style(row)}


def threshold_lines(thresholds: Iterable) -> list[dict]:
    """Threshold points grouped into lines by label, in report order: the ``thresholds`` trait."""
    lines: dict[str, list] = {}
    for point in thresholds:
        lines.setdefault(point.label, []).append([point.report, point.value])
    return [{"label": label, "points": sorted(points)} for label, points in lines.items()]


def _style(row: TrialRow) -> str:
    if row.status == "Failed":
        return "dotted"
    return "dashed" if row.status == "Canceled" else "solid"


def _point(entry: dict, metric: str) -> list:
    """One evaluation row as the chart's point: epoch, then each series' value (None when absent
    or not a number: JSON has no nan)."""
    return [entry.get("epoch")] + [_finite(entry.get(key)) for key in (metric,) + _SERIES_KEYS]


def _finite(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
