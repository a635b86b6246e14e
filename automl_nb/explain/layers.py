"""Where gradient methods hook into each classification architecture.

Grad-CAM weighs the feature maps of one layer by their gradients, so it needs a layer whose
output is a ``[B, C, h, w]`` grid:

- CNNs: the deepest convolutional stage whose output grid is still at least
  :data:`MIN_GRADCAM_SIDE` (4) cells on its shorter side for the image being explained, found
  by a forward pass of a zero image of that size with hooks on the stages. The stages are
  ``layer1``..``layer4`` (resnets, resnest, seresnext), the blocks of ``features``
  (mobilenetv2) or, for other CNNs, each ``Conv2d``. At 224 px this is the last stage
  (``layer4``, ``features[-1]``: 7x7); at 32 px the last stage is 1x1, and a 1x1 map weighs
  every pixel alike, so guided Grad-CAM would be guided backprop times a constant; there
  resnet18 uses ``layer2`` (4x4). If no stage reaches 4 cells, the stage with the largest grid.
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

# The smallest side of the feature grid Grad-CAM is taken from: a coarser map (1x1, 2x2) says
# little about where in the image the evidence is.
MIN_GRADCAM_SIDE = 4
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
def gradcam_layer(model: nn.Module, *, image_size: tuple[int, int] | None = None) -> Iterator[nn.Module]:
    """The module whose ``[B, C, h, w]`` output Grad-CAM uses, for as long as the block runs.

    For a CNN the module is the deepest convolutional stage whose output grid, for an image of
    ``image_size``, has a shorter side of at least :data:`MIN_GRADCAM_SIDE`; the grid sizes
    come from one forward pass of a zero image with hooks on the stages (see the module
    docstring). For a ViT the module is a :class:`TokenGrid` spliced (by a forward hook, removed
    on exit) into the output of the last block's ``norm1``: tokens -> grid -> tokens, an
    identity on the values, so the model computes the same outputs.

    Args:
        model: a classifier of SPEC section 6 (or any CNN with a ``Conv2d``).
        image_size: ``(height, width)`` of the model's input; None: the last convolutional
            stage, whatever its size.

    Yields:
        The layer to hand to captum's ``LayerGradCam``.

    Raises:
        ValueError: the model has no convolution and is not a ViT.

    Example:
        >>> with gradcam_layer(model, image_size=images.shape[-2:]) as layer:
        ...     cam = LayerGradCam(model, layer).attribute(images, target=0)
    """
    if not is_vit(model):
        stages = conv_stages(model)
        yield stages[-1] if image_size is None else _deepest_stage_of_side(model, stages, image_size)
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


def conv_stages(model: nn.Module) -> list[nn.Module]:
    """A CNN's convolutional stages, input to output: where Grad-CAM may take its feature grid.

    Raises:
        ValueError: the model has no ``Conv2d``.
    """
    if all(hasattr(model, f"layer{depth}") for depth in range(1, 5)):  # resnets, resnest, seresnext
        return [model.layer1, model.layer2, model.layer3, model.layer4]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):  # mobilenetv2: its inverted residual blocks
        return list(features)
    convolutions = [module for module in model.modules() if isinstance(module, nn.Conv2d)]
    if not convolutions:
        raise ValueError(f"{type(model).__name__} has no Conv2d and is not a ViT: no layer for Grad-CAM")
    return convolutions


def stage_grid_sides(model: nn.Module, stages: list[nn.Module], image_size: tuple[int, int]) -> list[int]:
    """The shorter side of each stage's output grid for a zero image of ``image_size``.

    The pass runs in eval mode under ``no_grad`` (batch norm statistics stay as they are); each
    module's mode is restored. A stage that does not run, or whose output is not a grid, gets 0.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    sides = [0] * len(stages)

    def recorder(index: int):
        def record(module: nn.Module, inputs: tuple, output: object) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                sides[index] = min(output.shape[-2:])
        return record

    handles = [stage.register_forward_hook(recorder(index)) for index, stage in enumerate(stages)]
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, *image_size, device=device, dtype=dtype))
    finally:
        for module, training in modes:
            module.training = training
        for handle in handles:
            handle.remove()
    return sides


def _deepest_stage_of_side(model: nn.Module, stages: list[nn.Module], image_size: tuple[int, int]) -> nn.Module:
    sides = stage_grid_sides(model, stages, tuple(int(side) for side in image_size))
    for stage, side in zip(reversed(stages), reversed(sides)):
        if side >= MIN_GRADCAM_SIDE:
            return stage
    return stages[max(range(len(stages)), key=lambda index: sides[index])]  # first of the largest
