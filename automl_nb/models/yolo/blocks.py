"""The convolution blocks YOLOv5 (v6.0 and later) is made of: Conv, Bottleneck, C3 and SPPF.

Attribute names (``conv``, ``bn``, ``cv1``, ``cv2``, ``cv3``, ``m``) are those of the
published YOLOv5 checkpoints, so their tensors load into these modules by name (see
:mod:`automl_nb.models.yolo.weights`).

Design notes:

- Every convolution is followed by batch norm and SiLU and has no bias (batch norm's shift
  replaces it). Batch norm uses YOLOv5's eps 1e-3 but PyTorch's momentum 0.1, not YOLOv5's
  0.03: YOLOv5 trains for hundreds of epochs, while a trial here may take a hundred steps,
  and with 0.03 the running statistics that evaluation uses lag far behind the weights for
  the first hundred or so steps (measured: eval mAP stuck near 0 while the training loss
  had already fallen); with 0.1 they settle in a few dozen.
- C3 is a CSP block: half the channels go through a stack of bottlenecks, the other half
  skips them, and a 1x1 convolution fuses both. It keeps most of the depth's accuracy at
  about half of its compute.
- SPPF pools the same map three times in a row with a 5x5 max pool; the three results see
  5x5, 9x9 and 13x13 windows, the receptive fields of the older SPP (5, 9, 13) in one chain.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

BATCH_NORM_EPS = 1e-3
BATCH_NORM_MOMENTUM = 0.1


def make_divisible(channels: float, divisor: int = 8) -> int:
    """The smallest multiple of ``divisor`` that is >= ``channels`` (channel counts of scaled models).

    Example:
        >>> make_divisible(64 * 0.75)
        48
        >>> make_divisible(1024 * 1.25)
        1280
    """
    return int(math.ceil(channels / divisor) * divisor)


class Conv(nn.Module):
    """Convolution, batch norm, SiLU.

    Args:
        in_channels, out_channels: channels in and out.
        kernel_size: square kernel.
        stride: stride.
        padding: None pads ``kernel_size // 2`` ("same" size at stride 1).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int | None = None) -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS, momentum=BATCH_NORM_MOMENTUM)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1 then 3x3 convolution, with a residual connection when ``shortcut`` and shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1 = Conv(in_channels, out_channels, 1)
        self.cv2 = Conv(out_channels, out_channels, 3)
        self.add = shortcut and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP block: ``depth`` bottlenecks on one half of the channels, fused with the other half.

    Args:
        in_channels, out_channels: channels in and out.
        depth: number of bottlenecks (after the model's depth multiple).
        shortcut: residual bottlenecks (the backbone) or plain ones (the neck).
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        hidden = out_channels // 2
        self.cv1 = Conv(in_channels, hidden, 1)
        self.cv2 = Conv(in_channels, hidden, 1)
        self.cv3 = Conv(2 * hidden, out_channels, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max pools, concatenated with their input."""

    def __init__(self, in_channels: int, out_channels: int, pool_size: int = 5) -> None:
        super().__init__()
        hidden = in_channels // 2
        self.cv1 = Conv(in_channels, hidden, 1)
        self.cv2 = Conv(hidden * 4, out_channels, 1)
        self.m = nn.MaxPool2d(kernel_size=pool_size, stride=1, padding=pool_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        pooled1 = self.m(x)
        pooled2 = self.m(pooled1)
        return self.cv2(torch.cat((x, pooled1, pooled2, self.m(pooled2)), dim=1))


class Concat(nn.Module):
    """Concatenate a list of maps along the channels (the neck's skip connections)."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=1)
