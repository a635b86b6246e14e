"""SweepDashboard: the live view of a sweep: leaderboard, progress, learning curves, Stop buttons.

The run folder is the one truth: the dashboard re-reads it on a background thread, woken by
the sweep's events when this kernel drives the sweep and every ``poll_seconds`` otherwise (a
run driven by ``automl-nb run`` in a terminal, say). Widget updates sent from that thread
reach the browser while other cells run. Clicks on its buttons are handled between cells,
or during ``run.wait()`` (see :mod:`automl_nb.ui_events`).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any

import ipywidgets as widgets

from automl_nb.errors import AutoMLError
from automl_nb.ui_events import kernel_shell
from automl_nb.widgets.figures import curves_png
from automl_nb.widgets.html import (
    BEST_BACKGROUND, ROW_WIDTH, epochs_text, header_cells, row_cells, static_dashboard, summary_text,
)
from automl_nb.widgets.snapshot import RunSnapshot, SnapshotReader, TrialRow

_BAR_STYLES = {"Completed": "success", "Failed": "danger", "Canceled": "warning", "Running": "info", "Queued": ""}


class _TrialRowView:
    """The widgets of one leaderboard row: its cells, an epoch progress bar, a Stop button."""

    def __init__(self, trial_id: str, on_stop) -> None:
        self.trial_id = trial_id
        self.cells = widgets.HTML(layout=widgets.Layout(width=f"{ROW_WIDTH}px"))
        self.bar = widgets.IntProgress(min=0, max=1, value=0, layout=widgets.Layout(width="90px"))
        self.epochs = widgets.HTML(layout=widgets.Layout(width="44px"))
        self.stop = widgets.Button(description="Stop", icon="stop", tooltip=f"stop trial {trial_id}",
                                   layout=widgets.Layout(width="72px"))
        self.stop.on_click(lambda _: on_stop(trial_id))
        self.box = widgets.HBox([self.cells, self.bar, self.epochs, self.stop],
                                layout=widgets.Layout(align_items="center"))
        self.box.add_class("automl-row")
        self.box.add_class(f"automl-trial-{trial_id}")

    def update(self, row: TrialRow, best: bool, controllable: bool, stopping: bool) -> None:
        self.cells.value = row_cells(row, best)
        with self.bar.hold_sync():
            self.bar.max = max(1, row.total_epochs or row.epochs or 1)
            self.bar.value = min(row.epochs, self.bar.max)
            self.bar.bar_style = _BAR_STYLES.get(row.status, "")
        self.epochs.value = epochs_text(row)
        with self.stop.hold_sync():
            self.stop.disabled = not (controllable and row.active) or stopping
            self.stop.description = "Stopping" if stopping and row.active else "Stop"
        self.cells.style.background = BEST_BACKGROUND if best else None
        if best:  # the class lets a page (and the browser test) find the best row
            self.box.add_class("automl-best")
        else:
            self.box.remove_class("automl-best")

    def widgets(self) -> list:
        return [self.cells, self.bar, self.epochs, self.stop, self.box]


class SweepDashboard(widgets.VBox):
    """A live dashboard of a sweep, from its Run or any run folder.

    Shows a summary line and a progress bar over the job's trials, the leaderboard (status,
    sampled params, primary metric, an epoch progress bar per trial, the best row
    highlighted), the learning curves of all trials (primary metric, validation and training
    loss; early-terminated trials dashed and cut with a cross), and Stop buttons for each
    trial and for the job, enabled while this kernel drives the sweep.

    Args:
        run: a :class:`~automl_nb.sweep.Run`, or a run folder to re-attach to (e.g. after a
            kernel restart, or a run started by ``automl-nb run``).
        poll_seconds: how often the folder is re-read without an event (a run driven
            elsewhere).
        min_interval: the least time between two redraws (a redraw reads the folder and
            draws the curves).

    Raises:
        AutoMLError: ``run`` is not a run folder.

    Example:
        >>> run = job.submit()
        >>> SweepDashboard(run).show()
        >>> SweepDashboard("runs/image_classification-2")   # a finished run, later
    """

    def __init__(self, run: Any, *, poll_seconds: float = 2.0, min_interval: float = 1.0) -> None:
        from automl_nb.sweep import Run, load_run

        self.run = run if isinstance(run, Run) else load_run(os.fspath(run))
        self.poll_seconds, self.min_interval = poll_seconds, min_interval
        self.snapshot: RunSnapshot | None = None
        self._reader = SnapshotReader(self.run)
        self._rows: dict[str, _TrialRowView] = {}
        self._curves_key: tuple | None = None
        self._curves_png: bytes | None = None
        self._lock = threading.RLock()  # one refresh at a time: the updater, a cell, a post-cell hook
        self._updater_lock = threading.Lock()  # never held long: the driver's thread takes it for each event
        self._wake = threading.Event()
        self._closed = False
        self._updater: threading.Thread | None = None
        self._display = None
        self._shell = None

        self.summary = widgets.HTML()
        self.summary.add_class("automl-summary")
        self.progress = widgets.IntProgress(min=0, max=1, value=0, description="trials",
                                            layout=widgets.Layout(width="420px"))
        self.stop_job = widgets.Button(description="Stop job", icon="stop", button_style="danger",
                                       tooltip="cancel the sweep: running trials stop (resume() continues them)")
        self.stop_job.on_click(self._on_stop_job)
        self.header = widgets.HTML(header_cells(self._reader.job.primary_metric),
                                   layout=widgets.Layout(width=f"{ROW_WIDTH}px"))
        self.table = widgets.VBox([self.header])
        self.table.add_class("automl-leaderboard")
        self.curves = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.messages = widgets.Output()
        super().__init__([self.summary, widgets.HBox([self.progress, self.stop_job]), self.table, self.curves,
                          self.messages])
        self.add_class("automl-dashboard")
        self.run.subscribe(self._on_event)
        self.refresh()
        self._ensure_updater()

    # -- reading the folder ----------------------------------------------------------------
    def refresh(self) -> RunSnapshot:
        """Re-read the run folder and redraw; return the snapshot shown."""
        with self._lock:
            snapshot = self._reader.take()
            self._apply(snapshot)
            self.snapshot = snapshot
            return snapshot

    def _apply(self, snapshot: RunSnapshot) -> None:
        controllable = self.run.running and snapshot.active
        self.summary.value = f"<b>{_escape(summary_text(snapshot))}</b>"
        with self.progress.hold_sync():
            self.progress.max = max(1, snapshot.max_trials)
            self.progress.value = min(snapshot.ended_trials, self.progress.max)
            self.progress.bar_style = _BAR_STYLES.get(snapshot.status, "") if not snapshot.active else "info"
        with self.stop_job.hold_sync():
            self.stop_job.disabled = not controllable or self.run.cancel_requested
            self.stop_job.description = "Stopping" if controllable and self.run.cancel_requested else "Stop job"
        best = snapshot.best.trial_id if snapshot.best else None
        for row in snapshot.rows:
            view = self._rows.get(row.trial_id)
            if view is None:
                view = self._rows[row.trial_id] = _TrialRowView(row.trial_id, self._on_stop_trial)
            view.update(row, row.trial_id == best, controllable, self.run.stop_requested(row.trial_id))
        children = (self.header,) + tuple(self._rows[row.trial_id].box for row in snapshot.rows)
        if children != self.table.children:
            self.table.children = children
        key = tuple((row.trial_id, len(row.curve), row.status, row.trial_id == best) for row in snapshot.rows)
        if key != self._curves_key:
            self._curves_png = curves_png(snapshot)
            self.curves.value = self._curves_png
            self._curves_key = key

    # -- live updates ----------------------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        """Called by the sweep driver's thread for every trial event: wake the updater (never waits
        for a redraw, so the driver is not slowed)."""
        if self._closed:
            return
        self._wake.set()
        self._ensure_updater()

    def _ensure_updater(self) -> None:
        with self._updater_lock:
            if self._closed or (self._updater is not None and self._updater.is_alive()):
                return
            if not self._following():
                return
            self._updater = threading.Thread(target=self._update_loop, daemon=True,
                                             name=f"automl-dashboard-{self.run.folder.name}")
            self._updater.start()

    def _following(self) -> bool:
        """The sweep may still change: driven here, or its folder says it is going."""
        return self.run.running or (self.snapshot is not None and self.snapshot.active)

    def _update_loop(self) -> None:
        while not self._closed and self._following():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._closed:
                return
            try:
                self.refresh()
            except Exception:  # a broken redraw must not end live updates; say why in the panel
                self.messages.append_stderr(traceback.format_exc())
            time.sleep(self.min_interval)
        self._final_refresh()

    def _final_refresh(self) -> None:
        if not self._closed:
            try:
                self.refresh()
            except Exception:
                self.messages.append_stderr(traceback.format_exc())

    # -- buttons ---------------------------------------------------------------------------
    def _on_stop_trial(self, trial_id: str) -> None:
        try:
            self.run.stop_trial(trial_id)
        except AutoMLError as error:
            self.messages.append_stderr(f"{error}\n")
        self._wake.set()
        view = self._rows.get(trial_id)
        if view is not None:
            view.stop.disabled, view.stop.description = True, "Stopping"

    def _on_stop_job(self, _button=None) -> None:
        self.run.cancel()
        self.stop_job.disabled, self.stop_job.description = True, "Stopping"
        self._wake.set()

    # -- display ---------------------------------------------------------------------------
    def show(self) -> "SweepDashboard":
        """Display the dashboard; once the sweep has ended, the next cell run also updates the
        dashboard's static form in the notebook (for nbviewer and GitHub).

        Returns:
            The dashboard.
        """
        from IPython import get_ipython
        from IPython.display import display

        self._display = display(self, display_id=True)
        shell = kernel_shell() or get_ipython()
        if shell is not None and self._shell is None and self._following():
            self._shell = shell
            shell.events.register("post_run_cell", self._after_cell)
        return self

    def _after_cell(self, *_args) -> None:
        """After each cell: when the sweep has ended, refresh and re-publish the static form once."""
        if self.run.running or self.run.status in ("Starting", "Running"):
            return
        self._shell.events.unregister("post_run_cell", self._after_cell)
        if self._closed:
            return
        self.refresh()
        if self._display is not None:
            self._display.update(self)

    def static_html(self) -> str:
        """The dashboard as it is now, as static HTML (summary, leaderboard, learning curves)."""
        with self._lock:
            return static_dashboard(self.snapshot, self._curves_png)

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self.static_html()
        bundle["text/plain"] = summary_text(self.snapshot)
        return bundle

    def close(self) -> None:
        """Stop live updates and close every widget of the dashboard."""
        self._closed = True
        wake = getattr(self, "_wake", None)
        if wake is not None:
            wake.set()
        if getattr(self, "_shell", None) is not None:
            try:
                self._shell.events.unregister("post_run_cell", self._after_cell)
            except ValueError:  # already unregistered after the sweep ended
                pass
        for view in getattr(self, "_rows", {}).values():
            for widget in view.widgets():
                widget.close()
        for name in ("summary", "progress", "stop_job", "header", "table", "curves", "messages"):
            widget = getattr(self, name, None)
            if widget is not None:
                widget.close()
        super().close()


def _escape(text: str) -> str:
    from html import escape

    return escape(text)
