"""The delivery agent's threads besides its loop: the senders (one per backend: every SDK call of that
backend runs on it, in order), the wake pipe's reader, and the CPU clocks of threads for the agent's
CPU account (docs/journal.md, "What the agent costs")."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

__all__ = ["Sender", "cpu_seconds", "read_pokes", "thread_clock"]


class Sender:
    """One daemon thread per backend: every SDK call of that backend runs on it, in order.

    While a backend's call is in flight (an HTTP request waiting on a server), the agent
    goes on reading the journal and feeding the other backends: a slow or hung backend
    never holds up another, and reading overlaps sending. Daemon, so a call hung on a
    dead server can never keep the agent process from exiting at its deadline."""

    def __init__(self, name: str) -> None:
        self._q: queue.SimpleQueue[tuple[Callable[[], None], Future[None]] | None] = queue.SimpleQueue()
        self._t = threading.Thread(target=self._loop, name=f"trackkit-send-{name}", daemon=True)
        self._t.start()
        self.clock = thread_clock(self._t)

    def submit(self, fn: Callable[[], None]) -> Future[None]:
        fut: Future[None] = Future()
        self._q.put((fn, fut))
        return fut

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fn()
            except BaseException as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(None)

    def stop(self) -> None:
        self._q.put(None)


def thread_clock(thread: threading.Thread) -> int | None:
    """The CPU clock of a started thread (Linux, macOS), or None."""
    try:
        return time.pthread_getcpuclockid(thread.ident or 0)
    except (AttributeError, OSError):
        return None


def cpu_seconds(clock: int | None) -> float | None:
    if clock is None:
        return None
    try:
        return time.clock_gettime(clock)
    except OSError:  # the thread is gone
        return None


def read_pokes(fd: int, poke: Callable[[], None], ended: Callable[[], None]) -> None:
    """The process agent's wake pipe, on a thread of its own that blocks in ``read``: ``poke()`` for
    what the trainer writes (``AgentHandle.poke``), ``ended()`` once the pipe ends (the trainer closed
    it at finish, or died)."""
    while True:
        try:
            data = os.read(fd, 64)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            os.close(fd)
            ended()
            return
        poke()
