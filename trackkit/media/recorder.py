"""The trainer's media path: a value becomes a payload in ``payloads.bin`` and one ``media``
journal record pointing at it. Called from ``Run.log`` for every ``trackkit.Image`` (...) value;
never raises: a bad value is a warning naming the key and the fix, and the call's other values
are recorded as usual. See docs/media.md."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..events import Event, Media
from .store import PayloadStore
from .values import MediaError, MediaValue, Options

__all__ = ["MediaRecorder"]


class MediaRecorder:
    def __init__(self, payloads: str, opts: Options, write: Callable[[Event, str], bool],
                 problem: Callable[[str, str, str], None], advise: Callable[[str], None],
                 first_of_kind: Callable[[str], None] | None) -> None:
        self.store = PayloadStore(payloads)
        self.opts = opts
        self._write, self._problem, self._advise, self._first = write, problem, advise, first_of_kind
        self._noted: set[str] = set()
        self._kinds: set[str] = set()
        #: media values recorded (written to the journal)
        self.recorded = 0

    def record(self, key: str, value: MediaValue, step: int) -> None:
        try:
            p = value.payload(key, self.opts)
        except MediaError as exc:
            self._problem(f"media:{key}", f"log(): {exc}; skipped (the other values of the call are recorded)", "bad")
            return
        except Exception as exc:
            self._problem(f"media:{key}", f"log(): {type(value).__name__} {key!r} could not be recorded "
                          f"({type(exc).__name__}: {exc}); skipped", type(exc).__name__)
            return
        if p.note and key not in self._noted:
            self._noted.add(key)
            self._advise(f"trackkit: {p.note} (said once per key)")
        try:
            path, offset, sha = self.store.write(p.data)
        except OSError as exc:
            self._problem("journal", f"the payload of {type(value).__name__} {key!r} could not be written ({exc}); "
                          "this value was NOT saved", "payload")
            return
        ev = Media(key=key, step=step, kind=value.kind, path=path, sha256=sha, size=len(p.data), format=p.format,
                   time=time.time(), caption=value.caption, offset=offset, meta=p.meta)
        if self._write(ev, "media"):
            self.recorded += 1
        if value.kind not in self._kinds:
            self._kinds.add(value.kind)
            if self._first is not None:
                self._first(value.kind)

    def close(self) -> None:
        self.store.close()


def is_media(v: Any) -> bool:
    return isinstance(v, MediaValue)
