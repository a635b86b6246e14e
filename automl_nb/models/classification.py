"""Classification models of SPEC section 6: torchvision for mobilenetv2 and resnets, timm for the rest."""

from __future__ import annotations

import torch.nn as nn

from automl_nb.models.registry import register_model
from automl_nb.models.weights import create_timm_model, load_torchvision_weights
from automl_nb.spec import MULTICLASS, default_value

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

    @register_model(name, "classification")
    def build(*, num_classes: int, pretrained: bool, **_: object) -> nn.Module:
        return _torchvision_resnet(name, depth, num_classes, pretrained)


for _depth in (18, 34, 50, 101, 152):
    _register_resnet(_depth)


@register_model("mobilenetv2", "classification")
def mobilenetv2(*, num_classes: int, pretrained: bool, **_: object) -> nn.Module:
    """torchvision MobileNetV2 with a new last Linear layer."""
    import torchvision.models as tvm

    model = tvm.mobilenet_v2(weights=None)
    if pretrained:
        weights = tvm.MobileNet_V2_Weights.DEFAULT
        model.load_state_dict(load_torchvision_weights("mobilenetv2", weights))
    model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model


# model_name -> (timm name, takes img_size). ViTs are built for the crop size, so their
# positional embeddings match the training and validation crops. seresnext is the
# "legacy" port, whose layer0..layer4 names match the layers_to_freeze table.
_TIMM_MODELS = {
    "seresnext": ("legacy_seresnext50_32x4d", False),
    "resnest50": ("resnest50d", False),
    "resnest101": ("resnest101e", False),
    "vits16r224": ("vit_small_patch16_224", True),
    "vitb16r224": ("vit_base_patch16_224", True),
    "vitl16r224": ("vit_large_patch16_224", True),
}


def _register_timm(name: str, timm_name: str, takes_size: bool) -> None:
    @register_model(name, "classification")
    def build(*, num_classes: int, pretrained: bool, crop_size: int | None = None, **_: object) -> nn.Module:
        if crop_size is None:  # the table's training_crop_size for this model
            crop_size = default_value("training_crop_size", MULTICLASS, name)
        extra = {"img_size": crop_size} if takes_size else {}
        return create_timm_model(name, timm_name, pretrained, num_classes=num_classes, **extra)


for _name, (_timm_name, _takes_size) in _TIMM_MODELS.items():
    _register_timm(_name, _timm_name, _takes_size)
