"""Keep a notebook's widgets responsive while a cell blocks (kernel plumbing, below ``sweep``).

A Jupyter kernel handles widget events (a Stop click) only between cells: while a cell
blocks in ``run.wait()``, clicks wait in the queue. :func:`join_handling_ui_events` waits for
a thread and, inside a kernel, handles those events meanwhile, so the dashboard's Stop
buttons work during the wait too. Outside a kernel it is a plain join.

Two ways, by kernel:

- ipykernel 6 (and 7.0) have ``kernel.do_one_iteration()``: ``jupyter-ui-poll`` drives it.
- ipykernel 7.1+ removed it (ipykernel PR #1458), so ``jupyter-ui-poll`` 1.1.0 silently
  does nothing there. :class:`CommPump` reads the main shell's queue itself: widget messages
  (comm open/msg/close) are handled at once, anything else (the next cell, a completion
  request) is handed back to the kernel, in order, to run after the current cell.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger(__name__)

# How often the wait looks at the kernel's queue of UI events, and how many it takes each time.
_POLL_SECONDS = 0.1
_EVENTS_PER_POLL = 10
_COMM_MESSAGES = ("comm_open", "comm_msg", "comm_close")


def kernel_shell() -> Any:
    """The IPython shell of a running Jupyter kernel, or None (plain Python, terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def join_handling_ui_events(thread: threading.Thread, deadline: float | None = None,
                            on_step: Callable[[], None] = lambda: None) -> None:
    """Wait until ``thread`` ends or ``time.monotonic()`` reaches ``deadline``.

    In a Jupyter kernel's main thread, widget events (button clicks, slider moves) are handled
    while waiting; cells the user runs meanwhile still wait their turn. Ctrl-C (the kernel's
    interrupt) raises KeyboardInterrupt at once, as with a plain join.

    Args:
        thread: the thread to wait for.
        deadline: a ``time.monotonic()`` value, or None to wait as long as the thread runs.
        on_step: called in the waiting thread at every step (about 10 times a second) and once
            at the end, e.g. to print what happened meanwhile.

    Example:
        >>> join_handling_ui_events(driver_thread, time.monotonic() + 60)
    """
    shell = kernel_shell()
    if shell is None or threading.current_thread() is not threading.main_thread():
        _join(thread, deadline, lambda: None, on_step)
        return
    kernel = shell.kernel
    if hasattr(kernel, "do_one_iteration"):
        from jupyter_ui_poll import ui_events

        with ui_events() as poll:
            _join(thread, deadline, lambda: poll(_EVENTS_PER_POLL), on_step)
        return
    pump = CommPump.for_kernel(kernel)
    if pump is None:
        _join(thread, deadline, lambda: None, on_step)
        return
    try:
        _join(thread, deadline, lambda: pump.poll(_EVENTS_PER_POLL), on_step)
    finally:
        pump.close()


def _join(thread: threading.Thread, deadline: float | None, handle_events: Callable[[], None],
          on_step: Callable[[], None]) -> None:
    # Join in short steps so KeyboardInterrupt reaches the caller at once.
    while thread.is_alive() and (deadline is None or time.monotonic() < deadline):
        handle_events()
        on_step()
        step = _POLL_SECONDS if deadline is None else max(0.0, min(_POLL_SECONDS, deadline - time.monotonic()))
        thread.join(step)
    handle_events()  # a click made just before the end still counts
    on_step()


class CommPump:
    """Handles widget messages for the main shell of an ipykernel 7.1+ kernel while a cell blocks.

    Args:
        kernel: the ipykernel ``Kernel``.
        stream: the ZMQ stream on which the kernel's main shell receives its messages.
    """

    def __init__(self, kernel: Any, stream: Any) -> None:
        self.kernel, self.stream = kernel, stream
        self.deferred: list[list] = []

    @classmethod
    def for_kernel(cls, kernel: Any) -> "CommPump | None":
        """A pump for ``kernel``, or None when its layout is not the one known here."""
        try:
            from ipykernel.eventloops import get_shell_stream

            stream = get_shell_stream(kernel)
        except (ImportError, AttributeError):
            return None
        if stream is None or getattr(stream, "_recv_callback", None) is None:
            return None
        return cls(kernel, stream)

    def poll(self, limit: int) -> int:
        """Take up to ``limit`` waiting messages: handle widget ones, keep the rest; return how many."""
        import zmq

        taken = 0
        while taken < limit:
            try:
                frames = self.stream.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            taken += 1
            if not self._handle_comm(frames):
                self.deferred.append(frames)
        return taken

    def _handle_comm(self, frames: list) -> bool:
        """Handle a comm message now; False (untouched) for any other message."""
        kernel, session = self.kernel, self.kernel.session
        try:
            idents, rest = session.feed_identities(frames, copy=False)
            # content=False only peeks: the signature is not recorded, so the kernel can still
            # take the message later (a recorded one would be refused as a replay).
            msg_type = session.deserialize(rest, content=False, copy=False)["header"]["msg_type"]
        except Exception:
            return False
        if msg_type not in _COMM_MESSAGES:
            return False
        handler = kernel.shell_handlers.get(msg_type)
        if handler is None:
            return False
        try:
            msg = session.deserialize(rest, content=True, copy=False)
        except Exception:
            log.exception("automl_nb: could not read a widget message")
            return True
        parent = kernel.get_parent("shell")
        parent_ident = kernel._get_shell_context_var(kernel._shell_parent_ident)
        try:
            kernel.set_parent(idents, msg, channel="shell")  # the handler's output goes to its own request
            handler(kernel.shell_stream, idents, msg)
        except Exception:
            log.exception("automl_nb: a widget message handler failed")
        finally:
            kernel.set_parent(parent_ident, parent, channel="shell")
        return True

    def close(self) -> None:
        """Hand the messages kept aside back to the kernel, in order (they run after this cell)."""
        callback = self.stream._recv_callback
        for frames in self.deferred:
            result = callback(frames)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                asyncio.ensure_future(result)
        self.deferred.clear()
