"""``automl-nb cache build|info|clear``: fill, inspect and empty the image cache.

    automl-nb cache build DATA --task TASK [--resolution PX] [--root DIR] [--shared URL] [--skip-unreadable]
    automl-nb cache info [--root DIR] [--shared URL]
    automl-nb cache clear [--root DIR | --shared URL] [--dataset KEY]

``build`` fills the cache a job's trials would stream through, ahead of time; run again
after an interruption, it fetches only what is missing. With ``--shared`` it fills (and
first reads from) a shared cache on an object store too, for a cluster's workers.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from automl_nb.errors import DataError

# Failed URLs listed in full by ``build`` and ``info`` (the rest are counted).
_SHOWN_FAILURES = 10


def add_cache_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``cache`` command (with ``build``, ``info``, ``clear``) to a CLI's subcommands.

    Each subcommand sets ``handler(args) -> exit code``.

    Example:
        >>> commands = parser.add_subparsers(dest="command", required=True)
        >>> add_cache_parser(commands)
    """
    cache = commands.add_parser("cache", help="fill, inspect or empty the cache of streamed images")
    _add_actions(cache)
    return cache


def _add_actions(parser: argparse.ArgumentParser) -> None:
    from automl_nb.data.cache.settings import CACHE_ROOT_VARIABLE
    from automl_nb.spec import DEFAULT_TARGET_COLUMN_NAME, TASKS

    actions = parser.add_subparsers(dest="cache_command", required=True)
    root_help = f"cache root (default: ${CACHE_ROOT_VARIABLE}, else ~/.cache/automl_nb/images)"
    shared_help = "a shared cache on an object store (s3://bucket/image-cache, gs://, abfs://)"

    build = actions.add_parser("build", help="fetch and cache a dataset's images (resumes where it stopped)")
    build.add_argument("data", help="JSONL file or MLTable folder (path or fsspec URL)")
    build.add_argument("--task", required=True, choices=TASKS, help="the image task (decides the label shape)")
    build.add_argument("--target-column-name", default=DEFAULT_TARGET_COLUMN_NAME,
                       help=f"the JSONL key holding labels (default: {DEFAULT_TARGET_COLUMN_NAME})")
    build.add_argument("--resolution", type=int,
                       help="long-side bound in pixels (default: what the task's default parameters use); "
                            "trials that need less reuse this cache")
    build.add_argument("--root", type=Path, help=root_help)
    build.add_argument("--max-cache-gb", type=float, help="bound on the cache root's size (default: free disk)")
    build.add_argument("--shared", help=f"{shared_help}: shards found there are downloaded, the others uploaded")
    build.add_argument("--skip-unreadable", action="store_true",
                       help="report corrupt or unreachable images and go on (default: fail, naming them)")
    build.set_defaults(handler=build_command)

    info = actions.add_parser("info", help="the cached datasets: images cached, failed, missing, size")
    info.add_argument("--root", type=Path, help=root_help)
    info.add_argument("--shared", help=f"{shared_help}: list its datasets instead")
    info.set_defaults(handler=info_command)

    clear = actions.add_parser("clear", help="delete cached datasets")
    clear.add_argument("--root", type=Path, help=root_help)
    clear.add_argument("--shared", help=f"{shared_help}: delete its datasets instead (every worker's)")
    clear.add_argument("--dataset", help="only the datasets whose folder name starts with this (see `cache info`)")
    clear.set_defaults(handler=clear_command)


def _shared(args) -> str | None:
    """``--shared``, checked: an object store URL without its trailing slash, or None."""
    from automl_nb.object_store import check_url

    return check_url(args.shared, "--shared", "an image cache", otherwise="") if args.shared else None


def _root(args) -> Path:
    from automl_nb.data.cache.settings import default_cache_root

    return (args.root or default_cache_root()).expanduser()


def build_command(args) -> int:
    """Fill the cache of ``args.data``; raises DataError naming failed URLs unless ``--skip-unreadable``."""
    from tqdm.auto import tqdm

    from automl_nb.data.cache.settings import cache_resolution
    from automl_nb.data.cache.store import CACHED, ImageCache
    from automl_nb.data.mltable import load_records
    from automl_nb.spec import resolve_parameters

    if args.resolution is not None and args.resolution < 1:
        raise DataError(f"--resolution must be >= 1 pixel, got {args.resolution}")
    if args.max_cache_gb is not None and args.max_cache_gb <= 0:
        raise DataError(f"--max-cache-gb must be > 0, got {args.max_cache_gb}")
    shared = _shared(args)
    records = load_records(args.data, args.task, args.target_column_name, check_images=False)
    resolution = args.resolution or cache_resolution(args.task, resolve_parameters(args.task, {}))
    max_bytes = None if args.max_cache_gb is None else int(args.max_cache_gb * 2**30)
    cache = ImageCache.open(_root(args), [r.image_url for r in records], resolution, max_bytes=max_bytes,
                            shared_url=shared)
    unreachable = {}
    for shard in tqdm(range(cache.shard_count), desc="cache", unit="shard", file=sys.stdout):
        unreachable.update({url: f.message for url, f in cache.fill_shard(shard).items() if not f.permanent})
    cached = int((cache.status() == CACHED).sum())
    print(f"{cached} of {cache.count} images cached at {cache.resolution} px in {cache.folder}")
    if cache.shared is not None:
        cache.share_all()  # what this machine had cached before it shared
        print(f"{cache.shared.published()} of {cache.shard_count} shards shared in {cache.shared.url}")
    failures = {**cache.failures(), **unreachable}  # this run's and earlier runs' (remembered) failures
    if not failures:
        return 0
    listed = "\n".join(f"  {url}: {message}" for url, message in list(failures.items())[:_SHOWN_FAILURES])
    more = f"\n  ... and {len(failures) - _SHOWN_FAILURES} more" if len(failures) > _SHOWN_FAILURES else ""
    if not args.skip_unreadable:
        raise DataError(f"{len(failures)} images could not be cached:\n{listed}{more}")
    print(f"skipped {len(failures)} unreadable images:\n{listed}{more}")
    return 0


def dataset_rows(root: Path) -> list[dict]:
    """One row per cached dataset under ``root``: name, resolution, images by status, MB, last use."""
    import numpy as np

    from automl_nb.data.cache.evict import disk_bytes, shards_on_disk
    from automl_nb.data.cache.store import CACHED, FAILED, MISSING, URLS_FILE, ImageCache

    rows = []
    for folder in sorted(root.glob("*px")):
        if not (folder / URLS_FILE).exists():
            continue
        cache = ImageCache(folder)
        status = cache.status()
        shards = [s for s in shards_on_disk(root) if s.folder == folder]
        last = max((s.last_used for s in shards), default=0.0)
        rows.append({"dataset": folder.name, "resolution": cache.resolution, "images": cache.count,
                     "cached": int(np.sum(status == CACHED)), "failed": int(np.sum(status == FAILED)),
                     "missing": int(np.sum(status == MISSING)), "MB": disk_bytes(folder) / 2**20,
                     "last_used": time.strftime("%Y-%m-%d %H:%M", time.localtime(last)) if last else "-",
                     "failures": cache.failures()})
    return rows


def info_command(args) -> int:
    """Print the cached datasets, their failed URLs, and the root's size and free disk."""
    from automl_nb.cli import format_table
    from automl_nb.data.cache.evict import disk_bytes

    if args.shared:
        return _shared_info(_shared(args))
    root = _root(args)
    if not root.is_dir():
        print(f"no image cache at {root}")
        return 0
    rows = dataset_rows(root)
    columns = ["dataset", "resolution", "images", "cached", "failed", "missing", "MB", "last_used"]
    print(format_table(rows, columns, decimals={"MB": 1}) if rows else "no cached datasets")
    for row in rows:
        for url, reason in list(row["failures"].items())[:_SHOWN_FAILURES]:
            print(f"{row['dataset']}: failed {url}: {reason}")
    free = shutil.disk_usage(root).free
    print(f"{root}: {disk_bytes(root) / 2**30:.2f} GB cached, {free / 2**30:.1f} GB free on its disk")
    return 0


def _shared_info(url: str) -> int:
    """Print the datasets of the shared cache at ``url``: resolution, images, shards shared."""
    from automl_nb.cli import format_table
    from automl_nb.data.cache.shared import SharedFolder

    rows = []
    for name in SharedFolder.folders(url):
        folder = SharedFolder(f"{url}/{name}")
        attributes = folder.attributes()
        rows.append({"dataset": name, "resolution": attributes.get("resolution", "-"),
                     "images": attributes.get("count", "-"), "shards": folder.shard_count(),
                     "shared": folder.published(),
                     "ready": "yes" if folder.is_ready() else "no"})
    columns = ["dataset", "resolution", "images", "shards", "shared", "ready"]
    print(format_table(rows, columns) if rows else f"no cached datasets in {url}")
    return 0


def clear_command(args) -> int:
    """Delete the cached datasets under the root, or under ``--shared`` (all, or those ``--dataset`` names)."""
    from automl_nb.data.cache.evict import disk_bytes

    if args.shared:
        return _clear_shared(_shared(args), args.dataset)
    root = _root(args)
    folders = [f for f in sorted(root.glob("*px")) if f.is_dir() and f.name.startswith(args.dataset or "")]
    if args.dataset and not folders:
        raise DataError(f"--dataset {args.dataset!r}: no cached dataset starts with it under {root}")
    freed = 0
    for folder in folders:
        freed += disk_bytes(folder)
        shutil.rmtree(folder)
    print(f"deleted {len(folders)} cached datasets ({freed / 2**20:.1f} MB) from {root}")
    return 0


def _clear_shared(url: str, prefix: str | None) -> int:
    from automl_nb.data.cache.shared import SharedFolder

    names = [name for name in SharedFolder.folders(url) if name.startswith(prefix or "")]
    if prefix and not names:
        raise DataError(f"--dataset {prefix!r}: no cached dataset starts with it in {url}")
    for name in names:
        SharedFolder(f"{url}/{name}").clear()
    print(f"deleted {len(names)} cached datasets from {url}")
    return 0
