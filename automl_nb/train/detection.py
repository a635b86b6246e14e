"""The detection- and segmentation-specific parts of a trial: data, model, loss and mAP.

torchvision detectors compute their losses in training mode and their predictions in eval
mode, so this adapter brings its own ``evaluate`` (predictions -> mAP, and the validation loss
from a training-mode pass when ``log_validation_loss`` asks for it). Labels are 1..C inside the
model (0 is the background) and 0..C-1 in the metrics.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Callable, ContextManager, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from automl_nb.data.detection import DetectionDataset, detection_collate
from automl_nb.data.detection_transforms import detection_train_transform, detection_valid_transform
from automl_nb.data.images import ImageReader, open_image
from automl_nb.data.records import ImageRecord
from automl_nb.data.tiling import predict_tiled, tile_records
from automl_nb.metrics.detection import ImageDetections, ImageTargets, validation_metrics
from automl_nb.models.detection import detector_from_params
from automl_nb.spec.inference import settings_json
from automl_nb.spec.tasks import PRIMARY_METRICS, SEGMENTATION


class DetectionAdapter:
    """Object detection or instance segmentation over image records.

    Args:
        task: ``image_object_detection`` or ``image_instance_segmentation``.
        params: resolved training parameters.
        train_records, valid_records: the split data.
        classes: class names; class k is label k + 1 in the model.
        reader: how the datasets read an image URL (default: from its file or URL each time).
    """

    def __init__(self, task: str, params: Mapping, train_records: Sequence[ImageRecord],
                 valid_records: Sequence[ImageRecord], classes: Sequence[str], reader: ImageReader = open_image) -> None:
        self.task, self.params, self.classes = task, params, list(classes)
        self.segmentation = task == SEGMENTATION
        self.primary_metric = PRIMARY_METRICS[task]
        samples = train_records
        if params.get("tile_grid_size"):
            samples = tile_records(train_records, params["tile_grid_size"], params["tile_overlap_ratio"])
        self.train_dataset = DetectionDataset(samples, classes, detection_train_transform(params), self.segmentation,
                                              reader=reader)
        self.valid_dataset = DetectionDataset(valid_records, classes, detection_valid_transform(params),
                                              self.segmentation, reader=reader)

    def build_model(self, pretrained: bool) -> nn.Module:
        return detector_from_params(self.params, len(self.classes), pretrained=pretrained)

    def to(self, device: torch.device) -> None:
        pass

    collate = staticmethod(detection_collate)

    def forward_loss(self, model: nn.Module, batch, device: torch.device,
                     memory_format=torch.contiguous_format) -> tuple[torch.Tensor, None, list]:
        """The summed training losses of one batch (the model must be in training mode)."""
        images, targets = _to_device(batch, device)
        losses = model(images, targets)
        return sum(losses.values()), None, targets

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format,
                 autocast: Callable[[], ContextManager] = nullcontext, keep: list | None = None) -> tuple[float, dict]:
        """Validation loss (nan unless ``log_validation_loss``) and mAP over ``loader``; with
        ``keep``, each image's detections are appended to it (see :meth:`per_image`)."""
        predictions, targets, total_loss, seen = [], [], 0.0, 0
        for batch in loader:
            images, batch_targets = _to_device(batch, device)
            if self.params["log_validation_loss"]:
                # Losses exist only in training mode. Batch norm stays in eval mode: a model trained
                # from scratch has plain BatchNorm2d, which would fold these validation images into
                # its running statistics, so the mAP below would not be the saved model's.
                model.train()
                _keep_batch_norm_statistics(model)
                with autocast():
                    total_loss += float(sum(model(images, batch_targets).values())) * len(images)
                seen += len(images)
            model.eval()
            with autocast():
                if self.params.get("tile_grid_size"):
                    # Scored like inference: the full image and its tiles, merged.
                    outputs = [predict_tiled(model, image, self.params) for image in images]
                else:
                    outputs = model(images)
            predictions += [self._detections(output) for output in outputs]
            targets += [self._targets(target, image) for target, image in zip(batch_targets, images)]
        scores = validation_metrics(predictions, targets, len(self.classes), self.params, self.segmentation)
        if keep is not None:
            keep.extend(self.per_image(predictions, [(t.width, t.height) for t in targets]))
        return (total_loss / seen if seen else math.nan), scores

    def per_image(self, predictions: Sequence[ImageDetections], sizes: Sequence[tuple[int, int]]) -> list[dict]:
        """Each validation image's file, objects on file and detections (pixels of a ``width`` x
        ``height`` image), in order, for :func:`automl_nb.analysis.predictions.prediction_rows`."""
        points = self.params["max_number_of_polygon_points"] if self.segmentation else None
        return [{"filename": self.valid_dataset.image_url(i), "objects": self.valid_dataset.samples[i].record.label,
                 "detections": detections, "width": width, "height": height, "max_polygon_points": points}
                for i, (detections, (width, height)) in enumerate(zip(predictions, sizes))]

    def score(self, outputs, targets) -> dict:
        return {}  # detection metrics need whole predictions; see evaluate()

    def _detections(self, output: Mapping[str, torch.Tensor]) -> ImageDetections:
        masks = None
        if self.segmentation:
            masks = (output["masks"][:, 0] >= self.params["mask_pixel_score_threshold"]).cpu().numpy()
        return ImageDetections(boxes=output["boxes"].float().cpu().numpy(), scores=output["scores"].float().cpu().numpy(),
                               labels=output["labels"].cpu().numpy() - 1, masks=masks)

    def _targets(self, target: Mapping[str, torch.Tensor], image: torch.Tensor) -> ImageTargets:
        masks = target["masks"].cpu().numpy().astype(bool) if self.segmentation else None
        return ImageTargets(boxes=np.asarray(target["boxes"].cpu()), labels=target["labels"].cpu().numpy() - 1,
                            is_crowd=target["is_crowd"].cpu().numpy(), masks=masks,
                            width=image.shape[-1], height=image.shape[-2])

    def settings(self) -> dict:
        """Inference settings for settings.json (SPEC section 9)."""
        return settings_json(self.task, self.params, self.classes)


def _keep_batch_norm_statistics(model: nn.Module) -> None:
    """Put every batch norm layer of ``model`` in eval mode: it normalises with its running statistics
    and leaves them as they are."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def _to_device(batch, device: torch.device) -> tuple[list, list]:
    images, targets = batch
    images = [image.to(device, non_blocking=True) for image in images]
    targets = [{key: value.to(device) if torch.is_tensor(value) else value for key, value in target.items()}
               for target in targets]
    return images, targets
