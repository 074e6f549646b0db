"""The run index: one summary per journaled run, so listing, filtering and finding runs never read
whole journals. The journal is the truth; the index is a cache of it (docs/journal.md, "The run index").

* ``<run dir>/index.json`` — one run's entry: ``RunInfo.to_dict()``, the backends it delivers to, and
  how far into the journal it has read (byte ``offset``, the journal's inode and device). The delivery
  agent writes it as it tails the journal (at most once per ``flush_interval``, and when it stops);
  a reader that finds it missing, stale or behind brings it up to date from the journal.
* ``<root>/.index.json`` — every run's entry in one file, made by readers (``trackkit runs``) so a
  listing is one file read plus one ``stat`` per journal.

An entry is **fresh** when the journal has the inode and device it recorded and its size is the
offset it read to: the journal only grows by appends, and ``trackkit gc`` (or a copy) replaces it
with a new file. An entry **behind** (the journal grew) is caught up by reading only the bytes after
its offset; any other mismatch (another file, a shorter file, an entry of another index version or
``RunInfo`` shape) is rebuilt from the whole journal. Every write is a whole file through a
uniquely named temporary file and a rename, so readers and the agent may race: each entry they
leave is consistent with its own offset.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from .events import Event, Metrics, RunInfo, RunRecord, RunResumed, RunStarted, event_from_record
from .journal import JournalReader
from .rundir import RunDir, journal_dirs, root_index_path
from .util import dumps, write_json_atomic

__all__ = ["INDEX_VERSION", "IndexEntry", "Summarizer", "index_entry", "index_runs", "light_record", "newest"]

#: raised when an entry's meaning changes; an entry of another version is rebuilt
INDEX_VERSION = 1
#: the shape of ``RunInfo`` an entry was made with: a field added or removed means rebuild
_SHAPE = ",".join(RunInfo.__dataclass_fields__)
#: bytes of journal parsed at a time while catching up
_SLICE = 4 << 20
#: what ``json.loads`` of ``_METRIC_HEAD`` starts with: metric lines a light record skips unparsed
_METRIC_HEAD = b'{"k":"m",'


class IndexEntry:
    """One run's summary and how far into its journal it reaches.

    From the root file an entry is decoded lazily: its id, name, project, status and start time are
    at hand at once; ``info`` and ``backends`` are decoded on first use (a listing of 10,000 runs
    decodes the rows it prints)."""

    def __init__(self, info: RunInfo | None, backends: list[str] | None = None, offset: int = 0, ino: int = 0,
                 dev: int = 0, *, row: dict[str, Any] | None = None, run_dir: str = "") -> None:
        #: the journal bytes summarized (whole lines), the journal's inode and device then
        self.offset, self.ino, self.dev = offset, ino, dev
        self._info = info
        self._backends = backends
        self._row = row
        self.run_dir = run_dir or (info.location if info is not None else "")

    def __repr__(self) -> str:
        return f"IndexEntry({self.run_dir!r}, offset={self.offset})"

    # the fields a listing sorts, filters by project and looks runs up by, without decoding ``info``
    @property
    def run_id(self) -> str:
        return self.info.run_id if self._row is None else str(self._row["run_id"])

    @property
    def name(self) -> str:
        return self.info.name if self._row is None else str(self._row["name"])

    @property
    def project(self) -> str:
        return self.info.project if self._row is None else str(self._row["project"])

    @property
    def status(self) -> str:
        return self.info.status.value if self._row is None else str(self._row["status"])

    @property
    def start_time(self) -> float | None:
        if self._row is None:
            return self.info.start_time
        t = self._row["start"]
        return None if t is None else float(t)

    @property
    def info(self) -> RunInfo:
        if self._info is None:
            self._decode()
        assert self._info is not None
        return self._info

    @property
    def backends(self) -> list[str]:
        """The backend strings the run delivers to (its start record's, plus any a resume added)."""
        if self._backends is None:
            self._decode()
        assert self._backends is not None
        return self._backends

    def _decode(self) -> None:
        row, self._row = self._row, None
        full = IndexEntry.from_dict(_loads(str(row.get("e", ""))) if row else None, self.run_dir)
        if full is None:  # a damaged row: the journal says
            full = Summarizer(self.run_dir).rebuilt()
        self._info, self._backends = full.info, full.backends

    def to_dict(self) -> dict[str, Any]:
        return {"trackkit_index": INDEX_VERSION, "shape": _SHAPE, "offset": self.offset, "ino": self.ino,
                "dev": self.dev, "backends": list(self.backends), "info": self.info.to_dict()}

    def to_row(self) -> dict[str, Any]:
        """The entry in the root file: what a listing needs plain, the rest as one JSON string."""
        i = self.info
        return {"offset": self.offset, "ino": self.ino, "dev": self.dev, "run_id": i.run_id, "name": i.name,
                "project": i.project, "status": i.status.value, "start": i.start_time, "e": dumps(self.to_dict())}

    @classmethod
    def from_row(cls, row: Any, run_dir: str) -> IndexEntry | None:
        try:
            for k in ("run_id", "name", "project", "status", "start", "e"):
                row[k]
            return cls(None, None, int(row["offset"]), int(row["ino"]), int(row["dev"]), row=row, run_dir=run_dir)
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def from_dict(cls, d: Any, run_dir: str) -> IndexEntry | None:
        """The entry a dict holds, or None when it is of another version or shape, or damaged."""
        try:
            if d.get("trackkit_index") != INDEX_VERSION or d.get("shape") != _SHAPE:
                return None
            info = RunInfo.from_dict(d["info"])
            info.location = run_dir  # a root that moved: the directory is where it is now
            return cls(info, [str(b) for b in d.get("backends") or []], int(d["offset"]), int(d["ino"]),
                       int(d["dev"]), run_dir=run_dir)
        except (AttributeError, KeyError, TypeError, ValueError):
            return None

    def fresh(self, st: os.stat_result) -> bool:
        return self.same_file(st) and st.st_size == self.offset

    def same_file(self, st: os.stat_result) -> bool:
        return st.st_ino == self.ino and st.st_dev == self.dev and st.st_size >= self.offset


class Summarizer:
    """An entry kept up to date event by event: the agent's (it folds what it reads anyway) and the
    readers' catch-up. ``fold`` is ``RunInfo.apply`` plus the backends, as ``journal.load_run`` folds."""

    def __init__(self, run_dir: str, entry: IndexEntry | None = None) -> None:
        self.run_dir = run_dir
        self.entry = entry or IndexEntry(_blank(run_dir), [])
        self.dirty = entry is None
        #: (inode, device) of the journal read, stat'ed before reading it
        self._file: tuple[int, int] | None = None
        self._saved = 0.0

    def rebuilt(self) -> IndexEntry:
        """The entry made from the whole journal, saved."""
        self.entry, self.dirty = IndexEntry(_blank(self.run_dir), []), True
        self.catch_up()
        self.save()
        return self.entry

    def fold_metrics(self, events: list[Metrics], offset: int) -> None:
        """:meth:`fold` for a slice that holds metric events only (the live agent's usual one)."""
        self.entry.info.apply_metrics(events)
        self._read_to(offset)

    def fold(self, events: Iterable[Event], offset: int) -> None:
        info, backends = self.entry.info, self.entry.backends
        run: list[Metrics] = []  # consecutive metric events, folded in one call
        for ev in events:
            if type(ev) is Metrics:
                run.append(ev)
                continue
            if run:
                info.apply_metrics(run)
                run = []
            info.apply(ev)
            if isinstance(ev, (RunStarted, RunResumed)):
                backends += [str(b) for b in ev.meta.get("backends", []) if b not in backends]
        if run:
            info.apply_metrics(run)
        self._read_to(offset)

    def _read_to(self, offset: int) -> None:
        """The entry has folded the journal up to ``offset``."""
        if offset != self.entry.offset:
            self.entry.offset = offset
            self.dirty = True

    def catch_up(self) -> None:
        """Read the journal from the entry's offset to its end (the last whole line)."""
        path = RunDir(self.run_dir).journal
        try:  # the file read, as it was before reading: an entry never names a file it did not read
            st = os.stat(path)
            self._file = (st.st_ino, st.st_dev)
        except OSError:
            self._file = None
        reader = JournalReader(path, offset=self.entry.offset)
        while True:
            items = reader.read_events(max_bytes=_SLICE)
            if not items:
                break
            self.fold(_events(items), reader.offset)

    def save_every(self, interval: float, force: bool = False) -> None:
        """The agent's write: when the entry changed, at most once per ``interval`` seconds unless ``force``."""
        now = time.monotonic()
        if self.dirty and (force or now - self._saved >= interval):
            self.save()
            self._saved = now

    def save(self) -> None:
        """Write the entry (atomically; a full disk or a read-only directory leaves the old one)."""
        rd = RunDir(self.run_dir)
        if self._file is None:  # the agent: it tails the journal, which nothing replaces while it delivers
            try:
                st = os.stat(rd.journal)
            except OSError:
                return
            self._file = (st.st_ino, st.st_dev)
        self.entry.ino, self.entry.dev = self._file
        try:
            write_json_atomic(rd.index, self.entry.to_dict())
            self.dirty = False
        except (OSError, ValueError):
            pass  # a cache: the next reader rebuilds it


def _blank(run_dir: str) -> RunInfo:
    # exactly what journal.load_run starts from
    return RunInfo(run_id=os.path.basename(run_dir), project="", name="", backend="journal", location=run_dir)


def _events(items: Iterable[tuple[Metrics | dict[str, Any], int]]) -> Iterator[Event]:
    for item, _ in items:
        if isinstance(item, Metrics):
            yield item
            continue
        try:
            yield event_from_record(item)
        except (ValueError, TypeError, KeyError):  # as load_run: a record it cannot read is skipped
            continue


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _read_json(path: str) -> Any:
    try:
        with open(path, "rb") as fh:
            return _loads(fh.read())
    except OSError:
        return None


def _entry(run_dir: str, st: os.stat_result, cached: IndexEntry | None) -> tuple[IndexEntry, bool]:
    """The up-to-date entry of one run, and whether it had to be read from more than ``cached``."""
    if cached is not None and cached.fresh(st):
        return cached, False
    rd = RunDir(run_dir)
    own = IndexEntry.from_dict(_read_json(rd.index), run_dir)
    if own is not None and own.fresh(st):
        return own, True
    base = own if own is not None and own.same_file(st) else None
    if base is None and cached is not None and cached.same_file(st):
        base = cached
        base.info  # decoded before it is extended  # noqa: B018
    s = Summarizer(run_dir, base)
    s.catch_up()
    s.save()
    return s.entry, True


def index_entry(run_dir: str) -> IndexEntry | None:
    """One run's entry, up to date with its journal (None: no journal there)."""
    try:
        st = os.stat(RunDir(run_dir).journal)
    except OSError:
        return None
    return _entry(run_dir, st, None)[0]


def index_runs(root: str, project: str | None = None) -> list[IndexEntry]:
    """Every journaled run under ``root`` (of one ``project``), oldest first, each entry up to date.

    Reads ``<root>/.index.json`` and ``stat`` s each journal; only the runs whose entry is not fresh
    are read further (their ``index.json``, then the journal bytes after it). The root file is
    written again when a run that is not running got a new entry."""
    root = os.path.abspath(root)
    path = root_index_path(root)
    raw = _read_json(path)
    cached: dict[str, Any] = {}
    if isinstance(raw, dict) and raw.get("trackkit_index") == INDEX_VERSION and raw.get("shape") == _SHAPE:
        runs = raw.get("runs")
        cached = runs if isinstance(runs, dict) else {}
    out: list[IndexEntry] = []
    keep: dict[str, Any] = {}
    changed = False
    for rel, run_dir, st in journal_dirs(root):
        row = cached.get(rel)
        entry, read = _entry(run_dir, st, IndexEntry.from_row(row, run_dir) if isinstance(row, dict) else None)
        if read:
            keep[rel] = entry.to_row()
            changed = changed or entry.status != "running" or row is None
        else:
            keep[rel] = row
        if project is None or entry.project == project:
            out.append(entry)
    if changed or len(keep) != len(cached):
        try:
            write_json_atomic(path, {"trackkit_index": INDEX_VERSION, "shape": _SHAPE, "runs": keep})
        except (OSError, ValueError):
            pass
    out.sort(key=lambda e: os.path.basename(e.run_dir))
    return out


def newest(entries: Iterable[IndexEntry], limit: int | None) -> list[IndexEntry]:
    """The ``limit`` newest entries by start time, in the order ``query.filter_runs`` puts them by
    default (newest first, runs without a start time last), without decoding the others."""
    have: list[tuple[float, IndexEntry]] = []
    missing: list[IndexEntry] = []
    for e in entries:
        t = e.start_time
        if t is None or t != t:
            missing.append(e)
        else:
            have.append((t, e))
    have.sort(key=lambda p: p[0], reverse=True)
    out = [e for _, e in have] + missing
    return out if limit is None else out[: max(limit, 0)]


def light_record(entry: IndexEntry) -> RunRecord:
    """The run as a ``RunRecord`` whose summary is the index entry's and whose events are every record
    of the journal **except the metric lines** (what ``show`` prints: segments, artifacts, media,
    provenance, the traceback), so a long run's points are never parsed."""
    events: list[Event] = []
    try:
        with open(RunDir(entry.run_dir).journal, "rb") as fh:
            data = fh.read(entry.offset)
    except OSError:
        data = b""
    for line in data.split(b"\n"):
        if not line or line.startswith(_METRIC_HEAD) or line.startswith(b'{"trackkit_journal"'):
            continue
        try:
            rec = json.loads(line)
            if isinstance(rec, dict):
                events.append(event_from_record(rec))
        except (ValueError, TypeError, KeyError):
            continue
    return RunRecord(entry.info, events)
