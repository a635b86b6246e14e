"""The dashboard's background updater: a thread that refreshes it while the sweep may change.

It is woken by the sweep's events (when this kernel drives the sweep) and otherwise polls
every ``poll_seconds``. The sweep runs in this process too (same GIL), so what a refresh costs
the sweep loses: after a refresh that cost t seconds of CPU the updater waits 19 t, about 5% at
most. (CPU, not wall time: on a machine whose cores the trials fill, a refresh waits for a core
far longer than it works, and pacing by that wait left the dashboard silent for seconds.)
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Callable

# The updater's share of the time: after a refresh that took t seconds it waits at least
# t * IDLE_FACTOR, so that a sweep driven in this process loses about 5% at most.
IDLE_FACTOR = 19


class Updater:
    """Runs ``step`` on a daemon thread while ``following()``, paced by what each step costs.

    Args:
        step: one refresh; returns the seconds it cost (what should pace the next one).
        following: whether the sweep may still change (the thread ends, after a last step, when not).
        driven: whether this process drives the sweep (its end cuts a pause short).
        report: called with a traceback when a step fails (updates go on).
        name: the thread's name.
        poll_seconds: the longest wait for an event before a step.
        min_interval: the least pause after a step.

    Example:
        >>> updater = Updater(dashboard_step, lambda: run.running, lambda: run.running, print, "automl-x")
        >>> updater.wake()   # from the driver's thread, on each event
    """

    def __init__(self, step: Callable[[], float], following: Callable[[], bool], driven: Callable[[], bool],
                 report: Callable[[str], None], name: str, poll_seconds: float = 2.0,
                 min_interval: float = 1.0) -> None:
        self.step, self.following, self.driven, self.report, self.name = step, following, driven, report, name
        self.poll_seconds, self.min_interval = poll_seconds, min_interval
        self.thread: threading.Thread | None = None
        self.closed = False
        self._lock = threading.Lock()  # never held long: the driver's thread takes it for each event
        self._wake = threading.Event()
        self._closing = threading.Event()  # ends a pause between steps at once

    def wake(self) -> None:
        """Step soon (called by the sweep driver's thread for every event: never waits for a step)."""
        if self.closed:
            return
        self._wake.set()
        self.ensure()

    def ensure(self) -> None:
        """Start the thread unless it runs, or nothing can change any more."""
        with self._lock:
            if self.closed or (self.thread is not None and self.thread.is_alive()) or not self.following():
                return
            self.thread = threading.Thread(target=self._loop, daemon=True, name=self.name)
            self.thread.start()

    def close(self, timeout: float | None = None) -> None:
        """End the updates; with ``timeout``, wait that long for a step in progress to finish."""
        self.closed = True
        self._wake.set()
        self._closing.set()
        if timeout is not None and self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _loop(self) -> None:
        while not self.closed and self.following():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self.closed:
                return
            self._pause(max(self.min_interval, IDLE_FACTOR * self._step()))
        if not self.closed:
            self._step()  # the last state

    def _step(self) -> float:
        try:
            return self.step()
        except Exception:  # a broken refresh must not end live updates; say why
            self.report(traceback.format_exc())
            return 0.0

    def _pause(self, seconds: float) -> None:
        """Wait between steps; cut short by close() and by the end of a sweep driven here (its
        last state shows at once)."""
        deadline = time.monotonic() + seconds
        driven = self.driven()
        while not self._closing.wait(min(0.25, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or (driven and not self.driven()):
                return
