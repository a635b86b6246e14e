"""DetectionViewer: a detector's predictions against the ground truth, image by image, with AP.

Predictions are made once, at a low score; the score-threshold slider and the class filter
then only choose what is drawn and scored, so moving them is instant. Per-image AP is VOC's
(``automl_nb.metrics.detection.voc_map``) at the trial's ``validation_iou_threshold``, on
boxes, and for instance segmentation on masks too.
"""

from __future__ import annotations

import math
import os
from html import escape
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np

from automl_nb.errors import AutoMLError
from automl_nb.widgets.drawing import caption, draw_objects, enlarge, png_bytes
from automl_nb.widgets.html import png_img

LOWEST_SCORE = 0.05


class DetectionViewer(widgets.VBox):
    """Browse validation images with ground truth (dashed white) and predicted boxes/masks.

    Args:
        source: a :class:`~automl_nb.sweep.Run`, a run folder (its best trial is used) or a
            trial folder.
        trial: with a run, the trial to show instead of the best one.
        records: the images to show (ImageRecords with labels); default: the trial's own
            validation images (its split is rebuilt from ``params.json``).
        lowest_score: the least score predicted (the slider cannot go below it).

    Raises:
        AutoMLError: not a detection or segmentation model, or no trained model yet.

    Example:
        >>> DetectionViewer(run)            # or DetectionViewer("runs/detection")
    """

    def __init__(self, source: Any, *, trial: str | None = None, records: Sequence | None = None,
                 lowest_score: float = LOWEST_SCORE) -> None:
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
        predictor = Predictor.from_trial(folder, box_score_threshold=lowest_score)
        predictions = predictor.predict([record.image_url for record in records])
        self.folder = folder
        self._build(description["task"], records, predictions, predictor.labels,
                    iou_threshold=float(params["validation_iou_threshold"]),
                    threshold=max(lowest_score, float(params["box_score_threshold"])), lowest_score=lowest_score)

    @classmethod
    def from_predictions(cls, records: Sequence, predictions: Sequence[dict], labels: Sequence[str], *,
                         task: str = "image_object_detection", iou_threshold: float | None = None,
                         threshold: float | None = None) -> "DetectionViewer":
        """A viewer of predictions made elsewhere (Azure-shaped, one per record), e.g. by a
        :class:`~automl_nb.infer.Predictor` on your own test images.

        ``iou_threshold`` and ``threshold`` default to the task's ``validation_iou_threshold``
        and ``box_score_threshold``.

        Example:
            >>> DetectionViewer.from_predictions(records, predictor.predict([r.image_url for r in records]),
            ...                                  predictor.labels)
        """
        if len(records) != len(predictions) or not records:
            raise AutoMLError(f"give one prediction per record: {len(records)} records, {len(predictions)} predictions")
        from automl_nb.spec import default_value

        if iou_threshold is None:
            iou_threshold = default_value("validation_iou_threshold", task)
        if threshold is None:
            threshold = default_value("box_score_threshold", task)
        viewer = cls.__new__(cls)
        viewer.folder = None
        viewer._build(task, list(records), list(predictions), labels, iou_threshold=iou_threshold,
                      threshold=threshold, lowest_score=min(threshold, LOWEST_SCORE))
        return viewer

    def _build(self, task: str, records: list, predictions: list, labels: Sequence[str], *, iou_threshold: float,
               threshold: float, lowest_score: float) -> None:
        from automl_nb.spec import SEGMENTATION, check_task

        self.task = check_task(task)
        self.segmentation = self.task == SEGMENTATION
        self.iou_threshold = iou_threshold
        self.records, self.predictions, self.labels = records, predictions, list(labels)
        self._sizes = [_size(record) for record in self.records]
        self.index = widgets.IntSlider(min=0, max=len(self.records) - 1, description="image", continuous_update=False)
        self.previous = widgets.Button(icon="arrow-left", tooltip="previous image", layout=widgets.Layout(width="40px"))
        self.next = widgets.Button(icon="arrow-right", tooltip="next image", layout=widgets.Layout(width="40px"))
        self.threshold = widgets.FloatSlider(value=threshold, min=lowest_score, max=1.0, step=0.05,
                                             description="min score", continuous_update=False)
        self.classes = widgets.SelectMultiple(options=self.labels, value=tuple(self.labels), description="classes",
                                              rows=min(6, len(self.labels)))
        self.show_truth = widgets.Checkbox(value=True, description="ground truth")
        self.image = widgets.Image(format="png")
        self.info = widgets.HTML()
        for control in (self.index, self.threshold, self.classes, self.show_truth):
            control.observe(lambda change: self.draw(), names="value")
        self.previous.on_click(lambda _: self._step(-1))
        self.next.on_click(lambda _: self._step(1))
        widgets.VBox.__init__(self, [widgets.HBox([self.previous, self.index, self.next, self.threshold]),
                                     widgets.HBox([self.classes, self.show_truth]), self.image, self.info])
        self.add_class("automl-detection-viewer")
        self.png: bytes | None = None
        self.draw()

    def _step(self, by: int) -> None:
        self.index.value = (self.index.value + by) % len(self.records)

    # -- what is drawn and scored ----------------------------------------------------------
    def kept(self, index: int) -> list[dict]:
        """The predicted boxes of image ``index`` above the threshold, of the chosen classes."""
        chosen = set(self.classes.value)
        return [box for box in self.predictions[index]["boxes"]
                if box["score"] >= self.threshold.value and box["label"] in chosen]

    def truth(self, index: int) -> list:
        chosen = set(self.classes.value)
        return [obj for obj in self.records[index].objects if obj.label in chosen]

    def average_precision(self, index: int | None = None, masks: bool = False) -> float:
        """VOC AP of one image (or of all images when ``index`` is None) at the current threshold
        and classes; nan when the chosen classes have no ground truth there."""
        from automl_nb.metrics.detection import voc_map

        indices = range(len(self.records)) if index is None else [index]
        predictions, targets = zip(*(self._scored(k, masks) for k in indices))
        return voc_map(list(predictions), list(targets), len(self.labels), self.iou_threshold,
                       iou_type="segm" if masks else "bbox")["map"]

    def _scored(self, index: int, masks: bool):
        from automl_nb.metrics.detection import ImageDetections, ImageTargets

        width, height = self._sizes[index]
        boxes = self.kept(index)
        objects = self.truth(index)
        detections = ImageDetections(
            boxes=np.array([_pixels(b["box"]["topX"], b["box"]["topY"], b["box"]["bottomX"], b["box"]["bottomY"],
                                    width, height) for b in boxes]).reshape(-1, 4),
            scores=[b["score"] for b in boxes], labels=[self.labels.index(b["label"]) for b in boxes],
            masks=_masks([b.get("polygon") or [] for b in boxes], width, height) if masks else None)
        targets = ImageTargets(
            boxes=np.array([_pixels(o.top_x, o.top_y, o.bottom_x, o.bottom_y, width, height)
                            for o in objects]).reshape(-1, 4),
            labels=[self.labels.index(o.label) for o in objects], is_crowd=[o.is_crowd for o in objects],
            masks=_masks([list(o.polygon or []) for o in objects], width, height) if masks else None,
            width=width, height=height)
        return detections, targets

    def draw(self) -> None:
        """Redraw the current image and its scores."""
        from automl_nb.data.images import open_image

        k = self.index.value
        picture = enlarge(open_image(self.records[k].image_url), 320)
        if self.show_truth.value:
            picture = draw_objects(picture, self.truth(k), self.labels, truth=True, fill_polygons=False)
        picture = draw_objects(picture, self.kept(k), self.labels)
        self.png = png_bytes(caption(picture, [Path(self.records[k].image_url).name]))
        self.image.value = self.png
        self.info.value = self.info_html()

    def info_html(self) -> str:
        k = self.index.value
        lines = [f"image {k + 1}/{len(self.records)}: {len(self.truth(k))} true object(s), {len(self.kept(k))} "
                 f"predicted with score ≥ {self.threshold.value:.2f}",
                 f"box AP (IoU {self.iou_threshold:g}): this image {_show(self.average_precision(k))}, "
                 f"all {len(self.records)} images {_show(self.average_precision())}"]
        if self.segmentation:
            lines.append(f"mask AP: this image {_show(self.average_precision(k, masks=True))}, "
                         f"all images {_show(self.average_precision(masks=True))}")
        return "<br>".join(escape(line) for line in lines)

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = f"<div>{png_img(self.png, 'predictions')}<p>{self.info_html()}</p></div>"
        return bundle


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


def _size(record) -> tuple[int, int]:
    if record.width and record.height:
        return int(record.width), int(record.height)
    from automl_nb.data.images import image_size

    return image_size(record.image_url)


def _pixels(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> list[float]:
    return [x1 * width, y1 * height, x2 * width, y2 * height]


def _masks(polygons: list, width: int, height: int) -> np.ndarray:
    """``[N, height, width]`` bool masks from each object's rings (normalised x, y lists)."""
    from PIL import Image, ImageDraw

    masks = np.zeros((len(polygons), height, width), bool)
    for k, rings in enumerate(polygons):
        canvas = Image.new("1", (width, height), 0)
        draw = ImageDraw.Draw(canvas)
        for ring in rings:
            points = [(ring[i] * width, ring[i + 1] * height) for i in range(0, len(ring) - 1, 2)]
            if len(points) >= 3:
                draw.polygon(points, fill=1)
        masks[k] = np.asarray(canvas, bool)
    return masks


def _show(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"
