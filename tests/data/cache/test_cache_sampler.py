"""The chunk-aware shuffling sampler, and when a loader needs it."""

import torch

from automl_nb.data.cache import CachedImageReader, ImageCache, chunk_sampler
from automl_nb.data.cache.sampler import ChunkShuffleSampler
from automl_nb.data.datasets import ClassificationDataset
from automl_nb.data.mltable import load_records
from automl_nb.data.records import class_names
from automl_nb.data.synthetic import make_dataset


def runs(order, chunks):
    """How many stretches of one chunk the order has."""
    return 1 + sum(chunks[a] != chunks[b] for a, b in zip(order, order[1:]))


def test_each_epoch_is_a_permutation_that_visits_chunks_in_turn():
    chunks = [i // 8 for i in range(64)][::-1]  # 8 chunks of 8 samples, in no particular index order
    sampler = ChunkShuffleSampler(chunks, buffer_chunks=1, generator=torch.Generator().manual_seed(0))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == list(range(64)) and len(sampler) == 64
    assert runs(first, chunks) == 8  # each chunk read in one go
    assert first != second  # a new order each epoch
    mixed = list(ChunkShuffleSampler(chunks, buffer_chunks=4, generator=torch.Generator().manual_seed(0)))
    assert set(chunks[i] for i in mixed[:32]) == set(chunks[i] for i in first[:32])  # same chunk order...
    assert runs(mixed, chunks) > 8  # ...mixed within buffers of four
    again = list(ChunkShuffleSampler(chunks, buffer_chunks=1, generator=torch.Generator().manual_seed(0)))
    assert again == first  # seeded: repeatable


def test_chunk_sampler_only_when_the_chunks_do_not_fit_in_memory(tmp_path):
    data = make_dataset("image_classification", 32, 32, tmp_path / "data", seed=0)
    records = load_records(str(data), "image_classification")
    cache = ImageCache.open(tmp_path / "cache", [r.image_url for r in records], 64, images_per_chunk=4)
    roomy = ClassificationDataset(records, class_names(records), None, reader=CachedImageReader(cache))
    assert chunk_sampler(roomy) is None  # 8 chunks fit: a plain shuffle costs nothing more
    assert chunk_sampler(ClassificationDataset(records, class_names(records), None)) is None  # files: no chunks
    chunk_bytes = 4 * 64 * 64 * 3
    tight = ClassificationDataset(records, class_names(records), None,
                                  reader=CachedImageReader(cache, memory_bytes=4 * chunk_bytes))
    sampler = chunk_sampler(tight, torch.Generator().manual_seed(0))
    order = list(sampler)
    assert sampler.buffer_chunks == 2 and sorted(order) == list(range(32))
    chunks = [cache.chunk_of(r.image_url) for r in records]
    assert all(len({chunks[i] for i in order[k:k + 8]}) == 2 for k in range(0, 32, 8))  # 2 chunks per stretch
