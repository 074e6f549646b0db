"""Where the trainer puts media payloads: one append-only file per run segment.

One ``os.write`` per payload into ``media/payloads.bin`` (about 10 us for a 64x64 image, a
third of creating a file per value); the journal record names the offset and size. A process
forked from the trainer (a DataLoader worker) writes a file of its own instead. The agent reads
payloads back with ``Media.read_bytes``. See docs/media.md.
"""

from __future__ import annotations

import hashlib
import os
import threading

__all__ = ["PayloadStore"]


class PayloadStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._pid = os.getpid()
        self._fd = -1
        self._pos = 0
        self._lock = threading.Lock()

    def write(self, data: bytes) -> tuple[str, int, str]:
        """Store ``data``; returns ``(path, offset, sha256)`` (offset -1: a file of its own)."""
        sha = hashlib.sha256(data).hexdigest()
        if os.getpid() != self._pid:  # a forked child: its offsets would race the parent's
            path = f"{self.path}.{os.getpid()}-{sha[:16]}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            return path, -1, sha
        with self._lock:
            if self._fd < 0:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._pos = os.fstat(self._fd).st_size
            offset = self._pos
            _write_all(self._fd, data)
            self._pos += len(data)
        return self.path, offset, sha

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0 and os.getpid() == self._pid:
                os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
