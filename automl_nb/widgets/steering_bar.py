"""The dashboard's steering bar: extend a trial, requeue the failed ones, and under "More" clone a
trial with edits, change the limits, narrow the search space, without a magic.

Each button makes the same request as ``Run.extend_trial`` / ``requeue`` / ``clone_trial`` /
``set_limits`` / ``narrow_space`` (and so as ``%automl extend`` ... ``%automl narrow``): checked at
once, logged in the run folder, applied by the driver at its next turn or by the next
``resume()`` (see :mod:`automl_nb.sweep.steering`). A refused request shows its message here;
nothing is logged then.
"""

from __future__ import annotations

from html import escape
from typing import Any, Callable

import ipywidgets as widgets

from automl_nb.widgets.editors import to_text
from automl_nb.widgets.snapshot import RunSnapshot

# Trials that can run on: a Completed one (a warm start) or one stopped (from its last checkpoint).
EXTENDABLE = ("Completed", "Canceled")
MORE_TITLE = "More: clone, limits, narrow"
FIELD_WIDTH = "290px"  # two clone fields a row in a notebook ~650 px wide


class SteeringBar:
    """A trial chooser, an epochs box, Extend and Requeue failed buttons, the outcome, and a
    collapsed "More" section with three tabs: Clone (the chosen trial's swept values as editable
    fields), Limits (the effective limits) and Narrow (the search space as YAML).

    Args:
        run: the :class:`~automl_nb.sweep.Run` the requests go to.
        job: the run's job (read from the run folder when None).

    The box has the class ``automl-steering``.
    """

    def __init__(self, run: Any, job: Any = None) -> None:
        self.run = run
        self.job = job if job is not None else run.store.load_job()
        self.trial = widgets.Dropdown(description="trial", options=[], layout=widgets.Layout(width="150px"))
        self.trial.style.description_width = "34px"
        self.epochs = widgets.BoundedIntText(value=2, min=1, max=10_000, description="+ epochs",
                                             layout=widgets.Layout(width="150px"))
        self.epochs.style.description_width = "68px"  # "+ epochs" whole in JupyterLab's font
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
        self.clone = CloneForm(self.job.task, self._request, self.run)
        self.limits = LimitsForm(self.job, self._request, self.run)
        self.narrow = NarrowForm(self.job, self._request, self.run)
        self.tabs = widgets.Tab([self.clone.box, self.limits.box, self.narrow.box],
                                titles=("Clone", "Limits", "Narrow"), layout=widgets.Layout(max_width="100%"))
        self.more = widgets.Accordion([self.tabs], titles=(MORE_TITLE,), selected_index=None,
                                      layout=widgets.Layout(width="100%", max_width="100%"))
        self.more.add_class("automl-steering-more")
        self.row = widgets.HBox([self.trial, self.epochs, self.extend, self.requeue, self.message],
                                layout=widgets.Layout(flex_flow="row wrap", align_items="center", max_width="100%"))
        self.box = widgets.VBox([self.row, self.more], layout=widgets.Layout(max_width="100%"))
        self.box.add_class("automl-steering")
        self._options: tuple = ()
        self._followed: tuple = ("", False)

    def update(self, snapshot: RunSnapshot, selected: str = "") -> None:
        """Offer the trials that can be extended (the one selected in the chart first chosen), every
        trial to clone, and the limits as steering left them."""
        options = tuple(row.trial_id for row in snapshot.rows if row.status in EXTENDABLE)
        if options != self._options:  # a trial ended: offer it too, keeping the one chosen
            chosen = self.trial.value
            self._options = options
            self.trial.options = options
            if chosen in options:
                self.trial.value = chosen
        # The trial clicked in the chart comes chosen once (when clicked, or once it can be extended),
        # so a trial chosen in the list afterwards stays chosen.
        follow = (selected, selected in options)
        if follow != self._followed:
            self._followed = follow
            if selected in options:
                self.trial.value = selected
        self.extend.disabled = not options
        self.requeue.disabled = not any(row.status == "Failed" for row in snapshot.rows)
        self.clone.update(snapshot, selected)
        self.limits.update(snapshot)

    def _request(self, make: Callable[[], str], what: str | Callable[[], str]) -> bool:
        """Make a request and show its outcome; True when it was logged."""
        from automl_nb.errors import AutoMLError
        from automl_nb.sweep.steering import when_applied

        try:
            request = make()
        except (AutoMLError, ValueError) as error:  # SpecError is both: the request was refused
            self.message.value = f'<span style="color:#c62828">{escape(str(error))}</span>'
            return False
        what = what() if callable(what) else what
        self.message.value = escape(f"{what}: request {request} logged; {when_applied(self.run)}")
        return True

    def widgets(self) -> list:
        return ([self.trial, self.epochs, self.extend, self.requeue, self.message, self.row]
                + self.clone.widgets() + self.limits.widgets() + self.narrow.widgets()
                + [self.tabs, self.more, self.box])


class CloneForm:
    """A trial chooser (every trial), one text box per swept hyperparameter prefilled with the
    chosen trial's value, a box for other ``KEY=VALUE`` edits, and a Clone button.

    Only the boxes changed from the trial's values are edits; each is read as its hyperparameter's
    type (:func:`automl_nb.spec.edits.typed_values`), so a bad one is refused with its message.
    """

    def __init__(self, task: str, request: Callable, run: Any) -> None:
        self.task, self._make, self.run = task, request, run
        self.trial = widgets.Dropdown(description="clone trial", options=[], layout=widgets.Layout(width="170px"))
        self.trial.style.description_width = "70px"
        self.trial.observe(lambda _: self._fill(), "value")
        self.fields: dict[str, widgets.Text] = {}
        self.prefilled: dict[str, str] = {}
        self.field_box = widgets.HBox([], layout=widgets.Layout(flex_flow="row wrap", max_width="100%"))
        self.other = widgets.Text(description="other edits", placeholder="number_of_epochs=8 ...",
                                  tooltip="other parameters to change, as KEY=VALUE words",
                                  layout=widgets.Layout(width=FIELD_WIDTH, max_width="100%"))
        self.other.style.description_width = "80px"
        self.button = widgets.Button(description="Clone", icon="clone",
                                     tooltip="run a new trial with this trial's parameters and the edits, before new "
                                             "samples")
        self.button.on_click(lambda _: self.submit())
        self.edit_row = widgets.HBox([self.other, self.button], layout=widgets.Layout(
            flex_flow="row wrap", align_items="center", max_width="100%"))
        self.box = widgets.VBox([self.trial, self.field_box, self.edit_row], layout=widgets.Layout(max_width="100%"))
        self.box.add_class("automl-steering-clone")
        self._rows: dict = {}
        self._ids: tuple = ()
        self._followed = ""

    def update(self, snapshot: RunSnapshot, selected: str) -> None:
        """Offer every trial; the fields follow the chosen trial (and only when it changes, or
        its values arrive: what is being typed stays)."""
        rows = {row.trial_id: row for row in snapshot.rows}
        swept = tuple(snapshot.swept)
        if swept != tuple(self.fields):
            self._build(swept)
        ids = tuple(sorted(rows, key=lambda tid: (len(tid), tid)))
        before = self._values(self._rows.get(self.trial.value))
        self._rows = rows
        if ids != self._ids:
            self._ids = ids
            chosen = self.trial.value
            self.trial.options = ids
            if chosen in ids:
                self.trial.value = chosen
        if selected != self._followed and selected in ids:  # the trial clicked in the chart, once
            self._followed = selected
            self.trial.value = selected  # fills the fields (observed)
        elif self._values(rows.get(self.trial.value)) != before:
            self._fill()
        self.button.disabled = not ids

    def submit(self) -> bool:
        """Clone the chosen trial with the fields changed and the other edits (what a click does)."""
        from automl_nb.spec.edits import key_texts, typed_values

        trial_id = self.trial.value
        what = f"clone trial {trial_id}"
        edits: dict = {}

        def make() -> str:
            texts = {name: box.value for name, box in self.fields.items() if box.value != self.prefilled.get(name)}
            texts.update(key_texts(self.other.value.split(), what))
            edits.update(typed_values(self.task, texts, what))
            return self.run.clone_trial(trial_id, **edits)

        return self._make(make, lambda: what + "".join(f" {key}={value}" for key, value in edits.items()))

    def _build(self, swept: tuple) -> None:
        for box in self.fields.values():
            box.close()
        self.fields = {}
        for name in swept:
            box = widgets.Text(description=name, layout=widgets.Layout(width=FIELD_WIDTH, max_width="100%"))
            box.style.description_width = "140px"
            self.fields[name] = box
        self.field_box.children = tuple(self.fields.values())
        self._fill()

    def _fill(self) -> None:
        values = self._values(self._rows.get(self.trial.value))
        self.prefilled = {name: to_text(values.get(name)) for name in self.fields}
        for name, box in self.fields.items():
            box.value = self.prefilled[name]

    @staticmethod
    def _values(row) -> dict:
        if row is None:
            return {}
        return {**row.params, "model_name": row.model or None}

    def widgets(self) -> list:
        return [self.trial, *self.fields.values(), self.field_box, self.other, self.button, self.edit_row, self.box]


class LimitsForm:
    """``max_trials``, ``max_concurrent_trials`` and ``timeout_minutes`` boxes prefilled with the
    effective limits (the job's, as applied steering changed them), and Apply: a ``set_limits``
    request with the boxes changed."""

    def __init__(self, job: Any, request: Callable, run: Any) -> None:
        from automl_nb.spec.limits import LIMIT_KEYS

        self.job, self._make, self.run = job, request, run
        self.boxes = {key: widgets.IntText(description=key, layout=widgets.Layout(width=FIELD_WIDTH, max_width="100%"))
                      for key in LIMIT_KEYS}
        for box in self.boxes.values():
            box.style.description_width = "150px"
        self.button = widgets.Button(description="Apply", icon="check",
                                     tooltip="change the limits of the running sweep (trials running go on)")
        self.button.on_click(lambda _: self.submit())
        self.box = widgets.HBox([*self.boxes.values(), self.button],
                                layout=widgets.Layout(flex_flow="row wrap", align_items="center", max_width="100%"))
        self.box.add_class("automl-steering-limits")
        self.effective: dict = {}
        self._seen: tuple | None = None

    def update(self, snapshot: RunSnapshot) -> None:
        """Fill the boxes with the effective limits, read again from run.json only when the
        snapshot's limits changed (the boxes keep what is being typed meanwhile)."""
        seen = (snapshot.max_trials, snapshot.max_concurrent_trials, snapshot.timeout_s)
        if seen != self._seen:
            self._seen = seen
            self.fill()

    def fill(self) -> None:
        """The boxes from the run folder's effective limits now."""
        from automl_nb.sweep.steering import effective_limits

        self.effective = effective_limits(self.job, self.run.store.run_info())
        for key, box in self.boxes.items():
            box.value = int(self.effective[key])

    def submit(self) -> bool:
        """Ask for the limits changed in the boxes (what a click on Apply does)."""
        changes = {key: box.value for key, box in self.boxes.items() if box.value != self.effective.get(key)}
        shown = " ".join(f"{key}={value}" for key, value in changes.items())
        return self._make(lambda: self.run.set_limits(**changes), f"limits {shown}")

    def widgets(self) -> list:
        return [*self.boxes.values(), self.button, self.box]


class NarrowForm:
    """The search space as YAML in a text area (the form ``%%automl narrow`` takes, prefilled with the
    space new trials are drawn from now), and a Narrow button: ``run.narrow_space(text)``."""

    def __init__(self, job: Any, request: Callable, run: Any) -> None:
        self._make, self.run = request, run
        self.text = widgets.Textarea(value=_current_space(job, run), rows=6,
                                     layout=widgets.Layout(width="100%", max_width="100%"))
        self.button = widgets.Button(description="Narrow", icon="compress",
                                     tooltip="draw new trials from this space (within the job's: a subset of each "
                                             "choice, ranges inside the job's)")
        self.button.on_click(lambda _: self.submit())
        self.box = widgets.VBox([self.text, self.button], layout=widgets.Layout(max_width="100%"))
        self.box.add_class("automl-steering-narrow")
        self.button.disabled = not job.search_space

    def submit(self) -> bool:
        """Ask for the space in the text area (what a click on Narrow does)."""
        return self._make(lambda: self.run.narrow_space(self.text.value), "narrow the search space")

    def widgets(self) -> list:
        return [self.text, self.button, self.box]


def _current_space(job: Any, run: Any) -> str:
    """The YAML of the space new trials come from: the last narrowing not refused, else the job's."""
    from automl_nb.spec.edits import search_space_text

    if not job.search_space:
        return ""
    narrowed = [request["search_space"] for request in run.steering()
                if request.get("kind") == "narrow" and request.get("outcome") != "refused"]
    return search_space_text(narrowed[-1] if narrowed else job.search_space)
