"""The live leaderboard's widgets: a row per trial (cells, epoch bar, Stop button) and the
header of sort buttons. :class:`~automl_nb.widgets.dashboard.SweepDashboard` arranges them."""

from __future__ import annotations

from typing import Callable

import ipywidgets as widgets

from automl_nb.widgets.html import cell_columns, cells_width, column_label, epochs_text, row_cells
from automl_nb.widgets.snapshot import TrialRow

BAR_STYLES = {"Completed": "success", "Failed": "danger", "Canceled": "warning", "Running": "info", "Queued": ""}
BAR_WIDTH, EPOCHS_WIDTH, STOP_WIDTH = 90, 44, 72


def wrapping_row(children, width: str | None = None) -> widgets.HBox:
    """An HBox whose children go on the next line when the panel is too narrow (never cut off)."""
    return widgets.HBox(children, layout=widgets.Layout(flex_flow="row wrap", align_items="center", width=width,
                                                        max_width="100%"))


class TrialRowView:
    """The widgets of one leaderboard row: its cells, an epoch progress bar, a Stop button.

    Its box has the classes ``automl-row`` and ``automl-trial-<id>``, ``automl-best`` on the best
    trial's row and ``automl-selected`` on the row of the curve clicked in the chart.
    """

    def __init__(self, trial_id: str, on_stop: Callable[[str], None]) -> None:
        self.trial_id = trial_id
        self.cells = widgets.HTML(layout=widgets.Layout(max_width="100%"))
        self.bar = widgets.IntProgress(min=0, max=1, value=0, layout=widgets.Layout(width=f"{BAR_WIDTH}px"))
        self.epochs = widgets.HTML(layout=widgets.Layout(width=f"{EPOCHS_WIDTH}px"))
        self.stop = widgets.Button(description="Stop", icon="stop", tooltip=f"stop trial {trial_id}",
                                   layout=widgets.Layout(width=f"{STOP_WIDTH}px"))
        self.stop.on_click(lambda _: on_stop(trial_id))
        self.controls = widgets.HBox([self.bar, self.epochs, self.stop], layout=widgets.Layout(align_items="center"))
        self.box = wrapping_row([self.cells, self.controls])
        self.box.add_class("automl-row")
        self.box.add_class(f"automl-trial-{trial_id}")
        self._shown: tuple | None = None

    def update(self, row: TrialRow, best: bool, swept: tuple, controllable: bool, stopping: bool,
               ended: bool, selected: bool = False) -> None:
        """Show the trial as it is now (nothing is sent when nothing changed)."""
        state = (row, best, swept, controllable, stopping, ended, selected)
        if state == self._shown:  # nothing to send: an ended trial's row stays as it is
            return
        self._shown = state
        self.cells.value = row_cells(row, best, swept)
        self.cells.layout.width = f"{cells_width(swept)}px"
        with self.bar.hold_sync():
            self.bar.max = max(1, row.total_epochs or row.epochs or 1)
            self.bar.value = min(row.epochs, self.bar.max)
            self.bar.bar_style = BAR_STYLES.get(row.status, "")
        self.epochs.value = epochs_text(row)
        with self.stop.hold_sync():
            self.stop.disabled = not (controllable and row.active) or stopping
            self.stop.description = "Stopping" if stopping and row.active else "Stop"
        self.stop.layout.display = "none" if ended else None  # a finished sweep has nothing to stop
        # The classes draw the row highlighted, and let a page (and the browser test) find it.
        for name, on in (("automl-best", best), ("automl-selected", selected)):
            if on:
                self.box.add_class(name)
            else:
                self.box.remove_class(name)

    def forget(self) -> None:
        """Redraw the row on its next update even if its trial has not changed."""
        self._shown = None

    def widgets(self) -> list:
        return [self.cells, self.bar, self.epochs, self.stop, self.controls, self.box]


class SortHeader:
    """The leaderboard's header: one button per column (a click sorts by it), as wide as its cells.

    Args:
        on_sort: called with the column's key when its button is clicked.
    """

    def __init__(self, on_sort: Callable[[str], None]) -> None:
        self.on_sort = on_sort
        self.box = wrapping_row([])
        self.box.add_class("automl-header")
        self.buttons: dict[str, widgets.Button] = {}
        self._labels: dict[str, str] = {}

    def build(self, swept: tuple, primary_metric: str, key: str, descending: bool) -> None:
        """Make the buttons for these columns (the old ones close)."""
        self.close()
        columns = cell_columns(swept) + [("epochs", BAR_WIDTH + EPOCHS_WIDTH + 4)]
        for name, width in columns:
            button = widgets.Button(tooltip=f"sort by {column_label(name, primary_metric)}",
                                    layout=widgets.Layout(width=f"{width}px", height="24px"))
            button.add_class("automl-sort")
            button.add_class(f"automl-sort-{name}")
            button.on_click(lambda _, name=name: self.on_sort(name))
            self.buttons[name] = button
        self._labels = {name: column_label(name, primary_metric) for name, _ in columns}
        self.label(key, descending)
        for old in self.box.children[:1]:  # the previous columns' row
            old.close()
        cells = [self.buttons[name] for name, _ in columns[:-1]]
        self.box.children = (wrapping_row(cells, f"{cells_width(swept)}px"), self.buttons["epochs"])

    def label(self, key: str, descending: bool) -> None:
        """Mark the column sorted by, with its direction."""
        for name, button in self.buttons.items():
            arrow = (" ▼" if descending else " ▲") if name == key else ""
            button.description = self._labels[name] + arrow
            if name == key:
                button.add_class("automl-sorted")
            else:
                button.remove_class("automl-sorted")

    def close(self) -> None:
        for button in self.buttons.values():
            button.close()
        self.buttons = {}
