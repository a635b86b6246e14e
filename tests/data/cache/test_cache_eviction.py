"""The cache's size bound: least recently used shards go first, and come back when needed."""

import collections
import math

import numpy as np
import pytest

from automl_nb.data.cache import ImageCache
from automl_nb.data.cache import evict
from automl_nb.data.cache.evict import MIN_FREE_DISK_VARIABLE, disk_bytes, effective_bound, shards_on_disk
from automl_nb.data.mltable import load_records
from automl_nb.data.synthetic import make_dataset


def test_eviction_keeps_the_bound_and_evicts_the_least_recently_used_shard(tmp_path):
    data = make_dataset("image_classification", 40, 32, tmp_path / "data", seed=0)
    urls = [r.image_url for r in load_records(str(data), "image_classification")]
    layout = {"images_per_chunk": 4, "chunks_per_shard": 2}  # 5 shards of 8 images
    unbounded = ImageCache.open(tmp_path / "measure", urls, 64, **layout)
    for shard in range(unbounded.shard_count):
        unbounded.fill_shard(shard)
    sizes = {s.shard: s.size for s in shards_on_disk(tmp_path / "measure")}
    reference = [unbounded.read_chunk(c).pixels for c in range(unbounded.chunk_count)]

    root = tmp_path / "bounded"
    ImageCache.open(root, urls, 64, **layout)
    overhead = disk_bytes(root)  # metadata and URL list: never evicted
    bound = overhead + 2 * max(sizes.values()) + min(sizes.values()) // 2  # room for two shards
    cache = ImageCache.open(root, urls, 64, max_bytes=bound, **layout)

    def on_disk():
        return {s.shard for s in shards_on_disk(root)}

    for shard in (0, 1, 2):
        cache.read_chunk(2 * shard)  # a chunk of each shard: fills it
        assert disk_bytes(root) <= bound
    assert on_disk() == {1, 2}  # shard 0 was used longest ago
    cache.read_chunk(2)  # shard 1 is used again: now shard 2 is the least recent
    cache.read_chunk(6)  # shard 3
    assert on_disk() == {1, 3} and disk_bytes(root) <= bound
    assert cache.status()[:8].sum() == 0  # evicted rows read as missing...
    again = cache.read_chunk(0)  # ...and are fetched again when needed
    assert np.array_equal(again.pixels, reference[0])
    assert disk_bytes(root) <= bound and 0 in on_disk()


def test_a_bound_below_one_shard_still_serves_the_shard_being_read(tmp_path):
    data = make_dataset("image_classification", 16, 32, tmp_path / "data", seed=0)
    urls = [r.image_url for r in load_records(str(data), "image_classification")]
    cache = ImageCache.open(tmp_path / "cache", urls, 64, images_per_chunk=4, chunks_per_shard=2, max_bytes=1)
    first = cache.read_chunk(0)
    assert (first.meta[:, 0] == 1).all() and first.pixels.any()
    assert {s.shard for s in shards_on_disk(tmp_path / "cache")} == {0}
    cache.read_chunk(2)
    assert {s.shard for s in shards_on_disk(tmp_path / "cache")} == {1}


def test_a_nearly_full_disk_lowers_the_bound_by_its_shortfall(monkeypatch, tmp_path):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(evict.shutil, "disk_usage", lambda root: usage(100_000, 97_000, 3_000))
    monkeypatch.delenv(MIN_FREE_DISK_VARIABLE, raising=False)
    assert effective_bound(tmp_path, None, used=10_000) == 8_000  # 5% free wanted: 2,000 short
    assert effective_bound(tmp_path, 5_000, used=10_000) == 5_000  # an explicit bound below it wins
    monkeypatch.setenv(MIN_FREE_DISK_VARIABLE, "0.1")
    assert effective_bound(tmp_path, None, used=10_000) == 3_000
    monkeypatch.setenv(MIN_FREE_DISK_VARIABLE, "0")
    assert effective_bound(tmp_path, None, used=10_000) == math.inf
    monkeypatch.setenv(MIN_FREE_DISK_VARIABLE, "5%")
    with pytest.raises(ValueError, match=f"{MIN_FREE_DISK_VARIABLE}='5%'"):
        effective_bound(tmp_path, None, used=10_000)
