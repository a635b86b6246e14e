"""Attribution maps of SPEC section 10: integrated gradients, guided backprop, guided Grad-CAM, XRAI.

Each method explains one class's score (its logit: the model output before softmax or
sigmoid, which does not saturate) for one normalised image of shape ``[1, 3, H, W]`` and returns
a ``[3, H, W]`` float tensor on the CPU. Integrated gradients, guided backprop and guided
Grad-CAM come from captum; XRAI is ours (:mod:`automl_nb.explain.xrai`) on top of captum's
integrated gradients.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn as nn

from automl_nb.explain import xrai as _xrai
from automl_nb.explain.layers import GuidedBackprop, gradcam_layer
from automl_nb.spec.explain import XAI_PARAMETERS

# Images per forward/backward pass along the integration path: bounds memory on big models
# (resnet152 at 224 px) while keeping a GPU busy.
DEFAULT_BATCH_SIZE = 16
# The methods' settings when a caller gives none: the xai_parameters table's defaults.
_N_STEPS = XAI_PARAMETERS["n_steps"].default
_APPROXIMATION = XAI_PARAMETERS["approximation_method"].default
_XRAI_FAST = XAI_PARAMETERS["xrai_fast"].default


def integrated_gradients(model: nn.Module, inputs: torch.Tensor, target: int, *, n_steps: int = _N_STEPS,
                         approximation_method: str = _APPROXIMATION, baseline: torch.Tensor | float = 0.0,
                         batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """Integrated gradients from ``baseline`` (default: zeros, i.e. the mean ImageNet colour) to the image.

    The attributions sum to about ``score(inputs) - score(baseline)`` (completeness), closer as
    ``n_steps`` grows.

    Args:
        model: the classifier, in eval mode.
        inputs: ``[1, 3, H, W]`` normalised image.
        target: the class whose logit is explained.
        n_steps: points on the path.
        approximation_method: ``riemann_middle`` or ``gausslegendre`` (captum's names).
        baseline: a tensor like ``inputs`` or a number filling one.
        batch_size: path points per forward pass.
    """
    from captum.attr import IntegratedGradients

    attributions = IntegratedGradients(model).attribute(
        inputs, baselines=baseline, target=target, n_steps=n_steps, method=approximation_method,
        internal_batch_size=batch_size)
    return attributions[0].detach().float().cpu()


def guided_backprop(model: nn.Module, inputs: torch.Tensor, target: int, **_: Any) -> torch.Tensor:
    """Guided backpropagation: the gradient with negative parts removed at every activation."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        attributions = GuidedBackprop(model).attribute(inputs, target=target)
    return attributions[0].detach().float().cpu()


def guided_gradcam(model: nn.Module, inputs: torch.Tensor, target: int, **_: Any) -> torch.Tensor:
    """Guided Grad-CAM: guided backprop times the Grad-CAM map, upsampled bilinearly to the image.

    The Grad-CAM layer depends on the architecture and on the image size: for a CNN, the deepest
    stage whose feature grid is at least 4x4 for ``inputs`` (see
    :func:`automl_nb.explain.layers.gradcam_layer`).
    """
    from captum.attr import GuidedGradCam

    with gradcam_layer(model, image_size=tuple(inputs.shape[-2:])) as layer, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        method = GuidedGradCam(model, layer)
        method.guided_backprop = GuidedBackprop(model)  # also rectifies ReLU6 and GELU
        attributions = method.attribute(inputs, target=target, interpolate_mode="bilinear")
    return attributions[0].detach().float().cpu()


def xrai(model: nn.Module, inputs: torch.Tensor, target: int, *, image: np.ndarray, n_steps: int = _N_STEPS,
         xrai_fast: bool = _XRAI_FAST, batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """XRAI: integrated gradients summed up over image segments, ranked by attribution density.

    As in the XRAI paper and PAIR's implementation, integrated gradients are computed from a
    black and a white baseline (the image's lowest and highest value) and averaged; the
    channel maximum is then aggregated over segments (see :mod:`automl_nb.explain.xrai`).
    The region map is repeated over the three channels, so every method has the same shape.

    Args:
        model, inputs, target: as for :func:`integrated_gradients`.
        image: the same image as ``[H, W, 3]`` RGB in [0, 1], for segmentation.
        n_steps: integration steps per baseline.
        xrai_fast: rank segments once (fast) instead of greedily (full XRAI).
        batch_size: path points per forward pass.
    """
    low, high = float(inputs.detach().min()), float(inputs.detach().max())
    paths = [integrated_gradients(model, inputs, target, n_steps=n_steps, baseline=torch.full_like(inputs, value),
                                  batch_size=batch_size) for value in (low, high)]
    pixel_attributions = torch.stack(paths).mean(0).amax(0).numpy()
    regions = _xrai.xrai_map(pixel_attributions, _xrai.segment_masks(image), fast=xrai_fast)
    return torch.from_numpy(regions).float().expand(3, -1, -1).clone()


METHODS: Mapping[str, Callable[..., torch.Tensor]] = {
    "xrai": xrai,
    "integrated_gradients": integrated_gradients,
    "guided_gradcam": guided_gradcam,
    "guided_backprop": guided_backprop,
}


def attribute(model: nn.Module, inputs: torch.Tensor, target: int, method: str, settings: Mapping[str, Any],
              *, image: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """One method's ``[3, H, W]`` attributions of class ``target`` for one image.

    Args:
        model: the classifier, in eval mode.
        inputs: ``[1, 3, H, W]`` normalised image, on the model's device.
        target: class index.
        method: a key of :data:`METHODS` (checked by the caller, see
            :func:`automl_nb.spec.explain.check_method_parameters`).
        settings: the method's settings (``n_steps``...).
        image: the same image as ``[H, W, 3]`` RGB in [0, 1] (XRAI segments it).
        batch_size: path points per forward pass (integrated gradients, XRAI).
    """
    options = dict(settings)
    if method in ("xrai", "integrated_gradients"):
        options["batch_size"] = batch_size
    if method == "xrai":
        options["image"] = image
    inputs = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        return METHODS[method](model, inputs, target, **options)
