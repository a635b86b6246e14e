"""ErrorAnalysis: where one trial goes wrong, from its run folder alone (no model loaded).

Tabs: the confusion matrix (a cell's button lists that cell's images), the worst images (top
losses; for detection the most errors), per-class precision-recall curves, and for detection
the false positives and missed objects of a chosen class and COCO's AP by object size. The
numbers come from :mod:`automl_nb.analysis.errors`; the static form (what a saved notebook
shows) has the matrix, the worst images, the curves and the sizes.
"""

from __future__ import annotations

import functools
import math
import os
from html import escape
from typing import Any, Sequence

import ipywidgets as widgets

from automl_nb.analysis import errors
from automl_nb.analysis.diff import outcome, predicted
from automl_nb.errors import AutoMLError
from automl_nb.spec.tasks import CLASSIFICATION_TASKS, MULTICLASS, MULTILABEL
from automl_nb.widgets.detection_viewer import PIXELATED
from automl_nb.widgets.diff_gallery import (
    CAPTION_STYLE, CAPTION_WIDTH, draw_outcomes, img_tag, load_predictions, open_or_placeholder, panel_options,
)
from automl_nb.widgets.html import StaticHtml, png_img

GALLERY = 24  # images shown of a cell, of the worst, of a class's errors
THUMBNAIL_SIDE, THUMBNAIL_ZOOM = 160, 3
_FP, _FN = "false positives", "missed objects"


class ErrorAnalysis(StaticHtml, widgets.VBox):
    """The errors of one trial: confusion matrix, worst images, precision-recall curves, and for
    detection its errors per class and its AP by object size.

    Args:
        run: a :class:`~automl_nb.sweep.Run` or a run folder.
        trial: the trial id (default: the best trial).
        limit: how many images a gallery shows; None: :data:`GALLERY`.
        score_threshold: detection: the score from which a detection counts (default
            :data:`~automl_nb.analysis.predictions.SCORE_THRESHOLD`).

    Raises:
        AutoMLError: no such trial, no trial scored yet, or no ``predictions.jsonl`` (names the file).

    Example:
        >>> ErrorAnalysis(run, "3")                 # or %automl errors 3
        >>> ErrorAnalysis("runs/shapes").matrix.cell("circle", "square")
    """

    def __init__(self, run: Any, trial: str | int | None = None, *, limit: int | None = None,
                 score_threshold: float | None = None) -> None:
        limit, threshold = panel_options(GALLERY if limit is None else limit, score_threshold)
        if trial is None:  # the best one: the run is opened once, here
            from automl_nb.sweep.run import as_run

            run = as_run(run)
            trial = _best_trial(run)
        self.trial = load_predictions(run, trial)
        self.task, self.labels, self.rows = self.trial.task, self.trial.labels, self.trial.rows
        self.limit, self.score_threshold = limit, threshold
        self.classification = self.task in CLASSIFICATION_TASKS
        self.matrix = errors.confusion(self.rows, self.task, self.labels, self.score_threshold)
        self.curves = errors.precision_recall(self.rows, self.task, self.labels)
        self.worst = errors.top_losses(self.rows, self.task, limit, self.score_threshold)
        self._thumbnails: dict = {}
        self.summary = widgets.HTML(self.summary_html())
        self.cell_title, self.cell_gallery = widgets.HTML("a cell's button lists its images here"), _box([])
        pages = {"confusion": widgets.VBox([self._matrix_grid(), self.cell_title, self.cell_gallery]),
                 "worst images": widgets.VBox([widgets.HTML(self.worst_title()), _box(self._tiles(self.worst))]),
                 "precision-recall": widgets.Image(value=self.curves_png, format="png")}
        if not self.classification:
            self.error_class = widgets.Dropdown(options=self.labels, description="class")
            self.error_kind = widgets.ToggleButtons(options=(_FP, _FN))
            self.error_title, self.error_gallery = widgets.HTML(), _box([])
            for control in (self.error_class, self.error_kind):
                control.observe(lambda change: self.show_class_errors(), names="value")
            pages["errors by class"] = widgets.VBox([widgets.HBox([self.error_class, self.error_kind]),
                                                     self.error_title, self.error_gallery])
            pages["AP by size"] = widgets.HTML(self.sizes_html)
            self.show_class_errors()
        self.tabs = widgets.Tab(children=list(pages.values()))
        self.tabs.titles = tuple(pages)
        super().__init__([widgets.HTML(f"<style>.{PIXELATED} {{image-rendering: pixelated;}}</style>"),
                          self.summary, self.tabs])
        self.add_class("automl-error-analysis")

    # -- confusion -------------------------------------------------------------------------------
    def _matrix_grid(self) -> widgets.GridBox:
        matrix = self.matrix
        top = matrix.counts.max() or 1
        cells = [widgets.HTML("<b>true \\ predicted</b>")]
        cells += [widgets.HTML(f"<b>{escape(name)}</b>") for name in matrix.columns]
        for r, row_name in enumerate(matrix.rows):
            cells.append(widgets.HTML(f"<b>{escape(row_name)}</b>"))
            for c, column_name in enumerate(matrix.columns):
                count = int(matrix.counts[r, c])
                button = widgets.Button(description=str(count), layout=widgets.Layout(width="auto"),
                                        tooltip=f"{row_name} → {column_name}: {count}", disabled=count == 0)
                button.style.button_color = _shade(count / top, right=self._on_diagonal(r, c))
                button.on_click(lambda _, r=row_name, c=column_name: self.open_cell(r, c))
                cells.append(button)
        return widgets.GridBox(cells, layout=widgets.Layout(
            grid_template_columns=f"max-content repeat({len(matrix.columns)}, minmax(48px, max-content))",
            grid_gap="2px"))

    def _on_diagonal(self, r: int, c: int) -> bool:
        """The cell counts right answers (multilabel: its first column)."""
        return c == 0 if self.matrix.columns == errors.MULTILABEL_COLUMNS else r == c

    def open_cell(self, row: str, column: str) -> list[int]:
        """Show the images of one cell of the confusion matrix (names); returns their indices."""
        images = self.matrix.cell(row, column)
        self.cell_title.value = (f"<b>{escape(row)} → {escape(column)}</b>: {len(images)} image(s)"
                                 + (f", the first {self.limit} shown" if len(images) > self.limit else ""))
        self.cell_gallery.children = self._tiles(images[: self.limit])
        return images

    # -- detection: errors per class ---------------------------------------------------------------
    def show_class_errors(self) -> list[tuple[int, int]]:
        """Show the images with the chosen class's false positives or misses; returns ``(image, how many)``."""
        kind = "fp" if self.error_kind.value == _FP else "fn"
        found = errors.class_errors(self.rows, self.error_class.value, kind, self.score_threshold)
        total = sum(n for _, n in found)
        self.error_title.value = (f"{escape(self.error_class.value)}: {total} {self.error_kind.value} "
                                  f"in {len(found)} image(s), most first")
        self.error_gallery.children = self._tiles([n for n, _ in found[: self.limit]])
        return found

    @functools.cached_property
    def sizes_html(self) -> str:
        """COCO's AP@[.5:.95] by object size as a table (or why it cannot be had); once per panel:
        it opens every image for its size and runs COCO's evaluation."""
        from automl_nb.data.images import image_size
        from automl_nb.errors import DataError

        try:
            sizes = [image_size(row["filename"]) for row in self.rows]
        except DataError as error:
            return f"AP by size needs each image's size in pixels: {escape(str(error))}"
        by_size = errors.ap_by_size(self.rows, self.labels, sizes)
        ranges = errors.size_ranges()
        cells = "".join(f"<tr><td>{name}</td><td>{_area(low)} – {_area(high)}</td><td>{part['objects']}</td>"
                        f"<td>{_show(part['ap'])}</td></tr>" for (name, part), (low, high)
                        in zip(by_size.items(), ranges.values()))
        return ('<table class="automl-ap-by-size"><tr><th>size</th><th>box area (px)</th><th>objects</th>'
                f"<th>COCO AP@[.5:.95]</th></tr>{cells}</table>"
                "<p>Areas in pixels of the original image, as COCO's; every stored detection (score ≥ 0.1) "
                "takes part.</p>")

    # -- galleries -----------------------------------------------------------------------------------
    def thumbnail(self, n: int):
        """Image ``n`` at thumbnail size: as is (classification) or with its outcomes drawn."""
        if n not in self._thumbnails:
            from automl_nb.widgets.drawing import fit

            picture = fit(open_or_placeholder(self.rows[n]["filename"]), THUMBNAIL_SIDE, THUMBNAIL_ZOOM)
            if not self.classification:
                picture = draw_outcomes(picture, self.rows[n], self.labels, self.score_threshold, text=False)
            self._thumbnails[n] = picture
        return self._thumbnails[n]

    def caption_html(self, n: int) -> str:
        """The file name, and what the trial said about image ``n``."""
        row = self.rows[n]
        name = escape(os.path.basename(str(row["filename"])))
        if self.classification:
            multilabel = self.task == MULTILABEL
            said = predicted(row["probs"], self.labels, multilabel)
            said = ", ".join(sorted(said)) if multilabel else f"{said} {max(row['probs']):.2f}"
            truth = ", ".join(sorted(row["label"])) if multilabel else row["label"]
            return f"{name}<br>true {escape(truth)} · said {escape(said)}<br>loss {float(row['loss']):.3f}"
        got = outcome(row, self.score_threshold)
        return f"{name}<br>{got['tp']} TP, {got['fp']} FP, {got['fn']} missed"

    def _tiles(self, images: Sequence[int]) -> list[widgets.VBox]:
        from automl_nb.widgets.drawing import png_bytes

        tiles = []
        for n in images:
            picture = self.thumbnail(n)
            image = widgets.Image(value=png_bytes(picture), format="png", width=str(picture.width),
                                  height=str(picture.height))
            image.add_class(PIXELATED)
            caption = widgets.HTML(f'<div style="{CAPTION_STYLE}">{self.caption_html(n)}</div>',
                                   layout=widgets.Layout(max_width=CAPTION_WIDTH))
            tiles.append(widgets.VBox([image, caption],
                                      layout=widgets.Layout(margin="0 8px 8px 0", align_items="flex-start")))
        return tiles

    # -- text and figures ----------------------------------------------------------------------------
    def summary_html(self) -> str:
        head = f"Trial {escape(self.trial.trial_id)}, {self.task}: {len(self.rows)} validation images"
        if self.classification:
            right = int(self.matrix.counts.trace()) if self.task == MULTICLASS else None
            tail = (f", {right} right ({right / max(1, len(self.rows)):.1%})" if right is not None
                    else f", {int(self.matrix.counts[:, 0].sum())} true labels found")
        else:
            total = errors.counts(self.rows, self.score_threshold)
            tail = (f"; at score ≥ {self.score_threshold:.2f}: {total['tp']} true positives, {total['fp']} false "
                    f"positives, {total['fn']} missed objects")
        return f"{head}{tail}. From its predictions.jsonl: no model is loaded."

    def worst_title(self) -> str:
        what = "highest loss" if self.classification else "most errors (false positives + missed)"
        return f"The {len(self.worst)} images with the {what}, worst first."

    @functools.cached_property
    def curves_png(self) -> bytes:
        """Each class's precision-recall curve, its AP in the legend, as PNG."""
        from automl_nb.widgets.figures import new_figure, to_png

        fig, (axis,) = new_figure(5.5, 3.8)
        for curve in self.curves:
            if curve.positives and len(curve.recall):
                axis.plot(curve.recall, curve.precision, drawstyle="steps-post",
                          label=f"{curve.label} (AP {curve.average_precision:.2f})")
        axis.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.05),
                 title="precision-recall per class" + ("" if self.classification else " (IoU ≥ 0.5)"))
        axis.grid(alpha=0.3)
        if axis.get_lines() and len(self.labels) <= 12:
            axis.legend(fontsize=7, loc="lower left")
        return to_png(fig)

    # -- static form -----------------------------------------------------------------------------------
    def to_html(self) -> str:
        """The panel as static HTML: summary, confusion counts, worst images, curves (and AP by size)."""
        matrix = self.matrix
        head = "".join(f"<th>{escape(name)}</th>" for name in matrix.columns)
        body = "".join(f"<tr><th>{escape(name)}</th>" + "".join(f"<td>{int(v)}</td>" for v in matrix.counts[r])
                       + "</tr>" for r, name in enumerate(matrix.rows))
        worst = "".join(f'<figure style="margin:0 8px 8px 0">{img_tag(self.thumbnail(n))}'
                        f"<figcaption>{self.caption_html(n)}</figcaption></figure>" for n in self.worst)
        sizes = "" if self.classification else f"<h4>AP by size</h4>{self.sizes_html}"
        return (f'<div class="automl-error-analysis-static"><p>{self.summary.value}</p>'
                f'<h4>Confusion (true \\ predicted)</h4><table><tr><th></th>{head}</tr>{body}</table>'
                f'<h4>{self.worst_title()}</h4><div style="display:flex;flex-wrap:wrap">{worst}</div>'
                f'{png_img(self.curves_png, "precision-recall curves")}{sizes}</div>')



def _best_trial(run: Any) -> str:
    best = run.best_trial
    if best is None:
        raise AutoMLError(f"{run.folder}: no trial has scored yet ({run.status}); name one: ErrorAnalysis(run, '0')")
    return best.trial_id


def _box(children: list) -> widgets.Box:
    return widgets.Box(children, layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))


def _shade(fraction: float, right: bool) -> str:
    """A cell's background: the fuller, the deeper; green where the trial was right, red where wrong."""
    if fraction <= 0:
        return "#f5f5f5"
    strength = int(235 - 135 * fraction)
    return f"rgb({strength},235,{strength})" if right else f"rgb(245,{strength},{strength})"


def _area(value: float) -> str:
    return "∞" if value >= 1e9 else f"{int(value)}"


def _show(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"
