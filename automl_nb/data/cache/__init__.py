"""Streamed images, cached as Zarr shards (SPEC section 11, ``stream_image_files``).

Images are fetched from any fsspec URL when first needed, decoded, shrunk to the cache
resolution if larger, and stored in a Zarr v3 store shared by every trial and process of a
machine; later epochs and trials read whole chunks of decoded pixels from it.

- :func:`image_reader` picks a trial's reader: :func:`~automl_nb.data.images.open_image`, or a
  :class:`CachedImageReader` when ``advanced_settings.stream_image_files`` is true.
- :class:`ImageCache` is one dataset's store; :func:`enforce_bound` keeps the cache root
  under ``max_cache_gb``; :func:`chunk_sampler` shuffles chunk by chunk when needed.
- :class:`SharedFolder`: the same store on an object store, shared by a cluster's workers
  (``advanced_settings.shared_cache_url``; a run on a URL shares ``<run>/image-cache``).
- ``automl-nb cache build|info|clear``: :mod:`automl_nb.cli.cache`.

Zarr is imported only when a cache is opened, so importing this package stays light.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from automl_nb.data.cache.evict import enforce_bound
from automl_nb.data.cache.fetch import Fetcher, FetchFailure
from automl_nb.data.cache.reader import CachedImageReader
from automl_nb.data.cache.settings import (
    cache_resolution, default_cache_root, max_cache_bytes, shared_cache_url, skip_unreadable_images,
    stream_image_files,
)
from automl_nb.data.cache.shared import SharedFolder
from automl_nb.data.cache.store import ImageCache
from automl_nb.data.images import ImageReader, open_image
from automl_nb.data.records import ImageRecord
from automl_nb.spec.tasks import CLASSIFICATION_TASKS


def image_reader(task: str, params: Mapping[str, Any], records: Sequence[ImageRecord],
                 root: str | os.PathLike | None = None, shared_default: str | None = None) -> ImageReader:
    """The image reader a trial's datasets use.

    Args:
        task: the trial's task.
        params: its resolved training parameters (reads ``advanced_settings``).
        records: every record the trial reads (training and validation), so all trials of
            a dataset, whatever their split, share one cache.
        root: cache root (default: :func:`default_cache_root`).
        shared_default: the shared cache's root URL unless the parameters or the environment
            name one (:func:`shared_cache_url`); None: none.

    Returns:
        :func:`open_image` unless ``stream_image_files`` is true; then a
        :class:`CachedImageReader` over the cache of these images at the trial's
        :func:`cache_resolution`: it returns PIL images at their original size for detection
        and segmentation (labels in pixels stay exact), tensor images as stored for
        classification (whose transforms start with ``ToImage``).

    Example:
        >>> reader = image_reader(trial.task, params, train + valid)
        >>> ClassificationDataset(train, classes, transform, reader=reader)
    """
    if not stream_image_files(params):
        return open_image
    cache = ImageCache.open(root or default_cache_root(), [r.image_url for r in records],
                            cache_resolution(task, params), max_bytes=max_cache_bytes(params),
                            shared_url=shared_cache_url(params, shared_default))
    return CachedImageReader(cache, skip_unreadable=skip_unreadable_images(params),
                             as_stored=task in CLASSIFICATION_TASKS)


def chunk_sampler(dataset, generator=None):
    """See :func:`automl_nb.data.cache.sampler.chunk_sampler` (imported lazily: it needs torch)."""
    from automl_nb.data.cache.sampler import chunk_sampler as sampler

    return sampler(dataset, generator)


__all__ = [
    "CachedImageReader", "FetchFailure", "Fetcher", "ImageCache", "SharedFolder", "cache_resolution",
    "chunk_sampler", "default_cache_root", "enforce_bound", "image_reader", "max_cache_bytes",
    "shared_cache_url", "skip_unreadable_images", "stream_image_files",
]
