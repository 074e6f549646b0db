"""The one decoder of W&B records into trackkit's neutral events.

``Decoder`` has a method per record kind (``run``, ``history``, ``config``, ``summary``,
``artifact``, ``exit``, ``preempting``; ``state`` for a server's run state) taking plain
values; a history value with a W&B ``_type`` is media (``media_read``), never a metric.
Offline, ``Decoder.feed`` hands it the protobuf records of ``run-<id>.wandb`` files; online,
the reader calls the same methods with what ``wandb.Api()`` returns. A run may be several
segments (one per process that opened it): the last of trackkit's own segments decides the
status (``end_segment(decides=True)``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...events import (
    Artifact,
    CheckpointPruned,
    ConfigUpdate,
    Console,
    Event,
    Media,
    MetricGoal,
    Metrics,
    MetricStats,
    RunFinished,
    RunInfo,
    RunResumed,
    RunStarted,
    Status,
    StatusChange,
    Summary,
    Tags,
    checkpoint_of,
)
from .local import artifact_location, console_artifact, console_text, local_artifact, saved_file
from .media_read import Fetch, Unreadable, read_kept, read_value, row_note
from .names import HISTORY_INTERNAL, INTERNAL, LATE_KEY, MEDIA_FILES, MEDIA_KEY, TIME_KEY, parse_tag
from .values import item_key, items_of, loads, num, numbers_and_row, row_of

__all__ = ["Decoded", "Decoder", "Skipped", "item_key", "items_of", "loads", "merge_internal", "num", "row_of"]

#: a server's run state (``wandb.Api()``) when trackkit's own summary says nothing
_STATES = {
    "finished": (Status.COMPLETED, ""),
    "running": (Status.RUNNING, ""),
    "crashed": (Status.KILLED, "W&B: crashed (no heartbeat)"),
    "failed": (Status.CRASHED, "W&B: failed"),
    "killed": (Status.KILLED, "W&B: killed"),
    "preempted": (Status.KILLED, "W&B: preempted"),
}


@dataclass(frozen=True)
class Skipped:
    """A history value the reader did not map (a W&B type with no trackkit media kind, a missing file)."""

    key: str
    step: int
    wandb_type: str
    note: str


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) else None


def _no_files(rel: str) -> str | None:
    return None


def _walk(key: str, value: Any, values: dict[str, float], media: list[tuple[str, Mapping[str, Any]]]) -> None:
    """Metrics and media values of one history column: a dict with ``_type`` is a W&B media
    value; another dict is nested metrics (``a.b``); numbers are metrics; the rest is skipped."""
    if isinstance(value, dict):
        if "_type" in value:
            media.append((key, value))
            return
        for sub, v in value.items():
            _walk(f"{key}.{sub}", v, values, media)
        return
    n = num(value)
    if n is not None:
        values[key] = n


def _walk_summary(prefix: str, value: Mapping[str, Any], flat: dict[str, Any], media: dict[str, Any]) -> None:
    for k, v in value.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and "_type" in v:
            media[key] = v
        elif isinstance(v, dict) and v and not key.startswith("_"):
            _walk_summary(key, v, flat, media)
        else:
            flat[key] = v


def merge_internal(into: dict[str, Any], value: Any) -> None:
    """Fold one ``_trackkit`` config value into ``into`` (key and tag maps accumulate)."""
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if k in ("keys", "config_keys", "tags") and isinstance(v, dict):
            into.setdefault(k, {}).update(v)
        elif k not in into or k not in ("run_id", "project", "name", "start_time", "meta"):
            into[k] = v


@dataclass
class Decoded:
    """A decoded run, with the sink-side state a resume needs."""

    wid: str
    run_id: str
    project: str
    events: list[Event]
    info: RunInfo
    internal: dict[str, Any]
    config: dict[str, Any]
    wandb_tags: list[str]
    max_step: int | None
    #: (key, step, sha256 of the delivered file) of every media value, for a re-attaching sink
    media_idents: set[tuple[str, int, str]]
    #: history values that are not metrics and were not mapped to media
    skipped: list[Skipped]
    #: the history keys read (for telling W&B's auto-summary from summary values set by hand)
    history_keys: set[str] | None = None


@dataclass
class _SegmentState:
    """What one segment (one process's share of the run) said about how it ended."""

    exit_code: int | None = None
    #: the exit record's runtime in seconds
    runtime: float | None = None
    detached: bool = False
    preempting: bool = False
    #: a ``RunFinished`` arrived in this segment
    finished_here: bool = False
    #: a W&B server's run state (online)
    state: str | None = None


class Decoder:
    """Decodes the records of one W&B run, in order, into trackkit events and a ``RunInfo``.

    ``internal`` is the run's merged ``_trackkit`` bookkeeping (key, config-key and tag maps,
    trackkit run id ...), known before the records are read.
    """

    def __init__(self, internal: Mapping[str, Any], wid: str, project: str, *, dedupe: bool = True,
                 parent: str | None = None) -> None:
        self.internal: dict[str, Any] = {"keys": {}, "config_keys": {}, "tags": {}}
        merge_internal(self.internal, dict(internal))
        self.wid = wid
        self.run_id = str(self.internal.get("run_id") or wid)
        self.events: list[Event] = []
        self.info = RunInfo(run_id=self.run_id, project=project, name="", backend="wandb")
        self._seen_points: set[tuple[int, str, str]] = set()
        self._seen_artifacts: set[str] = set()
        self._tags: set[str] = set()
        self._config: dict[str, Any] = {}
        self._started = False
        self._last_time: float | None = None
        self._max_step: int | None = None
        self._finished: RunFinished | None = None
        self._status: StatusChange | None = None
        self._resumes: set[int] = set()
        self._tail: RunFinished | None = None
        self._seg = _SegmentState()
        #: a run file's local path (offline: the segment's files/ directory; online: downloaded)
        self.files: Fetch = _no_files
        self.media_idents: set[tuple[str, int, str]] = set()
        self._seen_media: set[tuple[str, int, str, str]] = set()
        self.skipped: list[Skipped] = []
        #: keep (step, key, value) of every point to drop a point read twice; only a trackkit run that
        #: was resumed or holds late points can hold one twice (``segments.decoder_for``)
        self._dedupe = dedupe
        #: the parent a foreign run's group names (``reader``); trackkit's own ``_trackkit.parent`` wins
        self._parent = parent
        #: last value per history key, for telling W&B's auto-summary from values set by hand
        self._history_last: dict[str, Any] = {}
        self._artifact_versions: dict[str, int] = {}
        self._start_time = 0.0
        self.decoded: Decoded | None = None
        #: fold each point into ``info.metrics`` (last/min/max); off for a stream whose reader folds them itself
        self.fold_metrics = True

    # ------------------------------------------------------------------ helpers

    def _add(self, ev: Event) -> None:
        self.events.append(ev)
        if self.fold_metrics or type(ev) is not Metrics:
            self.info.apply(ev)

    def take(self) -> list[Event]:
        """The events decoded since the last call (a stream's chunk)."""
        out, self.events = self.events, []
        return out

    def _tag_pair(self, text: str) -> tuple[str, str]:
        pair = self.internal["tags"].get(text)
        if isinstance(pair, list) and len(pair) == 2:
            return str(pair[0]), str(pair[1])
        return parse_tag(text)

    def _config_of(self, values: Mapping[str, Any]) -> dict[str, Any]:
        config_keys = self.internal["config_keys"]
        return {config_keys.get(k, k): v for k, v in values.items() if k not in ("_wandb", INTERNAL)}

    def _metrics(self, step: int, when: float, values: dict[str, float]) -> None:
        """The points of one step (``values`` is taken over, not copied)."""
        if not self._dedupe:
            if values:
                self._add(Metrics(step=step, time=when, values=values))
            return
        fresh: dict[str, float] = {}
        for k, v in values.items():
            ident = (step, k, repr(v))
            if ident in self._seen_points:
                continue  # a retried batch or a re-sent point after a resume
            self._seen_points.add(ident)
            fresh[k] = v
        if fresh:
            self._add(Metrics(step=step, time=when, values=fresh))

    def _add_media(self, ev: Media, source_sha: str) -> None:
        index = str(ev.meta.get("index", "")) if "count" in ev.meta else ""
        ident = (ev.key, ev.step, source_sha, index)
        if ident in self._seen_media:
            return  # a re-sent value (a retried batch, a resumed segment)
        self._seen_media.add(ident)
        self.media_idents.add((ev.key, ev.step, source_sha))
        self._add(ev)

    def _skip(self, key: str, step: int, wandb_type: str, note: str) -> None:
        self.skipped.append(Skipped(key=key, step=step, wandb_type=wandb_type, note=note))

    # ------------------------------------------------------------------ one method per record kind

    def run(self, *, project: str, name: str, group: str, tags: Iterable[str], config: Mapping[str, Any],
            start: float, wandb: Mapping[str, Any] | None = None) -> None:
        """A run record: the first one starts the run, later ones carry the whole tag list."""
        tags = list(tags)
        if self._started:
            new = [t for t in tags if t not in self._tags]
            self._tags = set(tags)
            if new:
                self._add(Tags(tags=dict(self._tag_pair(t) for t in new)))
            return
        self._started = True
        cfg = self._config_of(config)
        self._config.update(cfg)
        self._tags = set(tags)
        own = bool(self.internal.get("run_id"))
        meta = dict(self.internal.get("meta") or {})
        if not own:  # a run wandb wrote: what W&B knows of it beside config and tags
            info = {k: v for k, v in (wandb or {}).items() if v not in (None, "", [], {})}
            internals = config.get("_wandb")
            if isinstance(internals, dict) and internals:
                info["config"] = internals
            if info:
                meta["wandb"] = info
        self._start_time = float(self.internal.get("start_time") or start)
        self._add(
            RunStarted(
                run_id=self.run_id,
                project=str(self.internal.get("project") or project),
                name=str(self.internal.get("name") or name),
                start_time=self._start_time,
                group=(self.internal.get("group") if "group" in self.internal else group) or None,
                tags=dict(self._tag_pair(t) for t in tags),
                config=cfg,
                meta=meta,
                parent=str(self.internal["parent"]) if self.internal.get("parent") else self._parent,
            )
        )
        for key, goal in (self.internal.get("goals") or {}).items():
            self._add(MetricGoal(str(key), str(goal), self._start_time))

    def history(self, row: Mapping[str, Any], step: int = 0, numbers: dict[str, float] | None = None) -> None:
        """A history row (``_step``, ``_timestamp``, metric and media columns, trackkit's late and
        media columns), nested as ``row_of`` / ``scan_history`` give it; ``numbers``: its plain number
        columns already split off (``numbers_and_row``; the dict is taken over)."""
        stored = _int(row.get("_step"))
        step = stored if stored is not None else step
        stamp = num(row.get("_timestamp"))
        when = num(row.get(TIME_KEY)) or stamp or 0.0
        self._last_time = max(self._last_time or 0.0, stamp or 0.0) or self._last_time
        self._max_step = step if self._max_step is None else max(self._max_step, step)
        keys = self.internal["keys"]
        values: dict[str, float] = numbers if numbers is not None else {}
        media: list[tuple[str, Mapping[str, Any]]] = []
        for k, v in row.items():
            if k not in HISTORY_INTERNAL:
                kind = type(v)
                if kind is float or kind is int:  # the usual column: a number (``_walk``'s ``num``)
                    values[str(k)] = float(v)
                else:
                    _walk(str(k), v, values, media)
        self._history_last.update(values)
        for k, _v in media:
            self._history_last[k] = None
        self._metrics(step, when, {keys.get(k, k): v for k, v in values.items()} if keys else values)
        extras, kept = row_note(row.get(MEDIA_KEY))
        for stored_key, value in media:
            key = keys.get(stored_key, stored_key)
            extra = extras.get(stored_key)
            try:
                found = read_value(key, step, when, value, self.files, extra if isinstance(extra, dict) else None)
            except Unreadable as exc:
                self._skip(key, step, str(value.get("_type")), str(exc))
                continue
            except Exception as exc:  # a value of a shape no W&B version wrote: skipped, never fatal
                self._skip(key, step, str(value.get("_type")), f"unexpected value ({type(exc).__name__}: {exc})")
                continue
            source = str(extra.get("sha256")) if isinstance(extra, dict) and extra.get("sha256") else ""
            for ev in found:
                self._add_media(ev, source or ev.sha256)
        for desc in kept:
            try:
                ev = read_kept(desc, self.files, when)
            except (Unreadable, TypeError, ValueError) as exc:
                at = _int(desc.get("step"))
                self._skip(str(desc.get("key", "")), step if at is None else at, "trackkit run file", str(exc))
                continue
            self._add_media(ev, str(desc.get("sha256") or ev.sha256))
        late = row.get(LATE_KEY)
        if isinstance(late, str):
            for entry in loads(late) or []:
                if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], dict):
                    vals = {str(k): f for k, v in entry[2].items() if (f := num(v)) is not None}
                    self._metrics(int(entry[0]), float(entry[1] or 0.0), vals)

    def config(self, values: Mapping[str, Any]) -> None:
        """A config update."""
        cfg = self._config_of(values)
        if cfg:
            self._config.update(cfg)
            self._add(ConfigUpdate(config=cfg))

    def summary(self, upd: Mapping[str, Any]) -> None:
        """A summary update: trackkit's status, resume and finish keys."""
        if upd.get("trackkit/detached"):
            self._seg.detached = True
        pruned = upd.get("trackkit/checkpoint_pruned")
        if isinstance(pruned, dict) and "name" in pruned:  # the sink's record of a checkpoint retention removed
            aliases = pruned.get("aliases")
            self._add(CheckpointPruned(name=str(pruned["name"]), version=int(pruned.get("version") or 0), path="",
                                       reason=str(pruned.get("reason") or ""),
                                       aliases=aliases if isinstance(aliases, dict) else {},
                                       time=float(pruned.get("time") or 0.0)))
        seg_v = upd.get("trackkit/resumed")
        seg_no = int(seg_v) if isinstance(seg_v, (int, float)) and not isinstance(seg_v, bool) else 0
        resumed_here = seg_no > 0 and seg_no not in self._resumes and not upd.get("trackkit/finished")
        if resumed_here:
            self._resumed(seg_no, upd)
        st = upd.get("trackkit/status")
        if isinstance(st, str) and st in Status._value2member_map_ and not resumed_here:
            if upd.get("trackkit/finished"):
                self._finished = RunFinished(
                    status=Status(st),
                    time=float(upd.get("trackkit/end_time") or 0.0),
                    reason=str(upd.get("trackkit/reason") or ""),
                    exit_code=_int(upd.get("trackkit/exit_code")),
                )
                self._seg.finished_here = True  # appended after the segment: W&B writes the last row later
            else:
                details = upd.get("trackkit/details")
                self._status = StatusChange(
                    status=Status(st),
                    reason=str(upd.get("trackkit/reason") or ""),
                    step=_int(upd.get("trackkit/status_step")),
                    time=float(upd.get("trackkit/status_time") or 0.0),
                    details=details if isinstance(details, dict) else {},
                )
                self._add(self._status)

    def _resumed(self, seg_no: int, upd: Mapping[str, Any]) -> None:
        self._resumes.add(seg_no)
        self._status = None  # an earlier segment's status no longer holds
        prev = upd.get("trackkit/previous_status")
        self._add(
            RunResumed(
                time=float(upd.get("trackkit/resume_time") or 0.0),
                segment=seg_no,
                previous_status=Status(prev) if prev in Status._value2member_map_ else None,
                step=_int(upd.get("trackkit/resume_step")),
            )
        )

    def artifact(self, *, name: str, kind: str, aliases: Iterable[str], metadata: Mapping[str, Any],
                 size: int, entries: Iterable[tuple[str, str, str, int]] = (), ref: str = "") -> None:
        """A logged artifact; its ``_trackkit`` metadata restores trackkit's names and aliases. A run
        wandb wrote: the files of its manifest (``entries``: path, local path, md5 digest, size) are
        found where W&B staged or cached them (``local.local_artifact``); the n-th artifact of a name
        in this run is version n. ``ref``: W&B's ``NAME:vN`` (a server's), for ``Artifact.location``."""
        meta = dict(metadata)
        tk = meta.pop(INTERNAL, None)
        tk = tk if isinstance(tk, dict) else {}
        if tk.get("internal"):
            return  # trackkit's own config.json copy
        entries, aliases = list(entries), list(aliases)
        if not tk:
            version = self._artifact_versions.get(name, -1) + 1
            self._artifact_versions[name] = version
            path, sha, total, why = local_artifact(name, entries, self.files)
            if why:
                self.info.notes.append(f"artifact {name!r} v{version}: {why}; it is listed, not copied")
            ev0 = Artifact(path=path, name=name, kind=kind, sha256=sha, size=total or size, version=version,
                           aliases=tuple(str(a) for a in aliases), metadata=meta, source="",
                           time=self._last_time or self._start_time,
                           location=artifact_location(ref or name, aliases, entries, path))
            ident0 = repr((ev0.name, ev0.version, ev0.aliases))
            if ident0 not in self._seen_artifacts:
                self._seen_artifacts.add(ident0)
                self._add(ev0)
            return
        stored = str(tk.get("path") or "")
        if stored and not os.path.exists(stored) and entries:  # another machine: the copy W&B kept
            stored = local_artifact(name, entries, self.files)[0] or stored
        for k in tk.get("added", []):
            meta.pop(k, None)
        alias_map = tk.get("alias_map") or {}
        restored = [alias_map.get(x, x) for x in aliases]
        original = [str(x) for x in tk.get("aliases", [])]
        if "latest" not in original:
            restored = [x for x in restored if x != "latest"]
        # W&B does not keep the order: restore the order trackkit gave
        restored.sort(key=lambda x: original.index(x) if x in original else len(original))
        ev = Artifact(
            path=stored,
            name=str(tk.get("name") or name),
            kind=str(tk.get("kind") or kind),
            sha256=str(tk.get("sha256") or ""),
            size=int(tk.get("size") or size),
            version=int(tk.get("version") or 0),
            aliases=tuple(restored),
            metadata=meta,
            source=str(tk.get("source") or ""),
            time=float(tk.get("time") or 0.0),
            location=artifact_location(ref or name, aliases, entries, stored),
        )
        ident = repr((ev.name, ev.sha256, ev.version, ev.time, ev.aliases))
        if ident not in self._seen_artifacts:  # a re-sent batch logs it again
            self._seen_artifacts.add(ident)
            self._add(checkpoint_of(ev))

    def exit(self, code: int, runtime: float | None = None) -> None:
        """W&B's exit record: 0 success, else failure; none at all: killed."""
        self._seg.exit_code = int(code)
        self._seg.runtime = runtime

    def saved(self, paths: Iterable[str]) -> None:
        """Files the run saved with ``wandb.save`` (a ``files`` record's items of type OTHER) as
        ``Artifact`` events of kind ``file``, once each. The files of media values (W&B's ``media/``,
        trackkit's kept media) are read with the history's media, not twice. A file the record names
        that is not in ``files/`` is listed in the notes."""
        for rel in paths:
            if rel.startswith(MEDIA_FILES) or ("file:" + rel) in self._seen_artifacts:
                continue
            self._seen_artifacts.add("file:" + rel)
            ev = saved_file(self.files, rel, self._last_time or self._start_time)
            if ev is None:
                self.info.notes.append(f"run file {rel!r} (wandb.save) is not in the run's files/ directory; "
                                       "it is listed, not copied")
            else:
                self._add(ev)

    def console(self, run_file: str) -> None:
        """The console output W&B captured beside a segment (``files/output.log``) as an ``Artifact``
        of kind ``console`` (one per segment). A run trackkit wrote keeps its console there too
        (``output.log`` written by the sink): that comes back as ``Console`` events."""
        if self.internal.get("run_id"):
            text = console_text(self.files)
            if text and ("console-text" + text[-200:]) not in self._seen_artifacts:
                self._seen_artifacts.add("console-text" + text[-200:])
                self._add(Console(text=text, time=self._last_time or self._start_time or 0.0, line=-1))
            return
        ev = console_artifact(self.files, len([1 for e in self._seen_artifacts if e.startswith("console")]),
                              self._last_time or self._start_time)
        if ev is not None and ("console" + ev.sha256) not in self._seen_artifacts:
            self._seen_artifacts.add("console" + ev.sha256)
            self._add(ev)

    def final_summary(self, values: Mapping[str, Any], listing: bool = False) -> None:
        """The run's merged W&B summary (nested; a nested dict is flattened to ``a.b`` as history keys
        are): W&B's own keys (``_step``, ``_runtime``, ``_wandb``), trackkit's status keys, media values
        and W&B's auto-summary (a history key whose summary is its last logged value) are left out;
        the rest (set with ``run.summary[...]``) is one ``Summary``. Keys trackkit's sink set are always
        kept (``_trackkit.summary_keys``). A listing reads no history: there every number is taken
        as a metric's last value, and only the other values and the sink's keys are summary."""
        flat: dict[str, Any] = {}
        media: dict[str, Any] = {}
        values = self._best_values(values)
        _walk_summary("", values, flat, media)
        set_here = set(self.internal.get("summary_keys") or ())
        if listing:
            self.last_values({k: v for k, v in flat.items() if k not in set_here})
        keys = self.internal["keys"]
        out: dict[str, Any] = {}
        for k, v in flat.items():
            if k not in set_here:
                if k.startswith(("_", "trackkit/")) or k == INTERNAL:
                    continue
                if listing and k in self.info.last_metrics:
                    continue
                if k in self._history_last:
                    last, n = self._history_last[k], num(v)
                    if last is None or n == last or (n is not None and n != n and last != last):
                        continue
            out[keys.get(k, k)] = v
        if out:
            self._add(Summary(values=out, time=self._last_time or 0.0))

    def _best_values(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        """A declared metric's W&B summary ``{"last", "min", "max"}`` as its last value; the sink's
        ``trackkit/best`` (min/max with steps) into ``info.metrics`` where no history was read."""
        goals, keys = self.internal.get("goals") or {}, self.internal["keys"]
        if not goals:
            return values
        out = {k: (v["last"] if keys.get(k, k) in goals and isinstance(v, Mapping) and "last" in v else v)
               for k, v in values.items()}
        best = values.get("trackkit/best")
        for key, d in (best.items() if isinstance(best, Mapping) else ()):
            last = num(out.get(next((w for w, o in keys.items() if o == key), key)))
            if key in self.info.metrics or last is None or not isinstance(d, Mapping):
                continue
            with contextlib.suppress(KeyError, TypeError, ValueError):
                step = _int(values.get("_step"))
                self.info.metrics[key] = MetricStats(last, int(d["max_step"]) if step is None else step,
                                                     float(d["min"]), int(d["min_step"]), float(d["max"]),
                                                     int(d["max_step"]))
        return out

    def preempting(self) -> None:
        """The run was marked preempting (trackkit's agent stopped before the run finished)."""
        self._seg.preempting = True

    def state(self, state: str) -> None:
        """A W&B server's run state (online reading: there is no exit record)."""
        self._seg.state = state

    def last_values(self, summary: Mapping[str, Any]) -> None:
        """Last metric values from a run's summary, when no history was read (listing)."""
        if self.info.last_step is not None:
            return
        keys = self.internal["keys"]
        self.info.last_metrics = {
            keys.get(k, k): n
            for k, v in summary.items()
            if (k in keys or not k.startswith(("_", "trackkit/"))) and (n := num(v)) is not None
        }
        self.info.last_step = _int(summary.get("_step"))

    # ------------------------------------------------------------------ segments and the status rule

    def begin_segment(self, files: Fetch | None = None) -> None:
        """A new segment; ``files`` finds its run files (offline: each segment has its own)."""
        self._seg = _SegmentState()
        if files is not None:
            self.files = files

    def end_segment(self, decides: bool) -> None:
        """End a segment; the last of trackkit's own segments (``decides``) decides the status."""
        finished = self._finished if self._seg.finished_here else None
        if not decides:
            if finished is not None:
                self._add(finished)
            return
        info = self.info
        if finished is not None:
            self._tail = finished
            info.status, info.reason, info.end_time = finished.status, finished.reason, finished.time or self._last_time
            return
        info.status, info.reason = self._status_rule()
        end = self._last_time
        if self._seg.runtime is not None and self._start_time:
            end = max(end or 0.0, self._start_time + self._seg.runtime)
        info.end_time = end if info.status is not Status.RUNNING else None
        self._tail = None
        if info.status.terminal:
            self._tail = RunFinished(
                status=info.status, time=info.end_time or 0.0, reason=info.reason, exit_code=self._seg.exit_code
            )

    def _status_rule(self) -> tuple[Status, str]:
        if self._status is not None and self._status.status.terminal:
            return self._status.status, self._status.reason
        if self._seg.detached or self._seg.preempting:
            return Status.KILLED, "trackkit delivery stopped before the run finished"
        if self._seg.state is not None:
            return _STATES.get(self._seg.state, (Status.RUNNING, self._seg.state))
        if self._seg.exit_code is None:
            return Status.KILLED, "no exit record"
        if self._seg.exit_code == 0:
            return Status.COMPLETED, ""
        return Status.CRASHED, f"exit code {self._seg.exit_code}"

    def result(self, *, location: str, backend: str) -> Decoded:
        """The decoded run (call once, after the last segment)."""
        if self._tail is not None:
            self.events.append(self._tail)
            self._tail = None
        info = self.info
        info.tags = dict(self._tag_pair(t) for t in sorted(self._tags))
        info.resumed = len(self._resumes)
        info.location, info.backend = location, backend
        wproject = backend.partition(":")[2]  # "wandb:<the W&B project>"
        info.backend_project = wproject if wproject != info.project else ""
        got = Decoded(
            wid=self.wid,
            run_id=self.run_id,
            project=info.project,
            events=self.events,
            info=info,
            internal=self.internal,
            config=self._config,
            wandb_tags=sorted(self._tags),
            max_step=self._max_step,
            media_idents=self.media_idents,
            skipped=self.skipped,
            history_keys=set(self._history_last),
        )
        self._skipped_notes()
        self.decoded = got
        return got

    def _skipped_notes(self) -> None:
        """One line in ``RunInfo.notes`` per W&B type of history values not read."""
        by_type: dict[str, list[Skipped]] = {}
        for item in self.skipped:
            by_type.setdefault(item.wandb_type, []).append(item)
        for wtype, items in by_type.items():
            keys = sorted({i.key for i in items})
            self.info.notes.append(
                f"{len(items)} history value(s) of W&B type {wtype!r} (keys "
                + ", ".join(repr(k) for k in keys[:5]) + (" ..." if len(keys) > 5 else "")
                + f") not read: {items[0].note}")

    # ------------------------------------------------------------------ protobuf records (offline)

    def feed(self, rec: Any, segment_start: float) -> None:
        """One ``wandb_internal_pb2.Record`` of a run file."""
        handler = _PROTO.get(rec.WhichOneof("record_type"))
        if handler is not None:
            handler(self, rec, segment_start)


def _proto_history(d: Decoder, rec: Any, _: float) -> None:
    numbers, row = numbers_and_row(rec.history.item, HISTORY_INTERNAL)
    d.history(row, int(rec.history.step.num), numbers)


def _proto_run(d: Decoder, rec: Any, start: float) -> None:
    r = rec.run
    wandb = {"job_type": r.job_type, "notes": r.notes, "entity": r.entity, "host": r.host, "sweep_id": r.sweep_id}
    d.run(project=r.project, name=r.display_name or r.run_id, group=r.run_group, tags=r.tags,
          config=row_of(r.config.update), start=start, wandb=wandb)


def _proto_artifact(d: Decoder, rec: Any, start: float) -> None:
    a = rec.artifact
    meta = loads(a.metadata) if a.metadata else {}
    entries = [(str(c.path), str(c.local_path), str(c.digest), int(c.size)) for c in a.manifest.contents]
    d.artifact(name=a.name, kind=a.type, aliases=list(a.aliases), metadata=meta if isinstance(meta, dict) else {},
               size=sum(e[3] for e in entries), entries=entries)


_PROTO: dict[str, Callable[[Decoder, Any, float], None]] = {
    "run": _proto_run,
    "history": _proto_history,
    "config": lambda d, rec, _: d.config(row_of(rec.config.update)),
    "summary": lambda d, rec, _: d.summary(items_of(rec.summary.update)),
    "artifact": _proto_artifact,
    "exit": lambda d, rec, _: d.exit(rec.exit.exit_code, float(rec.exit.runtime)),
    "preempting": lambda d, rec, _: d.preempting(),
    "files": lambda d, rec, _: d.saved(str(f.path) for f in rec.files.files if f.type == 0),  # 0: OTHER (a user's)
}
