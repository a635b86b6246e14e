"""The classification-specific parts of a trial: data, model, loss and scores.

The generic loop in :mod:`automl_nb.train.trainer` calls these; detection and
segmentation provide the same methods.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from automl_nb.data.datasets import ClassificationDataset
from automl_nb.data.images import ImageReader, open_image
from automl_nb.data.records import ImageRecord
from automl_nb.data.transforms import classification_train_transform, classification_valid_transform
from automl_nb.metrics import multiclass_metrics, multilabel_metrics
from automl_nb.metrics.classification import MULTILABEL_THRESHOLD
from automl_nb.models.registry import build_model
from automl_nb.spec.inference import settings_json
from automl_nb.spec.tasks import MULTILABEL, PRIMARY_METRICS



class ClassificationAdapter:
    """Multiclass or multilabel classification over image records.

    Args:
        task: ``image_classification`` or ``image_classification_multilabel``.
        params: resolved training parameters.
        train_records, valid_records: the split data.
        classes: class names in output order.
        reader: how the datasets read an image URL (default: from its file or URL each time).
    """

    def __init__(self, task: str, params: Mapping, train_records: Sequence[ImageRecord],
                 valid_records: Sequence[ImageRecord], classes: Sequence[str],
                 reader: ImageReader = open_image) -> None:
        self.task = task
        self.params = params
        self.classes = list(classes)
        self.multilabel = task == MULTILABEL
        self.primary_metric = PRIMARY_METRICS[task]
        self.train_dataset = ClassificationDataset(
            train_records, classes, self._train_transform(params), self.multilabel,
            reader=reader)
        self.valid_dataset = ClassificationDataset(
            valid_records, classes,
            classification_valid_transform(params["validation_resize_size"], params["validation_crop_size"]),
            self.multilabel, reader=reader)
        self.criterion = self._criterion()

    @staticmethod
    def _train_transform(params: dict):
        # "none" resizes like validation does, scaled to the training crop.
        crop = params["training_crop_size"]
        resize = round(crop * params["validation_resize_size"] / params["validation_crop_size"])
        return classification_train_transform(crop, params["augmentation"], resize)

    def _criterion(self) -> nn.Module:
        weights = None
        mode = self.params["weighted_loss"]
        if mode:
            counts = self.train_dataset.class_counts()
            # Inverse frequency, 1.0 for a balanced set; mode 1 softens it with a square root.
            weights = counts.sum() / (len(self.classes) * counts.clamp(min=1))
            if mode == 1:
                weights = weights.sqrt()
        if self.multilabel:
            return nn.BCEWithLogitsLoss(weight=weights)
        return nn.CrossEntropyLoss(weight=weights)

    def build_model(self, pretrained: bool) -> nn.Module:
        return build_model(self.params["model_name"], num_classes=len(self.classes), pretrained=pretrained,
                           crop_size=self.params["training_crop_size"])

    def to(self, device: torch.device) -> None:
        self.criterion.to(device)

    @staticmethod
    def collate(batch):
        return torch.utils.data.default_collate(batch)

    def forward_loss(self, model: nn.Module, batch, device: torch.device,
                     memory_format=torch.contiguous_format) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss, logits and targets of one batch."""
        images, targets = batch
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        targets = targets.to(device, non_blocking=True)
        logits = model(images)
        return self.criterion(logits.float(), targets), logits, targets

    def score(self, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        """Metrics of one epoch's logits and targets (whole-epoch tensors, on CPU)."""
        if self.multilabel:
            return multilabel_metrics(targets.numpy(), torch.sigmoid(logits.float()).numpy(), MULTILABEL_THRESHOLD)
        return multiclass_metrics(targets.numpy(), logits.argmax(1).numpy(), len(self.classes))

    def per_image(self, logits: torch.Tensor, targets: torch.Tensor) -> list[dict]:
        """Each validation image's file, label, probabilities and loss, from its logits (in order).

        The loss is the plain (unweighted) cross-entropy of the image, or its mean binary
        cross-entropy for multilabel: how surprised the model is by the label on file.
        """
        logits = logits.float()
        if self.multilabel:
            probs = torch.sigmoid(logits)
            losses = nnf.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none").mean(1)
        else:
            probs = logits.softmax(1)
            losses = nnf.cross_entropy(logits, targets, reduction="none")
        return [{"filename": record.image_url, "label": record.label, "probs": p, "loss": loss}
                for record, p, loss in zip(self.valid_dataset.records, probs.tolist(), losses.tolist())]

    def settings(self) -> dict:
        """Inference settings for settings.json (SPEC section 9)."""
        return settings_json(self.task, self.params, self.classes)
