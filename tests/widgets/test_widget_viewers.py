"""DetectionViewer (threshold, class filter, per-image AP on boxes and masks) and DatasetExplorer."""

import io
import math

import pytest
from PIL import Image

from automl_nb.data.mltable import load_records
from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import AutoMLError, DataError
from automl_nb.widgets.dataset_explorer import ALL_CLASSES, DatasetExplorer, guess_task
from automl_nb.widgets.detection_viewer import DetectionViewer

CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("boxes")
    make_dataset("image_object_detection", 6, 64, folder, seed=0)
    return load_records(folder, "image_object_detection")


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("masks")
    make_dataset("image_instance_segmentation", 4, 64, folder, seed=1)
    return load_records(folder, "image_instance_segmentation")


def perfect(record, score=0.9, label=None):
    """A prediction that finds exactly the true objects (with their polygons)."""
    entries = []
    for obj in record.objects:
        entry = {"box": {"topX": obj.top_x, "topY": obj.top_y, "bottomX": obj.bottom_x, "bottomY": obj.bottom_y},
                 "label": label or obj.label, "score": score}
        if obj.polygon:
            entry["polygon"] = [list(ring) for ring in obj.polygon]
        entries.append(entry)
    return {"boxes": entries}


def test_perfect_predictions_score_one_until_the_threshold_hides_them(boxes):
    viewer = DetectionViewer.from_predictions(boxes, [perfect(r) for r in boxes], CLASSES)
    assert viewer.average_precision(0) == 1.0 and viewer.average_precision() == 1.0
    assert len(viewer.kept(0)) == len(boxes[0].objects)
    viewer.threshold.value = 0.95
    assert viewer.kept(0) == [] and viewer.average_precision(0) == 0.0
    assert "0 predicted with score ≥ 0.95" in viewer.info.value  # the slider redraws


def test_wrong_classes_score_zero_and_the_class_filter_scores_only_what_is_chosen(boxes):
    record = next(r for r in boxes if len({o.label for o in r.objects}) == 1)
    label = record.objects[0].label
    other = next(name for name in CLASSES if name != label)
    viewer = DetectionViewer.from_predictions([record], [perfect(record, label=other)], CLASSES)
    assert viewer.average_precision(0) == 0.0
    viewer.classes.value = (other,)  # no true object of that class: AP is undefined
    assert math.isnan(viewer.average_precision(0)) and "this image –" in viewer.info.value
    viewer.classes.value = (label,)
    assert viewer.kept(0) == [] and len(viewer.truth(0)) == len(record.objects)


def test_segmentation_scores_masks_from_polygons(masks):
    predictions = [perfect(r) for r in masks]
    predictions[1] = {"boxes": []}
    viewer = DetectionViewer.from_predictions(masks, predictions, CLASSES, task="image_instance_segmentation")
    assert viewer.average_precision(0, masks=True) == 1.0
    assert viewer.average_precision(1, masks=True) == 0.0
    assert 0 < viewer.average_precision(masks=True) < 1
    assert "mask AP: this image 1.000" in viewer.info.value


def test_the_viewer_draws_and_has_a_static_form(boxes):
    viewer = DetectionViewer.from_predictions(boxes, [perfect(r) for r in boxes], CLASSES)
    viewer.next.click()
    assert viewer.index.value == 1
    drawn = Image.open(io.BytesIO(viewer.png))
    assert drawn.width >= 320  # 64 px enlarged
    html = viewer._repr_mimebundle_()["text/html"]
    assert "data:image/png;base64," in html and "box AP (IoU 0.5)" in html
    with pytest.raises(AutoMLError, match="one prediction per record"):
        DetectionViewer.from_predictions(boxes, [], CLASSES)


def test_explorer_counts_classes_and_filters_samples(tmp_path):
    make_dataset("image_classification", 12, 32, tmp_path / "shapes", seed=0)
    explorer = DatasetExplorer(tmp_path / "shapes", samples=4)
    assert explorer.task == "image_classification" and explorer.classes == CLASSES
    assert "12 images, 3 classes" in explorer.summary.value
    explorer.class_filter.value = "square"
    picked = explorer.draw_samples()
    assert len(picked) == 4 and {r.label for r in picked} == {"square"}
    explorer.class_filter.value = ALL_CLASSES
    assert explorer.grid.value[:4] == b"\x89PNG" and explorer.stats.value[:4] == b"\x89PNG"
    assert explorer._repr_mimebundle_()["text/html"].count("data:image/png;base64,") == 2


@pytest.mark.parametrize("task", ["image_classification", "image_classification_multilabel",
                                  "image_object_detection", "image_instance_segmentation"])
def test_the_task_is_read_from_the_labels(tmp_path, task):
    make_dataset(task, 3, 32, tmp_path / "data", seed=0)
    assert guess_task(str(tmp_path / "data")) == task


def test_explorer_objects_counts_and_errors(tmp_path, boxes):
    explorer = DatasetExplorer(boxes, "image_object_detection")
    objects = sum(len(r.objects) for r in boxes)
    assert f"6 images, {objects} objects" in explorer.summary.value
    with pytest.raises(DataError, match="give the task of these records"):
        DatasetExplorer(boxes)
    with pytest.raises(DataError, match="is not data to explore"):
        DatasetExplorer(42)
