"""What a trial's parameters say about streaming and caching images, read in one place.

The setting names live in :mod:`automl_nb.spec.advanced_settings` (``ADVANCED_SETTINGS``); these
functions only read a resolved ``advanced_settings`` dict, so wiring a new setting into the
spec table changes nothing here.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from automl_nb.spec.grid import parse_grid
from automl_nb.spec.tasks import CLASSIFICATION_TASKS

STREAM_IMAGE_FILES = "stream_image_files"
MAX_CACHE_GB = "max_cache_gb"
SKIP_UNREADABLE_IMAGES = "skip_unreadable_images"
SHARED_CACHE_URL = "shared_cache_url"

# The cache root for every trial and Dask worker of a machine; an environment variable so all
# worker processes agree without passing it around.
CACHE_ROOT_VARIABLE = "AUTOML_NB_IMAGE_CACHE"
# The shared tier's root for every worker of a machine (a cluster's workers set it to share one).
SHARED_CACHE_VARIABLE = "AUTOML_NB_SHARED_IMAGE_CACHE"

# Cache resolutions are rounded up to this step, so trials with nearby sizes share one cache.
RESOLUTION_STEP = 64
# A classification crop reads a square out of an image whose long side the cache bounds: this
# keeps the short side of a 4:3 image at the validation resize size.
_ASPECT_ALLOWANCE = 4 / 3


def _advanced(params: Mapping[str, Any], name: str, unset: Any) -> Any:
    """The value of ``advanced_settings[name]``, else its spec default, else ``unset``."""
    settings = params.get("advanced_settings") or {}
    if name in settings:
        return settings[name]
    from automl_nb.spec.advanced_settings import ADVANCED_SETTINGS

    for setting in ADVANCED_SETTINGS:
        if setting.name == name:
            return setting.default
    return unset  # not declared in the spec table (yet)


def stream_image_files(params: Mapping[str, Any]) -> bool:
    """Whether the trial streams its images through the cache (``advanced_settings``)."""
    return bool(_advanced(params, STREAM_IMAGE_FILES, False))


def max_cache_bytes(params: Mapping[str, Any]) -> int | None:
    """The cache size bound in bytes from ``advanced_settings.max_cache_gb``; None: as much as
    the disk holds (see :func:`~automl_nb.data.cache.evict.min_free_disk_fraction`)."""
    value = _advanced(params, MAX_CACHE_GB, None)
    return None if value is None else int(float(value) * 2**30)


def skip_unreadable_images(params: Mapping[str, Any]) -> bool:
    """True: a corrupt or unreachable image is reported by URL and skipped; False: it fails the trial."""
    return bool(_advanced(params, SKIP_UNREADABLE_IMAGES, False))


def shared_cache_url(params: Mapping[str, Any], run_default: str | None = None) -> str | None:
    """The root URL of the shared image cache a trial uses, or None for its machine's cache alone.

    In order: ``advanced_settings.shared_cache_url``, ``$AUTOML_NB_SHARED_IMAGE_CACHE``, then
    ``run_default`` (a run on a URL shares ``<run>/image-cache``).

    Raises:
        AutoMLError: the environment variable names no object store (the setting is checked with the job).
    """
    from automl_nb.object_store import check_url

    url = _advanced(params, SHARED_CACHE_URL, None)
    if url:
        return url
    if os.environ.get(SHARED_CACHE_VARIABLE):
        return check_url(os.environ[SHARED_CACHE_VARIABLE], f"${SHARED_CACHE_VARIABLE}", "an image cache", otherwise="")
    return run_default


def default_cache_root() -> Path:
    """The cache folder: ``$AUTOML_NB_IMAGE_CACHE``, else ``$XDG_CACHE_HOME/automl_nb/images``
    (``~/.cache/automl_nb/images``)."""
    if os.environ.get(CACHE_ROOT_VARIABLE):
        return Path(os.environ[CACHE_ROOT_VARIABLE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "automl_nb" / "images"


def cache_resolution(task: str, params: Mapping[str, Any]) -> int:
    """The long-side bound, in pixels, at which a trial wants its images cached.

    The largest size the trial's transforms or model will use: the validation resize (or a
    crop, whichever is larger) for classification, allowing for 4:3 images; the detector's
    ``max_size`` (yolov5: ``image_size``) times the tile grid for detection. Rounded up to
    :data:`RESOLUTION_STEP`, so trials of one job share a cache; a trial also reuses a cache
    built at a larger resolution (see :meth:`ImageCache.open`).

    Example:
        >>> cache_resolution("image_classification", {"validation_resize_size": 256, "training_crop_size": 224})
        384
    """
    if task in CLASSIFICATION_TASKS:
        sizes = [params.get(k) or 0 for k in ("validation_resize_size", "validation_crop_size", "training_crop_size")]
        need = max(sizes) * _ASPECT_ALLOWANCE
    else:
        need = max(params.get("max_size") or 0, params.get("image_size") or 0)
        grid = params.get("tile_grid_size")
        if grid:
            need *= max(parse_grid(grid))
    need = max(int(math.ceil(need)), 1)
    return int(math.ceil(need / RESOLUTION_STEP) * RESOLUTION_STEP)
