"""Object-detection and instance-segmentation models of SPEC section 6 (SageMaker's SSD: :mod:`automl_nb.models.ssd`).

Class indices: every builder takes ``num_classes`` object classes, WITHOUT background. The
torchvision heads keep index 0 for background, so each head is built with
``num_classes + 1`` outputs. Targets carry labels ``1..num_classes`` (the dataset's class
``i``, 0-based, is label ``i + 1``) and predictions come back with labels in the same range;
label 0 is never predicted.

Backbones: ResNet-FPN for every depth, built with torchvision's ``_resnet_fpn_extractor``
and all five stages trainable, because ``layers_to_freeze`` is applied by the trainer
through the parameter-name prefixes of ``FREEZE_LAYER_ORDER`` (``backbone.body.conv1.``,
``backbone.body.layer1.``...). The ResNet's batch norm is frozen (``FrozenBatchNorm2d``,
as in torchvision's detection builders: batches of 2 images cannot estimate statistics)
when ``frozen_batch_norm`` is true, ordinary ``BatchNorm2d`` otherwise; it defaults to
``pretrained``. The two kinds have different state dicts, so a checkpoint must be rebuilt
with the same value: ``pretrained=False, frozen_batch_norm=<use_pretrained_model of the run>``.

Pretrained weights (``pretrained=True``): the COCO weights of torchvision's
``*_resnet50_fpn`` models for depth 50, ImageNet ResNet weights for the backbone of the
other depths. They come from the torchvision cache or a reachable download URL, else a
:class:`~automl_nb.errors.TrialError` says to set ``use_pretrained_model: false``.

Options left as None take their default from the hyperparameter table (``automl_nb.spec``).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch.nn as nn
import torchvision.models as tvm
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection._utils import overwrite_eps
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.models.detection.retinanet import RetinaNetClassificationHead
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from automl_nb.errors import SpecError
from automl_nb.models.registry import build_model, register_model
from automl_nb.models.weights import load_torchvision_weights
from automl_nb.spec import DETECTION, SEGMENTATION, default_value, uses_sagemaker_ssd

# The resolved parameters a detector is built with (names from the spec table); inference
# settings may replace them.
DETECTOR_OPTIONS = ("min_size", "max_size", "box_score_threshold", "nms_iou_threshold", "box_detections_per_image")

RESNET_DEPTHS = (18, 34, 50, 101, 152)
ALL_STAGES = 5  # trainable stages of the ResNet: freezing is the trainer's job
BACKGROUND = 1  # extra class of the torchvision heads, at index 0


class _RetinaNetWithBackground(RetinaNet):
    """RetinaNet whose class 0 (background, never a positive in training) is never predicted.

    torchvision's RetinaNet scores every column with a sigmoid, so unlike the R-CNN heads it
    could return label 0; masking that column keeps the label convention of this module.
    """

    def postprocess_detections(self, head_outputs, anchors, image_shapes):
        masked = []
        for logits in head_outputs["cls_logits"]:
            logits = logits.clone()
            logits[..., 0] = float("-inf")  # sigmoid 0, never above score_thresh >= 0
            masked.append(logits)
        return super().postprocess_detections({**head_outputs, "cls_logits": masked}, anchors, image_shapes)


# ----- ResNet-FPN detectors ------------------------------------------------------------
def _option(name: str, value: Any, task: str, model_name: str | None) -> Any:
    """``value``, or the table's default of ``name`` for the task and model when it is None."""
    return default_value(name, task, model_name) if value is None else value


def resnet_trunk(model_name: str, depth: int, frozen_batch_norm: bool, imagenet: bool) -> nn.Module:
    """A torchvision ResNet; ImageNet weights loaded when ``imagenet``."""
    norm_layer = FrozenBatchNorm2d if frozen_batch_norm else nn.BatchNorm2d
    resnet = tvm.get_model(f"resnet{depth}", weights=None, norm_layer=norm_layer)
    if imagenet:
        weights = tvm.get_model_weights(f"resnet{depth}").DEFAULT  # the file classification uses
        resnet.load_state_dict(load_torchvision_weights(model_name, weights))
    return resnet


def _resnet_fpn(model_name: str, depth: int, frozen_batch_norm: bool, imagenet: bool,
                retinanet: bool = False) -> nn.Module:
    """ResNet-FPN backbone, its parameters named ``body.conv1.``, ``body.layer1.`` ... ``fpn.``."""
    resnet = resnet_trunk(model_name, depth, frozen_batch_norm, imagenet)
    if retinanet:  # as torchvision's retinanet_resnet50_fpn: P3-P5 plus P6, P7
        return _resnet_fpn_extractor(resnet, ALL_STAGES, returned_layers=[2, 3, 4],
                                     extra_blocks=LastLevelP6P7(256, 256))
    return _resnet_fpn_extractor(resnet, ALL_STAGES)


def _coco_weights(family: str):
    from torchvision.models.detection import (
        FasterRCNN_ResNet50_FPN_Weights, MaskRCNN_ResNet50_FPN_Weights, RetinaNet_ResNet50_FPN_Weights,
    )

    return {"fasterrcnn": FasterRCNN_ResNet50_FPN_Weights.COCO_V1,
            "maskrcnn": MaskRCNN_ResNet50_FPN_Weights.COCO_V1,
            "retinanet": RetinaNet_ResNet50_FPN_Weights.COCO_V1}[family]


def _load_coco(model: nn.Module, model_name: str, weights, coco_batch_norm: bool) -> None:
    """Load COCO ``weights`` (if any); give frozen batch norm COCO's eps 0 when ``coco_batch_norm``.

    torchvision sets eps 0 for these COCO_V1 weights. Doing it for every depth-50 model with
    frozen batch norm, loaded or not, keeps a rebuilt checkpoint numerically identical.
    """
    if weights is not None:
        model.load_state_dict(load_torchvision_weights(model_name, weights))
    if coco_batch_norm:
        overwrite_eps(model, 0.0)


def build_resnet_fpn_detector(
    family: str,
    depth: int,
    *,
    num_classes: int,
    pretrained: bool,
    min_size: int | None = None,
    max_size: int | None = None,
    box_score_threshold: float | None = None,
    nms_iou_threshold: float | None = None,
    box_detections_per_image: int | None = None,
    frozen_batch_norm: bool | None = None,
    box_batch_size_per_image: int | None = None,
) -> nn.Module:
    """Faster R-CNN, Mask R-CNN or RetinaNet on a ResNet-FPN backbone.

    Args:
        family: "fasterrcnn", "maskrcnn" or "retinanet".
        depth: ResNet depth, one of ``RESNET_DEPTHS``.
        num_classes: object classes, without background (the head gets one more).
        pretrained: COCO weights for depth 50, ImageNet backbone weights otherwise.
        min_size, max_size: image rescaling bounds of ``model.transform``.
        box_score_threshold: minimum score of a returned box (``box_score_thresh``;
            RetinaNet ``score_thresh``).
        nms_iou_threshold: IoU of non-maximum suppression (``box_nms_thresh``; RetinaNet
            ``nms_thresh``).
        box_detections_per_image: most boxes returned per image (``box_detections_per_img``;
            RetinaNet ``detections_per_img``).
        frozen_batch_norm: ``FrozenBatchNorm2d`` in the ResNet (None: as ``pretrained``).
        box_batch_size_per_image: proposals sampled per image to train the R-CNN heads (None:
            torchvision's 512); ignored by RetinaNet, which has no such heads.

    Returns:
        The torchvision model: in train mode ``model(images, targets)`` gives a dict of
        losses, in eval mode ``model(images)`` a list of dicts with boxes, scores, labels
        (and masks).

    Raises:
        TrialError: pretrained weights neither cached nor downloadable.
        ValueError: unknown family, depth, or ``num_classes`` < 1.

    Example:
        >>> model = build_resnet_fpn_detector("fasterrcnn", 18, num_classes=3, pretrained=False)
        >>> model.roi_heads.box_predictor.cls_score.out_features  # 3 classes + background
        4
    """
    if family not in ("fasterrcnn", "maskrcnn", "retinanet"):
        raise ValueError(f"family: {family!r} is not one of fasterrcnn, maskrcnn, retinanet")
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"depth: {depth!r} is not one of {RESNET_DEPTHS}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes: {num_classes!r} is not an int >= 1")
    model_name = f"{family}_resnet{depth}_fpn"
    task = SEGMENTATION if family == "maskrcnn" else DETECTION
    min_size = _option("min_size", min_size, task, model_name)
    max_size = _option("max_size", max_size, task, model_name)
    score = _option("box_score_threshold", box_score_threshold, task, model_name)
    nms = _option("nms_iou_threshold", nms_iou_threshold, task, model_name)
    per_image = _option("box_detections_per_image", box_detections_per_image, task, model_name)

    frozen = pretrained if frozen_batch_norm is None else bool(frozen_batch_norm)
    coco = _coco_weights(family) if pretrained and depth == 50 else None
    backbone = _resnet_fpn(model_name, depth, frozen, imagenet=pretrained and coco is None,
                           retinanet=family == "retinanet")
    # With COCO weights the model is first built with COCO's classes, then its heads replaced.
    head_classes = len(coco.meta["categories"]) if coco is not None else num_classes + BACKGROUND

    if family == "retinanet":
        model = _RetinaNetWithBackground(backbone, head_classes, min_size=min_size, max_size=max_size,
                                         score_thresh=score, nms_thresh=nms, detections_per_img=per_image)
        _load_coco(model, model_name, coco, frozen and depth == 50)
        if coco is not None:
            model.head.classification_head = RetinaNetClassificationHead(
                backbone.out_channels, model.anchor_generator.num_anchors_per_location()[0],
                num_classes + BACKGROUND)
        return model

    detector = MaskRCNN if family == "maskrcnn" else FasterRCNN
    sampling = {} if box_batch_size_per_image is None else {"box_batch_size_per_image": box_batch_size_per_image}
    model = detector(backbone, head_classes, min_size=min_size, max_size=max_size, box_score_thresh=score,
                     box_nms_thresh=nms, box_detections_per_img=per_image, **sampling)
    _load_coco(model, model_name, coco, frozen and depth == 50)
    if coco is not None:
        in_features = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes + BACKGROUND)
        if family == "maskrcnn":
            predictor = model.roi_heads.mask_predictor
            model.roi_heads.mask_predictor = MaskRCNNPredictor(
                predictor.conv5_mask.in_channels, predictor.conv5_mask.out_channels, num_classes + BACKGROUND)
    return model


def _register_resnet_fpn(family: str, depth: int, group: str) -> None:
    @register_model(f"{family}_resnet{depth}_fpn", group)
    def build(*, num_classes: int, pretrained: bool, min_size: int | None = None, max_size: int | None = None,
              box_score_threshold: float | None = None, nms_iou_threshold: float | None = None,
              box_detections_per_image: int | None = None, frozen_batch_norm: bool | None = None,
              box_batch_size_per_image: int | None = None, **_: object) -> nn.Module:
        return build_resnet_fpn_detector(
            family, depth, num_classes=num_classes, pretrained=pretrained, min_size=min_size, max_size=max_size,
            box_score_threshold=box_score_threshold, nms_iou_threshold=nms_iou_threshold,
            box_detections_per_image=box_detections_per_image, frozen_batch_norm=frozen_batch_norm,
            box_batch_size_per_image=box_batch_size_per_image)


for _depth in RESNET_DEPTHS:
    _register_resnet_fpn("fasterrcnn", _depth, "detection")
    _register_resnet_fpn("maskrcnn", _depth, "segmentation")
_register_resnet_fpn("retinanet", 50, "detection")


def detector_from_params(params: Mapping[str, Any], num_classes: int, *, pretrained: bool,
                         **options: Any) -> nn.Module:
    """The detector that resolved training parameters describe.

    SageMaker's SSD (:mod:`automl_nb.models.ssd`) when the job gave SageMaker keys and no ``model_name``
    (:func:`~automl_nb.spec.uses_sagemaker_ssd`), YOLOv5 (:mod:`automl_nb.models.yolo`), else
    the ``model_name`` detector. Its batch
    norm is frozen when ``use_pretrained_model`` is true, whether or not weights are loaded now,
    so a checkpoint of the run fits the rebuilt model.

    Args:
        params: resolved training parameters.
        num_classes: object classes in the data, without background.
        pretrained: load pretrained weights (False when rebuilding a checkpoint).
        **options: :data:`DETECTOR_OPTIONS` that replace the trained ones (inference
            settings); ``min_size`` and ``max_size`` do not apply to the SSD, whose input is
            ``image_shape`` square.

    Raises:
        ValueError: an option that is not one of :data:`DETECTOR_OPTIONS`.
    """
    if params.get("model_name") == "yolov5":
        from automl_nb.models.yolo import yolo_from_params

        return yolo_from_params(params, num_classes, pretrained=pretrained, **options)
    unknown = sorted(set(options) - set(DETECTOR_OPTIONS))
    if unknown:
        raise ValueError(f"options {unknown} are not detector options; allowed: {', '.join(DETECTOR_OPTIONS)}")
    options = {**{key: params[key] for key in DETECTOR_OPTIONS if key in params}, **options}
    if uses_sagemaker_ssd(params):
        from automl_nb.models.ssd import sagemaker_detector

        return sagemaker_detector({**params, **options}, num_classes, pretrained=pretrained)
    sampled = (params.get("advanced_settings") or {}).get("box_batch_size_per_image")
    return build_model(params["model_name"], num_classes=num_classes, pretrained=pretrained,
                       frozen_batch_norm=bool(params["use_pretrained_model"]), box_batch_size_per_image=sampled,
                       **options)


def freeze_by_pattern(model: nn.Module, pattern: str) -> list[str]:
    """Freeze the parameters whose names match SageMaker's ``freeze_layer_pattern``.

    The regex is searched (``re.search``) in torchvision parameter names, e.g.
    ``backbone.features.0.weight`` (vgg-16) or ``backbone.body.layer1.0.conv1.weight``
    (resnet-50), not in SageMaker's MXNet layer names.

    Args:
        model: the model to freeze in place.
        pattern: the regular expression.

    Returns:
        The names of the frozen parameters, in model order.

    Raises:
        SpecError: the pattern matches no parameter (it would silently freeze nothing).
    """
    regex = re.compile(pattern)
    names = [name for name, _ in model.named_parameters()]
    frozen = [name for name in names if regex.search(name)]
    if not frozen:
        raise SpecError(f"freeze_layer_pattern: {pattern!r} matches no parameter of the model; parameter "
                        f"names look like {', '.join(names[:3])}")
    for name, parameter in model.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    return frozen
