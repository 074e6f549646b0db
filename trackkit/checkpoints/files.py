"""A checkpoint's file: its informative name, the atomic save that never overwrites, and links.

A save writes to a temporary name that does not end in the final extension (``.<name>.tmp-…``),
fsyncs it, then links it to the final name (``link(2)`` fails instead of replacing a file that is
there) and fsyncs the directory: a crash or a SIGKILL at any moment leaves either no file or a
whole one under a final name. See docs/checkpoints.md.
"""

from __future__ import annotations

import errno
import math
import os
import re
import secrets
import shutil
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["TMP_MARK", "file_name", "is_immutable", "link_or_copy", "link_tree", "mark_immutable", "snapshot",
           "write_atomic"]

#: the part of a temporary file's name that says it is one (never a final name)
TMP_MARK = ".tmp-"
#: files the checkpoint managers of this process wrote: never changed after the save, so a snapshot
#: of one (``log_artifact``) is a hard link, not a copy
_IMMUTABLE: set[str] = set()


def _fmt(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 1e15):
        return str(int(v))
    return f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v)


def _segment(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", text).strip("._") or "x"


def file_name(stem: str, ext: str, *, epoch: int | None, step: int, monitor: str | None,
              metrics: Mapping[str, float]) -> str:
    """``<stem>-epoch=0012-step=000480-val_acc=0.9132<ext>``: epoch, step and the monitored value."""
    parts = [_segment(stem)]
    if epoch is not None:
        parts.append(f"epoch={epoch:04d}")
    parts.append(f"step={step:06d}")
    if monitor and monitor in metrics:
        parts.append(f"{_segment(monitor)}={_fmt(metrics[monitor])}")
    return "-".join(parts) + ext


def write_atomic(dirpath: str, name: str, write: Callable[[str], Any], *, fsync: bool = True) -> str:
    """Write a new file ``name`` in ``dirpath`` through ``write(tmp_path)``; returns its final path.
    A name that is taken gets ``-1``, ``-2`` ... before its extension: nothing is ever overwritten."""
    os.makedirs(dirpath, exist_ok=True)
    tmp = os.path.join(dirpath, f".{name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(3)}")
    try:
        write(tmp)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        base, ext = os.path.splitext(name)
        for n in range(10_000):
            final = os.path.join(dirpath, name if n == 0 else f"{base}-{n}{ext}")
            try:
                os.link(tmp, final)  # fails on a name that exists: never replaces a file
                break
            except FileExistsError:
                continue
            except OSError as exc:  # a filesystem without hard links: rename, after a check
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if os.path.exists(final):
                    continue
                os.rename(tmp, final)
                break
        else:  # pragma: no cover - 10,000 files of one name
            raise FileExistsError(f"no free file name for {name} in {dirpath}")
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    if fsync:
        _fsync_dir(dirpath)
    mark_immutable(final)
    return final


def _fsync_dir(dirpath: str) -> None:
    try:
        fd = os.open(dirpath, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def mark_immutable(path: str) -> None:
    _IMMUTABLE.add(os.path.realpath(path))


def is_immutable(path: str) -> bool:
    """True for a file a checkpoint manager of this process wrote (it never changes)."""
    return os.path.realpath(path) in _IMMUTABLE


def link_or_copy(src: str, dest: str) -> str:
    """``dest`` as a hard link to ``src`` (no bytes copied); a copy where no link can be made
    (another filesystem). Returns ``"link"``, ``"copy"`` or ``"exists"`` (``dest`` is ``src`` already)."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    try:
        if os.path.samefile(src, dest):
            return "exists"
    except OSError:
        pass
    try:
        if not os.path.isdir(dest):
            os.unlink(dest)
    except FileNotFoundError:
        pass
    try:
        os.link(src, dest)
        return "link"
    except OSError:
        pass
    if os.path.isdir(src):  # a checkpoint folder (the HF Trainer's): each file linked
        link_tree(src, dest)
        return "link"
    tmp = dest + TMP_MARK + secrets.token_hex(3)
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)
    return "copy"


def _link_file(src: str, dest: str) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def link_tree(src: str, dest: str) -> None:
    """A folder of hard links to the files of ``src`` (copies where no link can be made)."""
    shutil.copytree(src, dest, copy_function=_link_file, dirs_exist_ok=True)


def snapshot(src: str, dest: str) -> int:
    """``log_artifact``'s snapshot of ``src`` at ``dest``: a hard link for a file a checkpoint manager
    wrote (it never changes), else a copy (the kernel's ``copy_file_range``: no bytes through Python);
    the agent hashes it. Returns the size in bytes."""
    if os.path.isdir(src):
        shutil.copytree(src, dest, dirs_exist_ok=True)
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(dest) for f in fs)
    if is_immutable(src):
        link_or_copy(src, dest)
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(src, dest)
    return os.path.getsize(dest)
