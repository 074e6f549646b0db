"""Offline runs: the ``run-<id>.wandb`` files of a directory, grouped into runs and decoded.

Every process that opens a run writes its own file (a *segment*): a resumed run, or one
with ``Run.native("wandb")`` segments written by the trainer, is several files.

``scan`` reads a file once without decoding its history (the kind of each record is read
from its first bytes): the run record, config, exit, trackkit's own summary records and the
merged summary are kept, which is what listing needs. ``stream_segments`` then decodes the
whole run file by file in bounded chunks, through the one ``Decoder``.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...events import Event
from .decode import Decoded, Decoder, merge_internal
from .framing import KIND_NUMBERS, RunFile, parse_record, record_kind
from .media_read import Fetch
from .names import INTERNAL
from .values import item_key, loads, nest

__all__ = ["CHUNK", "Segment", "decode_segments", "find_files", "prior_state", "read_segment", "run_files", "scan",
           "stream_segments"]

log = logging.getLogger("trackkit.wandb")

#: events per chunk of ``stream_segments``
CHUNK = 2_000

#: record kinds of a native segment that have no say when trackkit's own segments exist
_NATIVE_SKIP = frozenset({"run", "summary", "exit", "preempting"})
_HISTORY, _SUMMARY = KIND_NUMBERS["history"], KIND_NUMBERS["summary"]
#: the record kinds a decode pass parses (the rest: telemetry, stats, environment ... are W&B's own)
_DECODED = frozenset({KIND_NUMBERS[k] for k in ("history", "config", "artifact", "run", "exit", "preempting", "files")})
_HEAD = frozenset({KIND_NUMBERS[k] for k in ("config", "run", "exit", "preempting")})


@dataclass
class Segment:
    """One ``run-<id>.wandb`` file: one process's share of a run, as ``scan`` found it."""

    path: str
    wid: str = ""
    project: str = ""
    entity: str = ""
    start: float = 0.0
    #: written by ``Run.native("wandb")`` in the trainer: metrics only, no say in tags or status
    native: bool = False
    #: (offset, record) of the run, config, exit and preempting records and of the summary
    #: records that carry trackkit's keys, in file order
    head: list[tuple[int, Any]] = field(default_factory=list)
    #: the merged summary of the file: key path -> value_json (W&B's auto-summary included)
    summary: dict[tuple[str, ...], str] = field(default_factory=dict)
    #: this file's ``_trackkit`` bookkeeping, merged
    internal: dict[str, Any] = field(default_factory=dict)
    history_records: int = 0
    size: int = 0
    #: lines on what could not be read (a cut file)
    notes: list[str] = field(default_factory=list)
    #: the same, one short line each (``RunInfo.damage``)
    damage: list[str] = field(default_factory=list)


def _config_items(rec: Any) -> Any:
    kind = rec.WhichOneof("record_type")
    return rec.run.config.update if kind == "run" else rec.config.update if kind == "config" else ()


def scan(path: str) -> Segment | None:
    """What listing needs of one run file, read without decoding its history (None when it
    cannot be read or named; the reason is logged)."""
    seg = Segment(path=path)
    try:
        rf = RunFile(path)
        seg.size = rf.size
        for payload, at in rf.payloads():
            kind = record_kind(payload)
            if kind == _HISTORY:
                seg.history_records += 1
                continue
            if kind != _SUMMARY and kind not in _HEAD:
                continue
            rec = parse_record(payload)
            if rec is None:
                continue
            if kind == _SUMMARY:
                merged = seg.summary
                # trackkit's status keys (only a trackkit run, whose run record with _trackkit comes first):
                # ``item_key`` starts with "trackkit/" exactly when the first part of the key does, and
                # then the record's bytes hold it (a key is its UTF-8 bytes): most records are W&B's
                # auto-summary of the metrics, and one search of the bytes spares a look at each item
                own, look = False, bool(seg.internal) and b"trackkit/" in payload
                for it in rec.summary.update:
                    nested = it.nested_key
                    if len(nested) == 1:  # what wandb-core writes for a plain key
                        kp: tuple[str, ...] = (nested[0],)
                    else:
                        key = it.key
                        kp = (key,) if key else tuple(nested)
                    merged[kp] = it.value_json
                    if look and kp and kp[0].startswith("trackkit/"):
                        own, look = True, False
                for it in rec.summary.remove:
                    gone = (it.key,) if it.key else tuple(it.nested_key)
                    for k in [k for k in merged if k[:len(gone)] == gone]:
                        del merged[k]
                if own:
                    seg.head.append((at, rec))
                continue
            seg.head.append((at, rec))
            if not seg.wid and kind == KIND_NUMBERS["run"]:
                r = rec.run
                seg.wid, seg.project, seg.entity = r.run_id, r.project, r.entity
                seg.start = r.start_time.seconds + r.start_time.nanos / 1e9
            for it in _config_items(rec):
                if item_key(it) == INTERNAL:
                    tk = loads(it.value_json)
                    merge_internal(seg.internal, tk)
                    if kind == KIND_NUMBERS["run"]:
                        seg.native = isinstance(tk, dict) and bool(tk.get("native"))
        seg.notes = rf.notes()
        seg.damage = rf.damage()
    except (OSError, ValueError) as exc:
        log.warning("wandb: cannot read %s: %s", path, exc)
        return None
    if not seg.wid:
        m = re.search(r"run-(.+)\.wandb$", os.path.basename(path))
        if not m:
            return None
        seg.wid = m.group(1)
        seg.start = os.path.getmtime(path)
    return seg


#: the old name
read_segment = scan


def run_files(run_file: str) -> Fetch:
    """The run files of a segment: ``files/<path>`` beside its ``run-<id>.wandb`` (paths in W&B's
    history values are relative to it); None for a path that is not there or leaves it."""
    base = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(run_file)), "files"))

    def fetch(rel: str) -> str | None:
        path = os.path.normpath(os.path.join(base, *rel.split("/")))  # a symlinked file (run.save) is fine
        if not path.startswith(base + os.sep) or not os.path.isfile(path):
            return None
        return path

    return fetch


def find_files(root: str) -> list[str]:
    """The run files under ``root`` (``wandb/*run-*/``, ``*run-*/`` or ``root`` itself)."""
    out: set[str] = set()
    for pattern in ("wandb/*run-*/run-*.wandb", "*run-*/run-*.wandb", "run-*.wandb"):
        for p in glob.glob(os.path.join(glob.escape(root), pattern)):
            out.add(os.path.realpath(p))
    return sorted(out)


def _order(segments: list[Segment]) -> tuple[list[Segment], int, bool, dict[str, Any]]:
    """Trackkit's own segments in time order, then native ones; the index of the last own one;
    whether there is one; every segment's ``_trackkit`` merged (maps may be learnt late)."""
    segments = sorted(segments, key=lambda s: (s.native, s.start, s.path))
    last_own = max((i for i, s in enumerate(segments) if not s.native), default=len(segments) - 1)
    has_own = not segments[last_own].native
    internal: dict[str, Any] = {}
    for seg in segments:
        if not (seg.native and has_own):
            merge_internal(internal, seg.internal)
    return segments, last_own, has_own, internal


def decoder_for(segments: list[Segment], parent: str | None = None) -> Decoder:
    """The Decoder of a run made of ``segments`` (points deduplicated only where a trackkit run can
    hold a point twice: several segments, or points kept in its late column)."""
    segments, _, _, internal = _order(segments)
    dedupe = bool(internal.get("run_id")) and (
        len(segments) > 1 or any(("trackkit/late_points",) in s.summary for s in segments))
    return Decoder(internal, segments[0].wid, segments[0].project, dedupe=dedupe, parent=parent)


def _merged_summary(segments: list[Segment], has_own: bool) -> dict[str, Any]:
    """The run's summary, nested as W&B shows it (a media value: a dict with ``_type``)."""
    out: dict[tuple[str, ...], str] = {}
    for seg in segments:
        if not (seg.native and has_own):
            out.update(seg.summary)
    nested: dict[str, Any] = {}
    for path, text in out.items():
        if path:
            nest(nested, path, loads(text))
    return nested


def list_segments(segments: list[Segment], parent: str | None = None) -> Decoded:
    """A run's listing from its scanned segments: no history is read (last values come from
    W&B's summary, which holds the last value of every history key)."""
    segments, last_own, has_own, _ = _order(segments)
    decoder = decoder_for(segments, parent)
    for index, seg in enumerate(segments):
        decoder.begin_segment(files=run_files(seg.path))
        skip = _NATIVE_SKIP if seg.native and has_own else frozenset()
        for _, rec in seg.head:
            if rec.WhichOneof("record_type") not in skip:
                decoder.feed(rec, seg.start)
        decoder.end_segment(decides=index == last_own)
    decoder.final_summary(_merged_summary(segments, has_own), listing=True)
    for seg in segments:
        decoder.info.notes.extend(seg.notes)
        decoder.info.damage.extend(seg.damage)
    own = segments[last_own]
    return decoder.result(location=os.path.dirname(own.path), backend=f"wandb:{own.project}")


def stream_segments(segments: list[Segment], decoder: Decoder,
                    chunk: int = CHUNK) -> Iterator[tuple[list[Event], float | None, list[str]]]:
    """The run's events in chunks of about ``chunk`` events with the fraction of its bytes read and
    the notes on damage; the decoder's ``result`` is built before the last chunk is yielded."""
    segments, last_own, has_own, _ = _order(segments)
    total = max(1, sum(s.size for s in segments))
    done = 0
    for index, seg in enumerate(segments):
        decoder.begin_segment(files=run_files(seg.path))
        skip = _NATIVE_SKIP if seg.native and has_own else frozenset()
        head = {at: rec for at, rec in seg.head if rec.WhichOneof("record_type") == "summary"}
        rf = RunFile(seg.path)
        try:
            for payload, at in rf.payloads():
                kind = record_kind(payload)
                if kind == _SUMMARY:
                    rec = head.get(at)
                elif kind in _DECODED:
                    rec = parse_record(payload)
                else:
                    continue
                if rec is None or rec.WhichOneof("record_type") in skip:
                    continue
                decoder.feed(rec, seg.start)
                if len(decoder.events) >= chunk:
                    yield decoder.take(), min(1.0, (done + rf.read) / total), []
        except (OSError, ValueError) as exc:
            decoder.info.notes.append(f"W&B run file {seg.path} could not be read to its end ({exc})")
            decoder.info.damage.append(f"{seg.path} unreadable after byte {rf.read} ({exc})")
        notes = rf.notes()
        decoder.info.notes.extend(notes)
        decoder.info.damage.extend(rf.damage())
        done += seg.size
        decoder.end_segment(decides=index == last_own)
        decoder.console(seg.path)
        if notes:
            yield decoder.take(), min(1.0, done / total), notes
    decoder.final_summary(_merged_summary(segments, has_own))
    own = segments[last_own]
    decoder.result(location=os.path.dirname(own.path), backend=f"wandb:{own.project}")
    yield decoder.take(), 1.0, []


def decode_segments(segments: list[Segment], parent: str | None = None, *, keep_events: bool = True) -> Decoded:
    """One whole run from its segments (``keep_events=False``: the state only, events dropped)."""
    decoder = decoder_for(segments, parent)
    events: list[Event] = []
    for chunk, _, _ in stream_segments(segments, decoder):
        if keep_events:
            events.extend(chunk)
    got = decoder.decoded
    assert got is not None
    got.events = events
    return got


def prior_state(root: str, wid: str) -> Decoded | None:
    """What earlier segments of this W&B run left in ``root`` (for a resume), or None."""
    segs = []
    for path in find_files(root):
        if os.path.basename(path) != f"run-{wid}.wandb":
            continue
        seg = scan(path)
        if seg is not None and seg.wid == wid:
            segs.append(seg)
    return decode_segments(segs, keep_events=False) if segs else None
