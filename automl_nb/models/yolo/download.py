"""Download YOLOv5's v7.0 release checkpoints into the torch hub cache, as torchvision's weights are.

``use_pretrained_model`` with no file in the cache (:func:`~automl_nb.models.yolo.weights.cached_weights_path`)
downloads ``<base>/yolov5{s,m,l,x}.pt`` when the host answers, with a tqdm progress bar, into
``$TORCH_HOME/hub/checkpoints``. The file is written under a temporary name and moved into place only
once complete and, where :data:`RELEASE_SHA256` pins its hash, only when the sha256 matches; a wrong
hash raises and leaves nothing in the cache. When the host does not answer, nothing is tried and
:func:`~automl_nb.models.yolo.weights.load_pretrained` raises its clear offline error.

The base URL is :data:`DEFAULT_BASE_URL` unless the environment variable :data:`URL_VARIABLE` sets
another (a mirror, or a local server in tests).
"""

from __future__ import annotations

import os
from pathlib import Path

from automl_nb.errors import TrialError
from automl_nb.models.weights import host_reachable

URL_VARIABLE = "AUTOML_NB_YOLOV5_WEIGHTS_URL"
DEFAULT_BASE_URL = "https://github.com/ultralytics/yolov5/releases/download/v7.0"
# sha256 of the v7.0 release assets, by file name. None: not pinned. This project's machines have no
# network, so the hashes could not be computed here from the files of
# https://github.com/ultralytics/yolov5/releases/tag/v7.0, and no source we could check states them:
# searched (December 2026) public code and docs for the file names with "sha256"/hash prefixes,
# ultralytics/yolov5 and ultralytics/assets, release notes and packaging recipes. yolort's tests pin
# a hash prefix of the v4.0 yolov5s.pt, a different file. Fill them in with `sha256sum yolov5s.pt ...`
# of the release files. A pinned hash that differs from the download's raises (TrialError) and the
# file is not kept; an unpinned file is kept after load_pretrained checked that its backbone fits
# the model.
RELEASE_SHA256: dict[str, str | None] = {
    "yolov5s.pt": None,
    "yolov5m.pt": None,
    "yolov5l.pt": None,
    "yolov5x.pt": None,
}


def release_url(filename: str) -> str:
    """The URL of a release file: ``$AUTOML_NB_YOLOV5_WEIGHTS_URL/<filename>``, else the v7.0 release's.

    Example:
        >>> release_url("yolov5s.pt")
        'https://github.com/ultralytics/yolov5/releases/download/v7.0/yolov5s.pt'
    """
    base = os.environ.get(URL_VARIABLE) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{filename}"


def fetch_release_file(path: str | os.PathLike, *, progress: bool = True) -> bool:
    """Download the release file named like ``path`` to ``path`` unless it is there or the host is down.

    Args:
        path: the cache path, e.g. ``~/.cache/torch/hub/checkpoints/yolov5s.pt``.
        progress: show a tqdm progress bar.

    Returns:
        True when ``path`` holds the file now; False when it is missing and the host cannot be
        reached (the caller raises its offline error).

    Raises:
        TrialError: the download failed or its sha256 differs from :data:`RELEASE_SHA256`'s; no
            file is left at ``path``.

    Example:
        >>> fetch_release_file(cached_weights_path("small"))
        True
    """
    import torch.hub

    path = Path(path)
    if path.is_file():
        return True
    url = release_url(path.name)
    if not host_reachable(url):
        return False
    expected = RELEASE_SHA256.get(path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # a temporary file beside path, checked, then moved into place; removed on any failure
        torch.hub.download_url_to_file(url, str(path), hash_prefix=expected, progress=progress)
    except RuntimeError as error:
        if "invalid hash value" in str(error):
            raise TrialError(f"{url}: the downloaded file's sha256 differs from the pinned {expected}; it was "
                             f"not kept in {path.parent}. Check {URL_VARIABLE} or download the file yourself "
                             f"to {path}") from None
        raise TrialError(f"could not download YOLOv5 weights from {url}: {error}") from error
    except OSError as error:  # HTTP errors (404...) and broken connections
        raise TrialError(f"could not download YOLOv5 weights from {url} to {path}: {error}; set "
                         f"`use_pretrained_model: false` or place the file there yourself") from error
    return True
