import math

import pytest
import torch

from automl_nb.errors import SpecError, TrialError
from automl_nb.models import detection, ssd, weights
from automl_nb.models.detection import freeze_by_pattern
from automl_nb.models.ssd import build_ssd, sagemaker_detector
from automl_nb.models.registry import build_model, freeze_prefixes, get_model_info, list_models
from automl_nb.spec import (
    DETECTION, MODELS as TASK_MODELS, PARAMETERS, SEGMENTATION, default_value, resolve_parameters,
)

NUM_CLASSES = 3
TINY = {"min_size": 64, "max_size": 96}
MODELS = [m for m in list_models("detection") if m != "yolov5"] + list_models("segmentation")
LOSSES = {
    "fasterrcnn": {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"},
    "maskrcnn": {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "loss_mask"},
    "retinanet": {"classification", "bbox_regression"},
    "ssd": {"classification", "bbox_regression"},
}


def tiny_batch(sizes=((64, 80), (72, 64))):
    """Two images (0-1 floats) and targets in pixels: labels 1..NUM_CLASSES, masks inside the boxes."""
    generator = torch.Generator().manual_seed(0)
    boxes = [torch.tensor([[5.0, 6.0, 40.0, 50.0]]), torch.tensor([[1.0, 2.0, 30.0, 20.0], [10.0, 10.0, 60.0, 60.0]])]
    labels = [torch.tensor([1]), torch.tensor([NUM_CLASSES, 2])]
    images, targets = [], []
    for (height, width), image_boxes, image_labels in zip(sizes, boxes, labels):
        images.append(torch.rand(3, height, width, generator=generator))
        masks = torch.zeros(len(image_boxes), height, width, dtype=torch.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, image_boxes.int().tolist()):
            mask[y1:y2, x1:x2] = 1
        targets.append({"boxes": image_boxes, "labels": image_labels, "masks": masks})
    return images, targets


def family(name):
    return name.split("_")[0]


def check_trains_and_predicts(model, kind, detections_per_image, sizes=((64, 80), (72, 64))):
    images, targets = tiny_batch(sizes)
    model.train()
    losses = model(images, targets)
    assert set(losses) == LOSSES[kind]
    assert all(math.isfinite(loss.item()) for loss in losses.values())
    sum(losses.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters()
               if n.startswith("backbone."))
    model.eval()
    with torch.no_grad():
        predictions = model(images)
    assert len(predictions) == 2
    for image, prediction in zip(images, predictions):
        count = len(prediction["boxes"])
        assert 0 < count <= detections_per_image  # score threshold 0: random weights still give boxes
        assert prediction["boxes"].shape == (count, 4) and prediction["scores"].shape == (count,)
        assert prediction["labels"].min() >= 1 and prediction["labels"].max() <= NUM_CLASSES
        if kind == "maskrcnn":
            assert prediction["masks"].shape == (count, 1, *image.shape[1:])


def test_every_detection_and_segmentation_model_of_the_spec_is_registered():
    assert list_models("detection") == sorted(TASK_MODELS[DETECTION])
    assert list_models("segmentation") == sorted(TASK_MODELS[SEGMENTATION])


@pytest.mark.parametrize("name", MODELS)
def test_model_trains_and_predicts_labels_one_to_num_classes(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=NUM_CLASSES, pretrained=False, box_score_threshold=0.0,
                        box_detections_per_image=7, **TINY)
    check_trains_and_predicts(model, family(name), detections_per_image=7)


@pytest.mark.parametrize("name", MODELS)
def test_heads_have_one_output_per_class_plus_background(name):
    model = build_model(name, num_classes=NUM_CLASSES, pretrained=False, **TINY)
    if family(name) == "retinanet":
        assert model.head.classification_head.num_classes == NUM_CLASSES + 1
        return
    assert model.roi_heads.box_predictor.cls_score.out_features == NUM_CLASSES + 1
    if family(name) == "maskrcnn":
        assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == NUM_CLASSES + 1


@pytest.mark.parametrize("name", ["fasterrcnn_resnet18_fpn", "maskrcnn_resnet34_fpn", "retinanet_resnet50_fpn"])
def test_options_reach_the_model(name):
    model = build_model(name, num_classes=2, pretrained=False, min_size=64, max_size=96, box_score_threshold=0.25,
                        nms_iou_threshold=0.4, box_detections_per_image=9)
    assert model.transform.min_size == (64,) and model.transform.max_size == 96
    heads = model if family(name) == "retinanet" else model.roi_heads
    assert (heads.score_thresh, heads.nms_thresh, heads.detections_per_img) == (0.25, 0.4, 9)


@pytest.mark.parametrize("name", ["fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn", "retinanet_resnet50_fpn"])
def test_options_left_out_take_the_tables_defaults(name):
    task = SEGMENTATION if family(name) == "maskrcnn" else DETECTION
    model = build_model(name, num_classes=2, pretrained=False)
    heads = model if family(name) == "retinanet" else model.roi_heads
    assert model.transform.min_size == (default_value("min_size", task, name),)
    assert model.transform.max_size == default_value("max_size", task, name)
    assert heads.score_thresh == default_value("box_score_threshold", task, name)
    assert heads.nms_thresh == default_value("nms_iou_threshold", task, name)
    assert heads.detections_per_img == default_value("box_detections_per_image", task, name)


def test_retinanet_never_predicts_the_background_column():
    model = build_model("retinanet_resnet50_fpn", num_classes=NUM_CLASSES, pretrained=False,
                        box_score_threshold=0.0, **TINY).eval()
    logits = model.head.classification_head.cls_logits
    with torch.no_grad():  # channels are anchor-major: anchor a, class k at a * (C + 1) + k
        logits.bias[:: NUM_CLASSES + 1] = 10.0  # background would win every anchor unmasked
        predictions = model(tiny_batch()[0])
    for prediction in predictions:
        assert len(prediction["labels"]) > 0
        assert prediction["labels"].min() >= 1


@pytest.mark.parametrize("frozen_batch_norm", [False, True])
@pytest.mark.parametrize("name", MODELS)
def test_freeze_table_names_real_parameters(name, frozen_batch_norm):
    # Every prefix of the resnet_backbone table must match some parameter, or
    # layers_to_freeze would silently freeze nothing.
    model = build_model(name, num_classes=2, pretrained=False, frozen_batch_norm=frozen_batch_norm, **TINY)
    names = [n for n, _ in model.named_parameters()]
    table = get_model_info(name).freeze_layers
    assert len(table) == 5
    for prefix in freeze_prefixes(name, len(table)):
        assert any(n.startswith(prefix) for n in names), (name, prefix)


def test_freezing_by_the_table_leaves_the_rest_trainable():
    model = build_model("fasterrcnn_resnet18_fpn", num_classes=2, pretrained=False, **TINY)
    prefixes = freeze_prefixes("fasterrcnn_resnet18_fpn", 2)
    for name, parameter in model.named_parameters():
        assert parameter.requires_grad, name  # nothing frozen by the builder itself
    frozen = [n for n, _ in model.named_parameters() if n.startswith(prefixes)]
    assert frozen and all(n.startswith(("backbone.body.conv1.", "backbone.body.layer1.")) for n in frozen)


def test_frozen_batch_norm_has_no_batch_norm_parameters():
    model = build_model("fasterrcnn_resnet18_fpn", num_classes=2, pretrained=False, frozen_batch_norm=True, **TINY)
    names = [n for n, _ in model.named_parameters()]
    assert "backbone.body.conv1.weight" in names and "backbone.body.bn1.weight" not in names


# ----- pretrained weights -----------------------------------------------------------------
@pytest.fixture
def offline_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torchvision cache
    monkeypatch.setattr(weights, "host_reachable", lambda url, timeout=3.0: False)
    return tmp_path / "hub" / "checkpoints"


@pytest.mark.timeout(60)  # the point: it fails, it does not hang
@pytest.mark.parametrize("name", ["fasterrcnn_resnet18_fpn", "fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn",
                                  "maskrcnn_resnet50_fpn", "maskrcnn_resnet101_fpn"])
def test_missing_pretrained_weights_fail_fast_with_advice(name, offline_empty_cache):
    with pytest.raises(TrialError, match="use_pretrained_model: false"):
        build_model(name, num_classes=2, pretrained=True, **TINY)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("base_network", ["vgg-16", "resnet-50"])
def test_missing_ssd_weights_fail_fast_with_advice(base_network, offline_empty_cache):
    with pytest.raises(TrialError, match="use_pretrained_model: false"):
        build_ssd(base_network=base_network, num_classes=2, pretrained=True)


def test_cached_imagenet_backbone_weights_are_loaded_and_rebuild_from_a_checkpoint(offline_empty_cache):
    import torchvision

    reference = torchvision.models.resnet18()
    url = torchvision.models.get_model_weights("resnet18").DEFAULT.url
    offline_empty_cache.mkdir(parents=True)
    torch.save(reference.state_dict(), offline_empty_cache / url.rsplit("/", 1)[1])
    model = build_model("fasterrcnn_resnet18_fpn", num_classes=NUM_CLASSES, pretrained=True, **TINY)
    assert torch.equal(model.backbone.body.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.backbone.body.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    # A checkpoint of a pretrained run rebuilds without weights, with the same batch norm kind.
    rebuilt = build_model("fasterrcnn_resnet18_fpn", num_classes=NUM_CLASSES, pretrained=False,
                          frozen_batch_norm=True, **TINY)
    rebuilt.load_state_dict(model.state_dict())
    assert isinstance(rebuilt.backbone.body.bn1, detection.FrozenBatchNorm2d)


def test_cached_coco_weights_are_loaded_and_the_heads_replaced(offline_empty_cache):
    import torchvision.models.detection as tvd

    torch.manual_seed(0)
    reference = tvd.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    url = tvd.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.url
    offline_empty_cache.mkdir(parents=True)
    torch.save(reference.state_dict(), offline_empty_cache / url.rsplit("/", 1)[1])
    model = build_model("fasterrcnn_resnet50_fpn", num_classes=NUM_CLASSES, pretrained=True, **TINY)
    assert torch.equal(model.backbone.body.conv1.weight, reference.backbone.body.conv1.weight)
    assert torch.equal(model.rpn.head.conv[0][0].weight, reference.rpn.head.conv[0][0].weight)
    assert model.roi_heads.box_predictor.cls_score.out_features == NUM_CLASSES + 1
    assert model.backbone.body.bn1.eps == 0.0  # COCO_V1's frozen batch norm, as torchvision
    rebuilt = build_model("fasterrcnn_resnet50_fpn", num_classes=NUM_CLASSES, pretrained=False,
                          frozen_batch_norm=True, **TINY)
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.backbone.body.bn1.eps == 0.0


# ----- SageMaker's SSD ----------------------------------------------------------------------
def test_ssd_base_networks_are_the_tables_choices():
    assert set(ssd._SSD_BACKBONES) == set(PARAMETERS["base_network"].choices)


@pytest.mark.parametrize("base_network", ["vgg-16", "resnet-50"])
def test_ssd_trains_and_predicts_at_image_shape_300(base_network):
    torch.manual_seed(0)
    model = build_ssd(base_network=base_network, num_classes=NUM_CLASSES, pretrained=False, image_shape=300,
                      box_score_threshold=0.0, box_detections_per_image=7)
    assert model.transform.fixed_size == (300, 300)
    check_trains_and_predicts(model, "ssd", detections_per_image=7)


def test_ssd_image_shape_sizes_the_input_and_the_anchors():
    torch.manual_seed(0)
    model = build_ssd(base_network="resnet-50", num_classes=NUM_CLASSES, pretrained=False, image_shape=320,
                      box_score_threshold=0.0, box_detections_per_image=5)
    assert model.transform.fixed_size == (320, 320)
    features = model.backbone(torch.zeros(1, 3, 320, 320))
    assert [f.shape[-1] for f in features.values()] == [40, 20, 10, 5, 3, 1]
    check_trains_and_predicts(model, "ssd", detections_per_image=5)


def test_ssd_unknown_base_network_names_the_choices():
    with pytest.raises(SpecError, match="base_network: 'resnet-18'.*vgg-16, resnet-50"):
        build_ssd(base_network="resnet-18", num_classes=2, pretrained=False)


def test_sagemaker_detector_reads_resolved_parameters():
    params = resolve_parameters(DETECTION, {"base_network": "resnet-50", "image_shape": 320, "nms_threshold": 0.4,
                                            "use_pretrained_model": 0, "num_classes": 2})
    model = sagemaker_detector(params, num_classes=2)
    assert model.transform.fixed_size == (320, 320)
    assert model.nms_thresh == 0.4
    assert model.score_thresh == params["box_score_threshold"]
    assert model.detections_per_img == params["box_detections_per_image"]
    assert model.head.classification_head.num_columns == 2 + 1
    assert isinstance(model.backbone.body.bn1, torch.nn.BatchNorm2d)


def test_sagemaker_detector_rebuilds_a_pretrained_runs_architecture_without_weights(offline_empty_cache):
    params = resolve_parameters(DETECTION, {"base_network": "resnet-50"})  # use_pretrained_model defaults on
    model = sagemaker_detector(params, num_classes=2, pretrained=False)  # no weights needed, none loaded
    assert isinstance(model.backbone.body.bn1, detection.FrozenBatchNorm2d)


def test_ssd_resnet50_names_match_the_resnet_backbone_freeze_table():
    model = build_ssd(base_network="resnet-50", num_classes=2, pretrained=False)
    names = [n for n, _ in model.named_parameters()]
    for prefix in freeze_prefixes("fasterrcnn_resnet50_fpn", 5):
        assert any(n.startswith(prefix) for n in names), prefix


def test_freeze_layer_pattern_freezes_matching_parameters_only():
    model = build_ssd(base_network="vgg-16", num_classes=2, pretrained=False)
    frozen = freeze_by_pattern(model, r"^backbone\.features\.(0|2)\.")
    assert frozen == ["backbone.features.0.weight", "backbone.features.0.bias",
                      "backbone.features.2.weight", "backbone.features.2.bias"]
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == frozen
    with pytest.raises(SpecError, match="freeze_layer_pattern: 'vgg0_conv.*' matches no parameter"):
        freeze_by_pattern(model, "vgg0_conv.*")


@pytest.mark.parametrize("task, name", [(DETECTION, "fasterrcnn_resnet18_fpn"), (SEGMENTATION, "maskrcnn_resnet18_fpn")])
def test_advanced_setting_sets_the_proposals_sampled_per_image(task, name):
    def sampled(advanced):
        params = resolve_parameters(task, {"model_name": name, "use_pretrained_model": False,
                                           "advanced_settings": advanced})
        return detection.detector_from_params(params, 3, pretrained=False).roi_heads.fg_bg_sampler.batch_size_per_image

    assert sampled({}) == 512  # torchvision's own
    assert sampled({"box_batch_size_per_image": 64}) == 64
