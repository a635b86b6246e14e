"""Torch datasets over :class:`~automl_nb.data.records.ImageRecord` lists."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from automl_nb.data.images import ImageReader, open_image, read_or_substitute
from automl_nb.data.records import ImageRecord


class ClassificationDataset(Dataset):
    """Images with a class index (multiclass) or a multi-hot vector (multilabel).

    Args:
        records: the images and their labels.
        classes: class names; a label's index in this list is its target.
        transform: applied to the RGB image: a PIL image from :func:`open_image`, a uint8
            tensor image from the image cache's reader (every transform of
            :mod:`automl_nb.data.transforms` starts with ``ToImage``, which takes both).
        multilabel: targets are float multi-hot vectors of ``len(classes)``.
        reader: how an image URL becomes an RGB image: :func:`open_image`, or a reader that
            streams through the image cache (:mod:`automl_nb.data.cache`). An image the
            reader skips is replaced by the next readable sample.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        classes: Sequence[str],
        transform: Callable,
        multilabel: bool = False,
        reader: ImageReader = open_image,
    ) -> None:
        self.records = list(records)
        self.reader = reader
        self.classes = list(classes)
        self.transform = transform
        self.multilabel = multilabel
        index = {name: i for i, name in enumerate(self.classes)}
        self.targets = [self._target(r.label, index) for r in self.records]

    def _target(self, label, index: dict[str, int]):
        if self.multilabel:
            target = torch.zeros(len(self.classes))
            for name in label:
                target[index[name]] = 1.0
            return target
        return index[label]

    def __len__(self) -> int:
        return len(self.records)

    def image_url(self, i: int) -> str:
        """The image URL of sample ``i``."""
        return self.records[i].image_url

    def __getitem__(self, i: int):
        i, image = read_or_substitute(self.reader, self.image_url, i, len(self.records))
        return self.transform(image), self.targets[i]

    def class_counts(self) -> torch.Tensor:
        """Images per class (for multilabel, images that carry each label)."""
        if self.multilabel:
            return torch.stack(self.targets).sum(0) if self.targets else torch.zeros(len(self.classes))
        return torch.bincount(torch.tensor(self.targets), minlength=len(self.classes)).float()
