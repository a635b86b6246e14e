"""Shuffling that reads the cache chunk by chunk: shuffle the chunks, then samples within a buffer.

A plain random order touches a new chunk at almost every sample; when a dataset's decoded
chunks do not all fit in a reader's memory, each chunk is then decoded once per sample it
holds. This order decodes each chunk about once per epoch, and still mixes samples of
``buffer_chunks`` chunks in every stretch.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class ChunkShuffleSampler(Sampler[int]):
    """A random order of sample indices that visits the cache chunk by chunk.

    Each epoch: the chunks in random order; then, ``buffer_chunks`` chunks at a time, their
    samples in random order. Draws only from ``generator``, so a seeded loader repeats and a
    resumed one continues.

    Args:
        chunks: the cache chunk of each sample (index ``i`` of the dataset).
        buffer_chunks: chunks mixed together (a reader should hold this many in memory).
        generator: source of randomness (None: a seed drawn from torch's global generator
            each epoch, like ``RandomSampler``).

    Example:
        >>> sampler = ChunkShuffleSampler([0, 0, 1, 1, 2], buffer_chunks=2, generator=torch.Generator().manual_seed(0))
        >>> sorted(sampler)
        [0, 1, 2, 3, 4]
    """

    def __init__(self, chunks: Sequence[int], buffer_chunks: int = 4,
                 generator: torch.Generator | None = None) -> None:
        if buffer_chunks < 1:
            raise ValueError(f"buffer_chunks must be >= 1, got {buffer_chunks}")
        self.buffer_chunks, self.generator = buffer_chunks, generator
        groups: dict[int, list[int]] = {}
        for index, chunk in enumerate(chunks):
            groups.setdefault(chunk, []).append(index)
        self.groups = list(groups.values())
        self.count = len(chunks)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        generator = self.generator
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        order = torch.randperm(len(self.groups), generator=generator).tolist()
        for first in range(0, len(order), self.buffer_chunks):
            buffer = [index for g in order[first:first + self.buffer_chunks] for index in self.groups[g]]
            for position in torch.randperm(len(buffer), generator=generator).tolist():
                yield buffer[position]


def chunk_sampler(dataset, generator: torch.Generator | None = None) -> ChunkShuffleSampler | None:
    """The training sampler for ``dataset``: chunk-aware when needed, else None (plain shuffle).

    Needed when the dataset reads through a cache and its decoded chunks do not all fit in
    its reader's memory; otherwise a plain ``shuffle=True`` costs nothing more and keeps
    the same order (and so the same metrics) as reading files.

    Args:
        dataset: a dataset with ``reader`` and ``image_url(i)`` (both of this package's
            torch datasets have them).
        generator: the loader's generator.

    Example:
        >>> sampler = chunk_sampler(train_set, generator)
        >>> DataLoader(train_set, batch_size=32, shuffle=sampler is None, sampler=sampler, generator=generator)
    """
    reader = getattr(dataset, "reader", None)
    if reader is None or not hasattr(reader, "chunk_of"):
        return None
    chunks = [reader.chunk_of(dataset.image_url(i)) for i in range(len(dataset))]
    if len(set(chunks)) <= reader.chunks_in_memory:
        return None
    # A URL outside the cache (None) gets a chunk number of its own, after the cached ones.
    spare = iter(range(reader.cache.chunk_count, reader.cache.chunk_count + len(chunks)))
    chunks = [next(spare) if chunk is None else chunk for chunk in chunks]
    return ChunkShuffleSampler(chunks, buffer_chunks=max(1, reader.chunks_in_memory // 2), generator=generator)
