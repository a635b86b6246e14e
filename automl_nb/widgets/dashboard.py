"""SweepDashboard: the live view of a sweep: leaderboard, progress, learning curves, Stop buttons.

The run folder is the one truth: the dashboard re-reads it on a background thread, woken by
the sweep's events when this kernel drives the sweep and every ``poll_seconds`` otherwise (a
run driven by ``automl-nb run`` in a terminal, say). Widget updates sent from that thread
reach the browser while other cells run. Clicks on its buttons are handled between cells,
or during ``run.wait()`` (see :mod:`automl_nb.ui_events`).
"""

from __future__ import annotations

import atexit
import threading
import time
from typing import Any

import ipywidgets as widgets

from automl_nb.errors import AutoMLError
from automl_nb.ui_events import kernel_shell
from automl_nb.widgets.figures import curves_png
from automl_nb.widgets.html import DASHBOARD_CSS, caption_text, static_dashboard, summary_text
from automl_nb.widgets.leaderboard import DEFAULT_SORT, arrange, parameter_columns, starting, visible
from automl_nb.widgets.live_chart import LiveChart
from automl_nb.widgets.parallel import parallel_png
from automl_nb.widgets.policy_lines import PolicyLines
from automl_nb.widgets.rows import BAR_STYLES, SortHeader, TrialRowView, wrapping_row
from automl_nb.widgets.snapshot import RunSnapshot, SnapshotReader
from automl_nb.widgets.steering_bar import SteeringBar
from automl_nb.widgets.updater import IDLE_FACTOR, Updater

_STARTING = "Starting workers: each trial gets its row here when it starts."


class SweepDashboard(widgets.VBox):
    """A live dashboard of a sweep, from its Run or any run folder.

    Shows a summary line (with the time the job has left, about) and a progress bar over the
    job's trials; the leaderboard: a column per swept hyperparameter (those every trial shares
    in a caption above it), primary metric, status (a failure's reason on its row), time and
    time left, an epoch progress bar and a Stop button per trial, and a swatch in the colour of
    the trial's curves; the learning curves of all trials as an interactive chart
    (:class:`~automl_nb.widgets.live_chart.LiveChart`: primary metric, validation and training
    loss; early-terminated trials dashed and cut with a cross; the policy's live thresholds
    dashed; hover a curve for the trial's parameters and why it stopped, click it to mark its
    row: :attr:`selected`); the trials in parallel coordinates, swept hyperparameters to metric
    (:mod:`automl_nb.widgets.parallel`); Stop buttons for each trial and for the job, enabled
    while this kernel drives the sweep and gone once it has ended; and a steering bar
    (:mod:`automl_nb.widgets.steering_bar`) that extends a Completed or stopped trial (the one
    clicked in the chart comes chosen), requeues the failed ones and, under "More", clones a trial
    with edits, changes the limits and narrows the search space, during the sweep or after.

    Rows keep their places while the sweep runs (trial order, or the order of the column last
    clicked; new trials at the end) and the best one is marked, so the Stop button under the
    cursor stays with its trial; a click on a column header sorts by it (again: the other
    way), and the rows are sorted afresh when the sweep ends. Colours follow JupyterLab's
    theme (light or dark), and rows wrap in a narrow window.

    A big sweep stays light: each refresh reads only the files that changed, past
    ``page_size`` trials the leaderboard shows a page (the best ones and the running ones;
    "Show more" for more), the chart is sent only the points appended (the best trials as
    lines, the others as one band), and the parallel coordinates are drawn at most every
    ``curves_interval`` seconds. The static form (saved notebooks) has the curves as a PNG.

    Args:
        run: a :class:`~automl_nb.sweep.Run`, or a run folder to re-attach to (e.g. after a
            kernel restart, or a run started by ``automl-nb run``).
        poll_seconds: how often the folder is re-read without an event (a run driven
            elsewhere).
        min_interval: the least time between two redraws (a redraw reads what changed in the
            folder); a slow redraw waits longer, so the panel takes at most ~5% of the time.
        page_size: rows shown besides the running trials (the best ones, or the first in the
            order of the column clicked); "Show more" adds as many again.
        curves_interval: the least seconds between two drawings of the parallel coordinates
            while the sweep runs (drawn only when a trial reported, started or ended).

    Raises:
        AutoMLError: ``run`` is not a run folder.

    Example:
        >>> run = job.submit()
        >>> SweepDashboard(run).show()
        >>> SweepDashboard("runs/image_classification-2")   # a finished run, later
    """

    def __init__(self, run: Any, *, poll_seconds: float = 2.0, min_interval: float = 1.0, page_size: int = 50,
                 curves_interval: float = 5.0) -> None:
        from automl_nb.sweep.run import as_run

        if page_size < 1:
            raise ValueError(f"page_size: {page_size} must be at least 1")
        self.run = as_run(run)
        self.poll_seconds, self.min_interval = poll_seconds, min_interval
        self.page_size, self.curves_interval = page_size, curves_interval
        self._limit = page_size
        self._user_sorted = False
        self._curves_drawn = 0.0  # time.monotonic() of the last drawing, and how long it took
        self._curves_seconds = 0.0
        self._refresh_seconds = 0.0  # the CPU time the last refresh took, the lock held
        self.snapshot: RunSnapshot | None = None
        self._reader = SnapshotReader(self.run)
        self._rows: dict[str, TrialRowView] = {}
        self.sort_key, self.sort_descending = DEFAULT_SORT
        self._order: list[str] = []
        self._swept: tuple | None = None
        self._hyperparameters: tuple = ()  # the swept ones without the export columns
        self._curves_key: tuple | None = None
        self._static_png: tuple | None = None  # (curves key, PNG) of the static form, drawn when asked
        self._policy_lines = PolicyLines(self._reader.job)
        self.selected = ""  # the trial whose curve was clicked last: its row is marked
        self._lock = threading.RLock()  # one refresh at a time: the updater, a cell, a post-cell hook
        self._closed = False
        self._updates = Updater(self._step, self._following, lambda: self.run.running, self.messages_error,
                                f"automl-dashboard-{self.run.folder.name}", poll_seconds, min_interval)
        self._display = None
        self._shell = None

        self.style_sheet = widgets.HTML(DASHBOARD_CSS, layout=widgets.Layout(display="none"))
        self.summary = widgets.HTML()
        self.summary.add_class("automl-summary")
        self.progress = widgets.IntProgress(min=0, max=1, value=0, description="trials",
                                            layout=widgets.Layout(width="420px", max_width="100%"))
        self.stop_job = widgets.Button(description="Stop job", icon="stop", button_style="danger",
                                       tooltip="cancel the sweep: running trials stop (resume() continues them)")
        self.stop_job.on_click(self._on_stop_job)
        self.caption = widgets.HTML()
        self.caption.add_class("automl-caption")
        self._header = SortHeader(self.sort_by)
        self.header = self._header.box
        self.table = widgets.VBox([self.header], layout=widgets.Layout(max_width="100%"))
        self.table.add_class("automl-leaderboard")
        self.page_note = widgets.HTML()
        self.page_note.add_class("automl-page-note")
        self.show_more = widgets.Button(description="Show more", icon="angle-down",
                                        tooltip=f"show {page_size} more rows of the leaderboard")
        self.show_more.on_click(self._on_show_more)
        self._page_row = wrapping_row([self.page_note, self.show_more])
        self._page_row.layout.display = "none"
        self.steering = SteeringBar(self.run, self._reader.job)  # extend, requeue failed; clone, limits, narrow
        self.curves = LiveChart(self._reader.job.primary_metric, layout=widgets.Layout(max_width="100%"))
        self.curves.observe(lambda change: self.select(change.new), "selected")
        # Hyperparameters to metric, once two trials have a metric and something is swept.
        self.parallel = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", display="none"))
        self.parallel.add_class("automl-parallel")
        self.messages = widgets.Output()
        self._job_row = wrapping_row([self.progress, self.stop_job])
        super().__init__([self.style_sheet, self.summary, self._job_row, self.caption, self.table, self._page_row,
                          self.steering.box, self.curves, self.parallel, self.messages],
                         layout=widgets.Layout(max_width="100%"))
        self.add_class("automl-dashboard")
        self.run.subscribe(self._on_event)
        self.refresh()
        self._updates.ensure()
        # A script that ends right after run.wait() must not exit while the updater draws
        # (the process aborted): stop it and let its last refresh finish first.
        atexit.register(self._stop_updates)

    # -- reading the folder ----------------------------------------------------------------
    def refresh(self) -> RunSnapshot:
        """Re-read the run folder and redraw; return the snapshot shown."""
        with self._lock:
            # What a refresh costs the sweep is this thread's CPU time, once the lock is held: neither
            # a wait for a drawing elsewhere nor a wait for a core the trials' workers hold.
            started = time.thread_time()
            snapshot = self._reader.take()
            self._apply(snapshot)
            self.snapshot = snapshot
            self._refresh_seconds = time.thread_time() - started
            return snapshot

    def _apply(self, snapshot: RunSnapshot, resort: bool = False) -> None:
        controllable = self.run.running and snapshot.active
        ended = not snapshot.active and not self.run.running
        self.summary.value = f"<b>{_escape(summary_text(snapshot))}</b>"
        columns = parameter_columns(snapshot.rows, snapshot.swept)
        self.caption.value = _escape(_STARTING if starting(snapshot) else caption_text(columns.constant))
        if columns.swept != self._swept:
            self._swept, self._hyperparameters = columns.swept, columns.hyperparameters
            self._build_header(snapshot.primary_metric)
        with self.progress.hold_sync():
            self.progress.max = max(1, snapshot.max_trials)
            self.progress.value = min(snapshot.ended_trials, self.progress.max)
            self.progress.bar_style = BAR_STYLES.get(snapshot.status, "") if not snapshot.active else "info"
        with self.stop_job.hold_sync():
            self.stop_job.disabled = not controllable or self.run.cancel_requested
            self.stop_job.description = "Stopping" if controllable and self.run.cancel_requested else "Stop job"
        self.stop_job.layout.display = "none" if ended else None
        best = snapshot.best.trial_id if snapshot.best else None
        # While the sweep runs rows keep their places; sorted afresh on a click and once it has ended.
        self._order = arrange(self._order, snapshot.rows, self.sort_key, self.sort_descending, resort or ended)
        shown = visible(self._order, snapshot.rows, self._limit, best_first=not self._user_sorted)
        if self.selected in self._order and self.selected not in shown:  # the row of the curve clicked shows
            shown.append(self.selected)
        by_id = {row.trial_id: row for row in snapshot.rows}
        for trial_id in set(self._rows) - set(shown):  # off the page: its widgets go (made again if it comes back)
            for widget in self._rows.pop(trial_id).widgets():
                widget.close()
        for trial_id in shown:
            view = self._rows.get(trial_id)
            if view is None:
                view = self._rows[trial_id] = TrialRowView(trial_id, self._on_stop_trial)
            view.update(by_id[trial_id], trial_id == best, self._swept, controllable,
                        self.run.stop_requested(trial_id), ended, trial_id == self.selected)
        children = (self.header,) + tuple(self._rows[trial_id].box for trial_id in shown)
        if children != self.table.children:
            self.table.children = children
        self._show_page_note(len(shown), len(self._order))
        self.steering.update(snapshot, self.selected)
        self._draw_curves(snapshot, best, ended)

    def _show_page_note(self, shown: int, total: int) -> None:
        if shown >= total:
            self._page_row.layout.display = "none"
            return
        which = "the first in this order" if self._user_sorted else "the best"
        self.page_note.value = _escape(f"{shown} of {total} trials shown: {which} and the running ones")
        self._page_row.layout.display = None

    def _on_show_more(self, _button=None) -> None:
        """Show another page of rows."""
        with self._lock:
            self._limit += self.page_size
            if self.snapshot is not None:
                self._apply(self.snapshot)

    def _draw_curves(self, snapshot: RunSnapshot, best: str | None, ended: bool) -> None:
        """Send the chart what is new, with the policy's thresholds; draw the parallel coordinates
        when a trial reported, started or ended since their last drawing, and while the sweep runs
        at most every ``curves_interval`` seconds (or 19 times as long as a drawing takes: under
        5% of the time)."""
        key = tuple((row.trial_id, len(row.curve), row.status, row.trial_id == best) for row in snapshot.rows)
        if key == self._curves_key:
            return
        self.curves.update(snapshot, self._policy_lines.thresholds(snapshot))
        wait = max(self.curves_interval, IDLE_FACTOR * self._curves_seconds)
        if not ended and self._curves_key is not None and time.monotonic() - self._curves_drawn < wait:
            return  # a later refresh draws them (the updater's last one always does)
        started = time.thread_time()
        parallel = parallel_png(snapshot, self._hyperparameters)
        if parallel is not None:
            self.parallel.value = parallel
        self.parallel.layout.display = None if parallel is not None else "none"
        if ended:  # the static form's PNG, ready for the display update after the sweep (no wait there)
            self.curves_png()
        self._curves_key = key
        self._curves_drawn, self._curves_seconds = time.monotonic(), time.thread_time() - started

    def select(self, trial_id: str) -> None:
        """Mark a trial's row (what a click on its curve does; "" for none), showing it if off the page.

        Raises:
            ValueError: no trial of the run has this id.
        """
        with self._lock:
            known = [row.trial_id for row in self.snapshot.rows] if self.snapshot is not None else []
            if trial_id and trial_id not in known:
                raise ValueError(f"trial {trial_id!r} is not in this run; its trials: {', '.join(known[:20])}"
                                 + (" ..." if len(known) > 20 else ""))
            self.selected = trial_id
            if self.curves.selected != trial_id:
                self.curves.selected = trial_id
            if self.snapshot is not None:
                self._apply(self.snapshot)

    def curves_png(self) -> bytes | None:
        """The learning curves as a PNG (the static form's), drawn again only when they changed.

        Drawn without the dashboard's lock: the updater's refreshes go on meanwhile."""
        snapshot, drawn = self.snapshot, self._static_png
        if snapshot is None:
            return None
        key = tuple((row.trial_id, len(row.curve), row.status) for row in snapshot.rows)
        if drawn is None or drawn[0] != key:
            drawn = self._static_png = (key, curves_png(snapshot))
        return drawn[1]

    # -- sorting ---------------------------------------------------------------------------
    def sort_by(self, column: str, descending: bool | None = None) -> None:
        """Sort the rows by a column now (what a click on its header does); the rows then keep
        that order while the sweep runs, new trials added at the end.

        Args:
            column: ``trial``, a swept hyperparameter's name, ``metric``, ``status``, ``time``,
                ``left`` or ``epochs``.
            descending: the direction; None: ascending, or the other way when the rows are
                already sorted by ``column`` (the metric: best first).

        Raises:
            ValueError: ``column`` is not one of the leaderboard's columns.
        """
        allowed = list(self._header.buttons)
        if column not in allowed:
            raise ValueError(f"column {column!r} is not on the leaderboard; sort by one of {allowed}")
        if descending is None:
            descending = not self.sort_descending if column == self.sort_key else column == "metric"
        with self._lock:
            self.sort_key, self.sort_descending = column, bool(descending)
            self._user_sorted = True
            self._header.label(self.sort_key, self.sort_descending)
            if self.snapshot is not None:
                self._apply(self.snapshot, resort=True)

    def _build_header(self, primary_metric: str) -> None:
        self._header.build(self._swept, primary_metric, self.sort_key, self.sort_descending)

    @property
    def _sort_buttons(self) -> dict[str, widgets.Button]:
        return self._header.buttons

    # -- live updates ----------------------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        """Called by the sweep driver's thread for every trial event: wake the updater."""
        self._updates.wake()

    def _following(self) -> bool:
        """The sweep may still change: driven here, or its folder says it is going."""
        return self.run.running or (self.snapshot is not None and self.snapshot.active)

    def _step(self) -> float:
        """The updater's refresh; returns what it cost the sweep: its time with the lock held,
        less a drawing of the parallel coordinates (those keep their own pace, see _draw_curves)."""
        drawn = self._curves_drawn
        self._refresh_seconds = 0.0
        self.run.store.catch_up()  # a run on a URL that another process drives: its news, from the store
        self.refresh()
        return self._refresh_seconds - (self._curves_seconds if self._curves_drawn != drawn else 0.0)

    def messages_error(self, text: str) -> None:
        """Show a failure of a background refresh in the panel (it does not end live updates)."""
        self.messages.append_stderr(text)

    @property
    def _updater(self) -> threading.Thread | None:
        return self._updates.thread

    # -- buttons ---------------------------------------------------------------------------
    def _on_stop_trial(self, trial_id: str) -> None:
        try:
            self.run.stop_trial(trial_id)
        except AutoMLError as error:
            self.messages.append_stderr(f"{error}\n")
        self._updates.wake()
        view = self._rows.get(trial_id)
        if view is not None:
            view.stop.disabled, view.stop.description = True, "Stopping"
            view.forget()  # the next refresh sets the button from the run again (had the stop failed)

    def _on_stop_job(self, _button=None) -> None:
        self.run.cancel()
        self.stop_job.disabled, self.stop_job.description = True, "Stopping"
        self._updates.wake()

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
        png = self.curves_png()
        with self._lock:
            return static_dashboard(self.snapshot, png, self._order)

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self.static_html()
        bundle["text/plain"] = summary_text(self.snapshot)
        return bundle

    def _stop_updates(self, timeout: float = 10.0) -> None:
        """At exit: end live updates and wait for the updater's refresh in progress."""
        self._closed = True
        if getattr(self, "_updates", None) is not None:
            self._updates.close(timeout)

    def close(self) -> None:
        """Stop live updates and close every widget of the dashboard."""
        self._closed = True
        if getattr(self, "_updates", None) is not None:
            self._updates.close()
        atexit.unregister(self._stop_updates)
        if getattr(self, "_shell", None) is not None:
            try:
                self._shell.events.unregister("post_run_cell", self._after_cell)
            except ValueError:  # already unregistered after the sweep ended
                pass
        for view in getattr(self, "_rows", {}).values():
            for widget in view.widgets():
                widget.close()
        if getattr(self, "_header", None) is not None:
            self._header.close()
        for widget in self.steering.widgets() if getattr(self, "steering", None) is not None else ():
            widget.close()
        for name in ("style_sheet", "summary", "progress", "stop_job", "_job_row", "caption", "header", "table",
                     "page_note", "show_more", "_page_row", "curves", "parallel", "messages"):
            widget = getattr(self, name, None)
            if widget is not None:
                widget.close()
        super().close()


def _escape(text: str) -> str:
    from html import escape

    return escape(text)
