"""The image cache's shared tier: a dataset's Zarr store on an object store, filled once for every worker.

Each machine keeps its own cache on local disk (:class:`~automl_nb.data.cache.store.ImageCache`,
with its locks and its eviction). Given a shared URL (see
:func:`~automl_nb.data.cache.settings.shared_cache_url`), a shard that one worker fetched and
decoded is uploaded there, and the other workers download it instead of fetching and decoding
its images again.

The shared URL has the local layout, one folder per dataset and resolution, so each folder's
``images.zarr`` is a Zarr store that ``zarr.open_group`` reads as it is::

    <key>-<res>px/images.zarr/...      the same Zarr metadata and shard files as a local folder
    <key>-<res>px/urls.json            uploaded after the metadata: the folder is ready
    <key>-<res>px/claims/<shard>.json  who publishes the shard

An object store has no rename and no lock; these rules keep it consistent with whole-object
writes and conditional ones (:class:`~automl_nb.object_store.RemoteFolder`):

- Only a **complete** shard (every image cached, or failed for good) is published, so any two
  complete fills of a shard agree (same source bytes, same decoder).
- **One publisher per shard.** A publisher first creates the shard's claim (``If-None-Match: *``);
  another one finds it and leaves the shard alone. A claim whose publisher died before its
  ``meta`` landed is taken over after :data:`CLAIM_STALE_SECONDS` (``If-Match`` on its ETag).
- **``meta`` commits the shard.** It is uploaded last; a reader takes a shard only when its
  ``meta`` is there, and writes it last into its local folder (each file renamed into place),
  so the local rule "a row's status says whether its pixels are there" holds on every machine.
- Nothing is evicted from the shared URL: it holds each shard once.
  ``automl-nb cache clear --shared URL`` empties it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from pathlib import Path

from automl_nb._atomic import atomic_write_bytes
from automl_nb.data.cache.evict import shard_paths
from automl_nb.object_store import RemoteFolder

log = logging.getLogger(__name__)

URLS_FILE = "urls.json"
# A folder's Zarr metadata, uploaded before URLS_FILE (its ready marker).
ZARR_METADATA = ("images.zarr/zarr.json", "images.zarr/pixels/zarr.json", "images.zarr/meta/zarr.json",
                 "images.zarr/sha256/zarr.json")
# A claim older than this whose shard has no meta was left by a publisher that died. Uploading a
# shard (64 MB at most) takes seconds; this leaves room for a slow link, measured by the
# publishers' clocks, which need only agree to within minutes.
CLAIM_STALE_SECONDS = 15 * 60


class SharedFolder:
    """One dataset folder of the image cache on an object store.

    Args:
        url: ``<shared root>/<key>-<res>px`` (the local folder's name under the shared root).

    Example:
        >>> shared = SharedFolder("s3://bucket/image-cache/0f3a...-256px")
        >>> shared.pull(local_folder, shard=3)  # True: shard 3 is now in the local folder
    """

    def __init__(self, url: str) -> None:
        self.remote = RemoteFolder(url.rstrip("/"))

    @property
    def url(self) -> str:
        return self.remote.url

    def __repr__(self) -> str:
        return f"SharedFolder({self.url!r})"

    # -- the folder ------------------------------------------------------------------------
    @staticmethod
    def folders(root_url: str) -> list[str]:
        """The names of the dataset folders (``<key>-<res>px``) under a shared root, ready or not."""
        root = RemoteFolder(root_url.rstrip("/"))
        try:
            names = [info["name"].rstrip("/").rsplit("/", 1)[-1] for info in root.fs.ls(root.root, detail=True)]
        except FileNotFoundError:
            return []
        return sorted(name for name in names if name.endswith("px") and name.rpartition("-")[2][:-2].isdigit())

    @staticmethod
    def find(root_url: str, key: str, resolution: int) -> str | None:
        """The name of the ready folder of dataset ``key`` with the smallest resolution >= ``resolution``."""
        found = []
        for name in SharedFolder.folders(root_url):
            prefix, _, size = name.rpartition("-")
            if prefix == key and int(size[:-2]) >= resolution:
                found.append((int(size[:-2]), name))
        for _, name in sorted(found):
            if SharedFolder(f"{root_url.rstrip('/')}/{name}").is_ready():
                return name
        return None

    def is_ready(self) -> bool:
        return self.remote.exists(URLS_FILE)

    def attributes(self) -> dict:
        """The Zarr group's attributes: ``resolution``, ``count``, ``images_per_chunk``, ``images_per_shard``."""
        tagged = self.remote.read_tagged(ZARR_METADATA[0])
        return {} if tagged is None else json.loads(tagged[0]).get("attributes", {})

    def shard_count(self) -> int:
        """How many shards the dataset has (published or not), from the folder's attributes."""
        attributes = self.attributes()
        return shard_count(attributes.get("count", 0), attributes.get("images_per_shard", 1))

    def clear(self) -> None:
        """Delete the whole folder from the store."""
        try:
            self.remote.fs.rm(self.remote.root, recursive=True)
        except FileNotFoundError:
            pass

    def download_metadata(self, local: Path) -> None:
        """Make ``local`` an empty cache folder with this folder's layout (its ready marker last)."""
        for rel in (*ZARR_METADATA, URLS_FILE):
            self.remote.get(rel, Path(local) / rel)

    def publish_metadata(self, local: Path) -> None:
        """Upload the layout of the local folder ``local`` where there is none (each file created only if absent)."""
        for rel in (*ZARR_METADATA, URLS_FILE):
            try:
                self.remote.write_tagged(rel, (Path(local) / rel).read_bytes(), create=True)
            except FileExistsError:
                pass  # another worker made it first; matches() says whether its layout is ours

    def matches(self, local: Path) -> bool:
        """Whether this folder's Zarr layout is the local folder's (chunks, shards, codec), so files copy as they are."""
        for rel in ZARR_METADATA:
            tagged = self.remote.read_tagged(rel)
            if tagged is None or json.loads(tagged[0]) != json.loads((Path(local) / rel).read_bytes()):
                return False
        return True

    # -- shards ----------------------------------------------------------------------------
    def pull(self, local: Path, shard: int) -> bool:
        """Download a published shard into the local folder, its ``meta`` last; False if it is not published.

        The caller holds the local shard's exclusive lock.
        """
        local = Path(local)
        meta, *rest = _shard_files(local, shard)
        tagged = self.remote.read_tagged(meta)
        if tagged is None:
            return False
        for rel in reversed(rest):  # pixels first
            try:
                self.remote.get(rel, local / rel)
            except FileNotFoundError:  # a shard with no failures has no errors file
                (local / rel).unlink(missing_ok=True)
        atomic_write_bytes(local / meta, tagged[0])
        return True

    def publish(self, local: Path, shard: int) -> bool:
        """Upload a complete local shard unless it is published or another worker publishes it; True if uploaded.

        The caller holds the local shard's lock (shared), so the files do not change meanwhile.
        """
        local = Path(local)
        files = _shard_files(local, shard)
        if self.remote.exists(files[0]) or not self._claim(shard, files[0]):
            return False
        try:
            for rel in reversed(files):  # meta last: it commits the shard
                if (local / rel).exists():
                    self.remote.put(local / rel, rel)
        except BaseException:
            self._give_back(shard)  # so another worker may publish it now, not in 15 minutes
            raise
        return True

    def published(self) -> int:
        """How many shards this folder holds (one ``meta`` chunk folder each)."""
        try:
            return len(self.remote.fs.ls(f"{self.remote.root}/images.zarr/meta/c"))
        except FileNotFoundError:
            return 0

    def _claim(self, shard: int, meta: str) -> bool:
        """Become the shard's one publisher: create its claim, or take over a stale one."""
        rel = _claim_file(shard)
        body = json.dumps({"holder": _holder(), "time": time.time()}).encode()
        try:
            self.remote.write_tagged(rel, body, create=True)
            return True
        except FileExistsError:
            pass
        tagged = self.remote.read_tagged(rel)
        if tagged is None:
            return False  # removed meanwhile (the cache was cleared): leave the shard to a later fill
        data, etag = tagged
        if etag is None:  # no version to take it over on: leave it
            return False
        try:
            age = time.time() - float(json.loads(data)["time"])
        except (ValueError, KeyError, TypeError):
            age = math.inf  # unreadable: no live publisher wrote it
        if age < CLAIM_STALE_SECONDS or self.remote.exists(meta):
            return False
        try:
            self.remote.write_tagged(rel, body, if_match=etag)
        except PermissionError:  # another worker took it over first
            return False
        log.info("took over the stale claim of shard %d of %s (%.0f s old)", shard, self.url, age)
        return True


    def _give_back(self, shard: int) -> None:
        """Remove the shard's claim if it is still this process's (one taken over meanwhile is another's)."""
        try:
            tagged = self.remote.read_tagged(_claim_file(shard))
            if tagged is not None and json.loads(tagged[0]).get("holder") == _holder():
                self.remote.remove(_claim_file(shard))
        except Exception:  # the store is out of reach: the claim goes stale in CLAIM_STALE_SECONDS
            pass


def shard_count(images: int, images_per_shard: int) -> int:
    """How many shards hold ``images`` rows, ``images_per_shard`` to a shard (the last one may be short)."""
    return -(-images // max(images_per_shard, 1))


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim_file(shard: int) -> str:
    return f"claims/{shard}.json"


def _shard_files(local: Path, shard: int) -> list[str]:
    """A shard's files relative to its dataset folder: ``meta`` (the commit marker) first, pixels last."""
    return [path.relative_to(local).as_posix() for path in shard_paths(local, shard)]
