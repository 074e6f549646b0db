"""Offline runs: the ``run-<id>.wandb`` files of a directory, grouped into runs and decoded.

Every process that opens a run writes its own file (a *segment*): a resumed run, or one
with ``Run.native("wandb")`` segments written by the trainer, is several files.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .decode import Decoded, Decoder, item_key, loads, merge_internal
from .framing import iter_run_file
from .media_read import Fetch
from .names import INTERNAL

__all__ = ["Segment", "decode_segments", "find_files", "prior_state", "read_segment", "run_files"]

log = logging.getLogger("trackkit.wandb")

#: record kinds of a native segment that have no say when trackkit's own segments exist
_NATIVE_SKIP = frozenset({"run", "summary", "exit", "preempting"})


@dataclass
class Segment:
    """One ``run-<id>.wandb`` file: one process's share of a run."""

    path: str
    wid: str = ""
    project: str = ""
    entity: str = ""
    start: float = 0.0
    #: written by ``Run.native("wandb")`` in the trainer: metrics only, no say in tags or status
    native: bool = False
    records: list[Any] = field(default_factory=list)


def _config_items(rec: Any) -> Any:
    kind = rec.WhichOneof("record_type")
    return rec.run.config.update if kind == "run" else rec.config.update if kind == "config" else ()


def read_segment(path: str) -> Segment | None:
    """The records of one run file (None when it cannot be read or named)."""
    seg = Segment(path=path)
    try:
        for rec in iter_run_file(path):
            seg.records.append(rec)
            if not seg.wid and rec.WhichOneof("record_type") == "run":
                r = rec.run
                seg.wid, seg.project, seg.entity = r.run_id, r.project, r.entity
                seg.start = r.start_time.seconds + r.start_time.nanos / 1e9
                for it in _config_items(rec):
                    if item_key(it) == INTERNAL:
                        tk = loads(it.value_json)
                        seg.native = isinstance(tk, dict) and bool(tk.get("native"))
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


def decode_segments(segments: list[Segment]) -> Decoded:
    """One run from its segments: trackkit's own in time order, then native ones."""
    segments = sorted(segments, key=lambda s: (s.native, s.start, s.path))
    last_own = max((i for i, s in enumerate(segments) if not s.native), default=len(segments) - 1)
    has_own = not segments[last_own].native
    # bookkeeping first: every segment's _trackkit (mapped keys and tags may be learnt late)
    internal: dict[str, Any] = {}
    for seg in segments:
        if seg.native and has_own:
            continue
        for rec in seg.records:
            for it in _config_items(rec):
                if item_key(it) == INTERNAL:
                    merge_internal(internal, loads(it.value_json))
    decoder = Decoder(internal, segments[0].wid, segments[0].project)
    for index, seg in enumerate(segments):
        decoder.begin_segment(files=run_files(seg.path))
        skip = _NATIVE_SKIP if seg.native and has_own else frozenset()
        for rec in seg.records:
            if rec.WhichOneof("record_type") not in skip:
                decoder.feed(rec, seg.start)
        decoder.end_segment(decides=index == last_own)
    own = segments[last_own]
    return decoder.result(location=os.path.dirname(own.path), backend=f"wandb:{own.project}")


def prior_state(root: str, wid: str) -> Decoded | None:
    """What earlier segments of this W&B run left in ``root`` (for a resume), or None."""
    segs = []
    for path in find_files(root):
        if os.path.basename(path) != f"run-{wid}.wandb":
            continue
        seg = read_segment(path)
        if seg is not None and seg.wid == wid:
            segs.append(seg)
    return decode_segments(segs) if segs else None
