"""A multi-select drawn as checkboxes: every allowed value visible, one click to take it or leave it.

Used where the spec gives a finite set of values (a choice parameter's values, a task's models),
in place of ``SelectMultiple``, whose ctrl-click selection hides what is chosen once it scrolls.
"""

from __future__ import annotations

from typing import Any, Iterable

import ipywidgets as widgets
import traitlets


class ChoiceCheckboxes(widgets.Box):
    """One checkbox per option; ``value`` is the tuple of checked options, in the order ticked (or given).

    Same traits as ``SelectMultiple`` (``options``, ``value``), so code that reads, sets or
    observes one works with the other. The order is kept because it is the order of a
    choice's values in the YAML (and of a grid's trials): a job loaded and saved is unchanged.

    Args:
        options: the values offered.
        value: the values checked at first.
        description: a label shown before the boxes.

    Example:
        >>> boxes = ChoiceCheckboxes(["sgd", "adam", "adamw"], value=("adam",))
        >>> boxes.value = ("sgd", "adam")
    """

    options = traitlets.Tuple()
    value = traitlets.Tuple()

    def __init__(self, options: Iterable[Any] = (), value: Iterable[Any] = (), description: str = "", **kwargs) -> None:
        self._syncing = False
        self._boxes: list[widgets.Checkbox] = []
        self._label = widgets.Label(description) if description else None
        kwargs.setdefault("layout", widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__(**kwargs)
        self.add_class("automl-checkboxes")
        self.observe(self._rebuild_boxes, names="options")
        self.observe(self._show_value, names="value")
        self.options = tuple(options)
        self.value = tuple(value)

    @traitlets.validate("value")
    def _check_value(self, proposal) -> tuple:
        unknown = [item for item in proposal["value"] if item not in self.options]
        if unknown:
            raise traitlets.TraitError(f"{unknown!r} not among the options {list(self.options)!r}")
        return tuple(dict.fromkeys(proposal["value"]))

    def _rebuild_boxes(self, change) -> None:
        for box in self._boxes:
            box.close()
        self._boxes = [widgets.Checkbox(value=False, description=str(option), indent=False,
                                        layout=widgets.Layout(width="auto", margin="0 12px 0 0"))
                       for option in self.options]
        for box in self._boxes:
            box.observe(self._box_changed, names="value")
        self.children = ([self._label] if self._label else []) + self._boxes
        self.value = tuple(item for item in self.value if item in self.options)
        self._show_value(None)

    def _show_value(self, change) -> None:
        # Setting the boxes one by one would call _box_changed with half the new value.
        self._syncing = True
        try:
            for option, box in zip(self.options, self._boxes):
                box.value = option in self.value
        finally:
            self._syncing = False

    def _box_changed(self, change) -> None:
        if self._syncing:
            return
        checked = [option for option, box in zip(self.options, self._boxes) if box.value]
        kept = tuple(option for option in self.value if option in checked)
        self.value = kept + tuple(option for option in checked if option not in kept)
