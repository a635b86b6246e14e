"""Where gradient methods hook into each classification architecture.

Grad-CAM weighs the feature maps of one layer by their gradients, so it needs a layer whose
output is a ``[B, C, h, w]`` grid:

- CNNs (resnets, resnest, seresnext: ``layer4``; mobilenetv2: ``features[-1]``): the last
  convolutional stage. Other CNNs: the last ``Conv2d``.
- ViTs: the tokens entering the last block's attention (the output of ``blocks[-1].norm1``),
  reshaped to the patch grid. The last block's *output* would not do: only its class token
  reaches the head, so the patch tokens there get zero gradient.

Guided backpropagation zeroes negative gradients at each activation. captum's
``GuidedBackprop`` does so at ``nn.ReLU`` only; :class:`GuidedBackprop` here also covers the
activations of the other models (mobilenetv2's ReLU6, the ViTs' GELU), where the same rule
(keep the positive part of the gradient flowing back through the activation) applies.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
from captum.attr import GuidedBackprop as _CaptumGuidedBackprop

# Activations whose backward pass guided backpropagation rectifies.
GUIDED_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.LeakyReLU)


class GuidedBackprop(_CaptumGuidedBackprop):
    """captum's guided backpropagation, applied at every activation of :data:`GUIDED_ACTIVATIONS`."""

    def _register_hooks(self, module: nn.Module) -> None:
        # captum's own helper registers the hooks the way its ReLU path does (it copes with
        # in-place activations and with one activation module called several times).
        from captum._utils.common import _register_backward_hook

        if isinstance(module, GUIDED_ACTIVATIONS):
            self.backward_hooks.extend(_register_backward_hook(module, self._backward_hook, self))


def is_vit(model: nn.Module) -> bool:
    """True for a timm Vision Transformer (patch embedding followed by transformer blocks)."""
    return hasattr(model, "patch_embed") and hasattr(model, "blocks")


class TokenGrid(nn.Module):
    """Patch tokens ``[B, h*w, D]`` -> feature grid ``[B, D, h, w]``: the layer Grad-CAM sees in a ViT."""

    def __init__(self, grid_size: tuple[int, int]) -> None:
        super().__init__()
        self.grid_size = tuple(grid_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, count, dim = tokens.shape
        height, width = self.grid_size
        if count != height * width:
            raise ValueError(f"{count} patch tokens do not fill a {height}x{width} grid")
        return tokens.transpose(1, 2).reshape(batch, dim, height, width)


@contextmanager
def gradcam_layer(model: nn.Module) -> Iterator[nn.Module]:
    """The module whose ``[B, C, h, w]`` output Grad-CAM uses, for as long as the block runs.

    For a ViT the module is a :class:`TokenGrid` spliced (by a forward hook, removed on exit)
    into the output of the last block's ``norm1``: tokens -> grid -> tokens, an identity on
    the values, so the model computes the same outputs.

    Args:
        model: a classifier of SPEC section 6 (or any CNN with a ``Conv2d``).

    Yields:
        The layer to hand to captum's ``LayerGradCam``.

    Raises:
        ValueError: the model has no convolution and is not a ViT.

    Example:
        >>> with gradcam_layer(model) as layer:
        ...     cam = LayerGradCam(model, layer).attribute(images, target=0)
    """
    if not is_vit(model):
        yield _last_conv_stage(model)
        return
    prefix = int(getattr(model, "num_prefix_tokens", 1))
    grid = TokenGrid(model.patch_embed.grid_size)

    def through_grid(module: nn.Module, inputs: tuple, tokens: torch.Tensor) -> torch.Tensor:
        patches = grid(tokens[:, prefix:]).flatten(2).transpose(1, 2)
        return torch.cat([tokens[:, :prefix], patches], dim=1)

    handle = model.blocks[-1].norm1.register_forward_hook(through_grid)
    try:
        yield grid
    finally:
        handle.remove()


def _last_conv_stage(model: nn.Module) -> nn.Module:
    if hasattr(model, "layer4"):  # torchvision resnets, timm resnest and legacy seresnext
        return model.layer4
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):  # mobilenetv2: the last 1x1 conv block
        return features[-1]
    convolutions = [module for module in model.modules() if isinstance(module, nn.Conv2d)]
    if not convolutions:
        raise ValueError(f"{type(model).__name__} has no Conv2d and is not a ViT: no layer for Grad-CAM")
    return convolutions[-1]
