"""The dashboard's steering bar: extend a trial, requeue the failed ones, without a magic.

Each button makes the same request as ``Run.extend_trial`` / ``Run.requeue`` (and so as
``%automl extend`` / ``%automl requeue``): checked at once, logged in the run folder, applied by
the driver at its next turn or by the next ``resume()`` (see :mod:`automl_nb.sweep.steering`).
A refused request shows its message here; nothing is logged then.
"""

from __future__ import annotations

from html import escape
from typing import Any, Callable

import ipywidgets as widgets

from automl_nb.widgets.snapshot import RunSnapshot

# Trials that can run on: a Completed one (a warm start) or one stopped (from its last checkpoint).
EXTENDABLE = ("Completed", "Canceled")


class SteeringBar:
    """A trial chooser, an epochs box, Extend and Requeue failed buttons, and the outcome.

    Args:
        run: the :class:`~automl_nb.sweep.Run` the requests go to.

    The box has the class ``automl-steering``.
    """

    def __init__(self, run: Any) -> None:
        self.run = run
        self.trial = widgets.Dropdown(description="trial", options=[], layout=widgets.Layout(width="150px"))
        self.trial.style.description_width = "34px"
        self.epochs = widgets.BoundedIntText(value=2, min=1, max=10_000, description="+ epochs",
                                             layout=widgets.Layout(width="140px"))
        self.epochs.style.description_width = "60px"
        self.extend = widgets.Button(description="Extend", icon="forward",
                                     tooltip="run the chosen trial this many more epochs")
        self.extend.on_click(lambda _: self._request(
            lambda: self.run.extend_trial(self.trial.value, self.epochs.value),
            f"extend trial {self.trial.value} by {self.epochs.value} epochs"))
        self.requeue = widgets.Button(description="Requeue failed", icon="redo",
                                      tooltip="run every Failed trial again (an out-of-memory one with its smaller batch)")
        self.requeue.on_click(lambda _: self._request(self.run.requeue, "requeue every Failed trial"))
        self.message = widgets.HTML()
        self.message.add_class("automl-steering-message")
        self.box = widgets.HBox([self.trial, self.epochs, self.extend, self.requeue, self.message],
                                layout=widgets.Layout(flex_flow="row wrap", align_items="center", max_width="100%"))
        self.box.add_class("automl-steering")
        self._options: tuple = ()

    def update(self, snapshot: RunSnapshot, selected: str = "") -> None:
        """Offer the trials that can be extended (the one selected in the chart first chosen)."""
        options = tuple(row.trial_id for row in snapshot.rows if row.status in EXTENDABLE)
        if options != self._options:  # a trial ended: offer it too, keeping the one chosen
            chosen = self.trial.value
            self._options = options
            self.trial.options = options
            if chosen in options:
                self.trial.value = chosen
        if selected in options and selected != self.trial.value:
            self.trial.value = selected
        self.extend.disabled = not options
        self.requeue.disabled = not any(row.status == "Failed" for row in snapshot.rows)

    def _request(self, make: Callable[[], str], what: str) -> None:
        from automl_nb.errors import AutoMLError
        from automl_nb.sweep.steering import when_applied

        try:
            request = make()
        except (AutoMLError, ValueError) as error:  # SpecError is both: the request was refused
            self.message.value = f'<span style="color:#c62828">{escape(str(error))}</span>'
            return
        self.message.value = escape(f"{what}: request {request} logged; {when_applied(self.run)}")

    def widgets(self) -> list:
        return [self.trial, self.epochs, self.extend, self.requeue, self.message, self.box]
