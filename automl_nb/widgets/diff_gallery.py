"""PredictionDiff: the validation images where two trials disagree most, side by side.

Everything comes from the run folder (each trial's ``predictions.jsonl`` and ``labels.json``,
the images by their paths): no model is loaded, so it works after a kernel restart. The order
and the filters are :mod:`automl_nb.analysis.diff`'s. A classification image shows both trials'
top classes beside the true label; a detection image is drawn twice, once per trial, its
detections green (true positive) or red (false positive) and the truth objects that trial
missed dashed orange, with each trial's AP on that image.

The static form (``to_html()``, ``save_html(path)``, and what a saved notebook shows) embeds the
images as data URIs; there a click on a thumbnail shows it large too.
"""

from __future__ import annotations

import base64
import math
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import ipywidgets as widgets

from automl_nb.analysis.diff import ALL, SHOWS, choose, compare, image_average_precision, outcome, predicted
from automl_nb.analysis.predictions import SCORE_THRESHOLD
from automl_nb.errors import AutoMLError
from automl_nb.widgets.detection_viewer import PIXELATED
from automl_nb.widgets.html import StaticHtml

# tab10's green, red and orange (as drawing.PALETTE): a true positive, a false positive, a miss.
TP_COLOUR, FP_COLOUR, FN_COLOUR = (44, 160, 44), (214, 39, 40), (255, 127, 14)
LIMIT = 24  # thumbnails shown, most disagreement first
TOP_K = 3
THUMBNAIL_SIDE, THUMBNAIL_ZOOM = 160, 3  # per trial: a detection thumbnail is two of them
LARGE_SIDE, LARGE_ZOOM = 384, 6
CAPTION_WIDTH, CAPTION_STYLE = "220px", "font-size:12px;line-height:1.35"  # two tiles side by side in a narrow notebook
_STYLE = f"""<style>.{PIXELATED} {{image-rendering: pixelated;}}
.automl-diff-static .automl-diff-large {{display: none;}}
.automl-diff-static .automl-diff-large:target {{display: block;}}</style>"""


@dataclass(frozen=True)
class TrialPredictions:
    """One trial's validation predictions as its folder holds them.

    Attributes:
        trial_id: the trial's id in its run.
        folder: the trial folder.
        task: the job's task.
        labels: class names in the model's order (``labels.json``).
        rows: one dict per validation image (see :mod:`automl_nb.analysis.predictions`).
    """

    trial_id: str
    folder: Path
    task: str
    labels: list
    rows: list


def load_predictions(source: Any, trial: str | int) -> TrialPredictions:
    """A trial's predictions from a :class:`~automl_nb.sweep.Run` or a run folder, models not loaded.

    Raises:
        AutoMLError: not a run, no such trial (the message lists the run's trials), or no
            ``labels.json``; RunFolderError: ``predictions.jsonl`` missing or damaged.

    Example:
        >>> load_predictions("runs/shapes", "0").rows[0]["filename"]
    """
    from automl_nb.analysis.diff import rows_of
    from automl_nb.analysis.predictions import read_predictions
    from automl_nb.sweep import Run
    from automl_nb.sweep.run import as_run
    from automl_nb.train.folder import LABELS, PARAMS, TrialFolder

    source = as_run(source)  # a folder or URL: its Run says so when it is not a run
    if not isinstance(source, Run):
        raise AutoMLError(f"{source!r} is neither a Run nor a run folder (a folder with run.json)")
    folder = TrialFolder(source.store.trial_folder(str(trial)))
    if not folder.has(PARAMS):
        known = ", ".join(record.trial_id for record in source.trials()) or "none yet"
        raise AutoMLError(f"trial {str(trial)!r}: no such trial in {source.folder}; allowed: {known}")
    if not folder.has(LABELS):
        raise AutoMLError(f"{folder.path / LABELS}: missing; the trial has not started training")
    return TrialPredictions(str(trial), folder.path, folder.description()["task"], list(folder.read_json(LABELS)),
                            rows_of(read_predictions(folder.path)))


def panel_options(limit: int, score_threshold: float | None, name: str = "limit") -> tuple[int, float]:
    """``(limit, score threshold)`` of a panel, checked: an int >= 1 and a number in [0, 1]
    (None: :data:`~automl_nb.analysis.predictions.SCORE_THRESHOLD`).

    Raises:
        AutoMLError: naming the argument, its value and what is allowed.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise AutoMLError(f"{name}: {limit!r}; allowed: an int >= 1")
    threshold = SCORE_THRESHOLD if score_threshold is None else score_threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise AutoMLError(f"score_threshold: {score_threshold!r}; allowed: a number in [0, 1]")
    return limit, float(threshold)


def draw_outcomes(image, row: dict, labels: Sequence[str], score_threshold: float = SCORE_THRESHOLD, *,
                  text: bool = True):
    """One trial's detections on ``image``, coloured by outcome at ``score_threshold``.

    Counted detections are green (true positive) or red (false positive), with their masks'
    polygons filled; the truth objects this trial missed are dashed orange. Detections below
    the threshold are not drawn.

    Example:
        >>> draw_outcomes(open_image(row["filename"]), row, labels).save("outcomes.png")
    """
    from automl_nb.widgets.drawing import draw_objects

    got = outcome(row, score_threshold)
    shown = [(box, TP_COLOUR if hit else FP_COLOUR) for box, hit in zip(row["boxes"], got["match"])
             if box["score"] >= score_threshold]
    missed = [obj for obj, found in zip(row["truth"], got["found"]) if not found]
    image = draw_objects(image, missed, labels, truth=True, fill_polygons=False, text=text,
                         colours=[FN_COLOUR] * len(missed))
    return draw_objects(image, [box for box, _ in shown], labels, text=text, colours=[c for _, c in shown])


class PredictionDiff(StaticHtml, widgets.VBox):
    """Two trials' predictions on the validation images where they disagree most, first.

    Args:
        run: a :class:`~automl_nb.sweep.Run` or a run folder.
        trials: the two trial ids to compare, ``[a, b]``.
        limit: how many images get a thumbnail (after the filters); None: :data:`LIMIT`.
        top_k: classification: the classes shown per trial.
        score_threshold: detection: the score from which a detection counts (default
            :data:`~automl_nb.analysis.predictions.SCORE_THRESHOLD`).

    Raises:
        AutoMLError: not two distinct trials of the run, trials of different tasks or classes,
            or a trial without ``predictions.jsonl`` (names the file).

    Example:
        >>> PredictionDiff(run, trials=["0", "3"])           # or %automl diff 0 3
        >>> PredictionDiff("runs/shapes", trials=[0, 3]).save_html("diff.html")
    """

    def __init__(self, run: Any, trials: Sequence[str | int], *, limit: int | None = None, top_k: int = TOP_K,
                 score_threshold: float | None = None) -> None:
        trials = list(trials) if isinstance(trials, (list, tuple)) else trials
        if not isinstance(trials, list) or len(trials) != 2 or str(trials[0]) == str(trials[1]):
            raise AutoMLError(f"trials: {trials!r}; allowed: a list of two different trial ids, e.g. ['0', '1']")
        limit, threshold = panel_options(LIMIT if limit is None else limit, score_threshold)
        panel_options(top_k, None, name="top_k")
        self.a, self.b = (load_predictions(run, trial) for trial in trials)
        if self.a.task != self.b.task or self.a.labels != self.b.labels:
            raise AutoMLError(f"trials {self.a.trial_id} and {self.b.trial_id} predict different things "
                              f"({self.a.task}: {self.a.labels}; {self.b.task}: {self.b.labels}); "
                              "allowed: two trials of the same task and classes")
        from automl_nb.spec.tasks import CLASSIFICATION_TASKS, MULTILABEL

        self.task, self.labels, self.top_k, self.score_threshold = self.a.task, self.a.labels, top_k, threshold
        self.classification, self.multilabel = self.task in CLASSIFICATION_TASKS, self.task == MULTILABEL
        self.items = compare(self.a.rows, self.b.rows, self.task, self.labels, self.score_threshold)
        self._pictures: dict = {}
        self._aps: dict = {}
        self.label = widgets.Dropdown(options=[("all classes", None)] + [(name, name) for name in self.labels],
                                      description="class")
        self.show_only = widgets.Dropdown(options=SHOWS, value=ALL, description="show")
        self.summary, self.title = widgets.HTML(), widgets.HTML()
        self.title.add_class("automl-diff-title")
        self.image = widgets.Image(format="png")
        self.tiles = [self._tile(slot) for slot in range(min(limit, len(self.items)))]
        for control in (self.label, self.show_only):
            control.observe(lambda change: self.refresh(), names="value")
        self.grid = widgets.Box(self.tiles, layout=widgets.Layout(display="flex", flex_flow="row wrap",
                                                                  align_items="flex-start"))
        chosen = widgets.VBox([self.image, self.title], layout=widgets.Layout(align_items="flex-start"))
        super().__init__([widgets.HTML(_STYLE), self.summary, widgets.HBox([self.label, self.show_only]),
                          chosen, self.grid])
        self.add_class("automl-prediction-diff")
        self.chosen: dict | None = None
        self.refresh()

    # -- what is shown ---------------------------------------------------------------------
    @property
    def shown(self) -> list[dict]:
        """The compared images the filters keep, most disagreement first (:func:`~automl_nb.analysis.diff.choose`)."""
        return choose(self.items, self.label.value, self.show_only.value)

    def refresh(self) -> None:
        """Fill the thumbnails from the filters, and show the first image large."""
        shown = self.shown
        for slot, tile in enumerate(self.tiles):
            tile.layout.display = None if slot < len(shown) else "none"
            if slot < len(shown):
                picture, caption, name = tile.children
                _set_picture(picture, self.picture(shown[slot], large=False))
                caption.value = f'<div style="{CAPTION_STYLE}">{self.caption_html(shown[slot])}</div>'
                name.description = name.tooltip = _name(shown[slot]["filename"])
        self.summary.value = self.summary_html(shown)
        self.select(shown[0] if shown else None)

    def select(self, item: dict | None) -> None:
        """Show one compared image large (None: nothing)."""
        self.chosen = item
        if item is None:
            self.image.layout.display, self.title.value = "none", "no image passes these filters"
            return
        self.image.layout.display = None
        _set_picture(self.image, self.picture(item, large=True))
        self.title.value = f"<b>{escape(_name(item['filename']))}</b><br>{self.caption_html(item)}"

    def _tile(self, slot: int) -> widgets.VBox:
        name = widgets.Button(layout=widgets.Layout(width="auto", max_width="320px"))
        name.on_click(lambda _: self.select(self.shown[slot]))
        # The caption wraps at about a thumbnail's width, so that tiles sit side by side.
        caption = widgets.HTML(layout=widgets.Layout(max_width=CAPTION_WIDTH))
        tile = widgets.VBox([widgets.Image(format="png"), caption, name],
                            layout=widgets.Layout(align_items="flex-start", margin="0 8px 8px 0"))
        tile.add_class("automl-diff-tile")
        return tile

    # -- drawing -----------------------------------------------------------------------------
    def picture(self, item: dict, large: bool):
        """The image of one compared item: as is (classification) or each trial's outcomes side by side."""
        key = (item["filename"], large)
        if key not in self._pictures:
            from automl_nb.widgets.drawing import fit, grid

            side, zoom = (LARGE_SIDE, LARGE_ZOOM) if large else (THUMBNAIL_SIDE, THUMBNAIL_ZOOM)
            base = fit(open_or_placeholder(item["filename"]), side, zoom)
            if self.classification:
                self._pictures[key] = base
            else:
                self._pictures[key] = grid([draw_outcomes(base, item[which], self.labels, self.score_threshold,
                                                          text=large) for which in ("a", "b")], columns=2)
        return self._pictures[key]

    def caption_html(self, item: dict) -> str:
        """What each trial said about the image, one line per trial (and the truth for classification)."""
        lines = []
        if self.classification:
            truth = item["a"]["label"]
            truth_set = set(truth) if self.multilabel else {truth}
            lines.append(f"true: <b>{escape(', '.join(sorted(truth_set)) or '(none)')}</b>")
        for which, trial in (("a", self.a), ("b", self.b)):
            row, right = item[which], item[f"{which}_right"]
            head = f"{which.upper()} (trial {escape(trial.trial_id)})"
            if self.classification:
                mark = ('<span style="color:#2a7d46">✓</span>' if right else '<span style="color:#b3261e">✗</span>')
                lines.append(f"{head} {mark} {self._top(row, truth_set)}")
            else:
                got = outcome(row, self.score_threshold)
                ap = _show(self.average_precision(item, which))
                lines.append(f"{head}: AP {ap}, {got['tp']} TP, {got['fp']} FP, {got['fn']} missed")
        return "<br>".join(lines)

    def average_precision(self, item: dict, which: str) -> float:
        """Trial ``which``'s (``"a"`` or ``"b"``) AP on a detection image
        (:func:`~automl_nb.analysis.diff.image_average_precision`), kept once computed."""
        key = (item["filename"], which)
        if key not in self._aps:
            self._aps[key] = image_average_precision(item[which], self.labels)
        return self._aps[key]

    def _top(self, row: dict, truth: set) -> str:
        ranked = sorted(zip(self.labels, row["probs"]), key=lambda pair: -pair[1])[: self.top_k]
        chosen = predicted(row["probs"], self.labels, self.multilabel)
        parts = []
        for label, prob in ranked:
            text = f"{escape(label)} {prob:.2f}"
            text = f"<b>{text}</b>" if label in truth else text
            parts.append(f"<u>{text}</u>" if (label in chosen if self.multilabel else label == chosen) else text)
        return " · ".join(parts)

    def summary_html(self, shown: Sequence[dict]) -> str:
        differ = sum(item["differs"] > 0 for item in self.items)
        line = (f"Trial {escape(self.a.trial_id)} (A) against trial {escape(self.b.trial_id)} (B), {self.task}: "
                f"{len(self.items)} validation images, decided differently on {differ}; "
                f"{len(shown)} pass the filters, the first {min(len(shown), len(self.tiles))} shown, "
                "most disagreement first.")
        if self.classification:
            legend = "Per trial its top classes (underlined: its answer; bold: the truth)."
        else:
            legend = (f"Left A, right B: detections scoring ≥ {self.score_threshold:.2f} "
                      f"<span style='color:rgb{TP_COLOUR}'>green: true positive</span>, "
                      f"<span style='color:rgb{FP_COLOUR}'>red: false positive</span>; "
                      f"<span style='color:rgb{FN_COLOUR}'>dashed orange: missed</span>. "
                      "AP: VOC AP@0.5 of the image.")
        return f"{line}<br>{legend} A name shows that image large."

    # -- static form ---------------------------------------------------------------------------
    def to_html(self) -> str:
        """The gallery as static HTML (images inline): the summary, the thumbnails of the current
        filters, each a link to its large view."""
        shown = self.shown[: len(self.tiles)]
        tiles, large = [], []
        for k, item in enumerate(shown):
            anchor = f"automl-diff-{id(self)}-{k}"
            tiles.append(f'<figure style="margin:0 8px 8px 0"><a href="#{anchor}">'
                         f"{img_tag(self.picture(item, large=False))}</a><figcaption>"
                         f"{escape(_name(item['filename']))}<br>{self.caption_html(item)}</figcaption></figure>")
            large.append(f'<div class="automl-diff-large" id="{anchor}">{img_tag(self.picture(item, large=True))}'
                         f"<p><b>{escape(_name(item['filename']))}</b><br>{self.caption_html(item)}</p></div>")
        return (f'<div class="automl-diff-static">{_STYLE}<p>{self.summary_html(self.shown)}</p>{"".join(large)}'
                f'<div style="display:flex;flex-wrap:wrap">{"".join(tiles)}</div></div>')

    def save_html(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_html` as a page of its own (atomically); returns its path."""
        from automl_nb._atomic import atomic_write_text

        title = f"trial {self.a.trial_id} against trial {self.b.trial_id}"
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
                f"<body>{self.to_html()}</body></html>")
        return atomic_write_text(path, page)



def open_or_placeholder(url: str):
    """The image, or a grey square saying it is gone (the data moved since the run)."""
    from PIL import Image, ImageDraw

    from automl_nb.data.images import open_image
    from automl_nb.errors import DataError

    try:
        return open_image(url)
    except DataError:
        image = Image.new("RGB", (64, 64), (200, 200, 200))
        ImageDraw.Draw(image).text((4, 26), "missing", fill=(60, 60, 60))
        return image


def _set_picture(widget: widgets.Image, picture) -> None:
    """Show ``picture`` at its own size, pixels sharp."""
    from automl_nb.widgets.drawing import png_bytes

    widget.value, widget.width, widget.height = png_bytes(picture), str(picture.width), str(picture.height)
    widget.layout.width, widget.layout.height = f"{picture.width}px", f"{picture.height}px"
    widget.add_class(PIXELATED)


def img_tag(picture) -> str:
    """An ``<img>`` of a PIL picture at its own size, the PNG inline, pixels sharp."""
    from automl_nb.widgets.drawing import png_bytes

    data = base64.b64encode(png_bytes(picture)).decode("ascii")
    return (f'<img class="{PIXELATED}" width="{picture.width}" height="{picture.height}" '
            f'src="data:image/png;base64,{data}"/>')


def _name(url: str) -> str:
    return PurePosixPath(str(url)).name


def _show(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"
