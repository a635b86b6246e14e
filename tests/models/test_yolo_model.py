"""YOLOv5 network: published sizes, output shapes, decoding through the letterbox, NMS, freezing,
and pretrained weights from local files."""

from __future__ import annotations

import math
import sys
import types

import pytest
import torch

from automl_nb.data.yolo_transforms import letterbox_geometry
from automl_nb.errors import TrialError
from automl_nb.models.registry import build_model, freeze_prefixes
from automl_nb.models.yolo import SIZES, YoloV5, network_size
from automl_nb.models.yolo.decode import decode_outputs, non_max_suppression
from automl_nb.models.yolo.model import count_parameters
from automl_nb.models.yolo.weights import load_pretrained, read_checkpoint
from automl_nb.train.optim import build_optimizer

# Published parameter counts of YOLOv5 v6/v7 with 80 classes (s, m, l, x).
PUBLISHED = {"small": 7.2e6, "medium": 21.2e6, "large": 46.5e6, "extra_large": 86.7e6}


@pytest.mark.parametrize("size", list(SIZES))
def test_each_size_has_the_published_number_of_parameters(size):
    with torch.device("meta"):  # no memory, no initialisation cost
        model = YoloV5(80, size)
    assert count_parameters(model) == pytest.approx(PUBLISHED[size], rel=0.01)  # measured: 7,235,389 for small


@pytest.mark.parametrize("height, width", [(64, 96), (96, 32)])
def test_outputs_have_one_map_per_stride_for_non_square_inputs(height, width):
    model = YoloV5(num_classes=4, model_size="small")
    outputs = model(torch.rand(2, 3, height, width))
    assert [tuple(o.shape) for o in outputs] == [(2, 3, height // s, width // s, 9) for s in (8, 16, 32)]


def test_an_input_side_off_the_stride_is_a_clear_error():
    with pytest.raises(ValueError, match="multiples of 32, got 64x70"):
        YoloV5(num_classes=1, model_size="small")(torch.rand(1, 3, 64, 70))


def test_bad_size_or_class_count_is_a_clear_error():
    with pytest.raises(ValueError, match="model_size: 'tiny'.*small, medium, large, extra_large"):
        YoloV5(num_classes=2, model_size="tiny")
    with pytest.raises(ValueError, match="num_classes: 0"):
        YoloV5(num_classes=0)


def test_image_size_is_rounded_up_to_the_stride():
    assert [network_size(s) for s in (1, 32, 33, 64, 100, 640)] == [32, 32, 64, 64, 128, 640]


def _inverse_sigmoid(p: float) -> float:
    return math.log(p / (1 - p))


def crafted_outputs(model: YoloV5, canvas_box: tuple[float, float, float, float], label: int,
                    size: int) -> list[torch.Tensor]:
    """Raw outputs whose only confident prediction is ``canvas_box`` (XYXY) of class ``label``."""
    head = model.head
    outputs = [torch.full((1, 3, size // s, size // s, 5 + head.num_classes), -12.0) for s in (8, 16, 32)]
    x1, y1, x2, y2 = canvas_box
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    stride, anchor = 8, head.anchors[0, 2] * 8  # the stride-8 map, its largest anchor (33 x 23 px)
    col, row = int(cx // stride), int(cy // stride)
    raw = outputs[0][0, 2, row, col]
    raw[0] = _inverse_sigmoid((cx / stride - col + 0.5) / 2)
    raw[1] = _inverse_sigmoid((cy / stride - row + 0.5) / 2)
    raw[2] = _inverse_sigmoid(math.sqrt(w / float(anchor[0])) / 2)
    raw[3] = _inverse_sigmoid(math.sqrt(h / float(anchor[1])) / 2)
    raw[4] = 6.0
    raw[5 + label] = 6.0
    return outputs


def test_list_inference_maps_boxes_back_to_each_images_own_pixels(monkeypatch):
    # A 100 x 60 image letterboxed to 64: predictions on the canvas must come back exactly.
    model = YoloV5(num_classes=3, model_size="small", image_size=64, box_score_threshold=0.5).eval()
    original = (21.0, 12.5, 60.0, 40.0)
    geometry = letterbox_geometry(100, 60, 64)
    canvas_box = tuple(geometry.to_canvas(torch.tensor([original])).squeeze(0).tolist())
    monkeypatch.setattr(model, "raw_outputs", lambda batch: crafted_outputs(model, canvas_box, 2, 64))
    (detections,) = model([torch.rand(3, 60, 100)])
    assert detections["labels"].tolist() == [3]  # torchvision convention: class index + 1
    assert detections["scores"].item() == pytest.approx(1 / (1 + math.exp(-6)) ** 2)
    assert detections["boxes"].squeeze(0).tolist() == pytest.approx(original, abs=1e-3)


def test_pil_prediction_returns_zero_based_labels_in_image_pixels(monkeypatch):
    from PIL import Image

    from automl_nb.models.yolo.predict import predict_pil

    model = YoloV5(num_classes=2, model_size="small", image_size=64).eval()
    original = (3.0, 30.0, 20.0, 70.5)  # in a 40 x 90 image: padded left and right
    canvas_box = tuple(letterbox_geometry(40, 90, 64).to_canvas(torch.tensor([original]))[0].tolist())
    monkeypatch.setattr(model, "raw_outputs", lambda batch: crafted_outputs(model, canvas_box, 1, 64))
    (detections,) = predict_pil(model, [Image.new("RGB", (40, 90))])
    assert detections["labels"].tolist() == [1]
    assert detections["boxes"][0].tolist() == pytest.approx(original, abs=1e-3)


def test_decoding_bounds_box_sizes_to_four_anchors():
    model = YoloV5(num_classes=1, model_size="small")
    outputs = [torch.full((1, 3, 64 // s, 64 // s, 6), 50.0) for s in (8, 16, 32)]
    decoded = decode_outputs(outputs, model.head.anchors, model.head.stride)
    largest = (model.head.anchors * model.head.stride.view(-1, 1, 1)).view(-1, 2).max(0).values * 4
    assert decoded.shape == (1, 3 * (64 + 16 + 4), 6)
    assert torch.all(decoded[0, :, 2:4] <= largest + 1e-3)


def test_nms_is_class_aware_and_multi_label():
    # Rows: cx, cy, w, h, objectness, class probabilities (2 classes).
    rows = torch.tensor([[[20, 20, 10, 10, 0.9, 0.9, 0.8],    # both classes pass: two detections
                          [21, 20, 10, 10, 0.8, 0.9, 0.05],   # overlaps the first, class 0: suppressed
                          [50, 50, 10, 10, 0.9, 0.05, 0.05],  # score 0.045 < 0.1: dropped
                          ]], dtype=torch.float32)
    (result,) = non_max_suppression(rows, score_threshold=0.1, iou_threshold=0.5)
    assert sorted(result["labels"].tolist()) == [0, 1]
    assert result["scores"].tolist() == pytest.approx([0.81, 0.72])
    assert result["boxes"][0].tolist() == pytest.approx([15, 15, 25, 25])


def test_the_registry_builds_yolov5_with_table_defaults():
    model = build_model("yolov5", num_classes=2, pretrained=False, model_size="small", image_size=100)
    assert isinstance(model, YoloV5) and model.image_size == 128 and model.box_score_threshold == 0.1
    assert model.nms_iou_threshold == 0.5


@pytest.mark.parametrize("layers", [1, 4, 10])
def test_freezing_the_backbone_leaves_exactly_those_weights_unchanged(layers):
    torch.manual_seed(0)
    model = YoloV5(num_classes=2, model_size="small")
    frozen = freeze_prefixes("yolov5", layers)
    assert frozen == tuple(f"model.{i}." for i in range(layers))
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(not name.startswith(frozen))
    model.train()
    for name, module in model.named_modules():
        if name and (name + ".").startswith(frozen):
            module.eval()  # as the trainer does: frozen batch norm keeps its statistics
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": True}
    optimizer = build_optimizer(model.parameters(), params)
    sum(o.square().mean() for o in model(torch.rand(2, 3, 64, 64))).backward()
    optimizer.step()
    after = model.state_dict()
    changed_layers = {int(name.split(".")[1]) for name in after if not torch.equal(after[name], before[name])}
    assert changed_layers == set(range(layers, 25)) - {11, 12, 15, 16, 19, 22}  # upsample/concat have no weights


def test_freeze_table_names_real_parameters():
    names = [name for name, _ in YoloV5(num_classes=1, model_size="small").named_parameters()]
    for prefix in freeze_prefixes("yolov5", 10):
        assert any(name.startswith(prefix) for name in names), prefix


# ----- pretrained weights ------------------------------------------------------------------
def test_missing_pretrained_weights_fail_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("AUTOML_NB_YOLOV5_WEIGHTS_URL", "http://127.0.0.1:9/v7.0")  # no release host
    with pytest.raises(TrialError, match=r"use_pretrained_model: false.*yolov5s\.pt"):
        build_model("yolov5", num_classes=2, pretrained=True, model_size="small")


def _release_like_checkpoint(model: YoloV5, path) -> None:
    """Save ``model`` the way YOLOv5 releases are saved: a pickled model object of a class from a
    package (``models.yolo``) that is not installed when loading, in half precision."""
    package = types.ModuleType("models")
    module = types.ModuleType("models.yolo")

    class DetectionModel(torch.nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.model = layers
            self.yaml = {"nc": 80}

    DetectionModel.__module__, DetectionModel.__qualname__ = "models.yolo", "DetectionModel"
    module.DetectionModel = DetectionModel
    package.yolo = module
    saved = {name: sys.modules.get(name) for name in ("models", "models.yolo")}
    sys.modules.update({"models": package, "models.yolo": module})
    try:
        import copy

        torch.save({"epoch": -1, "model": DetectionModel(copy.deepcopy(model.model)).half(), "optimizer": None,
                    "date": "2022-11-22"}, path)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def test_a_release_style_checkpoint_loads_by_name_without_its_package(tmp_path, monkeypatch):
    torch.manual_seed(1)
    coco = YoloV5(num_classes=80, model_size="small")
    _release_like_checkpoint(coco, tmp_path / "yolov5s.pt")
    tensors = read_checkpoint(tmp_path / "yolov5s.pt")
    assert set(tensors) == set(coco.state_dict())  # identity name mapping, anchors included

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (tmp_path / "yolov5s.pt").rename(cache / "yolov5s.pt")
    model = build_model("yolov5", num_classes=3, pretrained=True, model_size="small")
    weight = "model.6.m.2.cv2.conv.weight"
    assert torch.equal(model.state_dict()[weight], coco.state_dict()[weight].half().float())
    # 3 classes instead of 80: the head's output layers keep their fresh weights.
    assert model.head.m[0].weight.shape[0] == 3 * 8
    assert torch.equal(model.head.anchors, coco.head.anchors)


def test_a_state_dict_of_another_size_is_rejected(tmp_path):
    torch.save(YoloV5(num_classes=80, model_size="small").state_dict(), tmp_path / "small.pt")
    with pytest.raises(TrialError, match="not a YOLOv5 v6.0-v7.0 checkpoint of model_size 'medium'"):
        load_pretrained(YoloV5(num_classes=80, model_size="medium"), tmp_path / "small.pt")


def test_a_plain_state_dict_loads_every_tensor(tmp_path):
    torch.manual_seed(2)
    source = YoloV5(num_classes=2, model_size="small")
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    target = YoloV5(num_classes=2, model_size="small")
    assert load_pretrained(target, tmp_path / "weights.pt") == []
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in source.state_dict().items())


class _OpensAFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_release_style_checkpoint_runs_none_of_its_code(tmp_path):
    # A pickled model object is read by a restricted unpickler: globals other than torch's tensors
    # and layer classes become inert stubs, so a crafted __reduce__ calls nothing.
    marker = tmp_path / "ran.txt"
    model = YoloV5(num_classes=3, model_size="small")
    torch.save({"model": model, "hook": _OpensAFile(marker)}, tmp_path / "w.pt")
    tensors = read_checkpoint(tmp_path / "w.pt")
    assert set(tensors) == set(model.state_dict()) and not marker.exists()
