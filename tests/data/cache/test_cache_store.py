"""The Zarr image cache: what it stores, at which size, and which cache a trial gets."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from automl_nb.data.cache import CachedImageReader, ImageCache, cache_resolution, image_reader
from automl_nb.data.cache.settings import CACHE_ROOT_VARIABLE, default_cache_root, max_cache_bytes
from automl_nb.data.cache.store import CACHED, MISSING, fit_size
from automl_nb.data.images import open_image
from automl_nb.spec import resolve_parameters


def test_images_streamed_over_http_come_back_pixel_for_pixel(serve_dataset, image_server, tmp_path):
    _, _, local, remote = serve_dataset("image_classification", 21, 32)
    cache = ImageCache.open(tmp_path / "cache", [r.image_url for r in remote], 64,
                            images_per_chunk=4, chunks_per_shard=2)
    reader = CachedImageReader(cache)
    assert cache.shard_count == 3 and cache.chunk_count == 6  # the last shard is partial (21 = 8 + 8 + 5)
    assert (cache.status() == MISSING).all()
    for here, there in zip(local, remote):
        assert np.array_equal(np.asarray(reader(there.image_url)), np.asarray(open_image(here.image_url)))
        assert cache.content_hash(there.image_url) == hashlib.sha256(Path(here.image_url).read_bytes()).hexdigest()
    assert (cache.status() == CACHED).all()
    assert image_server.total() == 21  # each image fetched once, whole shards at a time


def test_a_second_reader_reads_the_cache_not_the_source(serve_dataset, image_server, tmp_path):
    _, _, _, remote = serve_dataset("image_classification", 12, 32)
    urls = [r.image_url for r in remote]
    first = CachedImageReader(ImageCache.open(tmp_path / "cache", urls, 64))
    images = [np.asarray(first(url)) for url in urls]
    served = image_server.total()
    image_server.close()  # the source is gone: a fresh process must read the cache alone
    second = CachedImageReader(ImageCache.open(tmp_path / "cache", list(reversed(urls)), 64))
    assert all(np.array_equal(np.asarray(second(url)), image) for url, image in zip(urls, images))
    assert served == 12


@pytest.mark.parametrize("size, stored", [((96, 72), (64, 48)), ((40, 90), (28, 64)), ((50, 30), (50, 30))])
def test_large_images_are_stored_shrunk_and_read_back_at_their_own_size(tmp_path, size, stored):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path = tmp_path / "image.png"
    Image.fromarray(pixels).save(path)
    cache = ImageCache.open(tmp_path / "cache", [str(path)], 64)
    image = CachedImageReader(cache)(str(path))
    assert fit_size(*size, 64) == stored
    meta = cache.read_chunk(0).meta[0]
    assert tuple(meta[1:]) == (*size, *stored)  # original and stored sizes are both kept
    assert image.size == size and image.mode == "RGB"
    as_stored = CachedImageReader(cache, as_stored=True)(str(path))  # what classification reads
    assert tuple(as_stored.shape) == (3, stored[1], stored[0])
    expected = Image.fromarray(pixels).resize(stored, Image.Resampling.LANCZOS) if size != stored else pixels
    assert torch.equal(as_stored, v2.ToImage()(expected))  # what ToImage makes of the PIL image
    if size == stored:
        assert np.array_equal(np.asarray(image), pixels)


def test_a_trial_reuses_a_cache_of_higher_resolution_and_never_one_of_other_images(tmp_path):
    urls = [str(tmp_path / f"{i}.png") for i in range(3)]
    big = ImageCache.open(tmp_path / "cache", urls, 256)
    assert ImageCache.open(tmp_path / "cache", list(reversed(urls)), 128).folder == big.folder
    assert ImageCache.open(tmp_path / "cache", urls, 320).folder != big.folder
    assert ImageCache.open(tmp_path / "cache", urls[:2], 128).folder != big.folder


def test_image_reader_follows_stream_image_files(tmp_path, serve_dataset, monkeypatch):
    _, _, _, remote = serve_dataset("image_classification", 10, 32)
    monkeypatch.setenv(CACHE_ROOT_VARIABLE, str(tmp_path / "root"))
    plain = resolve_parameters("image_classification", {})
    streamed = resolve_parameters("image_classification", {"advanced_settings": {"stream_image_files": True}})
    assert image_reader("image_classification", plain, remote) is open_image
    reader = image_reader("image_classification", streamed, remote)
    assert isinstance(reader, CachedImageReader) and reader.cache.root == default_cache_root() == tmp_path / "root"
    assert reader.cache.resolution == cache_resolution("image_classification", streamed)
    assert reader.as_stored  # classes have no geometry: images as stored
    detection = resolve_parameters("image_object_detection", {"advanced_settings": {"stream_image_files": True}})
    assert not image_reader("image_object_detection", detection, remote).as_stored  # pixel labels stay exact
    assert max_cache_bytes({"advanced_settings": {"max_cache_gb": 0.5}}) == 2**29
    assert max_cache_bytes(streamed) is None and not reader.skip_unreadable
    # The two settings the spec table is to declare (read with .get until it does).
    chosen = {**streamed, "advanced_settings": {**streamed["advanced_settings"], "skip_unreadable_images": True,
                                                "max_cache_gb": 2}}
    reader = image_reader("image_classification", chosen, remote)
    assert reader.skip_unreadable and reader.cache.max_bytes == 2 * 2**30


@pytest.mark.parametrize("task, params, expected", [
    ("image_classification", {}, 384),  # validation_resize_size 256, for 4:3 images
    ("image_classification",
     {"model_name": "resnet18", "validation_resize_size": 32, "validation_crop_size": 28, "training_crop_size": 28}, 64),
    ("image_object_detection", {"min_size": 64, "max_size": 64}, 64),
    ("image_object_detection", {"model_name": "fasterrcnn_resnet18_fpn", "tile_grid_size": "3x2"}, 4032),
])
def test_cache_resolution_is_the_largest_size_the_trial_uses(task, params, expected):
    assert cache_resolution(task, resolve_parameters(task, params)) == expected
