"""DatasetExplorer: look at labelled images before training: class counts, image sizes, samples."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from typing import Any, Sequence

import ipywidgets as widgets

from automl_nb.errors import DataError
from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME
from automl_nb.widgets.drawing import caption, draw_objects, enlarge, grid, png_bytes
from automl_nb.widgets.figures import new_figure, to_png
from automl_nb.widgets.html import png_img

ALL_CLASSES = "(all classes)"


class DatasetExplorer(widgets.VBox):
    """Class counts, an image-size histogram and a grid of samples with their labels drawn.

    Args:
        data: a job (its ``training_data``, task and label column are used), a JSONL file or
            MLTable folder (path or URL), or a list of :class:`~automl_nb.data.ImageRecord`.
        task: the task, needed for a path whose labels could be read two ways (default: from
            the job, else guessed from the first JSONL line).
        target_column_name: the label key of the JSONL.
        samples: images in the grid.
        columns: images per row of the grid.
        seed: which samples are drawn first (Shuffle draws others).

    Raises:
        DataError: unreadable data (names the file and line), or no images.

    Example:
        >>> DatasetExplorer("data/shapes")
    """

    def __init__(self, data: Any, task: str | None = None, *, target_column_name: str = DEFAULT_TARGET_COLUMN_NAME,
                 samples: int = 12, columns: int = 6, seed: int = 0) -> None:
        self.records, self.task, self.source = _load(data, task, target_column_name)
        if not self.records:
            raise DataError(f"{self.source}: no images")
        self.samples, self.columns = samples, columns
        self._random = random.Random(seed)
        self.classes = sorted({name for record in self.records for name in record.label_names()})
        self.stats_png = stats_png(self.records, self.task)
        self.samples_png: bytes | None = None

        self.summary = widgets.HTML(self._summary_html())
        self.stats = widgets.Image(value=self.stats_png, format="png")
        self.class_filter = widgets.Dropdown(options=[ALL_CLASSES, *self.classes], description="class")
        self.shuffle = widgets.Button(description="Shuffle", icon="random", tooltip="draw other samples")
        self.grid = widgets.Image(format="png")
        self.class_filter.observe(lambda change: self.draw_samples(), names="value")
        self.shuffle.on_click(lambda _: self.draw_samples())
        super().__init__([self.summary, self.stats, widgets.HBox([self.class_filter, self.shuffle]), self.grid])
        self.add_class("automl-dataset-explorer")
        self.draw_samples()

    def _summary_html(self) -> str:
        objects = sum(len(record.objects) for record in self.records)
        extra = f", {objects} objects" if objects else ""
        return (f"<b>{len(self.records)} images{extra}, {len(self.classes)} classes</b> ({self.task}): "
                f"{', '.join(self.classes)}<br><small>{self.source}</small>")

    def draw_samples(self) -> list:
        """Draw a new random set of samples (of the chosen class); return their records."""
        chosen = self.class_filter.value
        pool = [r for r in self.records if chosen == ALL_CLASSES or chosen in r.label_names()]
        picked = self._random.sample(pool, min(self.samples, len(pool)))
        self.samples_png = samples_png(picked, self.classes, self.columns) if picked else None
        self.grid.value = self.samples_png or b""
        return picked

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = (f"<div>{self._summary_html()}<br>{png_img(self.stats_png, 'class counts and sizes')}"
                               f"<br>{png_img(self.samples_png, 'samples')}</div>")
        return bundle


def stats_png(records: Sequence, task: str) -> bytes:
    """Two panels: images (or objects) per class, and a histogram of image widths and heights."""
    from automl_nb.spec import is_classification

    counts = Counter(name for record in records for name in
                     (set(record.label_names()) if is_classification(task) else record.label_names()))
    labels = sorted(counts)
    sizes = [_size(record) for record in records]
    fig, (count_axis, size_axis) = new_figure(10, max(2.4, 0.3 * len(labels) + 1.2), columns=2)
    count_axis.barh(labels, [counts[label] for label in labels], color="#4c78a8")
    count_axis.invert_yaxis()
    for y, label in enumerate(labels):
        count_axis.text(counts[label], y, f" {counts[label]}", va="center", fontsize=8)
    count_axis.set(title="images per class" if is_classification(task) else "objects per class", xlabel="count")
    size_axis.hist([[w for w, _ in sizes], [h for _, h in sizes]], bins=min(20, max(3, len(set(sizes)) * 2)),
                   label=["width", "height"], color=["#f58518", "#54a24b"])
    size_axis.set(title="image sizes", xlabel="pixels", ylabel="images")
    size_axis.legend(fontsize=8)
    for axis in (count_axis, size_axis):
        axis.grid(alpha=0.3)
    return to_png(fig)


def _size(record) -> tuple[int, int]:
    if record.width and record.height:
        return int(record.width), int(record.height)
    from automl_nb.data.images import image_size

    return image_size(record.image_url)


def samples_png(records: Sequence, classes: Sequence[str], columns: int = 6) -> bytes:
    """Each image enlarged with its labels: class names below it, or its boxes and polygons drawn."""
    from automl_nb.data.images import open_image

    drawn = []
    for record in records:
        image = enlarge(open_image(record.image_url), 160)
        if record.objects:
            drawn.append(draw_objects(image, record.objects, classes))
        else:
            drawn.append(caption(image, [", ".join(record.label_names())]))
    return png_bytes(grid(drawn, columns))


def _load(data: Any, task: str | None, target_column_name: str) -> tuple[list, str, str]:
    from automl_nb.data.mltable import load_records
    from automl_nb.data.records import ImageRecord
    from automl_nb.spec import ImageJob, check_task

    if isinstance(data, ImageJob):
        if data.training_data is None:
            raise DataError("the job has no training_data to explore")
        path = data.resolve_data_path(data.training_data)
        return load_records(path, data.task, data.target_column_name), data.task, path
    if isinstance(data, (list, tuple)) and all(isinstance(r, ImageRecord) for r in data):
        if task is None:
            raise DataError("task: give the task of these records (e.g. task='image_object_detection')")
        return list(data), check_task(task), f"{len(data)} records"
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        task = check_task(task) if task is not None else guess_task(path, target_column_name)
        return load_records(path, task, target_column_name), task, path
    raise DataError(f"{type(data).__name__} is not data to explore; allowed: a job, a JSONL file or MLTable "
                    "folder, or a list of ImageRecord")


def guess_task(path: str, target_column_name: str = DEFAULT_TARGET_COLUMN_NAME) -> str:
    """The task a JSONL's labels are written for, from its first line.

    A string is multiclass, a list of strings multilabel, a list of objects detection, or
    instance segmentation when they have polygons.

    Raises:
        DataError: the first line has no readable label.
    """
    import fsspec

    from automl_nb.data.mltable import jsonl_paths
    from automl_nb.spec import DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION

    first = jsonl_paths(path)[0]
    with fsspec.open(first, "rt", encoding="utf-8") as handle:
        line = next((text for text in handle if text.strip()), "")
    try:
        label = json.loads(line)[target_column_name]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{first}:1: no {target_column_name!r} label to tell the task from; give task=...") from None
    if isinstance(label, str):
        return MULTICLASS
    if isinstance(label, list) and all(isinstance(item, str) for item in label):
        return MULTILABEL
    if isinstance(label, list) and any(isinstance(item, dict) and "polygon" in item for item in label):
        return SEGMENTATION
    return DETECTION
