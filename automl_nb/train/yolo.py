"""The yolov5-specific parts of a trial: data, model, loss and mAP (same interface as
:class:`~automl_nb.train.detection.DetectionAdapter`).

Differences from the torchvision detectors' adapter:

- Images are resized by the data pipeline, not the model: mosaic, random affine and flip in
  training, letterbox in validation (:mod:`automl_nb.data.yolo_transforms`), all to
  ``image_size`` rounded up to a multiple of 32, so a batch is one ``[B, 3, S, S]`` tensor.
- ``multi_scale``: each training batch is resized to a random multiple of 32 within
  +/-50% of ``image_size`` (boxes scaled with it), so the model sees objects at more sizes.
- Labels are 0..C-1 everywhere (YOLOv5 has no background class); the metrics take them as is.
- The validation loss comes from the same eval-mode forward pass as the predictions (the
  head's raw outputs do not depend on the mode beyond batch norm), so it costs nothing extra.
- Predictions are mapped from the letterbox back to each image's own pixels before scoring,
  so mAP (and COCO's area ranges) are measured on the original images.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Callable, ContextManager, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from automl_nb.data.detection import DetectionDataset
from automl_nb.data.records import ImageRecord
from automl_nb.data.tiling import tile_records
from automl_nb.data.yolo_transforms import YoloTrainDataset, YoloValidDataset, targets_tensor, yolo_collate
from automl_nb.metrics.detection import ImageDetections, ImageTargets, validation_metrics
from automl_nb.models.yolo.loss import yolo_loss
from automl_nb.models.yolo.model import MAX_STRIDE, YoloV5, network_size, yolo_from_params
from automl_nb.models.yolo.predict import postprocess
from automl_nb.spec.inference import settings_json
from automl_nb.spec.tasks import DETECTION, PRIMARY_METRICS

MULTI_SCALE_RANGE = 0.5  # multi_scale: sizes within +/-50% of image_size


def multi_scale_size(image_size: int, generator: torch.Generator | None = None) -> int:
    """A random multiple of 32 within +/-50% of ``image_size`` (at least 32), uniformly.

    Example:
        >>> multi_scale_size(64) in (32, 64, 96)
        True
    """
    low = max(MAX_STRIDE, math.ceil(image_size * (1 - MULTI_SCALE_RANGE) / MAX_STRIDE) * MAX_STRIDE)
    high = max(low, math.floor(image_size * (1 + MULTI_SCALE_RANGE) / MAX_STRIDE) * MAX_STRIDE)
    steps = (high - low) // MAX_STRIDE + 1
    return low + MAX_STRIDE * int(torch.randint(steps, (), generator=generator))


class YoloAdapter:
    """yolov5 object detection over image records.

    Args:
        task: ``image_object_detection`` (the only task yolov5 does).
        params: resolved training parameters.
        train_records, valid_records: the split data.
        classes: class names; class k is label k (0-based) in the model.
        reader: how the datasets read an image URL (``advanced_settings.stream_image_files``:
            the image cache's reader); None reads files directly.

    Raises:
        ValueError: another task.
    """

    def __init__(self, task: str, params: Mapping, train_records: Sequence[ImageRecord],
                 valid_records: Sequence[ImageRecord], classes: Sequence[str],
                 reader: Callable | None = None) -> None:
        if task != DETECTION:
            raise ValueError(f"task: yolov5 does {DETECTION} only, not {task!r}")
        self.task, self.params, self.classes = task, params, list(classes)
        self.primary_metric = PRIMARY_METRICS[task]
        self.image_size = network_size(params["image_size"])
        samples = train_records
        if params.get("tile_grid_size"):
            samples = tile_records(train_records, params["tile_grid_size"], params["tile_overlap_ratio"])
        advanced = params["advanced_settings"]
        reading = {} if reader is None else {"reader": reader}
        self.train_dataset = YoloTrainDataset(DetectionDataset(samples, classes, **reading), self.image_size,
                                              mosaic=bool(advanced["apply_mosaic_for_yolo"]),
                                              augment=bool(advanced["apply_automl_train_augmentations"]))
        self.valid_dataset = YoloValidDataset(DetectionDataset(valid_records, classes, **reading), self.image_size)

    def build_model(self, pretrained: bool) -> nn.Module:
        return yolo_from_params(self.params, len(self.classes), pretrained=pretrained)

    def to(self, device: torch.device) -> None:
        pass

    collate = staticmethod(yolo_collate)

    def forward_loss(self, model: YoloV5, batch, device: torch.device,
                     memory_format=torch.contiguous_format) -> tuple[torch.Tensor, None, list]:
        """The YOLOv5 loss of one training batch (multi-scale when ``multi_scale``)."""
        images, targets = batch
        images = images.to(device, non_blocking=True)
        table = targets_tensor(targets, device)
        if self.params["multi_scale"]:
            size = multi_scale_size(self.image_size)
            if size != images.shape[-1]:
                factor = size / images.shape[-1]
                images = nnf.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
                table[:, 2:] *= factor  # centres and sizes scale with the image
        outputs = model(images.contiguous(memory_format=memory_format))
        loss, _ = yolo_loss(outputs, table, model.head.anchors, model.head.stride, self.image_size)
        return loss, None, targets

    @torch.no_grad()
    def evaluate(self, model: YoloV5, loader, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format,
                 autocast: Callable[[], ContextManager] = nullcontext, keep: list | None = None) -> tuple[float, dict]:
        """Validation loss (nan unless ``log_validation_loss``) and mAP over ``loader``; with
        ``keep``, each image's detections are appended to it (see :meth:`per_image`)."""
        model.eval()
        predictions, truths, total_loss, seen = [], [], 0.0, 0
        for images, targets in loader:
            images = images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            with autocast():
                outputs = model(images)
            if self.params["log_validation_loss"]:
                loss, _ = yolo_loss(outputs, targets_tensor(targets, device), model.head.anchors,
                                    model.head.stride, self.image_size)
                total_loss += float(loss) * len(targets)
                seen += len(targets)
            detections = postprocess(model, outputs, [target["letterbox"] for target in targets],
                                     self.params["box_score_threshold"], self.params["nms_iou_threshold"])
            for detection, target in zip(detections, targets):
                predictions.append(ImageDetections(boxes=detection["boxes"].cpu().numpy(),
                                                   scores=detection["scores"].cpu().numpy(),
                                                   labels=detection["labels"].cpu().numpy()))
                height, width = target["orig_size"]
                truths.append(ImageTargets(boxes=target["orig_boxes"].numpy(), labels=target["labels"].numpy(),
                                           is_crowd=target["is_crowd"].numpy(), width=width, height=height))
        scores = validation_metrics(predictions, truths, len(self.classes), self.params)
        if keep is not None:
            keep.extend(self.per_image(predictions, [(t.width, t.height) for t in truths]))
        return (total_loss / seen if seen else math.nan), scores

    def per_image(self, predictions: Sequence[ImageDetections], sizes: Sequence[tuple[int, int]]) -> list[dict]:
        """Each validation image's file, objects on file and detections (pixels of the original
        ``width`` x ``height`` image), in order, for
        :func:`automl_nb.analysis.predictions.prediction_rows`."""
        base = self.valid_dataset.base
        return [{"filename": base.image_url(i), "objects": base.samples[i].record.label, "detections": detections,
                 "width": width, "height": height}
                for i, (detections, (width, height)) in enumerate(zip(predictions, sizes))]

    def score(self, outputs, targets) -> dict:
        return {}  # detection metrics need whole predictions; see evaluate()

    def settings(self) -> dict:
        """Inference settings for settings.json (SPEC section 9): img_size, model_size, box_score_thresh..."""
        return settings_json(self.task, self.params, self.classes)
