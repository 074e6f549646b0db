"""The framing of W&B's ``run-<id>.wandb`` files (W&B 0.31 ships no Python reader for them).

LevelDB-style log: a 7-byte file header ``<4sHB`` (``b":W&B"``, 0xBEE1, 0), then 32 KiB
blocks of records, each with a 7-byte header ``<IHB`` (crc32, length, type: 1 full,
2 first, 3 middle, 4 last); the crc is ``zlib.crc32(data, zlib.crc32(bytes([type])))``;
fewer than 7 bytes left in a block are zero padding. Each payload is a
``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import importlib
import os
import struct
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = ["BLOCK", "has_exit_record", "iter_records", "iter_run_file", "parse_record"]

_FILE_HEADER = struct.Struct("<4sHB")
_REC_HEADER = struct.Struct("<IHB")
BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def iter_records(data: bytes) -> Iterator[bytes]:
    """Payloads of a ``run-<id>.wandb`` file (LevelDB-style log framing).

    7-byte file header ``<4sHB`` (``b":W&B"``, 0xBEE1, 0), then 32 KiB blocks of
    records, each with a 7-byte header ``<IHB`` (crc32, length, type). A record
    split across blocks comes as first/middle/last fragments; fewer than 7 bytes
    left in a block are zero padding. A torn tail ends the iteration; a record
    with a bad checksum skips the rest of its block.
    """
    if len(data) < _FILE_HEADER.size:
        return
    ident, magic, _version = _FILE_HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError("not a W&B run file (bad header)")
    yield from _frames(data, _FILE_HEADER.size, 0)


def _frames(data: bytes, pos: int, base: int) -> Iterator[bytes]:
    """Reassembled payloads of ``data``, whose byte 0 lies at file offset ``base``."""
    end_of_data = len(data)
    pending: bytearray | None = None
    while pos < end_of_data:
        left = BLOCK - (base + pos) % BLOCK
        if left < _REC_HEADER.size:
            pos += left
            continue
        if pos + _REC_HEADER.size > end_of_data:
            break  # torn record header
        crc, length, rtype = _REC_HEADER.unpack_from(data, pos)
        start = pos + _REC_HEADER.size
        stop = start + length
        if rtype == 0 and length == 0:
            pos += left  # zero fill: nothing more in this block
            continue
        if length > left - _REC_HEADER.size or rtype not in (_FULL, _FIRST, _MIDDLE, _LAST):
            pending = None
            pos += left  # corrupt header: resynchronise at the next block
            continue
        if stop > end_of_data:
            break  # torn payload
        payload = data[start:stop]
        if zlib.crc32(payload, zlib.crc32(bytes([rtype]))) & 0xFFFFFFFF != crc:
            pending = None
            pos += left
            continue
        pos = stop
        if rtype == _FULL:
            pending = None
            yield payload
        elif rtype == _FIRST:
            pending = bytearray(payload)
        elif pending is not None:  # middle or last fragment
            pending += payload
            if rtype == _LAST:
                yield bytes(pending)
                pending = None


def parse_record(payload: bytes) -> Any:
    """One payload as a ``wandb_internal_pb2.Record``, or None when it does not parse."""
    pb: Any = importlib.import_module("wandb.proto.wandb_internal_pb2")
    rec = pb.Record()
    try:
        rec.ParseFromString(payload)
    except Exception:  # a damaged record
        return None
    return rec


def iter_run_file(path: str) -> Iterator[Any]:
    """``wandb_internal_pb2.Record`` messages of one run file (undecodable records are skipped)."""
    with open(path, "rb") as fh:
        data = fh.read()
    for payload in iter_records(data):
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
    for payload in _frames(data, start, base):
        rec = parse_record(payload)
        if rec is not None and rec.WhichOneof("record_type") == "exit":
            return True
    return False
