"""A trial folder's lease: one copy of a trial writes its folder at a time.

A copy of a trial can outlive its driver on a remote worker (an orphan), and ``resume()`` then
starts a second copy of the same trial. Before a copy writes anything it takes the folder's
lease, ``lease.json``: an owner token, its host and pid, and a heartbeat that a thread renews.
A second copy waits, for a bounded time, until the lease is released (the first copy ended)
or goes stale (its heartbeat stopped, or its pid is dead on this host); then it takes it over.

The lease is created with a hard link of a fully written file, so of two copies that find no
lease exactly one gets it. Heartbeats compare wall clocks, so the hosts of a shared run
folder need synchronised clocks (NTP), as they do for the driver's heartbeat in run.json.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from automl_nb._atomic import atomic_write_json, read_json
from automl_nb.errors import AutoMLError, RunFolderError
from automl_nb.sweep.store import HEARTBEAT_SECONDS, HEARTBEAT_STALE_SECONDS, pid_alive

log = logging.getLogger(__name__)

LEASE = "lease.json"
# How long a second copy waits for the first to stop. An orphan stops at its next evaluation,
# so this allows for one long epoch plus the driver-gone limit.
LEASE_WAIT_SECONDS = 1800.0


class LeaseHeldError(AutoMLError):
    """Another live copy of the trial holds its folder's lease (the message names it)."""


@dataclass(frozen=True)
class LeaseTimes:
    """How a lease is kept.

    Attributes:
        renew: seconds between heartbeats of the holder.
        stale: a heartbeat older than this means the holder is gone.
        wait: how long a second copy waits for the lease before it gives up.
    """

    renew: float = HEARTBEAT_SECONDS
    stale: float = HEARTBEAT_STALE_SECONDS
    wait: float = LEASE_WAIT_SECONDS

    def __post_init__(self) -> None:
        if not self.renew > 0 or not self.wait >= 0:
            raise ValueError(f"LeaseTimes: renew {self.renew!r}, wait {self.wait!r}; allowed: renew > 0, wait >= 0 s")
        if self.stale <= self.renew:
            raise ValueError(f"LeaseTimes.stale: {self.stale!r} must exceed renew {self.renew!r}, else a live "
                             "holder looks gone between two heartbeats")


class Lease:
    """The lease of one trial folder, as held (or wanted) by this copy.

    Args:
        folder: the trial folder.
        times: renew, stale and wait seconds (defaults: the run's heartbeat constants).
        holder: what to call this copy in messages (e.g. the Dask worker's address).

    Example:
        >>> with Lease("runs/shapes/trials/3"):  # acquired here, released at the end
        ...     train()  # no other copy writes trials/3 meanwhile
    """

    def __init__(self, folder: str | os.PathLike, times: LeaseTimes = LeaseTimes(), holder: str = "") -> None:
        self.folder, self.times = Path(folder), times
        self.path = self.folder / LEASE
        self.record = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(),
                       "holder": holder}
        self.lost = threading.Event()  # set when another copy took the lease over from us
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- taking and giving back ----------------------------------------------------------
    def acquire(self) -> None:
        """Take the lease, waiting up to ``times.wait`` s while another live copy holds it.

        Raises:
            LeaseHeldError: the other copy still held it after the wait (the message names it).
        """
        deadline = time.monotonic() + self.times.wait
        announced = False
        while True:
            if self._create():
                break
            current = self.read()
            if current is not None and self._is_stale(current):
                log.warning("%s: taking over the stale lease of %s", self.path, describe(current))
                self._break(current)
                continue
            if time.monotonic() >= deadline:
                raise LeaseHeldError(
                    f"{self.path}: another copy of this trial is still writing its folder "
                    f"({describe(current)}); waited {self.times.wait:g} s for it to stop. A copy whose driver "
                    f"is gone stops at its next evaluation; resume() the run once it has stopped") from None
            if not announced and current is not None:
                log.warning("%s: waiting up to %g s for the copy holding it to stop (%s)", self.path, self.times.wait,
                            describe(current))
                announced = True
            time.sleep(min(0.2, self.times.renew))
        self._renewer = threading.Thread(target=self._renew_loop, name=f"automl-lease-{self.folder.name}",
                                         daemon=True)
        self._renewer.start()

    def release(self) -> None:
        """Stop renewing and remove the lease, if it is still ours."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        current = self.read()
        if current is not None and current.get("owner") == self.record["owner"]:
            self._remove()

    def _remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Lease":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> dict | None:
        """The lease as written now, or None when nobody holds it (or it is unreadable mid-break)."""
        try:
            data = read_json(self.path)
        except (FileNotFoundError, RunFolderError):
            return None
        return data if isinstance(data, dict) else None

    def _is_stale(self, record: dict) -> bool:
        if record.get("host") == socket.gethostname() and not pid_alive(record.get("pid")):
            return True  # its process is dead: no need to wait out the heartbeat (a worker that died)
        return time.time() - float(record.get("heartbeat", 0)) > self.times.stale

    # -- writing ---------------------------------------------------------------------------
    def _create(self) -> bool:
        """Create the lease file if there is none: write a whole file aside, then hard-link it in."""
        aside = self.folder / f".{LEASE}.{self.record['owner']}"
        atomic_write_json(aside, {**self.record, "heartbeat": time.time()})
        try:
            os.link(aside, self.path)  # fails if the lease exists: of two copies exactly one wins
            return True
        except FileExistsError:
            return False
        finally:
            aside.unlink(missing_ok=True)

    def _break(self, stale: dict) -> None:
        """Move a stale lease aside; put it back if it changed since we judged it stale."""
        grave = self.folder / f".{LEASE}.stale.{self.record['owner']}"
        try:
            os.replace(self.path, grave)
        except FileNotFoundError:
            return  # released, or another copy broke it first
        try:
            moved = read_json(grave)
        except RunFolderError:
            moved = None
        if moved != stale:  # renewed or taken between our read and the move: not ours to break
            try:
                os.link(grave, self.path)
            except FileExistsError:
                pass
        grave.unlink(missing_ok=True)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.times.renew):
            current = self.read()
            if current is not None and current.get("owner") != self.record["owner"]:
                log.error("%s: lease taken over by %s; this copy stops at its next evaluation",
                          self.path, describe(current))
                self.lost.set()
                return
            atomic_write_json(self.path, {**self.record, "heartbeat": time.time()})


def describe(record: dict | None) -> str:
    """A lease's holder in words: ``pid 123 on node7 (tcp://10.0.0.7:4001), heartbeat 2 s ago``."""
    if record is None:
        return "a copy that just released it"
    where = f" ({record['holder']})" if record.get("holder") else ""
    age = time.time() - float(record.get("heartbeat", 0))
    return f"pid {record.get('pid')} on {record.get('host')}{where}, heartbeat {age:.0f} s ago"
