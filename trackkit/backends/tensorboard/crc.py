"""A fast CRC32C for tensorboard's record writer and reader.

Without TensorFlow, the ``tensorboard`` package checks every event record with a pure-Python
CRC32C: 1.8 ms for a 12 KB image record here, the bulk of delivering an image and of reading a
logdir. The ``crc32c`` package (a dependency of trackkit) computes the same checksum in about
1 us; ``install()`` puts it where tensorboard looks the function up. The checksums written and
checked are bit-identical (``tests/backends/test_media_tensorboard.py`` reads the files back with
tensorboard's own reader)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["fast_crc32c", "install"]

_DONE: list[bool] = []
_FAST: list[Any] = []


def fast_crc32c() -> Callable[[bytes], int] | None:
    """The ``crc32c`` package's CRC32C when it is installed and computes the CRC-32C check value, else
    None. Imports no tensorboard (reading a logdir needs no TensorBoard writer or TensorFlow stub)."""
    if not _FAST:
        try:
            import crc32c as fast
        except ImportError:
            _FAST.append(None)
        else:  # the CRC-32C check value: never use a different sum
            _FAST.append(fast.crc32c if fast.crc32c(b"123456789") == 0xE3069283 else None)
    fn: Callable[[bytes], int] | None = _FAST[0]
    return fn


def install() -> bool:
    """Swap tensorboard's pure-Python CRC32C for the ``crc32c`` package's; True when it did (once)."""
    if _DONE:
        return _DONE[0]
    crc = fast_crc32c()
    if crc is None:
        _DONE.append(False)
        return False
    try:
        from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as stub
        from tensorboard.summary.writer import record_writer
    except ImportError:
        _DONE.append(False)
        return False

    def masked_crc32c(data: bytes) -> int:
        x = crc(data)
        return (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    stub.crc32c = crc
    stub.masked_crc32c = masked_crc32c
    record_writer.masked_crc32c = masked_crc32c
    _DONE.append(True)
    return True
