"""Console bytes to stored lines: UTF-8 decoded as they come, ``\\r`` rewrites (progress bars,
tqdm) collapsed to their final text, terminal escape sequences removed, secrets redacted."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

__all__ = ["LineAssembler", "clean_line"]

#: CSI sequences (colours, cursor moves: tqdm's nested bars) and OSC sequences (window titles, links)
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
#: a line longer than this is stored in pieces of this size
MAX_LINE = 64 * 1024


def _last_frame(text: str) -> str:
    """What a terminal line shows after ``\\r`` rewrites: the last non-empty frame."""
    if "\r" not in text:
        return text
    for frame in reversed(text.split("\r")):
        if frame:
            return frame
    return ""


def clean_line(text: str) -> str:
    return _ESCAPES.sub("", _last_frame(text)).replace("\x00", "")


class LineAssembler:
    """Feed bytes of one stream; complete lines come back through ``emit(line)``."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._emit = emit
        self._partial = ""

    def feed(self, data: bytes) -> None:
        text = self._partial + self._decoder.decode(data)
        *done, rest = text.split("\n")
        for line in done:
            self._emit(clean_line(line))
        if "\r" in rest:  # thousands of progress frames: keep only the last (and a pending \r)
            frame = _last_frame(rest)
            rest = frame + ("\r" if rest.endswith("\r") else "")
        while len(rest) > MAX_LINE:
            self._emit(clean_line(rest[:MAX_LINE]))
            rest = rest[MAX_LINE:]
        self._partial = rest

    def close(self) -> None:
        """The stream ended: a last line without its newline is kept too."""
        rest = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        if clean_line(rest):
            self._emit(clean_line(rest))
