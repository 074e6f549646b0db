"""The trainer's side of console capture: fds 1 and 2 become pipes whose read ends the agent holds.

The agent (``console/pump.py``) reads the pipes, writes what it reads to the terminal (the
original fds 1 and 2, which it holds a copy of) and keeps it in the run. The trainer holds no
buffer and runs no reader; a small watchdog thread only looks, ten times a second, whether the
agent still reads. When it does not (the agent exited, is stopped, or leaves bytes in the pipe
for seconds) the watchdog puts the terminal back on fds 1 and 2, so the trainer's writes go
straight to the terminal as before, and copies to the terminal what was left in the pipes,
counting those bytes as not kept. The trainer also holds a read end of each pipe, so a dead
agent never makes a write fail with EPIPE/SIGPIPE. See docs/console-and-system.md.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import select
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ConsoleCapture", "ConsoleEnd", "console_loss_note", "sentinel_for"]

#: the watchdog's look interval and how long bytes may wait in a pipe before the agent counts as stalled
POLL_S = 0.1
STALL_S = 2.0
#: a pipe this full for FULL_S counts as stalled at once (a writer is about to block)
FULL_FRACTION, FULL_S = 0.75, 0.3
#: the pipe size asked for (Linux: F_SETPIPE_SZ; unprivileged processes get up to 1 MiB)
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032


def sentinel_for(run_id: str) -> bytes:
    """The bytes the trainer writes into each pipe at finish; the agent never shows or keeps them."""
    return b"\x00\x1b[trackkit-console-end " + run_id.encode("ascii", "replace") + b"]\x00"


@dataclass
class ConsoleEnd:
    """What the agent said at the end of the trainer's console: its last lines (redacted), and the
    bytes that were shown on the terminal but not kept."""

    tail: str = ""
    lost: int = 0
    #: why capture stopped early ("" when it did not)
    stopped: str = ""


def console_loss_note(end: ConsoleEnd) -> str:
    """One line for the run's console, its warning and its backends: what was not kept, and why."""
    return (f"[trackkit] console capture stopped ({end.stopped or 'the agent was not reading'}): "
            f"{end.lost} byte(s) were shown on the terminal but not kept, and later output was not kept. "
            "Fix: keep the agent running (see agent.log), or set console=false")


class _Stream:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.orig = os.dup(fd)  # the terminal (or whatever fd was), non-inheritable
        self.read, self.write = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.write, F_SETPIPE_SZ, PIPE_BYTES)
        try:
            self.capacity = int(fcntl.fcntl(self.write, F_GETPIPE_SZ))
        except OSError:
            self.capacity = 65536

    def restore(self) -> None:
        """The original back on ``fd`` -- only while ``fd`` is still this pipe: whoever put something else
        there since (pytest's capture between tests, a notebook kernel) keeps it."""
        try:
            now, ours = os.fstat(self.fd), os.fstat(self.write)
        except OSError:
            return
        if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
            os.dup2(self.orig, self.fd)

    def queued(self) -> int:
        buf = array.array("i", [0])
        try:
            fcntl.ioctl(self.read, termios.FIONREAD, buf, True)
        except OSError:
            return 0
        return buf[0]

    def close(self) -> None:
        for fd in (self.read, self.write, self.orig):
            with contextlib.suppress(OSError):
                os.close(fd)


class ConsoleCapture:
    """One per process at a time: a second run started while one captures does not capture."""

    _active: ConsoleCapture | None = None
    _active_lock = threading.Lock()

    def __init__(self, run_id: str, state_path: str) -> None:
        self.streams = [_Stream(1), _Stream(2)]
        self.sentinel = sentinel_for(run_id)
        self.state_path = state_path
        self.lost = 0
        self.stopped = ""
        self.stopped_at = 0.0
        self._engaged = False
        self._alive: Callable[[], bool] = lambda: True
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None
        self._pid = os.getpid()

    @classmethod
    def open(cls, run_id: str, state_path: str) -> ConsoleCapture | None:
        """A capture for this process, or None (one is active already; fd 1 or 2 is not open)."""
        with cls._active_lock:
            if cls._active is not None:
                return None
            try:
                cap = cls(run_id, state_path)
            except OSError:
                return None
            cls._active = cap
        with contextlib.suppress(OSError):
            os.remove(state_path)  # an earlier segment's word is not this one's
        return cap

    def agent_fds(self) -> list[tuple[int, int]]:
        """Fresh copies of (pipe read end, original fd) per stream for the agent; the caller hands
        them over (``pass_fds``) and closes its copies, or gives them to the in-process pump."""
        return [(os.dup(s.read), os.dup(s.orig)) for s in self.streams]

    def engage(self, alive: Callable[[], bool]) -> None:
        """Put the pipes on fds 1 and 2 and start the watchdog; ``alive()``: the agent can still read."""
        self._alive = alive
        _flush_std()
        for s in self.streams:
            os.dup2(s.write, s.fd)
        self._engaged = True
        self._watch = threading.Thread(target=self._watchdog, name="trackkit-console-watch", daemon=True)
        self._watch.start()

    # ------------------------------------------------------------------ the watchdog

    def _watchdog(self) -> None:
        busy = 0.0
        full = 0.0
        while not self._stop.wait(POLL_S):
            try:
                if self.stopped:
                    self._drain(0.0)
                    continue
                if not self._alive():
                    self.fall_back("the agent exited")
                    continue
                queued = [(s.queued(), s.capacity) for s in self.streams]
                busy = busy + POLL_S if any(q for q, _ in queued) else 0.0
                full = full + POLL_S if any(q >= FULL_FRACTION * c for q, c in queued) else 0.0
                if busy >= STALL_S or full >= FULL_S:
                    self.fall_back(f"the agent did not read the console for {max(busy, full):.1f} s")
            except Exception:  # the watchdog never raises into anything
                pass

    def fall_back(self, why: str) -> None:
        """Put the terminal back on fds 1 and 2 (from now on nothing more is kept) and copy what
        waits in the pipes to the terminal, counting it as lost."""
        with self._lock:
            if self.stopped or not self._engaged:
                return
            self.stopped, self.stopped_at = why, time.time()
            _flush_std()
            for s in self.streams:
                with contextlib.suppress(OSError):
                    s.restore()
        self._drain(0.0)

    def _drain(self, timeout: float) -> None:
        """Copy what the pipes hold (children may still write into them) to the terminal."""
        fds = {s.read: s for s in self.streams}
        while fds:
            ready, _, _ = select.select(list(fds), [], [], timeout)
            if not ready:
                return
            for fd in ready:
                s = fds[fd]
                data = os.read(fd, 65536)
                if not data:
                    del fds[fd]
                    continue
                data = data.replace(self.sentinel, b"")
                self.lost += len(data)
                with contextlib.suppress(OSError):
                    _write_all(s.orig, data)

    # ------------------------------------------------------------------ the end

    def end(self, timeout: float) -> ConsoleEnd:
        """Give the terminal back to fds 1 and 2, tell the agent the console ended (a sentinel in each
        pipe) and wait at most ``timeout`` seconds for its word (the last lines). Idempotent."""
        if os.getpid() != self._pid or not self._engaged:
            return ConsoleEnd(lost=self.lost, stopped=self.stopped)
        self._engaged = False
        self._stop.set()
        with self._lock:
            _flush_std()
            for s in self.streams:
                with contextlib.suppress(OSError):
                    s.restore()
        stalled = bool(self.stopped)
        for s in self.streams:
            if stalled:
                break
            # a pipe with room for PIPE_BUF bytes is writable: the sentinel (shorter) goes in one piece,
            # and a pipe the agent left full never holds the trainer's finish
            _, room, _ = select.select([], [s.write], [], min(timeout, STALL_S))
            if not room:
                stalled = True
                self.stopped, self.stopped_at = "the agent did not read the console at the end", time.time()
                self._drain(0.0)
                break
            with contextlib.suppress(OSError):
                os.write(s.write, self.sentinel)
        for s in self.streams:
            with contextlib.suppress(OSError):
                os.close(s.write)
        tail = ""
        if not stalled:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                word = _read_state(self.state_path)
                if word is not None:
                    tail = str(word.get("tail") or "")
                    break
                if not self._alive():
                    break
                time.sleep(0.01)
        for s in self.streams:
            for fd in (s.read, s.orig):
                with contextlib.suppress(OSError):
                    os.close(fd)
        with ConsoleCapture._active_lock:
            if ConsoleCapture._active is self:
                ConsoleCapture._active = None
        return ConsoleEnd(tail=tail, lost=self.lost, stopped=self.stopped)

    def abandon(self) -> None:
        """The agent could not be started: close everything, capture nothing."""
        self._engaged = True
        self.stopped = "the agent did not start"
        self.end(0.0)


def _read_state(path: str) -> dict[str, object] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("done") else None


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
