"""Advisory file locks that order the processes sharing one cache (POSIX ``flock``).

A lock is released by the kernel when its process dies, so a killed writer never leaves a
shard locked. Readers of a shard share its lock; a filler or an evictor holds it alone.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: one process per cache is then the user's to ensure
    fcntl = None


@contextmanager
def file_lock(path: str | os.PathLike, exclusive: bool, blocking: bool = True,
              touch: bool = False) -> Iterator[bool]:
    """Hold the lock of ``path`` (created if missing) for the ``with`` block.

    Args:
        path: the lock file.
        exclusive: one holder (writers) rather than many (readers).
        blocking: wait for the lock; False yields False at once when another process holds it.
        touch: set the lock file's modification time to now (the shard's "last used" time).

    Yields:
        Whether the lock is held.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        held = True
        if fcntl is not None:
            mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if blocking else fcntl.LOCK_NB)
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                held = False
        if held and touch:
            os.utime(fd)
        yield held
    finally:
        os.close(fd)  # closing the only descriptor releases the lock
