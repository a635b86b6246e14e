"""YOLOv5's detection head: one 1x1 convolution per scale, three anchors per cell.

Each output map has, per cell and anchor, ``5 + num_classes`` raw numbers: box offsets
``tx, ty``, box sizes ``tw, th``, objectness, and one logit per class. How they become
boxes is in :mod:`automl_nb.models.yolo.decode`; how they are trained in
:mod:`automl_nb.models.yolo.loss`.

The anchors are YOLOv5's COCO anchors (widths and heights in pixels, three per scale) and are
kept in the ``anchors`` buffer in grid cells of their scale (pixels / stride), as the
published checkpoints keep them, so a checkpoint's buffer loads unchanged. The strides are a
non-persistent buffer: they follow from the architecture, not from training.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

# Anchor (width, height) pairs in pixels, for the stride 8, 16 and 32 maps (P3, P4, P5).
DEFAULT_ANCHORS = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119), (116, 90, 156, 198, 373, 326))
STRIDES = (8, 16, 32)
# Initial objectness prior: about 8 objects in a 640 x 640 image (YOLOv5's choice), so early
# training does not start with every cell claiming an object.
OBJECTS_PER_640_IMAGE = 8


class Detect(nn.Module):
    """The head: raw predictions for each anchor of each cell of each scale.

    Args:
        num_classes: object classes (no background class: objectness plays that part).
        in_channels: channels of the P3, P4, P5 maps.
        anchors: per scale, flat ``(w1, h1, w2, h2, ...)`` in pixels.
        strides: pixels per cell of each scale.
    """

    def __init__(self, num_classes: int, in_channels: Sequence[int],
                 anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS, strides: Sequence[int] = STRIDES) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_outputs = num_classes + 5
        self.num_levels = len(anchors)
        self.num_anchors = len(anchors[0]) // 2
        stride = torch.tensor(strides, dtype=torch.float32)
        self.register_buffer("stride", stride, persistent=False)
        pixels = torch.tensor(anchors, dtype=torch.float32).view(self.num_levels, self.num_anchors, 2)
        self.register_buffer("anchors", pixels / stride.view(-1, 1, 1))
        self.m = nn.ModuleList(nn.Conv2d(c, self.num_anchors * self.num_outputs, 1) for c in in_channels)
        self._initialise_biases(strides)

    def _initialise_biases(self, strides: Sequence[int]) -> None:
        """Objectness and class priors in the biases, so the first losses are sensible."""
        with torch.no_grad():
            for conv, stride in zip(self.m, strides):
                bias = conv.bias.view(self.num_anchors, self.num_outputs)
                bias[:, 4] += math.log(OBJECTS_PER_640_IMAGE / (640 / stride) ** 2)
                bias[:, 5:] += math.log(0.6 / (self.num_classes - 0.99))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Raw predictions, one ``[B, anchors, H, W, 5 + num_classes]`` tensor per scale."""
        outputs = []
        for conv, x in zip(self.m, features):
            batch, _, height, width = x.shape
            y = conv(x).reshape(batch, self.num_anchors, self.num_outputs, height, width)
            outputs.append(y.permute(0, 1, 3, 4, 2).contiguous())
        return outputs
