"""Open images and read their sizes from local paths or any fsspec URL.

EXIF orientation is not applied: sizes and pixels are those stored in the file, so they
match the header sizes the boxes were normalised against. :func:`check_image_files` checks
many files without decoding them, on a pool of threads (the data check before a run).
"""

from __future__ import annotations

import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import IO, Any, Callable, Iterable, Iterator

from PIL import Image, UnidentifiedImageError

from automl_nb.data.records import is_url
from automl_nb.errors import DataError

# Protocols whose existence checks are cheap (no network round trip).
LOCAL_PROTOCOLS = ("file", "local", "memory")

# Threads that check image files at once. A remote check mostly waits on the network: with
# 20 ms to first byte, 32 threads check ~25x as many images/s as one (bench/data_check.py).
# A local check of files in the page cache is CPU-bound (1 to 8 threads within ~20%), but
# threads overlap the waits of a cold disk or a network mount.
LOCAL_CHECK_THREADS = 4
REMOTE_CHECK_THREADS = 32
# Checks of more images than this show a progress bar.
PROGRESS_ABOVE = 1000


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


# ---- checking image files without decoding them: the data check before a run -----------------

def check_image_file(url: str | os.PathLike) -> tuple[int, int, str]:
    """Check that an image file is whole and readable, without decoding its pixels.

    Reads the header (format and size), then what can be checked without decoding: a PNG's
    chunks and their CRCs (PIL's ``verify``; a cut file fails it), a JPEG's end-of-image
    marker (a cut download has none), and the size against PIL's decompression-bomb limit
    ``PIL.Image.MAX_IMAGE_PIXELS`` (over it, decoding would be refused or warned about).

    Args:
        url: local path or fsspec URL.

    Returns:
        ``(width, height, format)`` with format lower case, e.g. ``"png"``, ``"jpeg"``.

    Raises:
        DataError: "cannot read image URL: why" (missing, empty, not an image, truncated,
            corrupt, too many pixels), or "image not found: URL".

    Example:
        >>> check_image_file("data/images/cat-1.jpg")
        (640, 480, 'jpeg')
    """
    url = str(url)
    if protocol(url) not in LOCAL_PROTOCOLS:
        # One GET of the whole file: the checks below read all of it anyway, and opening the
        # URL as a file would cost a HEAD request first (measured: half the rate over http).
        return _check_image_stream(url, io.BytesIO(_fetch(url)))
    with _open_binary(url) as f:
        return _check_image_stream(url, f)


def _fetch(url: str) -> bytes:
    """The bytes of a remote file; DataError naming the URL when it cannot be read."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        return fs.cat_file(path)
    except FileNotFoundError as exc:
        raise DataError(f"image not found: {url}") from exc
    except Exception as exc:  # unknown protocol, missing optional backend, network...
        raise DataError(f"cannot open image {url}: {exc}") from exc


def _check_image_stream(url: str, f: IO[bytes]) -> tuple[int, int, str]:
    """The checks of :func:`check_image_file` on an open file."""
    try:
        with Image.open(f) as image:
            width, height = image.size
            image_format = (image.format or "").lower()
            _check_pixel_limit(url, width, height)
            if image_format == "jpeg":
                _check_jpeg_end(url, f)
            else:
                image.verify()
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataError(f"cannot read image {url}: {exc} (PIL.Image.MAX_IMAGE_PIXELS is "
                        f"{Image.MAX_IMAGE_PIXELS}); {_BOMB_ADVICE}") from exc
    except UnidentifiedImageError as exc:
        raise DataError(f"cannot read image {url}: {_what_is_it(f)}") from exc
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... on bad data
        raise DataError(f"cannot read image {url}: {exc}") from exc
    return width, height, image_format


def check_image_files(
    urls: Iterable[str | os.PathLike],
    *,
    threads: int | None = None,
    progress: bool | None = None,
) -> dict[str, tuple[int, int, str] | DataError]:
    """Check many image files with :func:`check_image_file`, on a pool of threads.

    Args:
        urls: local paths or fsspec URLs; a repeated one is checked once.
        threads: checks at a time (default :data:`LOCAL_CHECK_THREADS`, or
            :data:`REMOTE_CHECK_THREADS` when any image is remote, e.g. http or s3).
        progress: show a progress bar (default: for more than :data:`PROGRESS_ABOVE` images).

    Returns:
        For each distinct URL, in the order given: ``(width, height, format)``, or the
        DataError saying what is wrong with it.

    Example:
        >>> results = check_image_files(["a.png", "http://host/b.jpg"])
        >>> bad = {url: error for url, error in results.items() if isinstance(error, DataError)}
    """
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(str(url) for url in urls))
    if threads is None:
        remote = any(protocol(url) not in LOCAL_PROTOCOLS for url in unique)
        threads = REMOTE_CHECK_THREADS if remote else LOCAL_CHECK_THREADS
    show = len(unique) > PROGRESS_ABOVE if progress is None else progress
    results: dict[str, tuple[int, int, str] | DataError] = {}
    # The pixel limit is checked (and reported) by check_image_file; PIL's own warning would
    # repeat it. Filters are process-wide, so they are set here, around the pool.
    with warnings.catch_warnings(), ThreadPoolExecutor(max(1, threads)) as pool, \
            tqdm(total=len(unique), unit="img", desc="checking images", disable=not show) as bar:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for url, result in zip(unique, pool.map(_check_or_error, unique)):
            results[url] = result
            bar.update()
    return results


def _check_or_error(url: str) -> tuple[int, int, str] | DataError:
    try:
        return check_image_file(url)
    except DataError as error:
        return error


_BOMB_ADVICE = "shrink the image, or raise that limit if you trust the file"


def _check_pixel_limit(url: str, width: int, height: int) -> None:
    """PIL refuses images over twice ``MAX_IMAGE_PIXELS`` and warns over it: both are problems."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise DataError(f"cannot read image {url}: {width}x{height} = {width * height} pixels is over "
                        f"PIL's decompression-bomb limit PIL.Image.MAX_IMAGE_PIXELS = {limit}; {_BOMB_ADVICE}")


def _check_jpeg_end(url: str, f: IO[bytes]) -> None:
    """A whole JPEG holds an end-of-image marker (FF D9), at its end unless data follows it.

    The marker cannot occur inside compressed data, so a file without one was cut short. The
    tail is read first (where the marker almost always is); the whole file only if it is not there.
    """
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - 1024))
    if b"\xff\xd9" in f.read():
        return
    f.seek(0)
    if b"\xff\xd9" not in f.read():
        raise DataError(f"cannot read image {url}: truncated JPEG (no end-of-image marker); "
                        f"the file was cut short, e.g. by an interrupted copy or download")


def _what_is_it(f: IO[bytes]) -> str:
    """Why PIL could not identify a file: it is empty, or what its first bytes are."""
    try:
        f.seek(0)
        head = f.read(24)
    except Exception:  # a stream that cannot seek back: say only what PIL said
        return "not an image file PIL can read"
    if not head:
        return "the file is empty (0 bytes)"
    return f"not an image file PIL can read (it starts with {head!r})"


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
