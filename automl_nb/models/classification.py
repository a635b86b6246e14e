"""Classification models of SPEC section 6: torchvision for mobilenetv2 and resnets, timm for the rest."""

from __future__ import annotations

import torch.nn as nn

from automl_nb.models.registry import register_model
from automl_nb.models.weights import create_timm_model, load_torchvision_weights

# layers_to_freeze tables from the hyperparameter page. resnest (timm) uses the resnet
# names conv1/bn1/layer1..4, so it shares the resnet table.
RESNET_LAYERS = (("conv1.", "bn1."), "layer1.", "layer2.", "layer3.", "layer4.")
MOBILENETV2_LAYERS = tuple(f"features.{i}." for i in range(19))
SERESNEXT_LAYERS = ("layer0.", "layer1.", "layer2.", "layer3.", "layer4.")
VIT_LAYERS = ("patch_embed",) + tuple(f"blocks.{i}." for i in range(12))


def _torchvision_resnet(model_name: str, depth: int, num_classes: int, pretrained: bool) -> nn.Module:
    import torchvision.models as tvm

    weights = tvm.get_model_weights(f"resnet{depth}").DEFAULT if pretrained else None
    model = tvm.get_model(f"resnet{depth}", weights=None)
    if weights is not None:
        model.load_state_dict(load_torchvision_weights(model_name, weights))
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def _register_resnet(depth: int) -> None:
    name = f"resnet{depth}"

    @register_model(name, "classification", RESNET_LAYERS)
    def build(*, num_classes: int, pretrained: bool, **_: object) -> nn.Module:
        return _torchvision_resnet(name, depth, num_classes, pretrained)


for _depth in (18, 34, 50, 101, 152):
    _register_resnet(_depth)


@register_model("mobilenetv2", "classification", MOBILENETV2_LAYERS)
def mobilenetv2(*, num_classes: int, pretrained: bool, **_: object) -> nn.Module:
    """torchvision MobileNetV2 with a new last Linear layer."""
    import torchvision.models as tvm

    model = tvm.mobilenet_v2(weights=None)
    if pretrained:
        weights = tvm.MobileNet_V2_Weights.DEFAULT
        model.load_state_dict(load_torchvision_weights("mobilenetv2", weights))
    model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model


# model_name -> (timm name, freeze table, takes img_size). ViTs are built for the crop
# size, so positional embeddings match the training and validation crops.
_TIMM_MODELS = {
    "seresnext": ("legacy_seresnext50_32x4d", SERESNEXT_LAYERS, False),
    "resnest50": ("resnest50d", RESNET_LAYERS, False),
    "resnest101": ("resnest101e", RESNET_LAYERS, False),
    "vits16r224": ("vit_small_patch16_224", VIT_LAYERS, True),
    "vitb16r224": ("vit_base_patch16_224", VIT_LAYERS, True),
    "vitl16r224": ("vit_large_patch16_224", VIT_LAYERS, True),
}


def _register_timm(name: str, timm_name: str, layers: tuple, takes_size: bool) -> None:
    @register_model(name, "classification", layers)
    def build(*, num_classes: int, pretrained: bool, crop_size: int = 224, **_: object) -> nn.Module:
        extra = {"img_size": crop_size} if takes_size else {}
        return create_timm_model(name, timm_name, pretrained, num_classes=num_classes, **extra)


for _name, (_timm_name, _layers, _takes_size) in _TIMM_MODELS.items():
    _register_timm(_name, _timm_name, _layers, _takes_size)
