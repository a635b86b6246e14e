"""The image reader that torch datasets call when images are streamed through the cache.

It reads whole chunks (about a batch of images) and keeps the last few decoded chunks in
memory, per process: DESIGN measured that picking single images out of Zarr is slower than
decoding files, while whole chunks are several times faster.

What an image comes back as:

- by default, a PIL RGB image at its **original size**, cropped out of its cell and, if the
  cache holds it smaller, resized back: a drop-in for
  :func:`~automl_nb.data.images.open_image`, pixel for pixel when the cache resolution is at
  least the image's size. Everything in pixels stays exact and unchanged: boxes and masks
  from normalised coordinates, tiles (integer rectangles of the original), ``orig_size``
  and COCO's small/medium/large area ranges. Detection and segmentation read this way.
- with ``as_stored``, the pixels **as stored** (at most the cache resolution) as a uint8
  ``tv_tensors.Image`` ``[3, H, W]``, for transforms that begin with ``ToImage`` (every
  classification transform): a class label has no geometry, the transforms resize anyway,
  and the resolution is the largest size they use. No image is enlarged only to be shrunk
  again, and skipping PIL cuts the cost per image by about two thirds (measured at 64 px).
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict

import numpy as np
from PIL import Image

from automl_nb.data.cache.store import CACHED, HEIGHT, STATUS, STORED_HEIGHT, STORED_WIDTH, WIDTH, Chunk, ImageCache
from automl_nb.data.images import SkippedImage, open_image
from automl_nb.errors import DataError

# Decoded chunks kept per process (each DataLoader worker has its own).
DEFAULT_MEMORY_BYTES = 256 * 2**20


class CachedImageReader:
    """``reader(url) -> PIL.Image`` (RGB, original size) through an :class:`ImageCache`.

    Picklable, for DataLoader workers: each process keeps its own decoded chunks.

    Args:
        cache: the dataset's cache.
        skip_unreadable: an image that is corrupt or cannot be fetched raises
            :class:`~automl_nb.data.images.SkippedImage` (the dataset then reads the next
            one) after a warning naming its URL; False raises a ``DataError`` naming it.
        memory_bytes: decoded chunks kept in memory (at least the last one is).
        as_stored: return the stored pixels as a uint8 tensor image instead of a PIL image
            of the original size (see the module docstring).

    Example:
        >>> reader = CachedImageReader(ImageCache.open(root, urls, 256))
        >>> dataset = ClassificationDataset(records, classes, transform, reader=reader)
    """

    def __init__(self, cache: ImageCache, skip_unreadable: bool = False,
                 memory_bytes: int = DEFAULT_MEMORY_BYTES, as_stored: bool = False) -> None:
        self.cache = cache
        self.skip_unreadable = skip_unreadable
        self.memory_bytes = memory_bytes
        self.as_stored = as_stored
        self._chunks: OrderedDict[int, Chunk] = OrderedDict()
        self._reported: set[str] = set()
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_chunks"], state["_reported"] = OrderedDict(), set()
        return state

    def __call__(self, url: str):
        row = self.cache.index.get(str(url))
        if row is None:  # not part of the dataset (e.g. a new image to predict): read it directly
            return open_image(url)
        chunk = self.chunk(row // self.cache.images_per_chunk)
        offset = row - chunk.start
        meta = chunk.meta[offset]
        if meta[STATUS] != CACHED:
            self._unreadable(str(url), chunk.errors.get(offset, "unreadable"))
        width, height = int(meta[WIDTH]), int(meta[HEIGHT])
        stored_width, stored_height = int(meta[STORED_WIDTH]), int(meta[STORED_HEIGHT])
        pixels = chunk.pixels[offset, :stored_height, :stored_width]
        if self.as_stored:
            return _tensor_image(np.array(pixels))  # a copy: transforms must not write into the chunk
        image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
        if (stored_width, stored_height) != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return image

    def chunk(self, index: int) -> Chunk:
        """Chunk ``index`` from memory, else read (and, if needed, fetched) from the cache."""
        if self._pid != os.getpid():  # a forked DataLoader worker: start its own memory
            self._chunks, self._reported, self._pid = OrderedDict(), set(), os.getpid()
        chunk = self._chunks.get(index)
        if chunk is not None:
            self._chunks.move_to_end(index)
            return chunk
        chunk = self.cache.read_chunk(index)
        self._chunks[index] = chunk
        held = sum(c.nbytes for c in self._chunks.values())
        while held > self.memory_bytes and len(self._chunks) > 1:
            held -= self._chunks.popitem(last=False)[1].nbytes
        return chunk

    def chunk_of(self, url: str) -> int | None:
        """The cache chunk of ``url``, or None if the URL is not in the cache."""
        row = self.cache.index.get(str(url))
        return None if row is None else row // self.cache.images_per_chunk

    @property
    def chunks_in_memory(self) -> int:
        """How many decoded chunks fit in ``memory_bytes`` (at least 1)."""
        size = self.cache.resolution
        return max(1, self.memory_bytes // (self.cache.images_per_chunk * size * size * 3))

    def _unreadable(self, url: str, reason: str) -> None:
        message = f"cannot read image {url}: {reason}"
        if not self.skip_unreadable:
            raise DataError(message)
        if url not in self._reported:
            self._reported.add(url)
            warnings.warn(f"skipping an unreadable image ({message})", stacklevel=3)
        raise SkippedImage(message)

    def __repr__(self) -> str:
        return (f"CachedImageReader({self.cache!r}, skip_unreadable={self.skip_unreadable}, "
                f"as_stored={self.as_stored})")


def _tensor_image(pixels: np.ndarray):
    """``[H, W, 3]`` uint8 -> ``tv_tensors.Image`` ``[3, H, W]``, laid out as ``ToImage`` lays out a PIL image."""
    import torch  # imported here: `automl-nb cache info` needs no torch
    from torchvision import tv_tensors

    return tv_tensors.Image(torch.from_numpy(pixels).permute(2, 0, 1))
