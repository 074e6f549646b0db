"""One run's event files read as a stream of trackkit events, in bounded chunks (``RunStream``).

No accumulator holds the run: each event file is read record by record (``records.read_records``),
the files of all of the run's parts are merged by step (``heapq.merge``: one pending record per
file), and events are handed out in chunks of at most ``CHUNK``. What comes first:

* a **head** read: the first records of every file (trackkit's ``trackkit/run``, ``trackkit/config``,
  ``trackkit/tags``, HParams session starts) and every HParams session part whole (its hparams are
  the config, its scalars the summary), so ``RunStarted`` is complete before the first point;
* then the points, media, statuses and artifacts by step (a record that holds no point or media
  keeps its place in its file: it is merged at the highest step its file reached);
* then the summary values of HParams sessions and the HParams session end (a run trackkit did not
  write: its status).

Legacy summaries (``simple_value``, ``image``, ``histo``, ``audio``) and v2 tensor summaries are both
read (``tensorboard.data_compat`` turns the old media forms into tensors, as TensorBoard does).
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, cast

from ...events import (
    Artifact,
    CheckpointPruned,
    ConfigUpdate,
    Console,
    Event,
    MetricGoal,
    Metrics,
    RunFinished,
    RunInfo,
    RunResumed,
    RunStarted,
    Status,
    StatusChange,
    Summary,
    SystemMetrics,
    Tags,
    checkpoint_of,
)
from .discover import RunDir
from .layout import (
    BEST_PREFIX,
    TAGS_FILE,
    TEXT_ARTIFACT,
    TEXT_CKPT_PRUNED,
    TEXT_CONFIG,
    TEXT_CONSOLE,
    TEXT_GOAL,
    TEXT_MEDIA,
    TEXT_RUN,
    TEXT_STATUS,
    TEXT_SUMMARY,
    TEXT_TAGS,
    TRACKKIT_TEXTS,
)
from .media_in import MEDIA_PLUGINS, MediaRecords, read_media
from .records import Damage, read_records

__all__ = ["CHUNK", "HEAD_RECORDS", "RunStream"]

#: events per chunk at most (a chunk of 10-key steps is ~2 MB: the whole of what a migrate holds at once)
CHUNK = 2_000
#: records of each file read ahead for the run's identity and config
HEAD_RECORDS = 32
#: an HParams session part larger than this is read as an ordinary part (its scalars as metrics)
SESSION_LIMIT = 4 << 20
_NP_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 9: "<i8", 19: "<f2", 10: "?"}


class _TensorEvent(NamedTuple):
    step: int
    wall_time: float
    tensor_proto: Any


#: the reason of a run another tool wrote without an HParams session end (docs/backends/tensorboard.md)
NO_STATUS = "TensorBoard records no run status; read as completed"


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() and abs(x) < 2 ** 53 else float(x)


class RunStream:
    """The events of one run (``chunks()``), its notes, and ``store`` for media payloads."""

    def __init__(self, run: RunDir, root: str, store: Callable[[bytes, str], tuple[str, str]]) -> None:
        from tensorboard.compat.proto import event_pb2

        self.run = run
        self.root = root
        self.store = store
        self._Event = event_pb2.Event
        self.notes: list[str] = []
        self._new_notes: list[str] = []
        #: the damaged files, one short line each (``RunInfo.damage``)
        self.damage: list[str] = []
        #: (part index, tag) -> plugin name, from the first value that carried metadata
        self.plugins: dict[tuple[int, str], str] = {}
        self.config: dict[str, Any] = {}
        self.summary: dict[str, tuple[int, Any]] = {}
        self.session_end: tuple[Status, float] | None = None
        self.sessions: set[int] = set()  # part indexes read whole as HParams sessions
        self.unknown: dict[str, set[str]] = {}
        self.graphs = 0
        self.media_seen: set[tuple[str, int, float, str]] = set()
        #: a listing: points are folded into ``points`` (last/min/max per key) and ``last_step``, not handed
        #: out as events
        self.points_only_last = False
        self.points = RunInfo(run_id="", project="", name="", backend="")
        self.last_step: int | None = None
        self.files = run.files()
        index = {id(p): i for i, p in enumerate(run.parts)}
        #: the part index of each file
        self.file_part = [index[id(p)] for p, _f in self.files]
        #: trackkit's sidecars gave the final config / tags: the text records of earlier states are not replayed
        self.final_config = self.final_tags = False
        self.sizes = [os.path.getsize(f) if os.path.exists(f) else 0 for _, f in self.files]
        self.done = [0] * len(self.files)
        self.total = max(sum(self.sizes), 1)

    # ------------------------------------------------------------------ notes

    def _note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)
            self._new_notes.append(text)

    def _take_notes(self) -> list[str]:
        out, self._new_notes = self._new_notes, []
        return out

    # ------------------------------------------------------------------ the head

    def _events_of(self, path: str, limit: int | None = None) -> Iterator[tuple[int, Any]]:
        dmg = Damage(path)
        Event = self._Event
        for n, (pos, data) in enumerate(read_records(path, dmg)):
            if limit is not None and n >= limit:
                return
            try:
                ev = Event.FromString(data)
            except Exception:  # a record whose bytes are not an Event (protobuf's DecodeError)
                self._note(f"event file {path}: the record ending at byte {pos:,} is not an event; skipped")
                continue
            yield pos, ev
        if limit is None or dmg.cut:
            self._note(dmg.text)
            self.damage.extend(d for d in dmg.short if d not in self.damage)

    def _head(self) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, str] | None]:
        """``(run record, config text, tags text)`` from the first records of the files; HParams
        session parts are read whole here."""
        run_rec: dict[str, Any] = {}
        config: dict[str, Any] | None = None
        tags: dict[str, str] | None = None
        for pi, part in enumerate(self.run.parts):
            session = False
            for path in part.files:
                for _pos, ev in self._events_of(path, HEAD_RECORDS):
                    for v in ev.summary.value:
                        plugin = v.metadata.plugin_data.plugin_name if v.HasField("metadata") else ""
                        if plugin == "hparams":
                            session = self._hparams(v, ev.wall_time) or session
                        elif v.tag in (TEXT_RUN, TEXT_CONFIG, TEXT_TAGS) and v.HasField("tensor"):
                            text = self._text(v.tensor)
                            try:
                                obj = json.loads(text)
                            except ValueError:
                                continue
                            if v.tag == TEXT_RUN and not run_rec and isinstance(obj, dict):
                                run_rec = obj
                            elif v.tag == TEXT_CONFIG and isinstance(obj, dict):
                                config = obj
                            elif v.tag == TEXT_TAGS and isinstance(obj, dict):
                                tags = {str(k): str(x) for k, x in obj.items()}
            if session and part.prefix and sum(os.path.getsize(f) for f in part.files) <= SESSION_LIMIT:
                self.sessions.add(pi)
                for path in part.files:
                    for _pos, ev in self._events_of(path):
                        self._session_record(pi, ev)
        return run_rec, config, tags

    def _session_record(self, pi: int, ev: Any) -> None:
        for v in ev.summary.value:
            plugin = v.metadata.plugin_data.plugin_name if v.HasField("metadata") else ""
            if plugin == "hparams":
                self._hparams(v, ev.wall_time)
                continue
            x = self._scalar(pi, v)
            if x is not None:
                old = self.summary.get(v.tag)
                if old is None or ev.step >= old[0]:
                    self.summary[v.tag] = (ev.step, _number(x))

    def _hparams(self, v: Any, wall: float) -> bool:
        """An HParams plugin value: a session start's hparams into the config; a session end as the
        status. True for a session start."""
        from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

        try:
            data = plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
        except Exception:
            return False
        if data.HasField("session_start_info"):
            for k, val in data.session_start_info.hparams.items():
                kind = val.WhichOneof("kind")
                x = getattr(val, kind) if kind else None
                self.config[k] = _number(x) if isinstance(x, float) else x
            return True
        if data.HasField("session_end_info"):
            end = data.session_end_info
            status = {api_pb2.STATUS_SUCCESS: Status.COMPLETED, api_pb2.STATUS_FAILURE: Status.CRASHED,
                      api_pb2.STATUS_RUNNING: Status.RUNNING}.get(end.status)
            if status is not None:
                self.session_end = (status, end.end_time_secs or wall)
        return False

    # ------------------------------------------------------------------ values

    @staticmethod
    def _text(t: Any) -> str:
        raw = t.string_val[0] if t.string_val else b""
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

    def _scalar(self, pi: int, v: Any) -> float | None:
        """The value of a scalar summary (legacy ``simple_value`` or a v2 tensor of one number), else None."""
        kind = v.WhichOneof("value")
        if kind == "simple_value":
            return float(v.simple_value)
        if kind != "tensor":
            return None
        plugin = self.plugins.get((pi, v.tag), "")
        if v.HasField("metadata"):
            plugin = v.metadata.plugin_data.plugin_name
        if plugin not in ("scalars", ""):
            return None
        t = v.tensor
        if any(d.size != 1 for d in t.tensor_shape.dim):
            return None
        for field in (t.float_val, t.double_val, t.int_val, t.int64_val, t.half_val):
            if field:
                if field is t.half_val:
                    break
                return float(field[0])
        dtype = _NP_DTYPES.get(t.dtype)
        if t.tensor_content and dtype is not None:
            import numpy as np

            arr = np.frombuffer(t.tensor_content, dtype=dtype)
            return float(arr[0]) if arr.size == 1 else None
        if plugin != "scalars":
            return None
        try:
            arr = self._make_ndarray(t)
        except Exception:
            return None
        return float(arr.reshape(-1)[0]) if arr.size == 1 and arr.dtype.kind in "fiub" else None

    @staticmethod
    def _make_ndarray(tensor: Any) -> Any:
        """TensorBoard's ``tensor_util.make_ndarray``, imported on first use: it loads TensorBoard's
        TensorFlow stub (gfile, fsspec, dtypes), which a run of plain scalars never needs (1.6 MB)."""
        from tensorboard.util import tensor_util

        return tensor_util.make_ndarray(tensor)

    # ------------------------------------------------------------------ the merge

    def _file_records(self, fi: int, pi: int, path: str) -> Iterator[tuple[int, int, int, Any]]:
        """``(merge step, file index, end offset, event)`` of one file; a record without points or media
        is merged at the highest step the file reached before it (it keeps its place in the file)."""
        reached = -(1 << 62)
        for pos, ev in self._events_of(path):
            values = ev.summary.value
            if not values:
                if ev.HasField("graph_def") or ev.HasField("meta_graph_def"):
                    self.graphs += 1
                self.done[fi] = pos
                continue
            if values[0].WhichOneof("value") != "simple_value" and all(
                    (v.tag in TRACKKIT_TEXTS and v.tag != TEXT_MEDIA) or
                    (v.HasField("metadata") and v.metadata.plugin_data.plugin_name == "hparams") for v in values):
                yield reached, fi, pos, ev
                continue
            reached = max(reached, ev.step)
            yield ev.step, fi, pos, ev

    def chunks(self) -> Iterator[tuple[list[Event], float | None, list[str]]]:
        run = self.run
        rec, config_text, tags_text = self._head()
        trackkit = run.marker is not None
        project, name, group = run.names(self.root)
        config: dict[str, Any] = dict(self.config)
        tags: dict[str, str] = {}
        if trackkit:
            sidecar = _json_file(os.path.join(run.dir, "config.json"))
            config = sidecar if isinstance(sidecar, dict) else (config_text or config)
            side_tags = _json_file(os.path.join(run.dir, TAGS_FILE))
            self.final_config, self.final_tags = isinstance(sidecar, dict), isinstance(side_tags, dict)
            tags = {str(k): str(v) for k, v in side_tags.items()} if isinstance(side_tags, dict) else (tags_text or {})
            if isinstance(side_tags, dict) and tags_text:
                tags = {**tags_text, **tags}
        start = RunStarted(
            run_id=str(rec.get("run_id") or run.run_id), project=str(rec.get("project") or project),
            name=str(rec.get("name") or name), start_time=float(rec.get("start_time") or self._first_wall()),
            group=rec.get("group", group) if rec else group, tags=tags, config=config,
            meta=rec.get("meta") or {}, parent=rec.get("parent") or run.parent,
        )
        state_config = dict(config)
        out: list[Event] = [start]
        pending: list[Any] = [None, None, None]  # step, wall, values of the Metrics being gathered
        statuses = trackkit

        points = self.points_only_last
        fold = self.points.add_point

        def flush_points() -> None:
            if pending[2]:
                if points:
                    for k, x in pending[2].items():
                        fold(k, pending[0], x)
                    self.last_step = pending[0] if self.last_step is None else max(self.last_step, pending[0])
                else:
                    out.append(Metrics(step=pending[0], time=pending[1], values=pending[2]))
                pending[2] = None

        streams = [self._file_records(fi, self.file_part[fi], path)
                   for fi, (_p, path) in enumerate(self.files) if self.file_part[fi] not in self.sessions]
        for fi in range(len(self.files)):
            if self.file_part[fi] in self.sessions:
                self.done[fi] = self.sizes[fi]
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda item: item[0])
        done = self.done
        seen_step: int | None = None
        seen: set[tuple[float, str, float]] = set()
        for _key, fi, pos, ev in merged:
            done[fi] = pos
            part = self.files[fi][0]
            pi = self.file_part[fi]
            prefix = part.prefix
            step, wall = ev.step, ev.wall_time
            records: MediaRecords | None = None
            values = ev.summary.value
            if len(out) + len(values) + 1 > CHUNK:
                flush_points()
                yield out, self._fraction(), self._take_notes()
                out = []
            if len(values) > 1:  # a media value and its trackkit/media record: the record first
                for v in values:
                    if v.tag == TEXT_MEDIA and v.HasField("tensor"):
                        if records is None:
                            records = MediaRecords(self.store)
                        records.add(step, wall, self._text(v.tensor))
            for v in values:
                tag = v.tag
                kind = v.WhichOneof("value")
                if kind == "simple_value":
                    key = prefix + tag if prefix else tag
                    if trackkit and key.startswith(BEST_PREFIX):
                        continue  # derived from the points (the sink's HParams metric column)
                    x = float(v.simple_value)
                    if trackkit and key.startswith("system/"):  # the sink's system metrics: a time axis
                        flush_points()
                        prev_ev = out[-1] if out else None
                        if isinstance(prev_ev, SystemMetrics) and (prev_ev.seq, prev_ev.time) == (step, wall):
                            cast(dict[str, float], prev_ev.values)[key] = x
                        else:
                            out.append(SystemMetrics(time=wall, values={key: x}, seq=step))
                        continue
                elif trackkit and tag == TEXT_CONSOLE and kind == "tensor":  # the sink's console chunks
                    flush_points()
                    text = self._text(v.tensor)
                    lines = [ln[4:] if ln.startswith("    ") else ln for ln in text.splitlines()]
                    out.append(Console(text="".join(ln + "\n" for ln in lines), time=wall, line=step))
                    continue
                elif tag in TRACKKIT_TEXTS and kind == "tensor":
                    if tag == TEXT_MEDIA:
                        continue  # read above
                    flush_points()
                    statuses = self._trackkit_text(tag, self._text(v.tensor), step, wall, out, state_config,
                                                   tags, trackkit) or statuses
                    continue
                else:
                    if v.HasField("metadata"):
                        self.plugins[(pi, tag)] = v.metadata.plugin_data.plugin_name
                    plugin = self.plugins.get((pi, tag), "")
                    if plugin == "hparams":
                        before = dict(self.config)
                        self._hparams(v, wall)
                        new = {k: x for k, x in self.config.items() if before.get(k, object()) != x}
                        if new and not trackkit:
                            flush_points()
                            out.append(ConfigUpdate(new, wall))
                        continue
                    y = self._scalar(pi, v)
                    if y is None:
                        flush_points()
                        if records is None:
                            records = MediaRecords(self.store)
                        self._media(pi, prefix, v, kind, plugin, step, wall, records, out)
                        continue
                    key = prefix + tag if prefix else tag
                    x = y
                if trackkit:  # a batch a restarted agent wrote again: each point once
                    if step != seen_step:
                        seen_step = step
                        seen.clear()
                    ident = (wall, key, x)
                    if ident in seen:
                        continue
                    seen.add(ident)
                vals = pending[2]
                if vals is not None and pending[0] == step and pending[1] == wall:
                    vals[key] = x
                else:
                    flush_points()
                    pending[0], pending[1], pending[2] = step, wall, {key: x}
        flush_points()
        self._final_notes()
        if self.summary:
            out.append(Summary({k: v for k, (_s, v) in self.summary.items()}, self._last_wall(out)))
        if self.session_end is not None and not statuses:
            out.append(RunFinished(status=self.session_end[0], time=self.session_end[1]))
        elif not statuses:  # a logdir another tool wrote, with no session end: TensorBoard records no status
            out.append(RunFinished(status=Status.COMPLETED, time=self._last_wall(out) or self._first_wall(),
                                   reason=NO_STATUS))
        yield out, 1.0, self._take_notes()

    def _fraction(self) -> float:
        return min(1.0, sum(self.done) / self.total)

    def _first_wall(self) -> float:
        for _p, path in self.files:
            for _pos, ev in self._events_of(path, 2):
                if ev.wall_time:
                    return float(ev.wall_time)
        return 0.0

    @staticmethod
    def _last_wall(out: list[Event]) -> float:
        for ev in reversed(out):
            t = getattr(ev, "time", 0.0)
            if t:
                return float(t)
        return 0.0

    def _final_notes(self) -> None:
        for plugin, tags in sorted(self.unknown.items()):
            shown = ", ".join(sorted(tags)[:5]) + (" ..." if len(tags) > 5 else "")
            self._note(f"{len(tags)} tag(s) of the TensorBoard plugin {plugin!r} ({shown}) are not read: "
                       "trackkit has no kind for them")
        if self.graphs:
            self._note("the model graph in the event files is not read (trackkit keeps no graphs)")

    def _media(self, pi: int, prefix: str, v: Any, kind: str | None, plugin: str, step: int, wall: float,
               records: MediaRecords, out: list[Event]) -> None:
        if kind in ("image", "histo", "audio"):
            from tensorboard import data_compat

            v = data_compat.migrate_value(v)
            plugin = v.metadata.plugin_data.plugin_name
            self.plugins[(pi, v.tag)] = plugin
        elif kind != "tensor":
            self.unknown.setdefault(kind or "empty", set()).add(v.tag)
            return
        if plugin not in MEDIA_PLUGINS:
            self.unknown.setdefault(plugin or "(none)", set()).add(v.tag)
            return
        key = prefix + v.tag if prefix else v.tag
        for m in read_media(key, plugin, [_TensorEvent(step, wall, v.tensor)], records, self._make_ndarray):
            ident = (m.key, m.step, m.time, m.sha256)
            if ident not in self.media_seen:  # a value written twice (an agent restarted between write and cursor)
                self.media_seen.add(ident)
                out.append(m)

    def _trackkit_text(self, tag: str, text: str, step: int, wall: float, out: list[Event],
                       config: dict[str, Any], tags: dict[str, str], trackkit: bool) -> bool:
        """One of trackkit's JSON text records as events; True when it was a status."""
        try:
            obj = json.loads(text)
        except ValueError:
            self._note(f"a {tag} record at step {step} is not JSON; skipped")
            return False
        if not isinstance(obj, dict):
            return False
        if tag == TEXT_STATUS:
            out.append(_status_event(obj, wall))
            return True
        if tag == TEXT_ARTIFACT:
            a = obj
            out.append(checkpoint_of(Artifact(
                path=a["path"], name=a["name"], kind=a["kind"], sha256=a["sha256"], size=a["size"],
                version=a.get("version", 0), aliases=tuple(a.get("aliases", ())), metadata=a.get("metadata", {}),
                source=a.get("source", ""), time=wall)))
        elif tag == TEXT_CKPT_PRUNED:
            out.append(CheckpointPruned(name=str(obj.get("name", "")), version=int(obj.get("version", 0)), path="",
                                        reason=str(obj.get("reason", "")), aliases=obj.get("aliases") or {},
                                        time=wall))
        elif tag == TEXT_SUMMARY:
            out.append(Summary(dict(obj), wall))
        elif tag == TEXT_GOAL and isinstance(obj.get("key"), str) and obj.get("goal") in ("min", "max"):
            out.append(MetricGoal(obj["key"], obj["goal"], wall))
        elif tag == TEXT_CONFIG and not self.final_config:
            changed = {k: x for k, x in obj.items() if k not in config or config[k] != x}
            if changed:
                config.update(changed)
                out.append(ConfigUpdate(changed, wall))
        elif tag == TEXT_TAGS and not self.final_tags:
            changed_tags = {str(k): str(x) for k, x in obj.items() if tags.get(str(k)) != str(x)}
            if changed_tags:
                tags.update(changed_tags)
                out.append(Tags(changed_tags, wall))
        return False


def _status_event(s: dict[str, Any], wall: float) -> Event:
    st = Status(s.get("status", "running")) if s.get("status") in Status._value2member_map_ else Status.RUNNING
    details = s.get("details") or {}
    if details.get("final"):
        return RunFinished(status=st, time=wall, reason=s.get("reason", ""), exit_code=details.get("exit_code"))
    if details.get("resumed"):
        prev = details.get("previous_status")
        return RunResumed(time=wall, segment=int(details["resumed"]), step=s.get("step"),
                          previous_status=Status(prev) if prev in Status._value2member_map_ else None)
    return StatusChange(status=st, reason=s.get("reason", ""), step=s.get("step"), time=wall, details=details)


def _json_file(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None
