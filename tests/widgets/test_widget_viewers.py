"""DetectionViewer (scores as the validation's, worst first, bounded sizes, names as text) and DatasetExplorer."""

import io
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from automl_nb.data.mltable import load_records
from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import AutoMLError, DataError
from automl_nb.train import Trial, run_trial
from automl_nb.widgets.dataset_explorer import ALL_CLASSES, DatasetExplorer, guess_task
from automl_nb.widgets.detection_viewer import PIXELATED, THUMBNAIL_SIDE, DetectionViewer

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
    assert "Scored as a trial's validation scores" in viewer.summary.value
    viewer.threshold.value = 0.95
    assert viewer.kept(0) == [] and viewer.average_precision(0) == 0.0
    assert "0 predicted" in viewer.title.value  # the slider redraws
    assert "Not the validation's number: it scores boxes &gt; 0.30" in viewer.summary.value


def test_wrong_classes_score_zero_and_the_class_filter_scores_only_what_is_chosen(boxes):
    record = next(r for r in boxes if len({o.label for o in r.objects}) == 1)
    label = record.objects[0].label
    other = next(name for name in CLASSES if name != label)
    viewer = DetectionViewer.from_predictions([record], [perfect(record, label=other)], CLASSES)
    assert viewer.average_precision(0) == 0.0
    viewer.classes.value = (other,)  # no true object of that class: AP is undefined
    assert math.isnan(viewer.average_precision(0)) and "VOC AP@0.5 –" in viewer.title.value
    viewer.classes.value = (label,)
    assert viewer.kept(0) == [] and len(viewer.truth(0)) == len(record.objects)


def test_segmentation_scores_masks_from_polygons(masks):
    predictions = [perfect(r) for r in masks]
    predictions[1] = {"boxes": []}
    viewer = DetectionViewer.from_predictions(masks, predictions, CLASSES, task="image_instance_segmentation")
    assert viewer.average_precision(0, masks=True) == 1.0
    assert viewer.average_precision(1, masks=True) == 0.0
    assert 0 < viewer.average_precision(masks=True) < 1
    assert viewer.index.value == 1  # the worst image is shown first
    viewer.select(0)
    assert "mask AP 1.000" in viewer.title.value


def test_the_metric_type_is_the_validations(boxes):
    """COCO's AP over IoU .50:.95 when the trial logs it: a box off by a few pixels scores less than VOC's."""
    def shifted(record):
        prediction = perfect(record)
        for entry in prediction["boxes"]:
            entry["box"]["topX"] = min(entry["box"]["topX"] + 0.03, entry["box"]["bottomX"])
        return prediction

    predictions = [shifted(r) for r in boxes]
    voc = DetectionViewer.from_predictions(boxes, predictions, CLASSES, metric_type="voc")
    coco = DetectionViewer.from_predictions(boxes, predictions, CLASSES, metric_type="coco")
    assert coco.average_precision() < voc.average_precision()
    assert "COCO AP@[.5:.95]" in coco.summary.value
    # metric type none logs nothing; the viewer still scores, as voc at the trial's IoU
    assert DetectionViewer.from_predictions(boxes, predictions, CLASSES, metric_type="none").average_precision() \
        == voc.average_precision()


def test_thumbnails_are_ordered_worst_first(boxes):
    predictions = [perfect(r) for r in boxes]
    predictions[1] = {"boxes": []}  # AP 0
    predictions[3] = perfect(boxes[3], label="circle")  # right places, some wrong classes
    predictions[4]["boxes"] = predictions[4]["boxes"][:1]  # finds one object only
    viewer = DetectionViewer.from_predictions(boxes, predictions, CLASSES, thumbnails=4)
    ap = [viewer.average_precision(k) for k in range(len(boxes))]
    names = [Path(r.image_url).name for r in boxes]
    expected = sorted(range(len(boxes)), key=lambda k: (ap[k], k))
    assert ap[1] == 0.0 and ap[0] == 1.0 and len(set(ap)) > 2
    assert viewer.order == expected and viewer.index.value == expected[0]
    assert [tile.children[2].description for tile in viewer.tiles] == [names[k] for k in expected[:4]]
    assert [label for label, _ in viewer.index.options][0].startswith(names[1])
    viewer.tiles[2].children[2].click()  # a thumbnail's name shows that image large
    assert viewer.index.value == expected[2] and names[expected[2]] in viewer.title.value
    viewer.next.click()
    assert viewer.index.value == expected[3]


def _png_size(png):
    return Image.open(io.BytesIO(png)).size


def test_images_are_shown_at_a_bounded_size(boxes, tmp_path):
    make_dataset("image_object_detection", 1, 700, tmp_path / "large", seed=2)
    large = load_records(tmp_path / "large", "image_object_detection")
    records = [boxes[0], *large]
    viewer = DetectionViewer.from_predictions(records, [perfect(r) for r in records], CLASSES)
    small_tile, large_tile = (viewer.tiles[viewer.order.index(k)].children[0] for k in (0, 1))
    # 64 px: enlarged 3x as a thumbnail and 6x when chosen, pixels kept (pixelated in the browser)
    assert (small_tile.width, small_tile.height) == ("192", "192") == (small_tile.layout.width[:-2],) * 2
    assert _png_size(small_tile.value) == (192, 192) and PIXELATED in small_tile._dom_classes
    # 700 px: shrunk to fit, smoothly
    assert _png_size(large_tile.value) == (256, 256) and PIXELATED not in large_tile._dom_classes
    for k, side in ((0, 384), (1, 512)):
        viewer.select(k)
        assert _png_size(viewer.png) == (side, side) and viewer.image.width == str(side)
        assert viewer.image.layout.width == f"{side}px"
    for tile in viewer.tiles:
        width, height = _png_size(tile.children[0].value)
        assert max(width, height) <= THUMBNAIL_SIDE


def test_file_names_are_text_not_pixels(boxes, tmp_path):
    record = boxes[0]
    renamed = tmp_path / "a_much_longer_file_name_than_before.png"
    shutil.copy(record.image_url, renamed)
    viewers = [DetectionViewer.from_predictions([r], [perfect(record)], CLASSES)
               for r in (record, replace(record, image_url=str(renamed)))]
    assert viewers[0].png == viewers[1].png  # the large image
    assert viewers[0].tiles[0].children[0].value == viewers[1].tiles[0].children[0].value  # the thumbnail
    assert renamed.name in viewers[1].title.value and viewers[1].tiles[0].children[2].description == renamed.name


def test_the_viewer_has_a_static_form(boxes):
    viewer = DetectionViewer.from_predictions(boxes, [perfect(r) for r in boxes], CLASSES, thumbnails=3)
    html = viewer._repr_mimebundle_()["text/html"]
    assert html.count("data:image/png;base64,") == 4  # the chosen image and three thumbnails
    assert 'width="384"' in html and "image-rendering:pixelated" in html and "flex-wrap:wrap" in html
    assert Path(boxes[viewer.index.value].image_url).name in html and "VOC AP@0.5 of all 6 images" in html
    with pytest.raises(AutoMLError, match="one prediction per record"):
        DetectionViewer.from_predictions(boxes, [], CLASSES)
    with pytest.raises(ValueError, match="thumbnails: -1"):
        DetectionViewer.from_predictions(boxes, [perfect(r) for r in boxes], CLASSES, thumbnails=-1)


@pytest.mark.slow
def test_all_images_ap_is_the_trials_validation_metric(tmp_path):
    """The trial of notebook 03, where a user saw 0.542 here and 0.4722 on the leaderboard."""
    data = make_dataset("image_object_detection", 16, 64, tmp_path / "data", seed=0)
    params = {"model_name": "fasterrcnn_resnet18_fpn", "use_pretrained_model": False, "number_of_epochs": 2,
              "learning_rate": 0.01, "min_size": 64, "max_size": 64, "box_score_threshold": 0.01,
              "box_detections_per_image": 10, "early_stopping": False, "random_seed": 0,
              "advanced_settings": {"box_batch_size_per_image": 64}}
    folder = tmp_path / "trial"
    result = run_trial(Trial("0", "image_object_detection", params, str(data), str(folder)))
    # Predicted down to 0.001, scored at the trial's box_score_threshold.
    viewer = DetectionViewer(folder, lowest_score=0.001)
    assert viewer.threshold.min == 0.001 and viewer.threshold.value == 0.01 and len(viewer.records) == 3
    assert result.best_metric > 0  # the trainer's validation, as the leaderboard shows it
    assert viewer.average_precision() == pytest.approx(result.best_metric, abs=1e-12)
    assert viewer.scores["mean_average_precision"] == pytest.approx(result.best_metric, abs=1e-12)
    assert "This is the trial's validation metric" in viewer.summary.value
    viewer.threshold.value = 0.5
    assert "Not the validation's number" in viewer.summary.value


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
