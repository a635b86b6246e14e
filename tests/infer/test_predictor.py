"""Predictor: trial folders in, Azure-shaped predictions out, for the four tasks.

Trial folders are written as the trainer writes them (a ``model_best.pt`` record and the
adapter's ``settings.json``) around tiny random-weight models; fake detectors with known
outputs check the arithmetic (normalisation, thresholds, tiling, polygons) exactly.
"""

import io
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image, ImageDraw
from torchvision.ops import FrozenBatchNorm2d

from automl_nb.data.detection import polygon_to_mask
from automl_nb.data.transforms import classification_valid_transform
from automl_nb.errors import DataError, RunFolderError, SpecError, TrialError
from automl_nb.infer import Predictor, check_settings, inference_keys
from automl_nb.models.registry import build_model
from automl_nb.spec import DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION, resolve_parameters
from automl_nb.train.classification import ClassificationAdapter
from automl_nb.models.detection import DETECTOR_OPTIONS
from automl_nb.train.detection import DetectionAdapter
from automl_nb.train.folder import BEST_CHECKPOINT, TrialFolder

CLASSES = ["circle", "square", "triangle"]
WIDTH, HEIGHT = 80, 48  # non-square, so x and y normalisations differ


# ----- helpers --------------------------------------------------------------------------
def _write_trial(folder, task, model, params, labels=CLASSES):
    """A trial folder as the trainer leaves it: the best checkpoint and settings.json."""
    trial = TrialFolder(folder)
    trial.path.mkdir(parents=True, exist_ok=True)
    trial.save_checkpoint(BEST_CHECKPOINT, {"model": model.state_dict(), "epoch": 1, "task": task,
                                            "params": params, "labels": list(labels), "metric": 0.5})
    adapter = ClassificationAdapter if task in (MULTICLASS, MULTILABEL) else DetectionAdapter
    trial.write_json("settings.json", adapter(task, params, [], [], labels).settings())
    return trial.path


def _detector(params, labels=CLASSES):
    torch.manual_seed(0)
    return build_model(params["model_name"], num_classes=len(labels), pretrained=False,
                       frozen_batch_norm=bool(params["use_pretrained_model"]),
                       **{key: params[key] for key in DETECTOR_OPTIONS})


def _image(seed=0, width=WIDTH, height=HEIGHT):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def image_path(tmp_path):
    path = tmp_path / "street.png"
    _image(0).save(path)
    return path


def _settings(task, model_name, **given):
    """Complete inference settings: the table's defaults, then ``given``."""
    params = resolve_parameters(task, {"model_name": model_name})
    settings = {key: params[key] for key in inference_keys(task, model_name)}
    settings.update(check_settings(task, model_name, given))
    return settings


class FakeDetector(nn.Module):
    """A detector whose outputs are ``respond(image)``; it records the images it was given."""

    def __init__(self, respond):
        super().__init__()
        self.respond = respond
        self.seen = []

    def forward(self, images):
        self.seen += [image.clone() for image in images]
        return [self.respond(image) for image in images]


def _detections(boxes, scores, labels, masks=None):
    output = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
              "scores": torch.tensor(scores, dtype=torch.float32),
              "labels": torch.tensor(labels, dtype=torch.int64)}
    if masks is not None:
        output["masks"] = masks
    return output


def _assert_azure_boxes(output, labels, segmentation=False):
    assert set(output) == {"boxes"}
    for entry in output["boxes"]:
        assert set(entry) == ({"box", "label", "score", "polygon"} if segmentation else {"box", "label", "score"})
        box = entry["box"]
        assert set(box) == {"topX", "topY", "bottomX", "bottomY"}
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in box.values())
        assert box["topX"] <= box["bottomX"] and box["topY"] <= box["bottomY"]
        assert entry["label"] in labels
        assert isinstance(entry["score"], float)


# ----- classification -------------------------------------------------------------------
@pytest.fixture(scope="module", params=[MULTICLASS, MULTILABEL])
def classification_trial(request, tmp_path_factory):
    task = request.param
    params = resolve_parameters(task, {"model_name": "mobilenetv2", "use_pretrained_model": False,
                                       "training_crop_size": 32, "validation_resize_size": 40,
                                       "validation_crop_size": 32})
    torch.manual_seed(0)
    model = build_model("mobilenetv2", num_classes=len(CLASSES), pretrained=False).eval()
    folder = _write_trial(tmp_path_factory.mktemp("classification"), task, model, params)
    return task, folder, model


def test_classification_gives_probs_over_all_labels(classification_trial, image_path):
    task, folder, model = classification_trial
    predictor = Predictor.from_trial(folder)
    outputs = predictor.predict([image_path, _image(1)])
    assert len(outputs) == 2
    transform = classification_valid_transform(40, 32)
    for output, image in zip(outputs, [_image(0), _image(1)]):
        assert set(output) == {"probs", "labels"}
        assert output["labels"] == CLASSES
        assert len(output["probs"]) == len(CLASSES)
        with torch.no_grad():
            logits = model(transform(image)[None])[0]
        expected = torch.sigmoid(logits) if task == MULTILABEL else torch.softmax(logits, 0)
        assert output["probs"] == pytest.approx(expected.tolist(), abs=1e-5)
        if task == MULTICLASS:
            assert sum(output["probs"]) == pytest.approx(1.0, abs=1e-5)
        else:
            assert all(0.0 <= p <= 1.0 for p in output["probs"])


def test_paths_pil_images_and_bytes_give_the_same_prediction(classification_trial, image_path):
    _, folder, _ = classification_trial
    predictor = Predictor.from_trial(folder)
    by_path, by_image, by_bytes = predictor.predict([image_path, _image(0), _png_bytes(_image(0))])
    assert by_path == by_image == by_bytes
    assert predictor.predict(str(image_path)) == [by_path]  # one image, not in a list


def test_classification_uses_the_validation_crop_and_its_override(classification_trial, image_path):
    _, folder, _ = classification_trial
    predictor = Predictor.from_trial(folder, valid_crop_size=24)  # Azure's spelling works
    assert predictor.settings["validation_crop_size"] == 24
    assert predictor.settings["validation_resize_size"] == 40  # as trained
    shapes = []
    predictor.model.register_forward_hook(lambda module, args, out: shapes.append(tuple(args[0].shape)))
    predictor.predict([image_path, image_path])
    assert shapes == [(2, 3, 24, 24)]


# ----- detection with a real (random-weight) model ----------------------------------------
@pytest.fixture(scope="module")
def detection_trial(tmp_path_factory):
    # Trained "with pretrained weights": its checkpoint holds frozen batch norm.
    params = resolve_parameters(DETECTION, {"model_name": "fasterrcnn_resnet18_fpn", "use_pretrained_model": True,
                                            "min_size": 64, "max_size": 96, "box_detections_per_image": 5})
    model = _detector(params)
    return _write_trial(tmp_path_factory.mktemp("detection"), DETECTION, model, params), model


def test_detection_checkpoint_with_frozen_batch_norm_loads(detection_trial, image_path):
    folder, saved = detection_trial
    predictor = Predictor.from_trial(folder, box_score_threshold=0.0)
    assert any(isinstance(m, FrozenBatchNorm2d) for m in predictor.model.modules())
    for name, tensor in saved.state_dict().items():
        assert torch.equal(predictor.model.state_dict()[name], tensor), name
    assert predictor.model.roi_heads.score_thresh == 0.0  # the override reaches the model
    assert predictor.model.roi_heads.detections_per_img == 5  # as trained
    outputs = predictor.predict([image_path, _image(1)])
    assert len(outputs) == 2
    for output in outputs:
        _assert_azure_boxes(output, CLASSES)
        assert len(output["boxes"]) in range(1, 6)
        scores = [entry["score"] for entry in output["boxes"]]
        assert scores == sorted(scores, reverse=True)


def test_settings_json_edits_apply_and_keywords_override_them(detection_trial, tmp_path):
    folder, _ = detection_trial
    edited = TrialFolder(tmp_path / "edited")
    edited.path.mkdir()
    os.symlink(folder / BEST_CHECKPOINT, edited.path / BEST_CHECKPOINT)
    settings = TrialFolder(folder).read_json("settings.json")
    assert settings["box_score_thresh"] == 0.3  # the trainer writes Azure's names
    edited.write_json("settings.json", {**settings, "box_score_thresh": 0.7, "nms_iou_thresh": 0.4})
    predictor = Predictor.from_trial(edited.path)
    assert predictor.settings["box_score_threshold"] == 0.7
    assert predictor.settings["nms_iou_threshold"] == 0.4
    assert predictor.model.roi_heads.nms_thresh == 0.4
    predictor = Predictor.from_trial(edited.path, box_score_thresh=0.2, min_size=48)
    assert predictor.settings["box_score_threshold"] == 0.2
    assert predictor.model.roi_heads.score_thresh == 0.2
    assert predictor.model.transform.min_size == (48,)


def test_bad_settings_are_rejected_with_the_key(detection_trial):
    folder, _ = detection_trial
    with pytest.raises(SpecError, match="box_score_threshold: 1.5 is out of range"):
        Predictor.from_trial(folder, box_score_threshold=1.5)
    with pytest.raises(SpecError, match="did you mean 'box_score_threshold'"):
        Predictor.from_trial(folder, box_score_treshold=0.5)
    with pytest.raises(SpecError, match="learning_rate: 0.1 is a training parameter, not an inference setting"):
        Predictor.from_trial(folder, learning_rate=0.1)
    with pytest.raises(SpecError, match="mask_pixel_score_threshold.*does not apply to image_object_detection"):
        Predictor.from_trial(folder, mask_pixel_score_threshold=0.5)
    with pytest.raises(SpecError, match="sets box_score_threshold a second time"):
        Predictor.from_trial(folder, box_score_thresh=0.5, box_score_threshold=0.5)


# ----- segmentation with a real (random-weight) model --------------------------------------
@pytest.fixture(scope="module")
def segmentation_trial(tmp_path_factory):
    params = resolve_parameters(SEGMENTATION, {"model_name": "maskrcnn_resnet18_fpn", "use_pretrained_model": False,
                                               "min_size": 64, "max_size": 96, "box_detections_per_image": 3})
    return _write_trial(tmp_path_factory.mktemp("segmentation"), SEGMENTATION, _detector(params), params)


def test_segmentation_gives_bounded_polygons_and_exports_masks(segmentation_trial, image_path, tmp_path):
    predictor = Predictor.from_trial(segmentation_trial, box_score_threshold=0.0, max_number_of_polygon_points=8,
                                     export_as_image=True, image_type="png", mask_pixel_score_threshold=0.3)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in predictor.model.modules())
    outputs = predictor.predict([image_path, _image(1)], mask_folder=tmp_path / "masks")
    files = sorted(p.name for p in (tmp_path / "masks").iterdir())
    expected = [f"street_{k}.png" for k in range(len(outputs[0]["boxes"]))]
    expected += [f"image_1_{k}.png" for k in range(len(outputs[1]["boxes"]))]
    assert files == sorted(expected)
    assert sum(len(o["boxes"]) for o in outputs) >= 1
    for output in outputs:
        _assert_azure_boxes(output, CLASSES, segmentation=True)
        for entry in output["boxes"]:
            for ring in entry["polygon"]:
                assert len(ring) % 2 == 0 and len(ring) // 2 <= 8
                assert all(0.0 <= v <= 1.0 for v in ring)
    with Image.open(tmp_path / "masks" / files[0]) as mask:
        assert mask.size == (WIDTH, HEIGHT) and mask.mode == "L"


def test_export_as_image_needs_a_folder(segmentation_trial, image_path):
    predictor = Predictor.from_trial(segmentation_trial, export_as_image=True)
    with pytest.raises(ValueError, match="mask_folder"):
        predictor.predict([image_path])


def test_tiling_is_refused_for_segmentation(segmentation_trial):
    with pytest.raises(SpecError, match="tile_grid_size.*does not apply to image_instance_segmentation"):
        Predictor.from_trial(segmentation_trial, tile_grid_size="2x2")


# ----- exact arithmetic with fake detectors ---------------------------------------------------
def test_boxes_are_normalised_by_the_original_image_size():
    fake = FakeDetector(lambda image: _detections([[12, 6, 60, 30], [0, 0, 120, 60]], [0.9, 0.8], [2, 3]))
    predictor = Predictor(fake, DETECTION, CLASSES, _settings(DETECTION, "fasterrcnn_resnet18_fpn"))
    [output] = predictor.predict([_image(0, 120, 60)])
    assert output == {"boxes": [
        {"box": {"topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5}, "label": "square",
         "score": pytest.approx(0.9)},
        {"box": {"topX": 0.0, "topY": 0.0, "bottomX": 1.0, "bottomY": 1.0}, "label": "triangle",
         "score": pytest.approx(0.8)},
    ]}
    # The detector gets the whole image as floats in [0, 1]; it resizes it itself.
    [seen] = fake.seen
    assert seen.shape == (3, 60, 120) and seen.dtype == torch.float32
    assert torch.allclose(seen, torch.from_numpy(np.array(_image(0, 120, 60))).permute(2, 0, 1) / 255)


def test_score_threshold_and_detection_cap_are_applied():
    fake = FakeDetector(lambda image: _detections([[0, 0, 4, 4], [1, 1, 5, 5], [2, 2, 6, 6], [3, 3, 7, 7]],
                                                  [0.4, 0.9, 0.6, 0.7], [1, 1, 2, 3]))
    settings = _settings(DETECTION, "fasterrcnn_resnet18_fpn", box_score_threshold=0.5)
    [output] = Predictor(fake, DETECTION, CLASSES, settings).predict([_image(0)])
    assert [round(e["score"], 2) for e in output["boxes"]] == [0.9, 0.7, 0.6]
    settings = _settings(DETECTION, "fasterrcnn_resnet18_fpn", box_score_threshold=0.5, box_detections_per_image=2)
    [output] = Predictor(fake, DETECTION, CLASSES, settings).predict([_image(0)])
    assert [e["label"] for e in output["boxes"]] == ["circle", "triangle"]


def _draw_squares(width, height, squares):
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    for colour, (x1, y1, x2, y2) in squares:
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=colour)  # PIL's rectangle includes x2, y2
    return image


def _colour_detector(image):
    """Boxes around the red (label 1) and green (label 2) pixels of the image it is given."""
    boxes, labels = [], []
    for label, channel in ((1, 0), (2, 1)):
        ys, xs = torch.nonzero(image[channel] > 0.5, as_tuple=True)
        if len(xs):
            boxes.append([xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1])
            labels.append(label)
    return _detections(boxes, [0.9] * len(boxes), labels)


def test_tiled_inference_maps_tile_boxes_back_and_merges_duplicates():
    # 2x1 tiles with 25% overlap on a 120x60 image: (0, 0, 69, 60) and (51, 0, 120, 60).
    # The red square lies in both tiles and the full image (3 sightings); the green one in
    # the first tile and the full image (2 sightings).
    red, green = (55, 10, 65, 20), (5, 30, 15, 42)
    image = _draw_squares(120, 60, [((255, 0, 0), red), ((0, 255, 0), green)])
    fake = FakeDetector(_colour_detector)
    settings = _settings(DETECTION, "fasterrcnn_resnet18_fpn", tile_grid_size="2x1", tile_overlap_ratio=0.25)
    [output] = Predictor(fake, DETECTION, ["red", "green"], settings).predict([image])
    assert [tuple(seen.shape) for seen in fake.seen] == [(3, 60, 120), (3, 60, 69), (3, 60, 69)]
    found = sorted((e["label"], tuple(round(v * s) for v, s in zip(e["box"].values(), (120, 60, 120, 60))))
                   for e in output["boxes"])
    assert found == [("green", green), ("red", red)]
    assert output["boxes"][0]["box"] == pytest.approx({"topX": 55 / 120, "topY": 10 / 60,
                                                       "bottomX": 65 / 120, "bottomY": 20 / 60})


def test_without_tiling_the_model_sees_only_the_full_image():
    fake = FakeDetector(_colour_detector)
    image = _draw_squares(120, 60, [((255, 0, 0), (55, 10, 65, 20))])
    Predictor(fake, DETECTION, ["red", "green"], _settings(DETECTION, "fasterrcnn_resnet18_fpn")).predict([image])
    assert [tuple(seen.shape) for seen in fake.seen] == [(3, 60, 120)]


def _soft_mask(width, height):
    """A circle of probability 0.8 and a square of 0.4, in one [1, 1, H, W] mask."""
    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), np.float32)
    mask[(xx + 0.5 - 30) ** 2 + (yy + 0.5 - 24) ** 2 <= 15 ** 2] = 0.8
    mask[5:20, 55:75] = 0.4
    return torch.from_numpy(mask)[None, None]


def test_polygons_follow_the_thresholded_mask():
    fake = FakeDetector(lambda image: _detections([[15, 9, 75, 39]], [0.9], [1], masks=_soft_mask(WIDTH, HEIGHT)))
    settings = _settings(SEGMENTATION, "maskrcnn_resnet18_fpn", max_number_of_polygon_points=20)
    [output] = Predictor(fake, SEGMENTATION, CLASSES, settings).predict([_image(0)])
    [entry] = output["boxes"]
    [ring] = entry["polygon"]  # the square's 0.4 is below the default threshold 0.5
    assert len(ring) // 2 <= 20
    circle = _soft_mask(WIDTH, HEIGHT)[0, 0].numpy() >= 0.5
    drawn = polygon_to_mask([ring], WIDTH, HEIGHT).numpy().astype(bool)
    assert (drawn & circle).sum() / (drawn | circle).sum() > 0.9

    settings = _settings(SEGMENTATION, "maskrcnn_resnet18_fpn", mask_pixel_score_threshold=0.3)
    [output] = Predictor(fake, SEGMENTATION, CLASSES, settings).predict([_image(0)])
    assert len(output["boxes"][0]["polygon"]) == 2  # circle and square


@pytest.mark.parametrize("image_type, magic", [("jpg", b"\xff\xd8"), ("png", b"\x89PNG"), ("bmp", b"BM")])
def test_exported_masks_have_the_chosen_format(tmp_path, image_type, magic):
    fake = FakeDetector(lambda image: _detections([[15, 9, 75, 39]], [0.9], [1], masks=_soft_mask(WIDTH, HEIGHT)))
    settings = _settings(SEGMENTATION, "maskrcnn_resnet18_fpn", export_as_image=True, image_type=image_type.upper())
    Predictor(fake, SEGMENTATION, CLASSES, settings).predict([_image(0), _image(1)], mask_folder=tmp_path)
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == [f"image_0_0.{image_type}", f"image_1_0.{image_type}"]
    assert files[0].read_bytes().startswith(magic)
    with Image.open(files[0]) as mask:
        circle = _soft_mask(WIDTH, HEIGHT)[0, 0].numpy() >= 0.5
        assert ((np.array(mask) > 127) == circle).mean() > 0.98  # jpg is lossy at the edges


def test_an_image_with_no_detections_has_no_boxes():
    fake = FakeDetector(lambda image: _detections([], [], []))
    [output] = Predictor(fake, DETECTION, CLASSES, _settings(DETECTION, "fasterrcnn_resnet18_fpn")).predict([_image(0)])
    assert output == {"boxes": []}


# ----- errors ---------------------------------------------------------------------------------
def test_a_folder_that_is_not_a_trial_folder_is_named(tmp_path):
    with pytest.raises(TrialError, match="no such folder"):
        Predictor.from_trial(tmp_path / "missing")
    with pytest.raises(TrialError, match=f"{tmp_path.name} is not a trial folder.*model_best.pt"):
        Predictor.from_trial(tmp_path)
    (tmp_path / BEST_CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(RunFolderError, match=r"model_best\.pt: damaged or not a torch checkpoint"):
        Predictor.from_trial(tmp_path)


def test_unreadable_images_are_named(tmp_path):
    predictor = Predictor(FakeDetector(_colour_detector), DETECTION, CLASSES,
                          _settings(DETECTION, "fasterrcnn_resnet18_fpn"))
    with pytest.raises(DataError, match="missing.png"):
        predictor.predict([tmp_path / "missing.png"])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.jpg"):
        predictor.predict([broken])
    with pytest.raises(DataError, match="image 1 \\(bytes\\)"):
        predictor.predict([_image(0), b"not an image"])
    with pytest.raises(DataError, match="image 0: a int is not an image"):
        predictor.predict([3])


def test_a_predictor_needs_the_settings_of_its_task():
    with pytest.raises(ValueError, match="needs mask_pixel_score_threshold"):
        Predictor(FakeDetector(_colour_detector), SEGMENTATION, CLASSES,
                  _settings(DETECTION, "fasterrcnn_resnet18_fpn"))
    settings = {**_settings(DETECTION, "fasterrcnn_resnet18_fpn"), "tile_grid_size": "2x2"}
    del settings["tile_overlap_ratio"]
    with pytest.raises(ValueError, match="needs tile_overlap_ratio"):
        Predictor(FakeDetector(_colour_detector), DETECTION, CLASSES, settings)
