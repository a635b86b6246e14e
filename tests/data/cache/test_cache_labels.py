"""Datasets read through the cache: labels in pixels match the JSONL, with any loader workers."""

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from automl_nb.data.cache import CachedImageReader, ImageCache
from automl_nb.data.datasets import ClassificationDataset
from automl_nb.data.detection import DetectionDataset, polygon_to_mask
from automl_nb.data.mltable import load_records
from automl_nb.data.records import class_names
from automl_nb.data.synthetic import make_dataset
from automl_nb.data.tiling import tile_records
from automl_nb.data.transforms import classification_valid_transform
from automl_nb.spec import SEGMENTATION


@pytest.fixture
def wide_segmentation(image_server):
    """Segmentation images stretched to 96 x 72 (larger than a 64 px cache), served over HTTP.

    Labels are normalised, so a whole-image resize leaves them valid.
    """
    records = load_records(str(make_dataset(SEGMENTATION, 6, 64, image_server.directory / "seg", seed=1)), SEGMENTATION)
    local, remote = [], []
    for record in records:
        path = image_server.directory / "wide" / f"{len(local)}.png"
        path.parent.mkdir(exist_ok=True)
        Image.open(record.image_url).convert("RGB").resize((96, 72), Image.Resampling.BICUBIC).save(path)
        local.append(dataclasses.replace(record, image_url=str(path), width=96, height=72))
        remote.append(dataclasses.replace(record, image_url=image_server.url(path), width=None, height=None))
    return local, remote


def test_boxes_and_polygons_through_the_cache_equal_the_jsonl_ones(wide_segmentation, tmp_path):
    local, remote = wide_segmentation
    classes = class_names(local)
    cache = ImageCache.open(tmp_path / "cache", [r.image_url for r in remote], 64)
    reader = CachedImageReader(cache)
    from_files = DetectionDataset(local, classes, with_masks=True)
    through_cache = DetectionDataset(remote, classes, with_masks=True, reader=reader)
    for i, record in enumerate(local):
        (image, target), (file_image, file_target) = through_cache[i], from_files[i]
        assert cache.read_chunk(0).meta[i, 3:].tolist() == [64, 48]  # stored shrunk...
        assert image.shape == file_image.shape == (3, 72, 96)  # ...read back at the original size
        assert (image - file_image).abs().mean() < 0.05  # the same picture, a little softer
        expected = torch.tensor([[o.top_x * 96, o.top_y * 72, o.bottom_x * 96, o.bottom_y * 72]
                                 for o in record.objects])
        assert torch.equal(target["boxes"].as_subclass(torch.Tensor), expected)
        masks = torch.stack([polygon_to_mask(o.polygon, 96, 72) for o in record.objects])
        assert torch.equal(target["masks"].as_subclass(torch.Tensor), masks)
        assert torch.equal(target["labels"], file_target["labels"]) and target["orig_size"] == (72, 96)


def test_tiles_cut_through_the_cache_match_tiles_cut_from_files(wide_segmentation, tmp_path):
    local, remote = wide_segmentation
    classes = class_names(local)
    reader = CachedImageReader(ImageCache.open(tmp_path / "cache", [r.image_url for r in remote], 64))
    from_files = DetectionDataset(tile_records(local, "2x2", 0.25), classes)
    through_cache = DetectionDataset(tile_records(remote, "2x2", 0.25), classes, reader=reader)
    assert len(from_files) == len(through_cache) > len(local)
    for i in range(len(from_files)):
        (image, target), (file_image, file_target) = through_cache[i], from_files[i]
        assert image.shape == file_image.shape
        assert torch.equal(target["boxes"].as_subclass(torch.Tensor), file_target["boxes"].as_subclass(torch.Tensor))


def test_loader_workers_fill_and_read_one_cache(serve_dataset, image_server, tmp_path):
    _, _, local, remote = serve_dataset("image_classification", 24, 32)
    classes = class_names(local)
    transform = classification_valid_transform(32, 32)
    reader = CachedImageReader(ImageCache.open(tmp_path / "cache", [r.image_url for r in remote], 64,
                                               images_per_chunk=4, chunks_per_shard=2))
    expected = [batch for batch in DataLoader(ClassificationDataset(local, classes, transform), batch_size=5)]
    streamed = DataLoader(ClassificationDataset(remote, classes, transform, reader=reader), batch_size=5,
                          num_workers=2, multiprocessing_context="fork")
    got = list(streamed)
    assert len(got) == len(expected) == 5
    for (images, targets), (file_images, file_targets) in zip(got, expected):
        assert torch.equal(images, file_images) and torch.equal(targets, file_targets)
    assert image_server.total() == 24  # two processes, one fetch per image
    assert np.all(reader.cache.status() == 1)
    copy = pickle.loads(pickle.dumps(reader))  # what a spawned worker gets: no open arrays, no chunks
    assert not copy._chunks
    assert np.array_equal(np.asarray(copy(remote[3].image_url)), np.asarray(reader(remote[3].image_url)))
