"""``trackkit gc``: compact the journals of finished, fully delivered runs (docs/journal.md, "Compaction").

A run is compacted only when its status is final, no trainer holds it (the trainer lock, held
during the rewrite, so a resume waits), no deliverer is at work (the delivery lock, held too), and
every backend it delivers to has a cursor at the end of its journal. Compaction is lossless:

* metric records become ``mc`` blocks (up to ``BLOCK`` records each, the keys once per block), in
  place, so every other record keeps its position among them;
* every other record is kept byte for byte; lines no reader can read (a sealed torn record, a
  damaged line: readers skip them) are dropped;
* the header says format 2 (``journal.COMPACT_VERSION``): an older trackkit refuses the journal
  instead of missing its points;
* before the old journal is replaced, the new one is read back and must give the very same events;
  it replaces the old one atomically (``RunDir.replace_journal``), the cursors move to its end and
  the run's index entry is made anew.

Media payloads (``payloads.bin``), artifacts and media files are not touched.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import TrackkitError
from .events import Status, event_from_record, event_to_record
from .journal import COMPACT_VERSION, JournalReader, expand_compact
from .rundir import RunDir, release

__all__ = ["BLOCK", "GcResult", "compact", "gc"]

#: metric records per ``mc`` block
BLOCK = 1000
#: a metric record with exactly these fields is compacted; any other is kept as it is
_M_FIELDS = {"k", "s", "t", "v"}
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


@dataclass(frozen=True)
class GcResult:
    """What ``gc`` did (or would do, ``dry_run``) with one run."""

    run_id: str
    run_dir: str
    #: "compacted", "would compact" (dry run) or "skipped"
    state: str
    #: why it was skipped
    reason: str = ""
    before: int = 0
    after: int = 0
    #: unreadable lines dropped (readers skip them anyway)
    dropped: int = 0


def _records(data: bytes) -> tuple[dict[str, Any] | None, list[tuple[dict[str, Any] | None, bytes]], int]:
    """The header, each line as ``(record or None for a metric record in an mc block, raw line)``,
    and the count of unreadable lines."""
    header = None
    out: list[tuple[dict[str, Any] | None, bytes]] = []
    bad = 0
    for raw in data.split(b"\n")[:-1]:
        line = raw.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(rec, dict):
            bad += 1
        elif "trackkit_journal" in rec:
            header = header or rec
        elif rec.get("k") == "mc":
            try:
                out.extend((m, b"") for m in expand_compact(rec))
            except (TypeError, ValueError, IndexError, KeyError):
                bad += 1
        else:
            out.append((rec, raw))
    return header, out, bad


def compact(data: bytes) -> tuple[bytes, int, int]:
    """The compacted journal of the whole lines in ``data``, the unreadable lines it dropped, and the
    metric lines it put into blocks (0 and 0: it was compact already)."""
    header, recs, bad = _records(data)
    plain = 0
    head = dict(header or {})
    head.update({"trackkit_journal": COMPACT_VERSION, "compacted": time.time()})
    lines = [_dumps(head)]
    block: list[dict[str, Any]] = []

    def flush() -> None:
        if not block:
            return
        keys: dict[str, None] = {}
        for m in block:
            keys.update(dict.fromkeys(m["v"]))
        order = list(keys)
        rows = [[m["s"], m["t"], *[m["v"].get(k) for k in order]] for m in block]
        lines.append(_dumps({"k": "mc", "keys": order, "rows": rows}))
        block.clear()

    for rec, raw in recs:
        if rec is not None and rec.get("k") == "m" and rec.keys() == _M_FIELDS and isinstance(rec["v"], dict) \
                and rec["v"] and all(v is not None for v in rec["v"].values()):
            block.append(rec)
            plain += 1 if raw else 0
            if len(block) >= BLOCK:
                flush()
            continue
        flush()
        lines.append(raw.decode("utf-8", "surrogatepass") if raw else _dumps(rec))
    flush()
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"), bad, plain


def _events(path: str) -> list[str]:
    """Every event a reader gets from a journal, each as sorted JSON (NaN-safe, key-order-free)."""
    out = []
    for rec, _ in JournalReader(path).read():
        try:
            ev = event_from_record(rec)
        except (ValueError, TypeError, KeyError):
            continue
        out.append(json.dumps(event_to_record(ev), sort_keys=True, default=str))
    return out


def _why_not(rd: RunDir, status: Status, backends: Sequence[str]) -> tuple[str, list[Any]]:
    """Why the run may not be compacted now (``""``: it may), and its backends' specs."""
    from .registry import display_backend, parse_backend

    if status is Status.RUNNING:
        return "still running (or its trainer died unmarked: `trackkit sync` marks it)", []
    specs = []
    for b in backends:
        try:
            specs.append(parse_backend(b))
        except TrackkitError:
            return f"backend {b} is not known here, so it cannot be told whether it holds everything", []
    behind = rd.pending(specs)
    if behind:
        names = ", ".join(display_backend(s) for s in behind)
        return f"not delivered to {names} yet (`trackkit sync` delivers it); nothing undelivered is compacted", []
    return "", specs


def _one(run_dir: str, dry_run: bool) -> GcResult:
    from .index import Summarizer, index_entry

    rd = RunDir(run_dir)
    entry = index_entry(run_dir)
    if entry is None:
        return GcResult(os.path.basename(run_dir), run_dir, "skipped", "no journal")
    rid = entry.run_id
    trainer = rd.take_trainer_lock()
    if trainer is None:
        return GcResult(rid, run_dir, "skipped", "its trainer is running")
    agent = rd.hold_agent_lock()
    try:
        if agent is None:
            return GcResult(rid, run_dir, "skipped", "its agent (or `trackkit sync`) is delivering it")
        entry = index_entry(run_dir)  # as of now, under the locks
        assert entry is not None
        why, specs = _why_not(rd, entry.info.status, entry.backends)
        if why:
            return GcResult(rid, run_dir, "skipped", why)
        with open(rd.journal, "rb") as fh:
            data = fh.read()
        new, dropped, plain = compact(data)
        if (not plain and not dropped) or len(new) >= len(data):
            return GcResult(rid, run_dir, "skipped", "already compact", len(data), len(data))
        if dry_run:
            return GcResult(rid, run_dir, "would compact", "", len(data), len(new), dropped)
        check = rd.journal + ".gc.check"
        with open(check, "wb") as fh:
            fh.write(new)
        try:
            same = _events(check) == _events(rd.journal)
        finally:
            os.unlink(check)
        if not same:  # never: but a journal is the truth, and this would rewrite it
            return GcResult(rid, run_dir, "skipped", "the compacted journal did not read back the same; left as is")
        rd.replace_journal(new)
        rd.move_cursors(specs, len(new))
        Summarizer(run_dir).rebuilt()
        return GcResult(rid, run_dir, "compacted", "", len(data), len(new), dropped)
    finally:
        if agent is not None:
            release(agent)
        release(trainer)


def gc(root: str | None = None, run: str | None = None, *, dry_run: bool = False,
       progress: Callable[[GcResult], None] | None = None) -> list[GcResult]:
    """Compact every finished, fully delivered run under the journal root (or the one ``run`` names)."""
    from .lookup import find_entry, journal_entries, journal_root

    where = journal_root(root)
    entries = [find_entry(run, where)] if run else journal_entries(where)
    out = []
    for e in entries:
        res = _one(e.run_dir, dry_run)
        out.append(res)
        if progress is not None:
            progress(res)
    return out
