"""Fetch image bytes from any fsspec URL: parallel, bounded, retried.

Credentials come from fsspec's own configuration (``~/.config/fsspec/*.json``,
``FSSPEC_<PROTOCOL>_<KEY>`` environment variables) and each cloud SDK's default chain (AWS
profiles and instance roles, ``GOOGLE_APPLICATION_CREDENTIALS``, Azure's
``DefaultAzureCredential`` settings): no storage options are ever passed from a job.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

from automl_nb.data.records import is_url

# Errors that no retry can fix.
_PERMANENT_ERRORS = (FileNotFoundError, IsADirectoryError, PermissionError)


@dataclass(frozen=True)
class FetchFailure:
    """Why the bytes of ``url`` could not be had.

    Attributes:
        url: the image URL.
        message: the last error, as text.
        permanent: the source said the image does not exist or may not be read (a retry
            later would fail the same way); False for network errors that outlived the retries.
    """

    url: str
    message: str
    permanent: bool


def is_permanent(error: BaseException) -> bool:
    """Whether ``error`` means the image is missing or forbidden (HTTP 4xx but 408/429), not flaky."""
    if isinstance(error, _PERMANENT_ERRORS):
        return True
    status = getattr(error, "status", None) or getattr(error, "code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def read_bytes(url: str) -> bytes:
    """The bytes at a local path or fsspec URL (one attempt)."""
    if not is_url(url):
        with open(url, "rb") as f:
            return f.read()
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs.cat_file(path)


class Fetcher:
    """Reads many URLs at once with a bounded thread pool, retrying transient errors.

    Args:
        max_workers: requests in flight at most (per process).
        retries: further attempts after a transient error (0: try once).
        backoff_s: wait before the first retry; doubled (with jitter) for each next one.
        read: how one URL is read; :func:`read_bytes` unless a test says otherwise.

    Example:
        >>> results = Fetcher(max_workers=8).fetch(["https://example.com/a.jpg"], decode)
    """

    def __init__(self, max_workers: int = 16, retries: int = 3, backoff_s: float = 0.25,
                 read: Callable[[str], bytes] = read_bytes) -> None:
        if max_workers < 1 or retries < 0 or backoff_s < 0:
            raise ValueError(f"max_workers >= 1, retries >= 0 and backoff_s >= 0 expected, got "
                             f"{max_workers}, {retries}, {backoff_s}")
        self.max_workers, self.retries, self.backoff_s, self.read = max_workers, retries, backoff_s, read

    def fetch(self, urls: Sequence[str], convert: Callable[[str, bytes], object]) -> list:
        """Read every URL and pass its bytes to ``convert`` in the pool (PIL decodes without the GIL).

        Args:
            urls: what to read.
            convert: ``convert(url, data)``; a ``DataError`` it raises (corrupt image) is a
                permanent failure of that URL.

        Returns:
            One entry per URL, in order: what ``convert`` returned, or a :class:`FetchFailure`.
        """
        if not urls:
            return []
        workers = min(self.max_workers, len(urls))
        if workers == 1:
            return [self._one(url, convert) for url in urls]
        with ThreadPoolExecutor(workers, thread_name_prefix="automl-nb-fetch") as pool:
            return list(pool.map(lambda url: self._one(url, convert), urls))

    def _one(self, url: str, convert: Callable[[str, bytes], object]):
        from automl_nb.errors import DataError

        attempt = 0
        while True:
            try:
                data = self.read(url)
                break
            except Exception as error:  # fsspec backends raise their own types
                if is_permanent(error) or attempt == self.retries:
                    return FetchFailure(url, _describe(error), is_permanent(error))
            time.sleep(self.backoff_s * 2**attempt * random.uniform(0.5, 1.5))
            attempt += 1
        try:
            return convert(url, data)
        except DataError as error:
            return FetchFailure(url, str(error), permanent=True)


def _describe(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return "not found"
    return f"{type(error).__name__}: {error}"
