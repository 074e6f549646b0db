"""The journal: one append-only file per run, written from the training thread.

Format (version 1, documented in docs/journal.md): UTF-8 text, one JSON value
per line, each line ended by ``\\n``.

* line 1, the header: ``{"trackkit_journal": 1, "run_id": ..., "created": <unix time>}``
* then one record per line, ``{"k": KIND, ...}`` with KIND one of ``start``,
  ``m`` (metrics: ``s`` step, ``t`` wall time, ``v`` values), ``config``,
  ``tags``, ``artifact``, ``status``, ``finish`` (see ``events.event_to_record``).
  Non-finite floats are written as ``NaN``/``Infinity``/``-Infinity`` (Python's
  json dialect).

The trainer writes through :class:`MappedJournalWriter`: each ``log()`` is one store of one whole
line into a shared mapping of the file (no system call), so once ``log()`` returned the record is
in the kernel's page cache and survives SIGKILL of the process (not a power cut: ``fsync`` happens
at ``finish``). The file grows by windows allocated ahead (``posix_fallocate``) and filled with
NULs; that *filler* after the last record is never data (no record holds two NULs in a row) and
the writer cuts it off when it closes. Every other writer (:class:`JournalWriter`, one
``write(2)`` per record, ``O_APPEND``) writes only while no trainer holds the run, and cuts a
killed trainer's filler first. A reader ignores a torn last line (no ``\\n`` yet) and skips, and
counts, any line that does not parse, so one damaged record never hides the rest. A writer
that finds a torn tail (its own short write, or a journal it resumes) seals it with a NUL
and a newline, so the torn piece can never parse later — not even when only its newline
was lost — and a record reported as not saved never reappears.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import Event, Metrics, event_to_record, flatten_config

__all__ = [
    "COMPACT_VERSION", "FORMAT_VERSION", "JOURNAL_NAME", "MAP_WINDOW", "JournalReader", "JournalWriter",
    "MappedJournalWriter", "MetricLines", "data_end", "encode", "expand_compact", "join_surrogates", "open_writer",
    "read_journal",
]

#: what a writer writes; a reader reads up to COMPACT_VERSION
FORMAT_VERSION = 1
#: a journal ``trackkit gc`` compacted: metric lines as ``mc`` blocks (docs/journal.md); version 1
#: readers must refuse it (they would skip the blocks and miss every point)
COMPACT_VERSION = 2
JOURNAL_NAME = "journal.jsonl"

_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def join_surrogates(text: str) -> str:
    """``text`` with each high + low surrogate pair joined into the one character JSON reads it back as
    (``"\\ud800\\udcd8"`` is read as ``"\U000100d8"``); a lone surrogate stays. A metric key is
    journaled in this form, so it reads back as it is recorded."""
    if text.isascii():
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def encode(ev: Event) -> str:
    """The one encoder of journal records: an event's line (without its newline). Metric records
    that ``Run.log`` writes take :class:`MetricLines` instead (same JSON, built by hand for speed)."""
    return _encode(event_to_record(ev))

#: ends a torn record before the next one. The NUL makes the torn piece unparseable even when
#: only its newline was cut off, so a record its writer reported as NOT saved never reappears.
SEAL_BYTES = b"\x00\n"

# ---- the fast path of the reader: the metric record exactly as ``Run.log`` formats it by hand,
# ``{"k":"m","s":STEP,"t":TIME,"v":{"KEY":NUM,...}}``, decoded without ``json.loads``. The pattern
# accepts only lines that ``json.loads`` + ``event_from_record`` decode to the very same event:
# keys of printable ASCII without escapes; numbers in JSON's grammar (or NaN/Infinity/-Infinity);
# integers short enough that ``float(text) == float(int(text))`` (no overflow); no integer ``-0``
# (JSON reads it as 0, ``float`` as -0.0). Any other line takes the general path.
_INT = rb"-?(?:0|[1-9][0-9]{0,300})"
_NUM = rb"(?!-0[,}])-?(?:0|[1-9][0-9]{0,300})(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|-?Infinity"
_KEY = rb"[ !#-\[\]-~]*"
_LINES = re.compile(
    rb'(\{"k":"m","s":(' + _INT + rb'),"t":(' + _NUM + rb'),"v":\{"(' + _KEY + rb')":(' + _NUM + rb")"
    rb'((?:,"' + _KEY + rb'":(?:' + _NUM + rb"))*)\}\})\n"
    # any other line
    rb"|([^\n]*)\n"
)


_float_repr = float.__repr__
_isfinite = math.isfinite
#: ints outside int64 become floats (every backend stores a double; the agent reads them with float())
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


class MetricLines:
    """The metric record exactly as the fast-path decoder above (``_LINES``) reads it:
    ``{"k":"m","s":STEP,"t":TIME,"v":{"KEY":NUM,...}}``, formatted by hand (``json.dumps`` costs
    ~4 us for this, the whole ``log()`` ~2 us). ``tests/core/test_journal_fast_path.py`` checks that
    both decoders read these lines as the same events.

    ``coerce(key, value)`` turns a value that is not a float or an int64 into one, or returns
    None to skip it (it reports why). Nested mappings are flattened by the config rule
    (``{"train": {"loss": x}}`` is ``train.loss``)."""

    def __init__(self, coerce: Any, new_key: Any = None) -> None:
        self._coerce = coerce
        #: called with each key the first time it is seen (the backends' key rules are checked there)
        self._new_key = new_key
        #: metric key -> its JSON text plus ":" (keys repeat every step; encode each once)
        self._keys: dict[Any, str] = {}

    def format(self, values: Any, step: int, now: float) -> tuple[str | None, tuple[str, float] | None]:
        """The line (None when no value is left) and the first non-finite ``(key, value)``."""
        parts = []
        bad = None
        keys = self._keys
        for k, v in values.items():
            t = type(v)
            if t is not float and (t is not int or not I64_MIN <= v <= I64_MAX):
                if isinstance(v, Mapping) and v:  # nested: flattened by the one config rule (a.b)
                    return self.format(flatten_config(values), step, now)
                v = self._coerce(k, v)
                if v is None:
                    continue
            if type(v) is float:
                if _isfinite(v):
                    r = _float_repr(v)
                else:
                    r = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
                    if bad is None:
                        bad = (str(k), v)
            else:
                r = str(v)
            ek = keys.get(k)
            if ek is None:
                if len(keys) > 10_000:  # keys made up per step must not grow memory without bound
                    keys.clear()
                sk = join_surrogates(k if type(k) is str else str(k))
                ek = keys[k] = _encode(sk) + ":"
                if self._new_key is not None:
                    self._new_key(sk)
            parts.append(ek + r)
        if not parts:
            return None, None
        return '{"k":"m","s":' + str(step) + ',"t":' + _float_repr(now) + ',"v":{' + ",".join(parts) + "}}", bad

    def encode(self, values: Any, step: int, now: float) -> tuple[bytes | None, tuple[str, float] | None]:
        """:meth:`format`'s line as the bytes a writer stores (``JournalWriter.store``), its newline
        included. ``log()``'s usual call (finite floats and int64s under keys seen before) takes a short
        loop: inside a training step every instruction and object it touches is a cache miss, so it
        costs several times what it does in a tight loop; anything else goes through :meth:`format`.
        A metric line is ASCII (keys are JSON-escaped), so it encodes as is."""
        keys = self._keys
        parts = []
        for k, v in values.items():
            t = type(v)
            if t is float:
                if v - v != 0.0:  # inf or NaN (x - x is 0.0 for every finite x)
                    break
                r = _float_repr(v)
            elif t is int and I64_MIN <= v <= I64_MAX:
                r = str(v)
            else:
                break
            ek = keys.get(k)
            if ek is None:
                break
            parts.append(ek + r)
        else:
            if parts:
                return ('{"k":"m","s":' + str(step) + ',"t":' + _float_repr(now) + ',"v":{' + ",".join(parts)
                        + "}}\n").encode(), None
        line, bad = self.format(values, step, now)
        return (None if line is None else (line + "\n").encode()), bad


#: the trainer's journal grows by windows of this many bytes, allocated and mapped ahead (a record
#: longer than a window gets a window of its own size)
MAP_WINDOW = 1 << 20
#: the filler a mapped writer leaves after its last record starts with two NULs; no record holds them
FILLER = b"\0\0"
#: what :func:`data_end` reads at once after a hint (what a fast training loop adds between two looks)
HINT_READ = 32 << 10


def data_end(fd: int, hint: int = 0) -> int:
    """The length of the journal open at ``fd`` without the filler after its last record (a live or
    killed :class:`MappedJournalWriter`'s). The filler runs to the end of the file and no record holds
    two NULs in a row, so a binary search of two-byte reads finds where it starts.

    ``hint``: an end this found before on the same descriptor (a tailing reader's last look). The end
    only moves on: records are appended, and a filler is only ever cut off at the end. When the byte
    before ``hint`` is still data, the search starts there, with one read of what was added since
    (a live journal's usual case: one ``pread`` instead of twenty)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) != b"\0":
        return size
    lo, hi = 0, size - 1  # the filler starts in [lo, hi]; byte hi is NUL
    if 0 < hint <= hi and os.pread(fd, 1, hint - 1) not in (b"", b"\0"):
        added = os.pread(fd, min(HINT_READ, size - hint), hint)
        z = added.find(FILLER)
        if z >= 0:
            return hint + z
        lo = hint + max(len(added) - 1, 0)  # no two NULs in it: the filler starts at its last byte or after
    while lo < hi:
        mid = (lo + hi) // 2
        if os.pread(fd, 2, mid) in (FILLER, b"\0"):  # two NULs (or the last byte): inside the filler
            hi = mid
        else:
            lo = mid + 1
    return lo


def path_end(path: str) -> int:
    """:func:`data_end` of the journal at ``path`` (0 when there is none)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        return data_end(fd)
    finally:
        os.close(fd)


class JournalWriter:
    """Appends records with one ``os.write`` each (``O_APPEND``). Not buffered on purpose. Used while no
    trainer writes the journal: the agent closing a dead trainer's segment, ``trackkit sync``; on
    opening it cuts off a killed mapped writer's filler."""

    def __init__(self, path: str, run_id: str, created: float) -> None:
        self.path = path
        fresh = not os.path.exists(path) or os.path.getsize(path) == 0
        self._fd: int | None = self._open(path)
        #: a previous write was cut short: start the next one on a fresh line
        self._torn = False
        if fresh:
            self.write_line(_encode({"trackkit_journal": FORMAT_VERSION, "run_id": run_id, "created": created}))
        else:
            # resuming: make sure an earlier torn tail does not swallow our first record
            end = self._trim(self._fd)
            self._torn = end > 0 and os.pread(self._fd, 1, end - 1) != b"\n"

    @staticmethod
    def _open(path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    @staticmethod
    def _trim(fd: int) -> int:
        """Cut a killed mapped writer's filler off (the caller holds the run: no trainer writes it)."""
        end = data_end(fd)
        if end != os.fstat(fd).st_size:
            os.ftruncate(fd, end)
        return end

    def write_line(self, line: str) -> None:
        """Write one record line. Raises ``OSError`` (disk full, read-only ...);
        the record is then *not* saved and the caller must not claim it was."""
        self.store((line + "\n").encode("utf-8", "surrogatepass"))

    def store(self, data: bytes) -> None:
        """:meth:`write_line` of a line already encoded, its newline included (``MetricLines.encode``)."""
        fd = self._fd
        if fd is None:
            raise OSError("journal is closed")
        if self._torn:
            data = SEAL_BYTES + data
        n = os.write(fd, data)
        if n != len(data):
            # a short write (disk filled up mid-record): the tail is torn, the record is lost
            self._torn = True
            raise OSError(28, f"short write to the journal ({n} of {len(data)} bytes)")
        self._torn = False

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(_encode(record))

    def sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None


#: mapped writers of this process; a forked child (a DataLoader worker) must not store into them
_MAPPED: weakref.WeakSet[MappedJournalWriter] = weakref.WeakSet()


def _forked() -> None:
    for w in list(_MAPPED):
        w.forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class MappedJournalWriter(JournalWriter):
    """The trainer's writer: each record is one store into a shared mapping of the journal, no system
    call (a ``write(2)`` per ``log()`` cost a 0.7 ms training step about 3 %; docs/journal.md).

    The file grows by :data:`MAP_WINDOW` windows, allocated first (``posix_fallocate``: a full disk
    is an ``OSError`` here, never a SIGBUS at the store) and mapped at the end of the data. Where
    a window cannot be had (no space, a file size limit, a file system without ``mmap``), the writer
    cuts the filler off and goes on with ``pwrite(2)`` at the end, the same guarantees at a system
    call per record. ``close`` cuts the filler off. Thread-safe: a store into the open window takes no
    lock (see ``store``); opening the next window, ``pwrite`` and ``close`` take one."""

    def __init__(self, path: str, run_id: str, created: float, window: int = MAP_WINDOW) -> None:
        self._lock = threading.Lock()
        #: stores into the open window take no lock (they need the GIL: a free-threaded build locks each)
        self._unlocked: bool = getattr(sys, "_is_gil_enabled", lambda: True)()
        self._mm: mmap.mmap | None = None
        self._base = 0  # the file offset of the mapped window
        self._window = max(mmap.ALLOCATIONGRANULARITY, window)
        self._mapping = True
        self._child = False
        super().__init__(path, run_id, created)
        _MAPPED.add(self)

    @staticmethod
    def _open(path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    @property
    def mapped(self) -> bool:
        """True while records go into the mapping (False: ``pwrite(2)`` after a window failed)."""
        return self._mm is not None

    def forked(self) -> None:
        """In a forked child: never store into the parent's journal (the child's copy of the position is stale)."""
        self._child = True
        self._lock = threading.Lock()  # a thread of the parent may have held it at the fork
        self._mm = None  # the child's copy of the mapping: dropped, not unmapped (the parent's pages)

    def store(self, data: bytes) -> None:
        # ``mmap.write`` is all or nothing (ValueError: no room left in the window, or the window was
        # closed) and, under the GIL, one step no other thread sees half done: a store into the open
        # window needs no lock. The lock is for the rest: a window is retired (closed) before the end
        # of the data is taken from the file, so no store lands in it after that (``_retire``).
        mm = self._mm
        if mm is not None and self._unlocked:
            try:  # ``_into_window`` written out: this is inside every training step (one call fewer)
                mm.write(data)
                return
            except ValueError:
                pass
        with self._lock:
            if not self._into_window(data):
                self._slow(data)

    def _into_window(self, data: bytes) -> bool:
        """Store into the open window; False when there is none or it has no room left."""
        mm = self._mm
        if mm is None:
            return False
        try:
            mm.write(data)
            return True
        except ValueError:
            return False

    def _retire(self, fd: int, flush: bool = False) -> int:
        """Close the window (under the lock; a store that raced it is in the file or goes to the
        next window) and return where the data ends."""
        mm, self._mm = self._mm, None
        if mm is None:
            return data_end(fd) if self._mapping else os.fstat(fd).st_size
        hint = self._base + mm.tell()
        try:
            if flush:
                mm.flush()
        finally:
            mm.close()
        return data_end(fd, hint)

    def _slow(self, data: bytes) -> None:
        """A new window, or ``pwrite(2)`` (under the lock)."""
        fd = self._fd
        if fd is None:
            raise OSError("journal is closed")
        if self._child:
            raise OSError("log() in a forked child process is not recorded: the run belongs to the parent "
                          f"process (pid {os.getppid()}). Fix: log from the process that called trackkit.init")
        if self._torn:
            data = SEAL_BYTES + data
        end = self._retire(fd)
        if self._mapping:
            try:
                self._map(fd, end, len(data))
            except (OSError, ValueError, OverflowError):
                self._unmap(fd, end)
                self._mapping = False
            else:
                assert self._mm is not None
                self._mm.write(data)
                self._torn = False
                return
        n = os.pwrite(fd, data, end)
        if n != len(data):
            self._torn = True
            raise OSError(28, f"short write to the journal ({n} of {len(data)} bytes)")
        self._torn = False

    def _map(self, fd: int, end: int, need: int) -> None:
        gran = mmap.ALLOCATIONGRANULARITY
        base = end - end % gran
        size = max(self._window, -(-(end - base + need) // gran) * gran)
        os.posix_fallocate(fd, end, base + size - end)
        mm = mmap.mmap(fd, size, offset=base)
        mm.seek(end - base)
        assert self._mm is None  # retired first
        self._mm, self._base = mm, base

    def _unmap(self, fd: int, end: int) -> None:
        """Cut the filler off at ``end`` (the window is retired)."""
        if os.fstat(fd).st_size > end:
            os.ftruncate(fd, end)

    def sync(self) -> None:
        with self._lock:
            if self._mm is not None:
                self._mm.flush()
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            fd = self._fd
            if fd is None:
                return
            try:
                if not self._child:
                    self._unmap(fd, self._retire(fd, flush=True))
                os.fsync(fd)
            except (OSError, ValueError):
                pass
            os.close(fd)
            self._fd = None


def open_writer(path: str, run_id: str, created: float, mapped: bool = True) -> JournalWriter:
    """The trainer's journal writer: mapped (the default), or one ``write(2)`` per record."""
    return MappedJournalWriter(path, run_id, created) if mapped else JournalWriter(path, run_id, created)


@dataclass
class JournalReader:
    """Reads complete records from a byte offset on; used to tail a live journal."""

    path: str
    offset: int = 0
    #: lines that did not parse (damaged records), skipped
    skipped: int = 0
    header: dict[str, Any] | None = None
    _keys: dict[bytes, str] = field(default_factory=dict, repr=False, compare=False)
    #: the last :meth:`read_events` returned ``Metrics`` events only (the live agent's usual slice)
    metrics_only: bool = field(default=False, repr=False, compare=False)
    #: the last read stopped at ``max_bytes`` with more whole lines after it (a backlog, not the end)
    capped: bool = field(default=False, repr=False, compare=False)

    def _slice(self, max_bytes: int | None) -> bytes:
        """The whole lines after ``self.offset`` (at most ``max_bytes``, but at least one line), up to a
        live writer's filler (read in steps, so a reader that is caught up reads a little of it)."""
        self.capped = False
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = b""
                step = 1 << 14
                limit = max_bytes or (1 << 62)
                while True:
                    part = fh.read(min(step, limit - len(data)) if len(data) < limit else step)
                    if not part:
                        break
                    z = (data[-1:] + part).find(FILLER)
                    if z >= 0:  # the filler: nothing after it is data
                        data = (data + part)[: len(data) - 1 + z] if data else part[:z]
                        break
                    data += part
                    if len(data) >= limit and b"\n" in data:
                        self.capped = True
                        break
                    step = min(step * 4, 1 << 24)
        except FileNotFoundError:
            return b""
        return data[: data.rfind(b"\n") + 1]

    def _parse(self, data: bytes, base: int, out: list[tuple[Any, int]]) -> None:
        """Append ``(record, end offset)`` for each line of ``data`` (which starts at byte
        ``base`` of the file); damaged lines are skipped and counted."""
        pos = base
        for raw in data.splitlines(keepends=True):
            pos += len(raw)
            line = raw.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                self.skipped += 1
                continue
            if not isinstance(rec, dict):
                self.skipped += 1
                continue
            if "trackkit_journal" in rec:
                self.header = rec
                if rec["trackkit_journal"] > COMPACT_VERSION:
                    raise ValueError(
                        f"{self.path}: journal format {rec['trackkit_journal']} is newer than this "
                        f"trackkit understands ({COMPACT_VERSION}). Fix: upgrade trackkit."
                    )
                continue
            if rec.get("k") == "mc":  # a block of metric records, compacted by trackkit gc
                try:
                    out.extend((m, pos) for m in expand_compact(rec))
                except (TypeError, ValueError, IndexError):
                    self.skipped += 1
                continue
            out.append((rec, pos))

    def read(self, max_bytes: int | None = None) -> list[tuple[dict[str, Any], int]]:
        """Return ``[(record, end_offset), ...]`` of whole lines after ``self.offset``
        and advance. A torn tail stays unread until it is completed. ``max_bytes`` bounds
        one read (a tailing agent parses a backlog in slices, sending as it goes); a
        single record longer than that is still read whole."""
        out: list[tuple[dict[str, Any], int]] = []
        data = self._slice(max_bytes)
        if data:
            self._parse(data, self.offset, out)
            self.offset += len(data)
        return out

    def read_events(self, max_bytes: int | None = None) -> list[tuple[Metrics | dict[str, Any], int]]:
        """:meth:`read` for the delivery agent: the same records, offsets and skips, except that
        a metric record in the form ``Run.log`` writes comes back already decoded, as the
        ``Metrics`` event ``event_from_record`` would make of it (about 3x cheaper than
        ``json.loads`` + ``event_from_record``). Every other record comes back as its dict."""
        out: list[tuple[Metrics | dict[str, Any], int]] = []
        self.metrics_only = False
        data = self._slice(max_bytes)
        if not data:
            return out
        pos = self.offset
        mixed = False
        append = out.append
        keys = self._keys  # a key's text, decoded once (keys repeat every step)
        if len(keys) > 10_000:  # keys made up per step must not grow memory without bound
            keys.clear()
        for line, s, t, k, v, more, other in _LINES.findall(data):
            if line:
                pos += len(line) + 1
                key = keys.get(k)
                if key is None:
                    key = keys[k] = k.decode("ascii")
                values = {key: float(v)}
                if more:  # ',"KEY":NUM,"KEY":NUM': no '"' inside a key, so split on it
                    parts = more.split(b'"')
                    for i in range(1, len(parts), 2):
                        k = parts[i]
                        key = keys.get(k)
                        if key is None:
                            key = keys[k] = k.decode("ascii")
                        values[key] = float(parts[i + 1][1:].rstrip(b","))
                append((Metrics(int(s), float(t), values), pos))
            else:
                mixed = True
                self._parse(other + b"\n", pos, out)
                pos += len(other) + 1
        self.offset = pos
        self.metrics_only = not mixed
        return out


def expand_compact(rec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The metric records an ``mc`` block holds: ``{"k":"mc","keys":[K...],"rows":[[s,t,v...],...]}``,
    one row per record, ``null`` where that record had no value for the key (docs/journal.md)."""
    keys = list(rec["keys"])
    out = []
    for row in rec["rows"]:
        values = {k: v for k, v in zip(keys, row[2:]) if v is not None}
        if len(row) != len(keys) + 2 or not values:
            raise ValueError("a compacted metric row does not match its keys")
        out.append({"k": "m", "s": row[0], "t": row[1], "v": values})
    return out


def read_journal(path: str) -> Iterator[dict[str, Any]]:
    """Every complete record of a journal, in order."""
    reader = JournalReader(path)
    for rec, _ in reader.read():
        yield rec


def load_run(run_dir: str) -> Any:
    """The run recorded in a journal directory, as a ``RunRecord`` (status ``running``
    for a run whose trainer is still alive or died before anyone marked it)."""
    from .events import RunInfo, RunRecord, event_from_record

    path = os.path.join(run_dir, JOURNAL_NAME)
    events = []
    for rec in read_journal(path):
        try:
            events.append(event_from_record(rec))
        except (ValueError, TypeError, KeyError):
            continue
    info = RunInfo(run_id=os.path.basename(run_dir), project="", name="", backend="journal", location=run_dir)
    for ev in events:
        info.apply(ev)
    return RunRecord(info, events)


def list_run_dirs(root: str) -> list[str]:
    """Run directories under a journal root (``<root>/<project>/<run id>/``), oldest first."""
    out = []
    try:
        projects = os.listdir(root)
    except OSError:
        return []
    for p in projects:
        pdir = os.path.join(root, p)
        try:
            ids = os.listdir(pdir)
        except OSError:
            continue
        for rid in ids:
            if os.path.exists(os.path.join(pdir, rid, JOURNAL_NAME)):
                out.append(os.path.join(pdir, rid))
    return sorted(out, key=os.path.basename)
