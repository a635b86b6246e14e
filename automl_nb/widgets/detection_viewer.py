"""DetectionViewer: a detector's predictions against the ground truth, worst images first.

Predictions are made once, at a low score; the score-threshold slider and the class filter
then only choose what is drawn and scored, so moving them is instant. Every number comes from
:func:`automl_nb.metrics.detection.validation_metrics`, the function the trial's validation
calls, with the trial's metric type and IoU threshold: at the trial's ``box_score_threshold``
and with all classes, the mAP of its validation images is the leaderboard's. An image's AP is
the same function on that image alone; the thumbnails are sorted by it, worst first.

Images are shown at a notebook's scale: thumbnails at most 256 px, the chosen image at most
512 px, a small image enlarged only by a whole factor (pixels kept sharp, and drawn
``image-rendering: pixelated`` in the browser). File names are text beside the images, never
drawn into them.
"""

from __future__ import annotations

import base64
import math
import os
from html import escape
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as widgets

from automl_nb.errors import AutoMLError
from automl_nb.widgets.detection_scores import (
    image_detections, image_targets, kept_boxes, scoring_parameters,
)
from automl_nb.widgets.drawing import draw_objects, fit, png_bytes

LOWEST_SCORE = 0.05
THUMBNAIL_SIDE, THUMBNAIL_ZOOM = 256, 3  # a 64 px image: a 192 px thumbnail...
LARGE_SIDE, LARGE_ZOOM = 512, 6          # ...and 384 px when chosen
THUMBNAILS = 24  # the worst images get a thumbnail; the image list holds them all
PIXELATED = "automl-pixelated"
_STYLE = f"<style>.{PIXELATED} {{image-rendering: pixelated;}}</style>"


class DetectionViewer(widgets.VBox):
    """Validation images with ground truth (dashed white) and predicted boxes/masks, worst AP first.

    Args:
        source: a :class:`~automl_nb.sweep.Run`, a run folder (its best trial is used) or a
            trial folder.
        trial: with a run, the trial to show instead of the best one.
        records: the images to show (ImageRecords with labels); default: the trial's own
            validation images (its split is rebuilt from ``params.json``).
        lowest_score: the least score predicted (the slider cannot go below it; the trial's
            ``box_score_threshold`` when that is lower).
        thumbnails: how many of the worst images get a thumbnail.

    Raises:
        AutoMLError: not a detection or segmentation model, or no trained model yet.

    Example:
        >>> DetectionViewer(run)            # or DetectionViewer("runs/detection")
    """

    def __init__(self, source: Any, *, trial: str | None = None, records: Sequence | None = None,
                 lowest_score: float = LOWEST_SCORE, thumbnails: int = THUMBNAILS) -> None:
        from automl_nb.infer import Predictor
        from automl_nb.spec import is_classification
        from automl_nb.train.folder import TrialFolder

        folder = trial_folder(source, trial)
        description = TrialFolder(folder).description()
        if is_classification(description["task"]):
            raise AutoMLError(f"{folder}: a {description['task']} model draws no boxes; use %automl show IMAGE")
        params = description["parameters"]
        records = list(records) if records is not None else validation_records(folder)
        if not records:
            raise AutoMLError(f"{folder}: no validation images to show")
        threshold = float(params["box_score_threshold"])
        # Predict down to the trial's own threshold at least: every box its validation scored is there.
        lowest_score = min(lowest_score, threshold)
        predictor = Predictor.from_trial(folder, box_score_threshold=lowest_score)
        predictions = predictor.predict([record.image_url for record in records])
        self.folder = folder
        self._build(description["task"], records, predictions, predictor.labels, scoring_parameters(params),
                    threshold=threshold, lowest_score=lowest_score, thumbnails=thumbnails)

    @classmethod
    def from_predictions(cls, records: Sequence, predictions: Sequence[dict], labels: Sequence[str], *,
                         task: str = "image_object_detection", iou_threshold: float | None = None,
                         threshold: float | None = None, metric_type: str | None = None,
                         thumbnails: int = THUMBNAILS) -> "DetectionViewer":
        """A viewer of predictions made elsewhere (Azure-shaped, one per record), e.g. by a
        :class:`~automl_nb.infer.Predictor` on your own test images.

        ``iou_threshold``, ``threshold`` and ``metric_type`` default to the task's
        ``validation_iou_threshold``, ``box_score_threshold`` and ``validation_metric_type``.

        Example:
            >>> DetectionViewer.from_predictions(records, predictor.predict([r.image_url for r in records]),
            ...                                  predictor.labels)
        """
        if len(records) != len(predictions) or not records:
            raise AutoMLError(f"give one prediction per record: {len(records)} records, {len(predictions)} predictions")
        from automl_nb.spec import default_value

        given = {"validation_iou_threshold": iou_threshold, "validation_metric_type": metric_type,
                 "box_score_threshold": threshold}
        params = {key: default_value(key, task) if value is None else value for key, value in given.items()}
        viewer = cls.__new__(cls)
        viewer.folder = None
        viewer._build(task, list(records), list(predictions), labels, scoring_parameters(params),
                      threshold=params["box_score_threshold"],
                      lowest_score=min(params["box_score_threshold"], LOWEST_SCORE), thumbnails=thumbnails)
        return viewer

    def _build(self, task: str, records: list, predictions: list, labels: Sequence[str], scoring: dict, *,
               threshold: float, lowest_score: float, thumbnails: int) -> None:
        from automl_nb.data.images import image_size
        from automl_nb.spec import SEGMENTATION, check_task

        if isinstance(thumbnails, bool) or not isinstance(thumbnails, int) or thumbnails < 0:
            raise ValueError(f"thumbnails: {thumbnails!r} is not an int >= 0")
        self.task = check_task(task)
        self.segmentation = self.task == SEGMENTATION
        self.scoring, self.iou_threshold = scoring, scoring["validation_iou_threshold"]
        self.validation_threshold = threshold
        self.records, self.predictions, self.labels = records, predictions, list(labels)
        self.names = [Path(str(record.image_url)).name for record in records]
        # In the pixels of the image as read, as the validation's dataset measures them.
        self.sizes = [image_size(record.image_url) for record in records]
        self._bases: dict = {}  # thumbnail-sized images, read once
        self._syncing = False
        self.threshold = widgets.FloatSlider(value=threshold, min=lowest_score, max=1.0, step=0.01,
                                             description="min score", continuous_update=False)
        self.classes = widgets.SelectMultiple(options=self.labels, value=tuple(self.labels), description="classes",
                                              rows=min(6, len(self.labels)))
        self.show_truth = widgets.Checkbox(value=True, description="ground truth")
        self.summary = widgets.HTML()
        self.index = widgets.Dropdown(description="image", layout=widgets.Layout(width="340px"))
        self.previous = widgets.Button(icon="arrow-left", tooltip="previous image (worse AP)",
                                       layout=widgets.Layout(width="40px"))
        self.next = widgets.Button(icon="arrow-right", tooltip="next image (better AP)",
                                   layout=widgets.Layout(width="40px"))
        self.image = widgets.Image(format="png")
        self.title = widgets.HTML()
        self.tiles = [self._tile(slot) for slot in range(min(thumbnails, len(records)))]
        for control in (self.threshold, self.classes, self.show_truth):
            control.observe(lambda change: self.refresh(), names="value")
        self.index.observe(lambda change: None if self._syncing else self.show(), names="value")
        self.previous.on_click(lambda _: self._step(-1))
        self.next.on_click(lambda _: self._step(1))
        chosen = widgets.VBox([widgets.HBox([self.previous, self.index, self.next]), self.image, self.title],
                              layout=widgets.Layout(align_items="flex-start", margin="0 16px 0 0"))
        # flex-wrap: the thumbnails fill the width beside the chosen image and go below it when narrow
        self.grid = widgets.Box(self.tiles, layout=widgets.Layout(display="flex", flex_flow="row wrap",
                                                                  align_items="flex-start", flex="1 1 300px"))
        widgets.VBox.__init__(self, [widgets.HTML(_STYLE), self.summary,
                                     widgets.HBox([self.threshold, self.classes, self.show_truth]),
                                     widgets.Box([chosen, self.grid], layout=widgets.Layout(
                                         display="flex", flex_flow="row wrap", align_items="flex-start"))])
        self.add_class("automl-detection-viewer")
        self.png: bytes | None = None
        self.refresh()

    def _tile(self, slot: int) -> widgets.VBox:
        """Thumbnail slot ``slot`` of the worst-first order: picture, AP, and the file name as a button."""
        name = widgets.Button(layout=widgets.Layout(width="auto", max_width=f"{THUMBNAIL_SIDE}px"))
        name.on_click(lambda _: self.select(self.order[slot]))
        return widgets.VBox([widgets.Image(format="png"), widgets.HTML(), name],
                            layout=widgets.Layout(align_items="flex-start", margin="0 8px 8px 0"))

    def _step(self, by: int) -> None:
        position = self.order.index(self.index.value)
        self.select(self.order[(position + by) % len(self.order)])

    def select(self, index: int) -> None:
        """Show image ``index`` (a position in ``records``) large."""
        self.index.value = index

    # -- what is drawn and scored ----------------------------------------------------------
    def kept(self, index: int) -> list[dict]:
        """The predicted boxes of image ``index`` above the threshold, of the chosen classes."""
        return kept_boxes(self.predictions[index], self.threshold.value, set(self.classes.value))

    def truth(self, index: int) -> list:
        """The true objects of image ``index`` of the chosen classes."""
        chosen = set(self.classes.value)
        return [obj for obj in self.records[index].objects if obj.label in chosen]

    def metrics(self, indices: Sequence[int] | None = None, masks: bool = False) -> dict:
        """The validation row (:func:`~automl_nb.metrics.detection.validation_metrics`) of these
        images (default: all) at the current threshold and classes; ``masks`` adds the ``mask_`` keys."""
        from automl_nb.metrics.detection import validation_metrics

        indices = range(len(self.records)) if indices is None else indices
        predictions, targets = [], []
        for k in indices:
            width, height = self.sizes[k]
            predictions.append(image_detections(self.kept(k), self.labels, width, height, masks))
            targets.append(image_targets(self.truth(k), self.labels, width, height, masks))
        return validation_metrics(predictions, targets, len(self.labels), self.scoring, segmentation=masks)

    def average_precision(self, index: int | None = None, masks: bool = False) -> float:
        """The primary metric of one image (or of all images when ``index`` is None) at the
        current threshold and classes; nan when the chosen classes have no ground truth there."""
        row = self.metrics(None if index is None else [index], masks)
        return row["mask_mean_average_precision" if masks else "mean_average_precision"]

    # -- drawing -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Rescore every image at the current threshold and classes, sort them and redraw."""
        self.scores = self.metrics(masks=self.segmentation)
        self.image_ap = [self.average_precision(k) for k in range(len(self.records))]
        # Worst first; an image with nothing of the chosen classes to find (nan) goes last.
        self.order = sorted(range(len(self.records)),
                            key=lambda k: (math.isnan(self.image_ap[k]), 0 if math.isnan(self.image_ap[k])
                                           else self.image_ap[k], k))
        current = self.index.value if self.index.value is not None else self.order[0]
        self._syncing = True  # new options reset the value: show once, below
        try:
            self.index.options = [(f"{self.names[k]} (AP {_show(self.image_ap[k])})", k) for k in self.order]
            self.index.value = current
        finally:
            self._syncing = False
        for slot, tile in enumerate(self.tiles):
            self._draw_tile(tile, self.order[slot])
        self.summary.value = self.summary_html()
        self.show()

    def _draw_tile(self, tile: widgets.VBox, k: int) -> None:
        from automl_nb.data.images import open_image

        if k not in self._bases:
            self._bases[k] = fit(open_image(self.records[k].image_url), THUMBNAIL_SIDE, THUMBNAIL_ZOOM)
        picture, score, name = tile.children
        _set_picture(picture, self._draw(self._bases[k], k, text=False), self.sizes[k])
        score.value = f"AP {_show(self.image_ap[k])}"
        name.description, name.tooltip = self.names[k], f"show {self.names[k]} large"

    def _draw(self, image, k: int, text: bool):
        if self.show_truth.value:
            image = draw_objects(image, self.truth(k), self.labels, truth=True, fill_polygons=False, text=text)
        return draw_objects(image, self.kept(k), self.labels, text=text)

    def show(self) -> None:
        """Draw the chosen image large, with its numbers and file name beside it."""
        from automl_nb.data.images import open_image

        k = self.index.value
        picture = self._draw(fit(open_image(self.records[k].image_url), LARGE_SIDE, LARGE_ZOOM), k, text=True)
        self.png = _set_picture(self.image, picture, self.sizes[k])
        self.title.value = self.image_html(k)

    def metric_name(self) -> str:
        """What the numbers are, e.g. ``VOC AP@0.5``."""
        if self.scoring["validation_metric_type"] == "coco":
            return "COCO AP@[.5:.95]"
        return f"VOC AP@{self.iou_threshold:g}"

    def summary_html(self) -> str:
        n, chosen = len(self.records), len(self.classes.value)
        line = (f"{self.metric_name()} of all {n} images: {_show(self.scores['mean_average_precision'])}, "
                f"boxes scoring > {self.threshold.value:.2f}, {chosen} of {len(self.labels)} classes")
        if self.segmentation:
            line += f"; mask AP {_show(self.scores['mask_mean_average_precision'])} (from the predicted polygons)"
        if self.threshold.value != self.validation_threshold or chosen != len(self.labels):
            line += f". Not the validation's number: it scores boxes > {self.validation_threshold:.2f} of every class."
        elif self.folder is not None:
            line += ". This is the trial's validation metric, the leaderboard's number."
        else:
            line += ". Scored as a trial's validation scores."
        return (f"{escape(line, quote=False)}<br>Thumbnails: the {len(self.tiles)} worst images first "
                "(a name shows that image large).")

    def image_html(self, k: int) -> str:
        width, height = self.sizes[k]
        line = (f"{len(self.truth(k))} true object(s), {len(self.kept(k))} predicted; "
                f"{self.metric_name()} {_show(self.image_ap[k])}")
        if self.segmentation:
            line += f", mask AP {_show(self.average_precision(k, masks=True))}"
        return (f"<b>{escape(self.names[k])}</b> ({width} x {height} px, "
                f"{self.order.index(k) + 1} of {len(self.records)} worst first)<br>{escape(line, quote=False)}")

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        tiles = "".join(
            f'<figure style="margin:0 8px 8px 0">{_img(picture)}<figcaption>{escape(name.description)}<br>'
            f"{score.value}</figcaption></figure>" for picture, score, name in (t.children for t in self.tiles))
        bundle["text/html"] = (f"<div><p>{self.summary.value}</p>{_img(self.image)}<p>{self.title.value}</p>"
                               f'<div style="display:flex;flex-wrap:wrap">{tiles}</div></div>')
        return bundle


def _set_picture(widget: widgets.Image, picture, native: tuple[int, int]) -> bytes:
    """Put ``picture`` in ``widget`` at its own size (no stretching); pixelated when enlarged."""
    png = png_bytes(picture)
    widget.value, widget.width, widget.height = png, str(picture.width), str(picture.height)
    widget.layout.width, widget.layout.height = f"{picture.width}px", f"{picture.height}px"
    if picture.width > native[0]:
        widget.add_class(PIXELATED)
    else:
        widget.remove_class(PIXELATED)
    return png


def _img(widget: widgets.Image) -> str:
    """The static form of an Image widget: the same size, the same pixelation."""
    style = "image-rendering:pixelated" if PIXELATED in widget._dom_classes else ""
    data = base64.b64encode(widget.value).decode("ascii")
    return (f'<img width="{widget.width}" height="{widget.height}" style="{style}" '
            f'src="data:image/png;base64,{data}"/>')


def trial_folder(source: Any, trial: str | None = None) -> Path:
    """The trial folder a Run, run folder or trial folder names (a run's best trial by default).

    Raises:
        AutoMLError: no such folder, or a run with no trained model yet.
    """
    from automl_nb.sweep import Run, load_run
    from automl_nb.train.folder import PARAMS, TrialFolder

    if isinstance(source, Run) or (isinstance(source, (str, os.PathLike)) and (Path(source) / "run.json").exists()):
        run = source if isinstance(source, Run) else load_run(source)
        if trial is None:
            best = run.best_trial
            if best is None:
                raise AutoMLError(f"{run.folder}: no trial has a trained model yet ({run.status})")
            trial = best.trial_id
        return run.store.trial_folder(str(trial))
    folder = Path(os.fspath(source))
    if not TrialFolder(folder).has(PARAMS):
        raise AutoMLError(f"{folder}: neither a run folder (run.json) nor a trial folder ({PARAMS})")
    return folder


def validation_records(folder: Path) -> list:
    """The trial's validation images, its split rebuilt from ``params.json`` (same seed, same split)."""
    from automl_nb.train.folder import TrialFolder
    from automl_nb.train.setup import load_split

    trial = TrialFolder(folder).trial()
    return list(load_split(trial, trial.parameters["random_seed"])[1])


def _show(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"
