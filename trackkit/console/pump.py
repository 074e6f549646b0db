"""The agent's side of console capture: read the trainer's pipes, show, keep, journal.

One thread (in the agent process; in the trainer only with ``agent="thread"``) reads both pipes
as bytes arrive and writes them, unchanged, to the terminal the trainer had. Whole lines,
collapsed and redacted (``console/lines.py``), go to ``<run dir>/console.log`` at once and to
the journal as ``console`` records (a chunk per second at most), which the delivery loop hands
to every backend. The trainer's sentinel in both pipes (its ``finish``) or the end of both pipes
(the trainer and its children are gone, a SIGKILL included) ends the run's console: the last
chunk is journaled and ``console.json`` says so, with the last lines, for the status reason.
Output that arrives later (a child still printing) is still shown and added to ``console.log``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ..events import Console
from ..util import write_json_atomic
from .lines import LineAssembler

__all__ = ["TAIL_LINES", "ConsolePump"]

#: lines of the console kept for a crashed or killed run's status reason
TAIL_LINES = 20
TAIL_CHARS = 4000
#: a console record is journaled at most this often, or when this many characters wait
CHUNK_S = 1.0
CHUNK_CHARS = 256 * 1024


class _Pipe:
    def __init__(self, read_fd: int, term_fd: int, sentinel: bytes, emit: Callable[[str], None]) -> None:
        self.fd = read_fd
        self.term: int | None = term_fd
        self.sentinel = sentinel
        self.held = b""  # the start of a sentinel split across two reads
        self.ended = False  # sentinel seen
        self.eof = False
        self.lines = LineAssembler(emit)

    def split(self, data: bytes) -> tuple[bytes, bytes | None]:
        """``(before, after)`` around this pipe's sentinel (``after`` None: not in it)."""
        data = self.held + data
        self.held = b""
        i = data.find(self.sentinel)
        if i >= 0:
            return data[:i], data[i + len(self.sentinel):]
        for k in range(min(len(self.sentinel) - 1, len(data)), 0, -1):  # hold a partial sentinel back
            if self.sentinel.startswith(data[-k:]):
                self.held = data[-k:]
                return data[:-k], None
        return data, None

    def show(self, data: bytes) -> None:
        if self.term is None or not data:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.term, view):]
        except OSError:  # the terminal went away (EPIPE: `| head` exited): keep, stop showing
            self.close_term()

    def close_term(self) -> None:
        if self.term is not None:
            with contextlib.suppress(OSError):
                os.close(self.term)
            self.term = None


class ConsolePump:
    """``fds``: (pipe read end, terminal fd) for stdout and stderr; the pump owns and closes them.
    ``record(event)`` journals a console record; ``redact(text)`` scrubs one line."""

    def __init__(
        self,
        fds: Sequence[tuple[int, int]],
        sentinel: bytes,
        console_log: str,
        state_path: str,
        record: Callable[[Any], None],
        redact: Callable[[str], str],
        log: Callable[[str], None],
    ) -> None:
        #: the lines of the read being handled: redacted and written together (one scrub, one write)
        self._batch: list[str] = []
        self._pipes = [_Pipe(r, t, sentinel, self._batch.append) for r, t in fds]
        self._record = record
        self._redact = redact
        self._log = log
        self._state_path = state_path
        self._file: Any = open(console_log, "a", encoding="utf-8", errors="replace")
        self._lines = _count_lines(console_log)
        self._chunk: list[str] = []
        self._chunk_chars = 0
        self._chunk_line = self._lines
        self._last_record = time.monotonic()
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._journaling = True
        self.bytes_read = 0
        self._mutex = threading.RLock()
        #: set once the run's console ended (sentinel or end of both pipes) and its last chunk is journaled
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trackkit-console", daemon=True)

    def start(self) -> ConsolePump:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait_ended(self, timeout: float) -> str:
        """Wait (the trainer is gone: its pipes end once its children are gone too) and return the tail."""
        if not self.ended.wait(timeout):
            self._log(f"console: the pipes are still open {timeout:.0f} s after the trainer ended (a child "
                      "process still holds them); the console so far is journaled")
            self._end()
        return self.tail()

    def tail(self) -> str:
        return "\n".join(self._tail)[-TAIL_CHARS:]

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        try:
            open_fds = {p.fd: p for p in self._pipes}
            while open_fds:
                timeout = CHUNK_S if self._chunk else None
                ready, _, _ = select.select(list(open_fds), [], [], timeout)
                for fd in ready:
                    p = open_fds[fd]
                    try:
                        data = os.read(fd, 65536)
                    except OSError as exc:
                        if exc.errno in (errno.EAGAIN, errno.EINTR):
                            continue
                        data = b""
                    if not data:
                        p.eof = True
                        if p.held:
                            self._take(p, p.held)
                            p.held = b""
                        p.lines.close()
                        self._lines_done()
                        p.close_term()
                        del open_fds[fd]
                        with contextlib.suppress(OSError):
                            os.close(fd)
                        continue
                    self.bytes_read += len(data)
                    before, after = p.split(data)
                    self._take(p, before)
                    if after is not None:
                        p.ended = True
                        p.lines.close()
                        self._take(p, after)  # (handles the closed line too)
                if not self.ended.is_set() and all(p.ended or p.eof for p in self._pipes):
                    self._end()
                elif self._chunk and time.monotonic() - self._last_record >= CHUNK_S:
                    self._flush()
        except Exception as exc:  # the pump never takes the agent down
            self._log(f"console: capture stopped: {exc!r}")
        finally:
            for p in self._pipes:
                p.close_term()
            self._end()
            with contextlib.suppress(Exception):
                self._file.close()

    def _take(self, p: _Pipe, data: bytes) -> None:
        if data:
            p.show(data)
            p.lines.feed(data)
        self._lines_done()

    def _lines_done(self) -> None:
        """The complete lines of this read: redacted as one text (the rules match within a line), kept."""
        if not self._batch:
            return
        batch, self._batch[:] = list(self._batch), []
        scrubbed = self._redact("\n".join(batch)).split("\n")
        if len(scrubbed) != len(batch):  # a rule spanned lines: line by line instead
            scrubbed = [self._redact(line) for line in batch]
        with self._mutex:
            for line in scrubbed:
                self._add(line)
            with contextlib.suppress(Exception):
                self._file.write("".join(line + "\n" for line in scrubbed))
                self._file.flush()

    def _add(self, line: str) -> None:
        self._lines += 1
        self._tail.append(line)
        if self._journaling:
            self._chunk.append(line)
            self._chunk_chars += len(line) + 1
            if self._chunk_chars >= CHUNK_CHARS:
                self._flush_locked()

    def _flush(self) -> None:
        with self._mutex:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._chunk:
            return
        text = "\n".join(self._chunk) + "\n"
        first = self._chunk_line
        self._chunk, self._chunk_chars, self._chunk_line = [], 0, self._lines
        self._last_record = time.monotonic()
        try:
            self._record(Console(text=text, time=time.time(), line=first))
        except Exception as exc:
            self._log(f"console: could not journal {len(text)} characters: {exc!r}")

    def _end(self) -> None:
        """The run's console is over: journal the last chunk, say so in ``console.json``."""
        with self._mutex:
            if self.ended.is_set():
                return
            for p in self._pipes:
                if not (p.ended or p.eof):
                    p.lines.close()
            self._lines_done()
            self._flush_locked()
            self._end_locked()

    def _end_locked(self) -> None:
        self._journaling = False
        try:
            write_json_atomic(self._state_path, {"done": True, "tail": self.tail(), "lines": self._lines,
                                                 "bytes": self.bytes_read, "time": time.time()})
        except OSError as exc:
            self._log(f"console: could not write {self._state_path}: {exc}")
        self.ended.set()


def _count_lines(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0
