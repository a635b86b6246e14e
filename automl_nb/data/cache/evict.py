"""Keep an image cache root under its size bound by deleting least recently used shards.

A shard's last use is its lock file's modification time (readers touch it). Eviction takes
each victim's lock alone without waiting, so a shard being read or filled is passed over,
and deletes its ``meta`` chunk first: from then on its rows read as missing and are fetched
again when next needed.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

from automl_nb.data.cache.locks import file_lock

# Without an explicit bound the cache holds "as many as fit": it evicts when the disk's free
# space would fall under this fraction of the disk. The variable overrides it for every process
# of a machine (a shared or nearly full disk; 0 turns the floor off).
MIN_FREE_DISK_FRACTION = 0.05
MIN_FREE_DISK_VARIABLE = "AUTOML_NB_CACHE_MIN_FREE_DISK"
EVICT_LOCK = ".evict.lock"


def shard_paths(folder: str | os.PathLike, shard: int) -> list[Path]:
    """The files of one shard of a dataset folder, commit marker (``meta``) first, pixels last."""
    folder = Path(folder)
    zarr_folder = folder / "images.zarr"
    return [zarr_folder / "meta" / "c" / str(shard) / "0", zarr_folder / "sha256" / "c" / str(shard) / "0",
            folder / "errors" / f"{shard}.json", zarr_folder / "pixels" / "c" / str(shard) / "0" / "0" / "0"]


@dataclass(frozen=True)
class ShardOnDisk:
    """One stored shard: its dataset folder, number, bytes and last use (epoch seconds)."""

    folder: Path
    shard: int
    size: int
    last_used: float


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def shards_on_disk(root: str | os.PathLike) -> list[ShardOnDisk]:
    """Every shard with pixels on disk under ``root``, any dataset."""
    found = []
    for folder in sorted(Path(root).glob("*px")):
        try:
            entries = list(os.scandir(folder / "images.zarr" / "pixels" / "c"))
        except FileNotFoundError:  # nothing stored yet, or cleared meanwhile
            continue
        for entry in entries:
            if not entry.name.isdigit():
                continue
            shard = int(entry.name)
            paths = shard_paths(folder, shard)
            if not paths[-1].exists():  # evicted: only empty folders are left
                continue
            last_used = max(_mtime(folder / "locks" / f"{shard}.lock"), _mtime(paths[-1]))
            found.append(ShardOnDisk(folder, shard, sum(_size(path) for path in paths), last_used))
    return found


def disk_bytes(root: str | os.PathLike) -> int:
    """Bytes of every file under ``root``."""
    total = 0
    for folder, _, names in os.walk(root):
        total += sum(_size(Path(folder) / name) for name in names)
    return total


def min_free_disk_fraction() -> float:
    """The fraction of the disk the cache leaves free: :data:`MIN_FREE_DISK_VARIABLE` or 5%."""
    text = os.environ.get(MIN_FREE_DISK_VARIABLE, "")
    if not text:
        return MIN_FREE_DISK_FRACTION
    try:
        fraction = float(text)
    except ValueError:
        fraction = -1.0
    if not 0 <= fraction < 1:
        raise ValueError(f"{MIN_FREE_DISK_VARIABLE}={text!r}: expected a fraction of the disk in [0, 1)")
    return fraction


def effective_bound(root: str | os.PathLike, max_bytes: int | None, used: int) -> float:
    """The bound to keep now: ``max_bytes``, lowered if the disk's free space runs short."""
    bound = math.inf if max_bytes is None else float(max_bytes)
    usage = shutil.disk_usage(root)
    shortfall = min_free_disk_fraction() * usage.total - usage.free
    if shortfall > 0:
        bound = min(bound, used - shortfall)
    return bound


def evict_shard(folder: str | os.PathLike, shard: int, wait: bool = False) -> bool:
    """Delete one shard's files if its lock is free (or once it is, with ``wait``); True if deleted."""
    folder = Path(folder)
    with file_lock(folder / "locks" / f"{shard}.lock", exclusive=True, blocking=wait) as held:
        if not held:
            return False
        for path in shard_paths(folder, shard):
            path.unlink(missing_ok=True)
        return True


def enforce_bound(root: str | os.PathLike, max_bytes: int | None,
                  keep: Collection[tuple[Path, int]] = ()) -> list[ShardOnDisk]:
    """Evict least recently used shards until ``root`` is within its bound.

    Args:
        root: the cache root.
        max_bytes: bound on the bytes under ``root`` (None: keep
            :func:`min_free_disk_fraction` of the disk free).
        keep: ``(dataset folder, shard)`` pairs never evicted now (the shard just filled,
            about to be read); a bound smaller than it is then exceeded by it.

    Returns:
        The shards evicted. Returns at once, evicting nothing, while another process evicts.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    with file_lock(root / EVICT_LOCK, exclusive=True, blocking=False) as held:
        if not held:
            return []
        used = disk_bytes(root)
        bound = effective_bound(root, max_bytes, used)
        if used <= bound:
            return []
        evicted = []
        keep = {(Path(folder), shard) for folder, shard in keep}
        for victim in sorted(shards_on_disk(root), key=lambda s: s.last_used):
            if used <= bound:
                break
            if (victim.folder, victim.shard) in keep or not evict_shard(victim.folder, victim.shard):
                continue
            used -= victim.size
            evicted.append(victim)
        return evicted
