"""The modules that are exported: a trained model plus what our ONNX layout puts in its graph."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from automl_nb.spec.tasks import MULTILABEL


class ClassifierGraph(nn.Module):
    """``[N, 3, H, W]`` pixels -> ``[N, C]`` probabilities (softmax, or sigmoid for multilabel).

    Args:
        model: the classifier (logits out).
        task: multiclass or multilabel.
        mean, std: with ``normalise``, the graph takes pixels in [0, 1] and normalises them itself
            (``enable_onnx_normalization``); otherwise it takes normalised pixels.
    """

    def __init__(self, model: nn.Module, task: str, mean: Sequence[float], std: Sequence[float],
                 normalise: bool) -> None:
        super().__init__()
        self.model = model
        self.multilabel = task == MULTILABEL
        self.normalise = normalise
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.normalise:
            pixels = (pixels - self.mean) / self.std
        logits = self.model(pixels)
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)


class DetectorGraph(nn.Module):
    """``[1, 3, H, W]`` pixels in [0, 1] -> boxes, labels, scores (and masks) of that image.

    The torchvision detector resizes (``min_size``/``max_size``), normalises, runs NMS and maps
    boxes back to the input's pixels inside the graph; ONNX export of these detectors handles one
    image per call, so the batch is fixed at 1 while height and width are free.
    """

    def __init__(self, model: nn.Module, segmentation: bool) -> None:
        super().__init__()
        self.model = model
        self.keys = ("boxes", "labels", "scores") + (("masks",) if segmentation else ())

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model([image[0]])[0]
        return tuple(output[key] for key in self.keys)
