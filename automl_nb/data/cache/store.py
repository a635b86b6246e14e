"""A Zarr v3 store of decoded images, one per dataset content and resolution.

Layout of one dataset's folder under the cache root (``<url hash>-<resolution>px/``)::

    urls.json          the image URLs, one per row (written last: the folder is ready)
    images.zarr/       Zarr v3 group
      pixels           uint8 [N, S, S, 3]; Blosc/zstd chunks of about a batch, sharded
      meta             int32 [N, 5]: status, original width, height, stored width, height
      sha256           uint8 [N, 32]: hash of the source bytes
    errors/<shard>.json   why the images of a shard that failed for good failed
    locks/<shard>.lock    the shard's lock; its modification time is its last use

With a shared URL, a dataset folder of the same name on an object store is a second tier that
the workers of a cluster share: a shard is downloaded from it before its images are fetched,
and a shard filled here is uploaded to it (:mod:`automl_nb.data.cache.shared`).

An image is stored at its own size when its long side is at most the resolution ``S``,
else shrunk to fit (aspect kept), top-left in its ``S x S`` cell, the rest zeros. Labels
are normalised to [0, 1], so the original size is all it takes to map them back.

The shard is the unit of filling, locking and eviction; the chunk (a batch or so of
images) the unit of reading. A shard is filled whole under its exclusive lock and its
``meta`` rows are written last: a row's status says whether its pixels are there, so a
filler killed half way leaves rows missing (refilled later), never wrong. Zarr's local
store writes each file atomically, and readers hold the shard's shared lock, so an
eviction never pulls pixels from under a reader.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from automl_nb._atomic import atomic_write_text
from automl_nb.data.cache.evict import enforce_bound, shard_paths
from automl_nb.data.cache.fetch import Fetcher, FetchFailure
from automl_nb.data.cache.locks import file_lock
from automl_nb.data.cache.shared import URLS_FILE, SharedFolder, shard_count
from automl_nb.errors import DataError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ZARR_FOLDER = "images.zarr"

# Row status in ``meta[:, STATUS]``; 0 is also what an evicted (deleted) chunk reads as.
MISSING, CACHED, FAILED = 0, 1, 2
STATUS, WIDTH, HEIGHT, STORED_WIDTH, STORED_HEIGHT = range(5)

# Chunk about a batch (DESIGN: per-sample reads are slower than decoding files) and at most
# this many decoded bytes, so a process can hold a few; a shard is a few chunks.
MAX_IMAGES_PER_CHUNK = 64
CHUNK_BYTES = 16 * 2**20
SHARD_BYTES = 64 * 2**20
MAX_CHUNKS_PER_SHARD = 8

CODECS = ("zstd", "lz4", "none")


@dataclass(frozen=True)
class Chunk:
    """The rows of one chunk, read whole.

    Attributes:
        index: chunk number.
        start: its first row.
        pixels: uint8 ``[n, S, S, 3]``.
        meta: int32 ``[n, 5]`` (see ``STATUS``... ``STORED_HEIGHT``).
        errors: for rows that are not cached, row -> why.
    """

    index: int
    start: int
    pixels: np.ndarray
    meta: np.ndarray
    errors: Mapping[int, str] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes + self.meta.nbytes


def dataset_key(urls: Sequence[str]) -> str:
    """A short hash of the (sorted, unique) image URLs: the identity of a dataset's cache."""
    text = json.dumps(sorted(set(urls)), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def fit_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The stored size of a ``width x height`` image: itself, or shrunk so its long side is ``resolution``.

    Example:
        >>> fit_size(400, 300, 256)
        (256, 192)
    """
    scale = resolution / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _compressor(codec: str):
    from zarr.codecs import BloscCodec

    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    if codec == "none":
        return None
    # Level 1 and no shuffle: on photos higher levels or bitshuffle gain 5-10% in size and
    # cost a third of the read speed (measured), and reading speed is the point.
    return BloscCodec(cname=codec, clevel=1, shuffle="noshuffle")


def layout(resolution: int, images_per_chunk: int | None = None,
           chunks_per_shard: int | None = None) -> tuple[int, int]:
    """``(images per chunk, images per shard)`` for a resolution (defaults sized in bytes)."""
    image_bytes = resolution * resolution * 3
    per_chunk = images_per_chunk or max(1, min(MAX_IMAGES_PER_CHUNK, CHUNK_BYTES // image_bytes))
    per_shard = chunks_per_shard or max(1, min(MAX_CHUNKS_PER_SHARD, SHARD_BYTES // (per_chunk * image_bytes)))
    return per_chunk, per_chunk * per_shard


@dataclass(frozen=True)
class _Decoded:
    pixels: np.ndarray
    width: int
    height: int
    sha256: bytes


class ImageCache:
    """One dataset's images, decoded, in a Zarr store under a cache root.

    Build one with :meth:`open`; several processes may open, fill and read the same one at
    once. Picklable (Zarr handles are reopened in each process).

    Args:
        folder: an existing dataset folder (made by :meth:`open`).
        fetcher: how images are fetched (default: 16 parallel requests, 3 retries).
        max_bytes: bound on the whole cache root's size, kept after each fill by evicting
            least recently used shards (None: only keep 5% of the disk free).
        shared: the folder of this dataset in a shared cache on an object store, or None.

    Example:
        >>> cache = ImageCache.open("~/.cache/automl_nb/images", urls, resolution=256)
        >>> chunk = cache.read_chunk(0)  # fetches shard 0 first if needed
    """

    def __init__(self, folder: str | os.PathLike, fetcher: Fetcher | None = None,
                 max_bytes: int | None = None, shared: SharedFolder | None = None) -> None:
        self.folder = Path(folder)
        self.root = self.folder.parent
        self.fetcher = fetcher or Fetcher()
        self.max_bytes = max_bytes
        self.shared = shared
        self._unshared: set[int] = set()  # shards filled from their sources since last offered to `shared`
        try:
            self.urls: list[str] = json.loads((self.folder / URLS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise DataError(f"{self.folder} is not an image cache (no {URLS_FILE})") from error
        self.index = {url: row for row, url in enumerate(self.urls)}
        attributes = json.loads((self.folder / ZARR_FOLDER / "zarr.json").read_text())["attributes"]
        self.resolution: int = attributes["resolution"]
        self.images_per_chunk: int = attributes["images_per_chunk"]
        self.images_per_shard: int = attributes["images_per_shard"]
        self._arrays_cache: tuple | None = None
        self._pid = os.getpid()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | os.PathLike, urls: Sequence[str], resolution: int, *,
             images_per_chunk: int | None = None, chunks_per_shard: int | None = None, codec: str = "zstd",
             fetcher: Fetcher | None = None, max_bytes: int | None = None,
             shared_url: str | None = None) -> "ImageCache":
        """The cache of these images at ``resolution`` or more: an existing one, else a new, empty one.

        Args:
            root: the cache root, shared by every dataset.
            urls: the dataset's image URLs (any order, repeats allowed); rows are sorted URLs.
            resolution: long-side bound in pixels. An existing cache of the same URLs with a
                resolution at least this is reused (the smallest such).
            images_per_chunk, chunks_per_shard: layout of a new cache (default: by bytes).
            codec: Blosc compressor of a new cache: ``zstd`` (default), ``lz4`` or ``none``.
            fetcher, max_bytes: see the class.
            shared_url: the root of a shared cache on an object store (``s3://bucket/image-cache``):
                a dataset folder found there is copied rather than made anew, and is this
                cache's ``shared`` tier if its layout is the local one.

        Raises:
            DataError: no URLs.
            ValueError: resolution < 1 or an unknown codec.
        """
        if not urls:
            raise DataError("an image cache needs at least one image URL")
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1 pixel, got {resolution}")
        root = Path(root).expanduser()
        key = dataset_key(urls)
        folder = cls.find(root, key, resolution)
        if folder is None and shared_url:
            folder = _copy_shared_layout(root, shared_url, key, resolution)
        if folder is None:
            folder = root / f"{key}-{resolution}px"
            with file_lock(folder / "locks" / "create.lock", exclusive=True):
                if not (folder / URLS_FILE).exists():
                    cls._create(folder, sorted(set(urls)), resolution, images_per_chunk, chunks_per_shard, codec)
        shared = _attach_shared(f"{shared_url.rstrip('/')}/{folder.name}", folder) if shared_url else None
        return cls(folder, fetcher, max_bytes, shared)

    @staticmethod
    def find(root: str | os.PathLike, key: str, resolution: int) -> Path | None:
        """The ready folder of dataset ``key`` with the smallest resolution >= ``resolution``, if any."""
        found = []
        for folder in Path(root).glob(f"{key}-*px"):
            try:
                stored = int(folder.name.rsplit("-", 1)[1][:-2])
            except ValueError:
                continue
            if stored >= resolution and (folder / URLS_FILE).exists():
                found.append((stored, folder))
        return min(found)[1] if found else None

    @staticmethod
    def _create(folder: Path, urls: list[str], resolution: int, images_per_chunk: int | None,
                chunks_per_shard: int | None, codec: str) -> None:
        import zarr
        from zarr.storage import LocalStore

        per_chunk, per_shard = layout(resolution, images_per_chunk, chunks_per_shard)
        count, size = len(urls), resolution
        attributes = {"format": FORMAT_VERSION, "resolution": resolution, "count": count,
                      "images_per_chunk": per_chunk, "images_per_shard": per_shard}
        # mode "w" replaces what a creator killed half way may have left.
        group = zarr.open_group(LocalStore(folder / ZARR_FOLDER), mode="w", attributes=attributes)
        group.create_array("pixels", shape=(count, size, size, 3), dtype="uint8", chunks=(per_chunk, size, size, 3),
                           shards=(per_shard, size, size, 3), compressors=_compressor(codec), fill_value=0)
        group.create_array("meta", shape=(count, 5), dtype="int32", chunks=(per_shard, 5), fill_value=0)
        group.create_array("sha256", shape=(count, 32), dtype="uint8", chunks=(per_shard, 32), fill_value=0)
        atomic_write_text(folder / URLS_FILE, json.dumps(urls, ensure_ascii=False))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays_cache"] = None
        return state

    def _arrays(self) -> tuple:
        """``(pixels, meta, sha256)`` Zarr arrays, opened once per process."""
        if self._arrays_cache is None or self._pid != os.getpid():
            import zarr
            from zarr.storage import LocalStore

            group = zarr.open_group(LocalStore(self.folder / ZARR_FOLDER), mode="r+")
            self._arrays_cache = (group["pixels"], group["meta"], group["sha256"])
            self._pid = os.getpid()
        return self._arrays_cache

    # -- geometry --------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return len(self.urls)

    @property
    def chunk_count(self) -> int:
        return -(-self.count // self.images_per_chunk)

    @property
    def shard_count(self) -> int:
        return shard_count(self.count, self.images_per_shard)

    def chunk_rows(self, chunk: int) -> tuple[int, int]:
        start = chunk * self.images_per_chunk
        return start, min(start + self.images_per_chunk, self.count)

    def shard_rows(self, shard: int) -> tuple[int, int]:
        start = shard * self.images_per_shard
        return start, min(start + self.images_per_shard, self.count)

    def chunk_of(self, url: str) -> int:
        """The chunk holding ``url`` (KeyError if the URL is not in this dataset)."""
        return self.index[url] // self.images_per_chunk

    def _lock(self, shard: int) -> Path:
        return self.folder / "locks" / f"{shard}.lock"

    # -- reading and filling ---------------------------------------------------------------
    def read_chunk(self, chunk: int) -> Chunk:
        """The rows of ``chunk``, fetching its shard's missing images first.

        Rows that could not be fetched have a status other than ``CACHED`` and a reason in
        ``errors``; this never raises for one image (the reader decides).
        """
        start, stop = self.chunk_rows(chunk)
        shard = start // self.images_per_shard
        pixels_array, meta_array, _ = self._arrays()
        with file_lock(self._lock(shard), exclusive=False, touch=True):
            meta = meta_array[start:stop]
            if not (meta[:, STATUS] == MISSING).any():
                return Chunk(chunk, start, pixels_array[start:stop], meta, self._errors(shard, start, meta))
        with file_lock(self._lock(shard), exclusive=True, touch=True):
            failures = self._fill(shard)
            meta, pixels = meta_array[start:stop], pixels_array[start:stop]
            errors = self._errors(shard, start, meta)
        for row in np.flatnonzero(meta[:, STATUS] == MISSING):
            failure = failures.get(self.urls[start + row])
            errors[int(row)] = failure.message if failure else "not fetched"
        self._share(shard)
        self._enforce_bound(shard)
        return Chunk(chunk, start, pixels, meta, errors)

    def fill_shard(self, shard: int) -> dict[str, FetchFailure]:
        """Fetch and store the missing images of ``shard`` (waits for another filler of it).

        Returns:
            URL -> failure for the images that could not be stored now.
        """
        with file_lock(self._lock(shard), exclusive=True, touch=True):
            failures = self._fill(shard)
        self._share(shard)
        self._enforce_bound(shard)
        return failures

    def _fill(self, shard: int) -> dict[str, FetchFailure]:
        """Fill the missing rows of ``shard``; the caller holds its exclusive lock."""
        pixels_array, meta_array, sha_array = self._arrays()
        start, stop = self.shard_rows(shard)
        meta = meta_array[start:stop]
        todo = np.flatnonzero(meta[:, STATUS] == MISSING)
        if not todo.size:
            return {}
        if self._pull(shard):
            return {}
        for path in shard_paths(self.folder, shard):  # temporary files of a killed writer (Zarr's, ours)
            for pattern in (f"{path.stem}.*.partial", f".{path.name}.*.tmp"):
                for partial in path.parent.glob(pattern):
                    partial.unlink(missing_ok=True)
        some_cached = todo.size < stop - start
        size = self.resolution
        pixels = pixels_array[start:stop] if some_cached else np.zeros((stop - start, size, size, 3), np.uint8)
        sha = sha_array[start:stop] if some_cached else np.zeros((stop - start, 32), np.uint8)
        errors = self._read_errors(shard)
        results = self.fetcher.fetch([self.urls[start + k] for k in todo], self._decode)
        failures = {}
        for k, result in zip(todo, results):
            pixels[k] = 0
            if isinstance(result, FetchFailure):
                failures[result.url] = result
                if result.permanent:
                    meta[k] = (FAILED, 0, 0, 0, 0)
                    errors[str(start + k)] = result.message
                continue
            height, width = result.pixels.shape[:2]
            pixels[k, :height, :width] = result.pixels
            sha[k] = np.frombuffer(result.sha256, np.uint8)
            meta[k] = (CACHED, result.width, result.height, width, height)
        pixels_array[start:stop] = pixels
        sha_array[start:stop] = sha
        if errors:
            atomic_write_text(self.folder / "errors" / f"{shard}.json", json.dumps(errors))
        meta_array[start:stop] = meta  # last: this commits the rows
        self._unshared.add(shard)
        return failures

    # -- the shared tier -------------------------------------------------------------------
    def _pull(self, shard: int) -> bool:
        """Take ``shard`` from the shared tier if it is there; the caller holds its exclusive lock."""
        if self.shared is None:
            return False
        try:
            return self.shared.pull(self.folder, shard)
        except Exception as error:  # a network failure: fetch the images from their sources instead
            log.warning("could not download shard %d from %s (%s); fetching its images", shard, self.shared.url, error)
            return False

    def _share(self, shard: int) -> bool:
        """Upload ``shard`` to the shared tier if it was filled here and is now complete; True if uploaded."""
        if self.shared is None or shard not in self._unshared:
            return False
        self._unshared.discard(shard)
        start, stop = self.shard_rows(shard)
        with file_lock(self._lock(shard), exclusive=False):
            if (self._arrays()[1][start:stop, STATUS] == MISSING).any():
                return False  # an image failed for now (not for good): share it once complete
            try:
                return self.shared.publish(self.folder, shard)
            except Exception as error:  # the trial goes on with its local copy
                log.warning("could not upload shard %d to %s: %s", shard, self.shared.url, error)
                return False

    def share_all(self) -> int:
        """Upload every complete shard of this machine that the shared tier lacks (a cache filled
        before it had one); return how many were uploaded."""
        self._unshared.update(range(self.shard_count))
        return sum(self._share(shard) for shard in range(self.shard_count))

    def _decode(self, url: str, data: bytes) -> _Decoded:
        """Decode like :func:`~automl_nb.data.images.open_image`, then shrink to fit the resolution."""
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                stored = fit_size(width, height, self.resolution)
                if stored != (width, height):
                    image.draft("RGB", stored)  # JPEG: decode at 1/2, 1/4 or 1/8 scale, still >= stored
                image.load()
                rgb = image.convert("RGB") if image.mode != "RGB" else image
                if rgb.size != stored:
                    rgb = rgb.resize(stored, Image.Resampling.LANCZOS)
                pixels = np.asarray(rgb)
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... on bad data
            raise DataError(f"cannot read image {url}: {error}") from error
        return _Decoded(pixels, width, height, hashlib.sha256(data).digest())

    def _read_errors(self, shard: int) -> dict[str, str]:
        try:
            return json.loads((self.folder / "errors" / f"{shard}.json").read_text())
        except FileNotFoundError:
            return {}

    def _errors(self, shard: int, start: int, meta: np.ndarray) -> dict[int, str]:
        failed = np.flatnonzero(meta[:, STATUS] == FAILED)
        if not failed.size:
            return {}
        stored = self._read_errors(shard)
        return {int(row): stored.get(str(start + row), "unreadable") for row in failed}

    def _enforce_bound(self, shard: int) -> None:
        enforce_bound(self.root, self.max_bytes, keep={(self.folder, shard)})

    # -- whole-cache views -----------------------------------------------------------------
    def status(self) -> np.ndarray:
        """The status of every row (``MISSING``, ``CACHED`` or ``FAILED``)."""
        return np.asarray(self._arrays()[1][:, STATUS])

    def failures(self) -> dict[str, str]:
        """URL -> reason for every image that failed for good (corrupt, not found, forbidden)."""
        found = {}
        for path in sorted((self.folder / "errors").glob("*.json")):
            for row, message in json.loads(path.read_text()).items():
                found[self.urls[int(row)]] = message
        status = self.status()
        return {url: message for url, message in found.items() if status[self.index[url]] == FAILED}

    def content_hash(self, url: str) -> str | None:
        """The SHA-256 (hex) of the source bytes the cached image of ``url`` was decoded from."""
        row = self.index[url]
        if self._arrays()[1][row, STATUS] != CACHED:
            return None
        return bytes(self._arrays()[2][row]).hex()

    def original_size(self, url: str) -> tuple[int, int] | None:
        """``(width, height)`` of the source image of ``url`` if cached."""
        meta = self._arrays()[1][self.index[url]]
        return (int(meta[WIDTH]), int(meta[HEIGHT])) if meta[STATUS] == CACHED else None

    def __repr__(self) -> str:
        return (f"ImageCache({str(self.folder)!r}, images={self.count}, resolution={self.resolution}, "
                f"chunk={self.images_per_chunk}, shard={self.images_per_shard}, shared={self.shared})")


def _copy_shared_layout(root: Path, shared_url: str, key: str, resolution: int) -> Path | None:
    """A local folder made from the shared cache's folder of dataset ``key`` (another machine's layout,
    so shards copy as they are), or None: there is none, or the store cannot be reached (a warning)."""
    try:
        name = SharedFolder.find(shared_url, key, resolution)
        if name is None:
            return None
        folder = root / name
        with file_lock(folder / "locks" / "create.lock", exclusive=True):
            if not (folder / URLS_FILE).exists():
                SharedFolder(f"{shared_url}/{name}").download_metadata(folder)
        return folder
    except Exception as error:  # the trial still has its local cache
        warnings.warn(f"could not read the shared image cache {shared_url} ({type(error).__name__}: {error}); "
                      "this machine fetches and decodes its images itself", stacklevel=3)
        return None


def _attach_shared(url: str, folder: Path) -> SharedFolder | None:
    """The shared folder at ``url`` for the local ``folder`` (its layout uploaded if it has none), or
    None with a warning when its layout differs from the local one or the store cannot be reached."""
    shared = SharedFolder(url)
    try:
        if not shared.is_ready():
            shared.publish_metadata(folder)
        if shared.matches(folder):
            return shared
        reason = "its chunk or shard layout differs from this machine's cache"
    except Exception as error:  # unreachable, no access: the trial still has its local cache
        reason = f"{type(error).__name__}: {error}"
    warnings.warn(f"not sharing the image cache {folder.name} through {url}: {reason}; "
                  "this machine fetches and decodes its images itself", stacklevel=3)
    return None
