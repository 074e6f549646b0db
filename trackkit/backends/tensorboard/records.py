"""TensorBoard's event files at the record level: writing (``EventFile``) and reading (``read_records``).

An event file is a TFRecord file: each record is ``uint64 length``, ``uint32 masked CRC32C of
the length``, the serialized ``Event``, ``uint32 masked CRC32C of the data``. The sink writes its
records itself (synchronously, one ``write`` per batch: tensorboard's ``EventFileWriter`` hands
every event to a thread through a queue, most of a metric's cost) and hand-encodes scalar events
(``scalar_event``); the reader reads records in bounded blocks and says where a file is damaged
instead of raising, so the readable part of a cut file is read (docs/backends/tensorboard.md).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from itertools import count
from typing import IO

from .crc import fast_crc32c, install

__all__ = [
    "BLOCK",
    "EVENT_PREFIX",
    "Damage",
    "EventFile",
    "is_event_file",
    "masked_crc",
    "read_records",
    "scalar_event",
]

#: the name TensorBoard's writers (tensorboard, torch, tensorboardX, TensorFlow) give event files
EVENT_PREFIX = "events.out.tfevents."
#: bytes read from an event file at a time (a reader holds one block per open file)
BLOCK = 1 << 18
_U64, _U32, _F32, _F64 = struct.Struct("<Q"), struct.Struct("<I"), struct.Struct("<f"), struct.Struct("<d")
_UID = count()


def is_event_file(name: str) -> bool:
    return EVENT_PREFIX in name and not name.endswith((".tmp", ".lock"))


def masked_crc(patch: bool = True) -> Callable[[bytes], int]:
    """The masked CRC32C of TFRecords: the ``crc32c`` package's C checksum where it is installed.
    ``patch``: also put it into tensorboard's own writer (``crc.install``: a writer's process may use
    ``EventFileWriter`` too, ``Sink.native``); a reader does not, and imports no TensorBoard stub."""
    crc32c = fast_crc32c() if not patch or install() else None
    if crc32c is not None:
        fast = crc32c

        def masked(data: bytes) -> int:
            x = fast(data)
            return (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF

        return masked
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as stub

    fn: Callable[[bytes], int] = stub.masked_crc32c
    return fn


# ---------------------------------------------------------------- writing


def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _SMALL[n]
    n &= 0xFFFFFFFFFFFFFFFF  # a negative int64 is ten bytes of two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes((i,)) for i in range(0x80)]


def _f32(v: float) -> bytes:
    try:
        return _F32.pack(v)
    except OverflowError:  # beyond float32: what protobuf stores for it
        return _F32.pack(float("inf") if v > 0 else float("-inf"))


#: key -> the bytes of ``Summary.value`` up to the float: field 1 (Value, length), tag, field 2 (float)
_HEADS: dict[str, bytes] = {}


def _head(k: str) -> bytes:
    tb = k.encode("utf-8", "surrogatepass")
    val = b"\x0a" + _varint(len(tb)) + tb + b"\x15"
    head = b"\x0a" + _varint(len(val) + 4) + val
    if len(_HEADS) > 100_000:
        _HEADS.clear()
    _HEADS[k] = head
    return head


def scalar_event(step: int, wall: float, values: Mapping[str, float]) -> bytes:
    """The serialized ``Event(wall_time, step, summary=Summary(value=[Value(tag, simple_value)...]))``
    of one step's metrics, encoded by hand (the bytes protobuf writes; tensorboard's own reader reads
    them back in the tests)."""
    heads = _HEADS
    pack = _F32.pack
    parts = []
    for k, v in values.items():
        head = heads.get(k) or _head(k)
        try:
            parts.append(head + pack(v))
        except (OverflowError, struct.error):
            parts.append(head + _f32(float(v)))
    summary = b"".join(parts)
    return b"".join((b"\x09", _F64.pack(wall), b"\x10" + _varint(step) if step else b"",
                     b"\x2a", _varint(len(summary)), summary))


class EventFile:
    """One event file of a run, written synchronously: ``add(serialized_event)`` queues a record,
    ``flush()`` writes the queued ones with one ``write`` and flushes them to the OS."""

    def __init__(self, logdir: str, suffix: str = "") -> None:
        self._crc = masked_crc()
        name = f"{EVENT_PREFIX}{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_UID)}{suffix}"
        self.path = os.path.join(logdir, name)
        self._fh: IO[bytes] | None = open(self.path, "ab")
        self._pending: list[bytes] = []
        #: a flush failed and its records were taken back (the sink writes them again)
        self.dropped = False
        from tensorboard.compat.proto import event_pb2

        self.add(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        self.flush()

    def add(self, data: bytes) -> None:
        n = _U64.pack(len(data))
        crc = self._crc
        self._pending.append(b"".join((n, _U32.pack(crc(n)), data, _U32.pack(crc(data)))))
        if len(self._pending) > 4096:  # a long batch: bounded memory
            self.flush()

    def flush(self) -> None:
        if self._fh is None:
            raise OSError(f"event file {self.path} is closed")
        if self._pending:
            data = b"".join(self._pending)
            self._pending = []
            at = self._fh.tell()
            try:
                self._fh.write(data)
                self._fh.flush()
            except BaseException:
                # a partial write (disk full) would leave a cut record before the next ones: take it back
                self.dropped = True
                try:
                    self._fh.seek(at)
                    self._fh.truncate(at)
                except OSError:
                    pass
                raise
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            try:
                self.flush()
            finally:
                self._fh.close()
                self._fh = None


# ---------------------------------------------------------------- reading


class Damage:
    """What was wrong with one event file (``text`` is the note), or nothing (``text == ""``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cut = ""
        #: ``cut`` in the short form of a run's ``RunInfo.damage`` (``FILE cut at byte N of M``)
        self.cut_short = ""
        #: offsets of records skipped for a failed data checksum
        self.bad: list[int] = []

    @property
    def short(self) -> list[str]:
        """The damage as ``RunInfo.damage`` lines: which file, where (none when the file is whole)."""
        out = [self.cut_short] if self.cut_short else []
        if self.bad:
            out.append(f"{self.path}: {len(self.bad):,} record(s) fail their checksum (first at byte {self.bad[0]:,})")
        return out

    @property
    def text(self) -> str:
        lines = [self.cut] if self.cut else []
        if self.bad:
            first = ", ".join(f"{b:,}" for b in self.bad[:3]) + (" ..." if len(self.bad) > 3 else "")
            lines.append(f"event file {self.path}: {len(self.bad):,} record(s) fail their checksum and were skipped "
                         f"(at byte {first}); the others were read")
        return "; ".join(lines)


def read_records(path: str, damage: Damage, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """``(end offset, record data)`` of each record of an event file, read ``BLOCK`` bytes at a time.

    A damaged file is read up to the damage: a record cut by the end of the file (a run still
    writing, a copy cut short) or whose length fails its checksum ends the file; a record whose data
    fails its checksum is skipped. ``damage.text`` then says which file, at which byte, and how many
    records were read before it."""
    crc = masked_crc(patch=False)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        damage.cut = f"event file {path} cannot be read ({exc.strerror or exc}); it was left out"
        damage.cut_short = f"{path} cannot be read ({exc.strerror or exc})"
        return
    good = 0
    with fh:
        fh.seek(start)
        buf = b""
        at = start  # where buf[0] is in the file
        eof = False
        i = 0
        while True:
            if len(buf) - i < 12 and not eof:
                more = fh.read(BLOCK)
                eof = len(more) < BLOCK
                buf, at, i = buf[i:] + more, at + i, 0
            if len(buf) - i == 0:
                return
            if len(buf) - i < 12:
                damage.cut = (f"event file {path} is cut at byte {at + i} (a record header is incomplete: the file "
                               f"ends at byte {at + len(buf)}); the {good:,} records before it were read")
                damage.cut_short = f"{path} cut at byte {at + i} of {at + len(buf)}"
                return
            head = buf[i:i + 8]
            (n,) = _U64.unpack(head)
            if _U32.unpack(buf[i + 8:i + 12])[0] != crc(head):
                damage.cut = (f"event file {path} is damaged at byte {at + i} (a record length fails its checksum); "
                               f"the {good:,} records before it were read, the rest of the file was not")
                damage.cut_short = f"{path} damaged at byte {at + i} (the rest of the file unread)"
                return
            total = 12 + n + 4
            if len(buf) - i < total and not eof:
                need = total - (len(buf) - i)
                more = fh.read(max(BLOCK, need))
                eof = len(more) < max(BLOCK, need)
                buf, at, i = buf[i:] + more, at + i, 0
            if len(buf) - i < total:
                damage.cut = (f"event file {path} is cut at byte {at + i} (a record of {n:,} bytes starts there, "
                               f"the file ends at byte {at + len(buf)}); the {good:,} records before it were read")
                damage.cut_short = f"{path} cut at byte {at + i} of {at + len(buf)}"
                return
            data = buf[i + 12:i + 12 + n]
            ok = _U32.unpack(buf[i + 12 + n:i + total])[0] == crc(data)
            i += total
            pos = at + i
            if not ok:
                damage.bad.append(pos - total)
                continue
            good += 1
            yield pos, data
