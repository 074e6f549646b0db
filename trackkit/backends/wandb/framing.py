"""The framing of W&B's ``run-<id>.wandb`` files (W&B 0.31 ships no Python reader for them).

LevelDB-style log: a 7-byte file header ``<4sHB`` (``b":W&B"``, 0xBEE1, 0), then 32 KiB
blocks of records, each with a 7-byte header ``<IHB`` (crc32, length, type: 1 full,
2 first, 3 middle, 4 last); the crc is ``zlib.crc32(data, zlib.crc32(bytes([type])))``;
fewer than 7 bytes left in a block are zero padding. Each payload is a
``wandb.proto.wandb_internal_pb2.Record``.

``RunFile`` reads a file in bounded chunks of whole blocks (memory flat whatever its size) and
says where it is cut (a SIGKILL, a copy stopped short) and which blocks were damaged.
"""

from __future__ import annotations

import importlib
import os
import struct
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = ["BLOCK", "RunFile", "has_exit_record", "iter_records", "iter_run_file", "parse_record", "record_kind"]

_FILE_HEADER = struct.Struct("<4sHB")
_REC_HEADER = struct.Struct("<IHB")
BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
#: the crc of each record type's byte, where a record's checksum starts
_SEEDS = {t: zlib.crc32(bytes([t])) for t in (_FULL, _FIRST, _MIDDLE, _LAST)}
#: blocks read at a time by ``RunFile`` (1 MiB)
_CHUNK_BLOCKS = 32

#: ``Record`` field numbers of the record kinds (``record_kind``)
KIND_NUMBERS = {"history": 2, "summary": 3, "config": 5, "files": 6, "artifact": 8, "run": 17, "exit": 18,
                "preempting": 23}


class _Frames:
    """Reassembles payloads block by block; remembers damage and a torn tail."""

    def __init__(self) -> None:
        self.pending: bytearray | None = None
        self.pending_at = 0
        #: file offsets of blocks whose rest was skipped (bad checksum, corrupt header)
        self.damaged: list[int] = []
        #: file offset where the readable part ends, when the file is cut mid-record
        self.cut_at: int | None = None

    def feed(self, data: bytes | memoryview, pos: int, base: int, final: bool) -> Iterator[tuple[bytes, int]]:
        """Payloads (and the file offset just after each) of ``data``, whose byte 0 is at file offset
        ``base``; ``data`` ends on a block boundary unless ``final`` (a file ends after its last record)."""
        end = len(data)
        while pos < end:
            left = BLOCK - (base + pos) % BLOCK
            if left < _REC_HEADER.size:
                pos += left
                continue
            if pos + _REC_HEADER.size > end:
                if any(data[pos:end]):
                    self._cut(base + pos)  # a torn record header
                return
            crc, length, rtype = _REC_HEADER.unpack_from(data, pos)
            start = pos + _REC_HEADER.size
            stop = start + length
            if rtype == 0 and length == 0:
                pos += left  # zero fill: nothing more in this block
                continue
            if length > left - _REC_HEADER.size or rtype not in (_FULL, _FIRST, _MIDDLE, _LAST):
                self.pending = None
                self.damaged.append(base + pos)
                pos += left  # corrupt header: resynchronise at the next block
                continue
            if stop > end:
                self._cut(base + pos)  # a torn payload
                return
            payload = bytes(data[start:stop])
            if zlib.crc32(payload, _SEEDS[rtype]) & 0xFFFFFFFF != crc:
                self.pending = None
                self.damaged.append(base + pos)
                pos += left
                continue
            pos = stop
            if rtype == _FULL:
                self.pending = None
                yield payload, base + pos
            elif rtype == _FIRST:
                self.pending, self.pending_at = bytearray(payload), base + start - _REC_HEADER.size
            elif self.pending is not None:  # middle or last fragment
                self.pending += payload
                if rtype == _LAST:
                    yield bytes(self.pending), base + pos
                    self.pending = None
        if final and self.pending is not None:
            self._cut(self.pending_at)  # a record begun and never finished

    def _cut(self, at: int) -> None:
        if self.pending is not None:
            at = self.pending_at
            self.pending = None
        self.cut_at = at


#: ``Record`` fields that are not its kind (``num``, ``control``, ``uuid``, ``_info``)
_NOT_KIND = frozenset({1, 16, 19, 200})


def _varint(payload: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(payload):
        b = payload[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return value, pos


def record_kind(payload: bytes) -> int:
    """The ``Record`` field number of a payload's record kind (``KIND_NUMBERS``; 0 when unknown),
    read from its top-level field tags without parsing it (wandb-core does not write ``num`` first)."""
    pos, n = 0, len(payload)
    if n > 1 and payload[0] == 0x08:  # the usual start: ``num``, then the kind in one byte
        pos = 1
        while pos < n and payload[pos] & 0x80:
            pos += 1
        if pos + 1 < n and payload[pos + 1] < 0x80 and (payload[pos + 1] >> 3) not in _NOT_KIND:
            return payload[pos + 1] >> 3
        pos = 0
    while pos < n:
        tag, pos = _varint(payload, pos)
        field, wire = tag >> 3, tag & 7
        if field not in _NOT_KIND:
            return field
        if wire == 0:
            _, pos = _varint(payload, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _varint(payload, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            return 0
    return 0


class RunFile:
    """One ``run-<id>.wandb`` file read in bounded chunks: ``payloads()`` yields ``(payload,
    offset after it)``; afterwards ``cut_at`` and ``damaged`` say what could not be read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.size = os.path.getsize(path)
        self._frames = _Frames()
        #: bytes of the file read so far
        self.read = 0

    @property
    def cut_at(self) -> int | None:
        return self._frames.cut_at

    @property
    def damaged(self) -> list[int]:
        return self._frames.damaged

    def payloads(self) -> Iterator[tuple[bytes, int]]:
        """Every readable payload; ``ValueError`` when the file is not a W&B run file."""
        with open(self.path, "rb") as fh:
            head = fh.read(_FILE_HEADER.size)
            if len(head) < _FILE_HEADER.size:
                if head:
                    self._frames.cut_at = 0
                return
            ident, magic, _version = _FILE_HEADER.unpack(head)
            if ident != b":W&B" or magic != 0xBEE1:
                raise ValueError("not a W&B run file (bad header)")
            base, pos = 0, _FILE_HEADER.size
            data = head + fh.read(BLOCK * _CHUNK_BLOCKS - _FILE_HEADER.size)
            while data:
                nxt = fh.read(BLOCK * _CHUNK_BLOCKS)
                yield from self._frames.feed(data, pos, base, final=not nxt)
                base += len(data)
                self.read = base
                data, pos = nxt, 0

    def notes(self) -> list[str]:
        """One line per problem found by ``payloads()``."""
        out = []
        if self.cut_at is not None:
            out.append(f"W&B run file {self.path} is cut mid-record at byte {self.cut_at} of {self.size} (the "
                       "process was killed, or the file is still being written); the readable part was read")
        if self.damaged:
            out.append(f"W&B run file {self.path} has {len(self.damaged)} damaged block(s) (first at byte "
                       f"{self.damaged[0]}); the records after the damage in each were skipped")
        return out

    def damage(self) -> list[str]:
        """The same problems as ``RunInfo.damage`` lines: the file and where (none when it is whole)."""
        out = []
        if self.cut_at is not None:
            out.append(f"{self.path} cut at byte {self.cut_at} of {self.size}")
        if self.damaged:
            out.append(f"{self.path}: {len(self.damaged)} damaged block(s) (first at byte {self.damaged[0]})")
        return out


def iter_records(data: bytes) -> Iterator[bytes]:
    """Payloads of a ``run-<id>.wandb`` file held in memory (see ``RunFile`` for files).

    A record split across blocks comes as first/middle/last fragments; fewer than 7 bytes
    left in a block are zero padding. A torn tail ends the iteration; a record
    with a bad checksum skips the rest of its block.
    """
    if len(data) < _FILE_HEADER.size:
        return
    ident, magic, _version = _FILE_HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError("not a W&B run file (bad header)")
    for payload, _ in _Frames().feed(data, _FILE_HEADER.size, 0, final=True):
        yield payload


_RECORD: list[Any] = []


def parse_record(payload: bytes) -> Any:
    """One payload as a ``wandb_internal_pb2.Record``, or None when it does not parse."""
    if not _RECORD:
        _RECORD.append(importlib.import_module("wandb.proto.wandb_internal_pb2").Record)
    rec = _RECORD[0]()
    try:
        rec.ParseFromString(payload)
    except Exception:  # a damaged record
        return None
    return rec


def iter_run_file(path: str) -> Iterator[Any]:
    """``wandb_internal_pb2.Record`` messages of one run file (undecodable records are skipped)."""
    for payload, _ in RunFile(path).payloads():
        rec = parse_record(payload)
        if rec is not None:
            yield rec


def has_exit_record(path: str) -> bool:
    """True once the run file ends with W&B's ``exit`` record on disk (reads the last blocks only)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            base = max(0, (size // BLOCK - 1) * BLOCK)
            fh.seek(base)
            data = fh.read()
    except OSError:
        return False
    start = _FILE_HEADER.size if base == 0 else 0
    for payload, _ in _Frames().feed(data, start, base, final=True):
        if record_kind(payload) == KIND_NUMBERS["exit"]:
            return True
    return False
