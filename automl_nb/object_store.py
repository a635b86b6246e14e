"""Folders on an object store (``s3://``, ``gs://``, ``abfs://``), read and written one whole object at a time.

An object store replaces an object atomically: a reader sees the old object or the new one, never
half. What it lacks is a rename, so the writers that must not race (a trial's lease, a shard of the
shared image cache) use conditional writes instead: create only where there is none
(``If-None-Match: *``), replace only the version last seen (``If-Match`` its ETag).

Used by the run store on a URL (:mod:`automl_nb.sweep.remote`) and the shared image cache
(:mod:`automl_nb.data.cache.shared`). Storage options come from fsspec's configuration of each
machine and each protocol's own credentials; nothing is passed from a job.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection

from automl_nb._atomic import atomic_writer
from automl_nb.errors import AutoMLError

# Reads of an object that keeps being replaced while it is read, before giving up.
READ_ATTEMPTS = 5
# The object stores allowed, and the package that gives fsspec each one.
SCHEMES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs", "abfss": "adlfs",
           "az": "adlfs"}

def check_url(url: str, key: str = "output", holder: str = "a run",
              otherwise: str = "a local (or shared) folder path") -> str:
    """``url`` without a trailing slash, once its scheme is an object store and its package is installed.

    Args:
        url: the URL to check.
        key: the setting that gave it, named in the message.
        holder: what is to live there, named in the message (``"a run"``, ``"an image cache"``).
        otherwise: what else the setting takes, named in the message ("" for nothing).

    Raises:
        AutoMLError: another scheme, no bucket, or the protocol's package (s3fs, gcsfs, adlfs) missing.
    """
    scheme, _, rest = url.partition("://")
    if scheme not in SCHEMES:
        allowed = ", ".join(f"{name}://" for name in SCHEMES)
        allowed += f", or {otherwise}" if otherwise else ""
        raise AutoMLError(f"{key}: {url!r}: {scheme + '://'!r} is not a store {holder} can live on; allowed: {allowed}")
    if not rest.strip("/"):
        raise AutoMLError(f"{key}: {url!r}: no bucket or container; e.g. {scheme}://bucket/runs/shapes")
    package = SCHEMES[scheme]
    if importlib.util.find_spec(package) is None:
        raise AutoMLError(f"{key}: {url!r} needs the {package} package, which is not installed; "
                          f"pip install 'automl_nb[remote]' (or pip install {package})")
    return url.rstrip("/")


def storage_options(protocol: str) -> dict:
    """fsspec's configuration for ``protocol``, with ``FSSPEC_<PROTOCOL>_<OPTION>`` read now (not only
    when fsspec was imported), and no listing cache: the store changes under us."""
    import fsspec.config

    conf = json.loads(json.dumps(fsspec.config.conf))  # a copy
    fsspec.config.set_conf_env(conf)
    return {"use_listings_cache": False, **conf.get(protocol, {})}


@dataclass(frozen=True)
class RemoteFolder:
    """A folder on an object store, read and written one whole object at a time.

    Attributes:
        url: ``scheme://bucket/path`` (no trailing slash).
    """

    url: str

    @property
    def fs(self):
        """The fsspec filesystem (fsspec caches instances, so this is cheap)."""
        return self._fs_and_root()[0]

    @property
    def root(self) -> str:
        return self._fs_and_root()[1]

    def _fs_and_root(self):
        from fsspec.core import url_to_fs

        return url_to_fs(self.url, **storage_options(self.url.split("://", 1)[0]))

    def child(self, rel: str) -> "RemoteFolder":
        return RemoteFolder(f"{self.url}/{rel.strip('/')}")

    def listing(self, skip: Collection[str] = ()) -> dict[str, Any]:
        """Every object under the folder: relative name -> its version (ETag, else size and time).

        Args:
            skip: names of top-level subfolders left out (not listed at all: a run's image cache
                holds thousands of objects that a run's sync never reads).
        """
        fs, root = self._fs_and_root()
        try:
            if not skip:
                found = fs.find(root, detail=True)
            else:
                found = {}
                for info in fs.ls(root, detail=True):
                    name = info["name"].rstrip("/")
                    if name.rsplit("/", 1)[-1] in skip:
                        continue
                    found.update(fs.find(name, detail=True) if info.get("type") == "directory" else {name: info})
        except FileNotFoundError:
            return {}
        return {path[len(root) + 1:]: _version(info) for path, info in found.items()
                if path.startswith(root + "/") and info.get("type", "file") == "file"}

    def exists(self, rel: str) -> bool:
        fs, root = self._fs_and_root()
        return fs.exists(f"{root}/{rel}")

    def put(self, local: Path, rel: str) -> None:
        """Upload a complete local file as one object (replaced whole)."""
        fs, root = self._fs_and_root()
        fs.put_file(str(local), f"{root}/{rel}")

    def version(self, rel: str) -> Any:
        """An object's version as :meth:`listing` gives it (ETag, else size and time)."""
        fs, root = self._fs_and_root()
        return _version(fs.info(f"{root}/{rel}"))

    def get(self, rel: str, local: Path) -> None:
        """Download one object into ``local`` (a temporary file renamed into place).

        An object replaced while it is read (s3fs reads with ``If-Match`` on the ETag it opened, and
        raises EBUSY) is read again, up to :data:`READ_ATTEMPTS` times: a trial rewrites its
        ``metrics.jsonl`` at every evaluation while other machines download it.
        """
        fs, root = self._fs_and_root()
        for attempt in range(READ_ATTEMPTS):
            try:
                with fs.open(f"{root}/{rel}", "rb") as source, atomic_writer(local) as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                return
            except OSError as error:
                if error.errno != errno.EBUSY or attempt == READ_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))  # past the writer's next upload, most likely

    def remove(self, rel: str) -> None:
        fs, root = self._fs_and_root()
        try:
            fs.rm_file(f"{root}/{rel}")
        except FileNotFoundError:
            pass

    def read_tagged(self, rel: str) -> tuple[bytes, str | None] | None:
        """An object's bytes and the ETag they belong to; None when there is no such object."""
        fs, root = self._fs_and_root()
        try:
            with fs.open(f"{root}/{rel}", "rb") as f:  # s3fs reads with If-Match on this ETag
                return f.read(), _etag(getattr(f, "details", {}))
        except FileNotFoundError:
            return None

    def write_tagged(self, rel: str, data: bytes, *, if_match: str | None = None, create: bool = False) -> str | None:
        """Write one object only if it is absent (``create``) or still at ETag ``if_match``; return its new ETag.

        Raises:
            FileExistsError: ``create`` and the object exists.
            PermissionError: ``if_match`` and the object changed (another writer got there first).
        """
        fs, root = self._fs_and_root()
        conditions = {"IfMatch": if_match} if if_match and fs.protocol[0] in ("s3", "s3a") else {}
        try:
            out = fs.pipe_file(f"{root}/{rel}", data, mode="create" if create else "overwrite", **conditions)
        except OSError as error:  # FileExistsError (``create``) goes up as it is
            if conditions and _precondition_failed(error):
                raise PermissionError(f"{self.url}/{rel}: changed since ETag {if_match}") from None
            raise
        return _etag(out) if isinstance(out, dict) else None


def _precondition_failed(error: OSError) -> bool:
    """s3fs's error for a failed ``If-Match`` (HTTP 412): an EINVAL OSError caused by botocore's ClientError."""
    response = getattr(error.__cause__, "response", None) or {}
    return response.get("Error", {}).get("Code") == "PreconditionFailed" or "pre-condition" in str(error).lower()


def _etag(info: dict) -> str | None:
    value = info.get("ETag") or info.get("etag") or info.get("generation")
    return None if value is None else str(value)


def _version(info: dict) -> Any:
    return _etag(info) or f"{info.get('size')}@{info.get('LastModified') or info.get('mtime')}"
