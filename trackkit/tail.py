"""What the delivery agent looks at between its batched reads of a live journal (docs/journal.md,
"The delivery agent"): the journal's data end (``journal.data_end`` on a descriptor it holds: the size,
or, while a mapped writer's filler follows the last record, where the filler starts), and, in the bytes
added since its last look, a record that is to be read at once (``PROMPT``: a finish, a checkpoint,
an artifact)."""

from __future__ import annotations

import os

from .journal import data_end

__all__ = ["POKED", "PROMPT", "JournalTail"]

#: records the trainer pokes the agent for as it writes them (``Run._write``): their files are sent now
POKED = ('{"k":"ckpt', '{"k":"artifact"')
#: records read as soon as a look sees them (a 16-byte overlap: a record split by the last look's end)
PROMPT = (b'{"k":"finish"', *(p.encode() for p in POKED))
#: the most a look reads back from the end
TAIL = 64 << 10


class JournalTail:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        #: the size at the last look, and how many looks in a row found it so
        self.seen = 0
        self.quiet = 0
        #: the data end at the last look (where the next one starts searching: ``data_end``'s hint)
        self._end = 0

    def size(self) -> int | None:
        """Where the journal's records end now (None: it cannot be looked at). Not ``st_size``: a
        live mapped writer's file runs on in NUL filler past its last record."""
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            self._end = data_end(self._fd, self._end)
            return self._end
        except OSError:
            return None

    def urgent(self, size: int, offset: int, grow: int) -> bool:
        """Whether the journal is to be read now: it grew by ``grow`` bytes past ``offset`` (what the
        reader has read), or what was added since the last look holds a ``PROMPT`` record."""
        if size <= self.seen:
            self.quiet += 1
            return False
        self.quiet = 0
        start, self.seen = max(self.seen - 16, offset, size - TAIL), size
        if size - offset >= grow or self._fd is None:
            return True
        try:
            tail = os.pread(self._fd, size - start, start)
        except OSError:
            return True
        return any(p in tail for p in PROMPT)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._end = 0
