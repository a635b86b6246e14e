"""SageMaker's object detector: an SSD on VGG-16 or ResNet-50 (SageMaker's ``base_network``).

A job that gives SageMaker keys and no ``model_name`` trains it (see
:func:`automl_nb.spec.uses_sagemaker_ssd`); :func:`automl_nb.models.detection.detector_from_params`
builds it from a trial's resolved parameters. Class indices follow :mod:`automl_nb.models.detection`:
``num_classes`` object classes, the head one more for background at index 0.

Options left as None take their default from the hyperparameter table (``automl_nb.spec``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

import torch
import torch.nn as nn
import torchvision.models as tvm
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD, SSDClassificationHead, SSDHead, _vgg_extractor

from automl_nb.errors import SpecError
from automl_nb.models.detection import ALL_STAGES, BACKGROUND, resnet_trunk
from automl_nb.models.weights import load_torchvision_weights
from automl_nb.spec import DETECTION, default_value


def _option(name: str, value: Any) -> Any:
    """``value``, or the table's default of ``name`` for object detection when it is None."""
    return default_value(name, DETECTION, None) if value is None else value


# Six feature maps for both base networks; at image_shape 300 they are 38, 19, 10, 5, 3, 1
# pixels wide, the layout (and anchors) of torchvision's ssd300_vgg16.
_SSD_ASPECT_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
_SSD_SCALES = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
_SSD300_STEPS = [8, 16, 32, 64, 100, 300]
_VGG_CHANNELS = [512, 1024, 512, 256, 256, 256]
_RESNET_SSD_CHANNELS = [512, 1024, 2048, 512, 256, 256]


def _extra_block(in_channels: int, mid_channels: int, out_channels: int, stride: int, padding: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, mid_channels, kernel_size=1), nn.ReLU(inplace=True),
        nn.Conv2d(mid_channels, out_channels, kernel_size=3, stride=stride, padding=padding), nn.ReLU(inplace=True),
    )


class ResNetSSDFeatures(nn.Module):
    """ResNet-50 feature extractor for SSD: six maps from strides 8, 16, 32 and three extra blocks.

    The ResNet sits in ``body`` so its parameters are named ``body.conv1.``, ``body.layer1.``...
    like the FPN detectors' (``backbone.body.*`` inside the SSD), and the resnet_backbone
    layers_to_freeze table applies to it.
    """

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.body = IntermediateLayerGetter(resnet, return_layers={"layer2": "0", "layer3": "1", "layer4": "2"})
        self.extra = nn.ModuleList([
            _extra_block(2048, 256, 512, stride=2, padding=1),
            _extra_block(512, 128, 256, stride=1, padding=0),
            _extra_block(256, 128, 256, stride=1, padding=0),
        ])
        for module in self.extra.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = list(self.body(x).values())
        for block in self.extra:
            features.append(block(features[-1]))
        return OrderedDict((str(i), feature) for i, feature in enumerate(features))


def _vgg_ssd_backbone(pretrained: bool, frozen_batch_norm: bool) -> tuple[nn.Module, list[int], dict]:
    # VGG-16 has no batch norm; when pretrained, the COCO SSD300 weights replace the whole
    # model, VGG included.
    mean_std = {"image_mean": [0.48235, 0.45882, 0.40784],  # torchvision's ssd300_vgg16: the VGG
                "image_std": [1.0 / 255.0] * 3}              # features expect 0-255 pixel values
    return _vgg_extractor(tvm.vgg16(weights=None), False, ALL_STAGES), _VGG_CHANNELS, mean_std


def _resnet_ssd_backbone(pretrained: bool, frozen_batch_norm: bool) -> tuple[nn.Module, list[int], dict]:
    resnet = resnet_trunk("ssd resnet-50", 50, frozen_batch_norm, imagenet=pretrained)
    return ResNetSSDFeatures(resnet), _RESNET_SSD_CHANNELS, {}


_SSD_BACKBONES = {"vgg-16": _vgg_ssd_backbone, "resnet-50": _resnet_ssd_backbone}


def build_ssd(
    *,
    base_network: str,
    num_classes: int,
    pretrained: bool,
    image_shape: int | None = None,
    nms_iou_threshold: float | None = None,
    box_score_threshold: float | None = None,
    box_detections_per_image: int | None = None,
    frozen_batch_norm: bool | None = None,
) -> nn.Module:
    """SageMaker's object detector: an SSD on VGG-16 or ResNet-50.

    SageMaker keys map as follows: ``base_network`` "vgg-16" is torchvision's
    ``ssd300_vgg16`` layout (COCO weights when pretrained), "resnet-50" an SSD on ResNet-50
    layers 2-4 plus three extra blocks (ImageNet backbone weights when pretrained);
    ``image_shape`` is the square input size (``model.transform.fixed_size``); SageMaker's
    ``nms_threshold`` is our ``nms_iou_threshold`` (the table maps it); ``num_classes`` is
    checked by :func:`sagemaker_detector`. ``overlap_threshold`` is SageMaker's evaluation
    IoU, not a model setting, and is not taken here. At ``image_shape`` 300 the anchors are
    torchvision's SSD300 ones; at other sizes anchor centres follow the feature-map grid.

    Args:
        base_network: "vgg-16" or "resnet-50".
        num_classes: object classes, without background (the head gets one more).
        pretrained: start from pretrained weights (see above).
        image_shape: input size in pixels; None: the table's default.
        nms_iou_threshold: IoU of non-maximum suppression; None: the table's default.
        box_score_threshold: minimum score of a returned box; None: the table's default.
        box_detections_per_image: most boxes returned per image; None: the table's default.
        frozen_batch_norm: ``FrozenBatchNorm2d`` in the ResNet-50 (None: as ``pretrained``).

    Returns:
        A torchvision ``SSD``: losses ``bbox_regression`` and ``classification`` in train
        mode, boxes/scores/labels (labels ``1..num_classes``) in eval mode.

    Raises:
        SpecError: ``base_network`` is not one of the SageMaker choices.
        TrialError: pretrained weights neither cached nor downloadable.

    Example:
        >>> model = build_ssd(base_network="resnet-50", num_classes=3, pretrained=False, image_shape=300)
        >>> model.transform.fixed_size
        (300, 300)
    """
    if base_network not in _SSD_BACKBONES:
        raise SpecError(f"base_network: {base_network!r} is not a base network; allowed: one of "
                        f"{', '.join(_SSD_BACKBONES)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes: {num_classes!r} is not an int >= 1")
    image_shape = _option("image_shape", image_shape)
    nms = _option("nms_iou_threshold", nms_iou_threshold)
    score = _option("box_score_threshold", box_score_threshold)
    per_image = _option("box_detections_per_image", box_detections_per_image)

    frozen = pretrained if frozen_batch_norm is None else bool(frozen_batch_norm)
    backbone, channels, mean_std = _SSD_BACKBONES[base_network](pretrained, frozen)
    steps = _SSD300_STEPS if image_shape == 300 else None
    anchors = DefaultBoxGenerator(_SSD_ASPECT_RATIOS, scales=_SSD_SCALES, steps=steps)
    num_anchors = anchors.num_anchors_per_location()
    coco = None
    if pretrained and base_network == "vgg-16":
        from torchvision.models.detection import SSD300_VGG16_Weights

        coco = SSD300_VGG16_Weights.COCO_V1
    head_classes = len(coco.meta["categories"]) if coco is not None else num_classes + BACKGROUND
    model = SSD(backbone, anchors, (image_shape, image_shape), head_classes,
                head=SSDHead(channels, num_anchors, head_classes), score_thresh=score, nms_thresh=nms,
                detections_per_img=per_image, **mean_std)
    if coco is not None:
        model.load_state_dict(load_torchvision_weights(f"ssd {base_network}", coco))
        model.head.classification_head = SSDClassificationHead(channels, num_anchors, num_classes + BACKGROUND)
    return model


def sagemaker_detector(params: Mapping[str, Any], num_classes: int, *, pretrained: bool | None = None) -> nn.Module:
    """SageMaker's SSD detector from resolved training parameters.

    Args:
        params: resolved parameters of an ``image_object_detection`` job given SageMaker keys
            (they hold ``base_network``, ``image_shape``, ``use_pretrained_model``,
            ``nms_iou_threshold`` ...).
        num_classes: object classes found in the data, without background.
        pretrained: load pretrained weights (None: ``use_pretrained_model``). Rebuilding a
            checkpoint passes False; the architecture (batch norm kind) still follows
            ``use_pretrained_model``, so the checkpoint's state dict fits.

    Returns:
        The model of :func:`build_ssd`.

    Raises:
        TrialError: pretrained weights neither cached nor downloadable.

    Example:
        >>> from automl_nb.spec import resolve_parameters
        >>> params = resolve_parameters("image_object_detection", {"base_network": "resnet-50"})
        >>> sagemaker_detector({**params, "use_pretrained_model": False}, num_classes=2).transform.fixed_size
        (300, 300)
    """
    use_pretrained = bool(params["use_pretrained_model"])
    return build_ssd(
        base_network=params["base_network"], num_classes=num_classes,
        pretrained=use_pretrained if pretrained is None else pretrained, frozen_batch_norm=use_pretrained,
        image_shape=params["image_shape"], nms_iou_threshold=params["nms_iou_threshold"],
        box_score_threshold=params.get("box_score_threshold"),
        box_detections_per_image=params.get("box_detections_per_image"))
