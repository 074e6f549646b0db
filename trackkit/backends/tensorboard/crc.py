"""A fast CRC32C for tensorboard's record writer and reader.

Without TensorFlow, the ``tensorboard`` package checks every event record with a pure-Python
CRC32C: 1.8 ms for a 12 KB image record here, the bulk of delivering an image and of reading a
logdir. The ``crc32c`` package (a dependency of trackkit) computes the same checksum in about
1 us; ``install()`` puts it where tensorboard looks the function up. The checksums written and
checked are bit-identical (``tests/backends/test_media_tensorboard.py`` reads the files back with
tensorboard's own reader)."""

from __future__ import annotations

__all__ = ["install"]

_DONE: list[bool] = []


def install() -> bool:
    """Swap tensorboard's pure-Python CRC32C for the ``crc32c`` package's; True when it did (once)."""
    if _DONE:
        return _DONE[0]
    try:
        import crc32c as fast
        from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as stub
        from tensorboard.summary.writer import record_writer
    except ImportError:
        _DONE.append(False)
        return False
    if fast.crc32c(b"123456789") != 0xE3069283:  # the CRC-32C check value: never swap in a different sum
        _DONE.append(False)
        return False

    def masked_crc32c(data: bytes) -> int:
        x = fast.crc32c(data)
        return (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    stub.crc32c = fast.crc32c
    stub.masked_crc32c = masked_crc32c
    record_writer.masked_crc32c = masked_crc32c
    _DONE.append(True)
    return True
