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
    """``[B, 3, H, W]`` pixels in [0, 1] -> per image: boxes, labels, scores (and masks), flattened.

    The torchvision detector (Faster R-CNN, Mask R-CNN, RetinaNet, SageMaker's SSD) resizes
    (``min_size``/``max_size``, the SSD to ``image_shape`` square), normalises, runs NMS and maps
    boxes back to the input's pixels inside the graph. It takes a list of images, which tracing
    unrolls: the batch ``B`` of the graph is the example's, fixed, while height and width are free.

    Args:
        model: the detector.
        keys: an image's outputs in order (:func:`~automl_nb.infer.onnx_model.detection_keys`).
    """

    def __init__(self, model: nn.Module, keys: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = tuple(keys)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(list(images))
        return tuple(output[key] for output in outputs for key in self.keys)


class YoloGraph(nn.Module):
    """``[B, 3, S, S]`` letterboxed pixels in [0, 1] -> per image: boxes (XYXY, canvas pixels), labels 1..C, scores.

    Decoding, the score threshold, class-aware NMS and the detection cap are inside the graph,
    as :func:`~automl_nb.models.yolo.decode.non_max_suppression` does them; the letterbox and
    mapping boxes back to the image's pixels are the caller's (:class:`~automl_nb.infer.onnx_model.OnnxModel`),
    as in Azure's YOLOv5 export. One difference: eager code keeps the best
    :data:`~automl_nb.models.yolo.decode.MAX_CANDIDATES` (box, class) pairs before NMS when more
    pass the threshold (an untrained model at a low threshold); the graph passes them all, since
    a data-dependent cap does not trace and sorting first changes how NMS breaks exact ties. The
    batch ``B`` is the example's, fixed (NMS runs per image, a loop that tracing unrolls).
    """

    def __init__(self, model: nn.Module, score_threshold: float, iou_threshold: float, max_detections: int) -> None:
        super().__init__()
        self.model = model
        self.score_threshold, self.iou_threshold = float(score_threshold), float(iou_threshold)
        self.max_detections = int(max_detections)
        self.keys = ("boxes", "labels", "scores")

    def forward(self, canvases: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from automl_nb.models.yolo.decode import decode_outputs

        head = self.model.head
        found = []
        for rows in decode_outputs(self.model.raw_outputs(canvases), head.anchors, head.stride):
            found += self._nms(rows, head.num_classes)
        return tuple(found)

    def _nms(self, rows: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
        """One image's decoded rows -> its boxes, labels 1..C, scores."""
        from torchvision.ops import batched_nms

        from automl_nb.models.yolo.decode import xywh_to_xyxy

        rows = rows[rows[:, 4] > self.score_threshold]  # score <= objectness: a cheap first cut
        scores = rows[:, 4:5] if num_classes == 1 else rows[:, 5:] * rows[:, 4:5]
        pairs = torch.nonzero(scores > self.score_threshold)  # (box, class) candidates
        box_index, labels = pairs[:, 0], pairs[:, 1]
        scores, boxes = scores[box_index, labels], xywh_to_xyxy(rows[box_index, :4])
        keep = batched_nms(boxes, scores, labels, self.iou_threshold)[:self.max_detections]
        return [boxes[keep], labels[keep] + 1, scores[keep]]
