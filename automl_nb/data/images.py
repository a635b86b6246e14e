"""Open images and read their sizes from local paths or any fsspec URL.

EXIF orientation is not applied: sizes and pixels are those stored in the file, so they
match the header sizes the boxes were normalised against.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import IO, Any, Callable, Iterator

from PIL import Image

from automl_nb.data.records import is_url
from automl_nb.errors import DataError

# Protocols whose existence checks are cheap (no network round trip).
LOCAL_PROTOCOLS = ("file", "local", "memory")


def protocol(url: str) -> str:
    """Return the URL scheme of ``url`` (``"file"`` for a plain local path)."""
    url = str(url)
    return url.split("://", 1)[0].lower() if is_url(url) else "file"


@contextmanager
def _open_binary(url: str) -> Iterator[IO[bytes]]:
    """Open ``url`` for binary reading; DataError if it does not exist."""
    if not is_url(url):
        if not os.path.isfile(url):
            raise DataError(f"image not found: {url}")
        with open(url, "rb") as f:
            yield f
        return
    import fsspec  # only needed for URLs; keeps plain-path use light

    try:
        opened = fsspec.open(url, "rb").open()
    except FileNotFoundError as exc:
        raise DataError(f"image not found: {url}") from exc
    except Exception as exc:  # unknown protocol, missing optional backend, network...
        raise DataError(f"cannot open image {url}: {exc}") from exc
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def _pil_image(url: str | os.PathLike) -> Iterator[Image.Image]:
    """The lazily opened PIL image at ``url``; a decoding error in the block names the URL."""
    url = str(url)
    with _open_binary(url) as f:
        try:
            with Image.open(f) as image:
                yield image
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... on bad data
            raise DataError(f"cannot read image {url}: {exc}") from exc


def open_image(url: str | os.PathLike) -> Image.Image:
    """Open an image fully decoded as RGB.

    Args:
        url: local path or fsspec URL.

    Returns:
        A loaded ``PIL.Image.Image`` in mode ``"RGB"``.

    Raises:
        DataError: the image is missing, unreadable or corrupt (names the URL).
    """
    with _pil_image(url) as image:
        image.load()
        return image.convert("RGB") if image.mode != "RGB" else image.copy()


def image_info(url: str | os.PathLike, verify: bool = False) -> tuple[int, int, str]:
    """Read an image's width, height and format from its header.

    Args:
        url: local path or fsspec URL.
        verify: also run PIL's ``verify()`` (checks chunk structure, e.g. PNG CRCs,
            without decoding pixels).

    Returns:
        ``(width, height, format)`` with format lower case, e.g. ``"png"``, ``"jpeg"``.

    Raises:
        DataError: the image is missing, unreadable or corrupt (names the URL).
    """
    with _pil_image(url) as image:
        width, height = image.size
        image_format = (image.format or "").lower()
        if verify:
            image.verify()
    return width, height, image_format


def image_size(url: str | os.PathLike) -> tuple[int, int]:
    """Return ``(width, height)`` of an image, reading only its header.

    Raises:
        DataError: the image is missing, unreadable or corrupt (names the URL).
    """
    width, height, _ = image_info(url)
    return width, height


# ---- image readers: what the torch datasets call to get an image ---------------------------

# A reader maps an image URL to its decoded RGB image: a PIL image, or, from the image cache's
# reader for classification, a uint8 tensor image (what ``ToImage`` would make of it).
# :func:`open_image` is the default; :mod:`automl_nb.data.cache` streams and caches.
ImageReader = Callable[[str], Any]


class SkippedImage(DataError):
    """Raised by an image reader for an unreadable image the user chose to skip (names the URL)."""


def read_or_substitute(reader: ImageReader, url_of: Callable[[int], str], index: int,
                       count: int) -> tuple[int, Any]:
    """Read the image of sample ``index``; if the reader skips it, the next readable sample's.

    A dataset cannot drop a sample in the middle of an epoch (the loader has counted them),
    so a skipped image is replaced by the next readable one, wrapping around.

    Args:
        reader: the dataset's image reader.
        url_of: the image URL of a sample index.
        index: the sample asked for.
        count: how many samples the dataset has.

    Returns:
        ``(index read, image)``; the index differs from ``index`` when an image was skipped.

    Raises:
        DataError: every image was skipped, or the reader failed (not a skip).
    """
    for step in range(count):
        sample = (index + step) % count
        try:
            return sample, reader(url_of(sample))
        except SkippedImage:
            continue
    raise DataError(f"every one of the {count} images was unreadable and skipped")
