"""Reader -> Sink, in bounded chunks, then the copy read back and compared (``compare``).

A run is never held whole: the source streams past in chunks (a Reader's ``stream_run`` where it
has one, else ``read_run`` cut into chunks), each chunk is planned (``Planner``) and emitted, and
both sides fold their points into digests as they pass. Only keys whose digests differ are read
a second time, point by point."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backend import BackendSpec
from ..errors import ConfigError, TrackkitError
from ..events import Artifact, Event, Media, Metrics, RunFinished, RunInfo, RunResumed, RunStarted, Tags
from ..util import sha256_of
from .compare import Side, compare, suspects
from .report import BATCH, STATUS_TAG, Report, SkippedArtifact

__all__ = ["Progress", "migrate", "migrate_all", "migrate_many"]

#: events per chunk when a Reader has no stream of its own
CHUNK = 2_000

#: ``progress(report_so_far, fraction_done_or_None)`` while a run is copied
Progress = Callable[[Report, "float | None"], None]


def artifact_problem(ev: Artifact) -> str:
    """Why an artifact cannot be copied, or ``""``."""
    if not ev.path:
        return "the source records no stored file for it"
    if "://" in ev.path:
        return f"stored at a URI ({ev.path}); only local files are copied — download it and log it again"
    if not os.path.exists(ev.path):
        return f"its stored file {ev.path} no longer exists"
    if ev.sha256:
        try:
            actual = sha256_of(ev.path)
        except OSError as exc:
            return f"its stored file {ev.path} cannot be read ({exc})"
        if actual != ev.sha256:
            return f"its stored file {ev.path} does not match the recorded sha256 (changed since it was logged)"
    return ""


def chunks(reader: Any, run_id: str, notes: list[str] | None = None,
           infos: list[RunInfo] | None = None) -> Iterator[tuple[list[Event], float | None]]:
    """The run's events in bounded chunks, each with the fraction of the run read so far (None: unknown).
    A Reader's ``stream_run(run_id)`` yields ``(events, fraction, notes)``: ``notes`` are lines on what it
    could not read (a cut file), collected into ``notes``. Raises ``KeyError`` when there is no such run."""
    stream = getattr(reader, "stream_run", None)
    if callable(stream):
        for item in stream(run_id):
            events, done, *rest = item
            if rest and notes is not None:
                notes.extend(rest[0])
            yield list(events), done
        return
    rec = reader.read_run(run_id)
    if notes is not None:
        notes.extend(rec.info.notes)
    if infos is not None:  # a reader without a stream: its own summary of the run is the one compared
        infos.append(rec.info)
    events = list(rec.events)
    n = max(len(events), 1)
    for i in range(0, len(events), CHUNK):
        yield events[i:i + CHUNK], min(1.0, (i + CHUNK) / n)
    if not events:
        yield [], 1.0


@dataclass
class Planner:
    """What of each chunk is replayed: ``RunStarted`` first (with ``migrated_from``; made from the
    listing when the reader gives none), status tags dropped (each sink writes its own), artifacts and
    media without a readable local payload left out (and listed), the run's final ``RunFinished``
    last (a reader that sorts by time may put points after it)."""

    info: RunInfo
    source: str
    artifacts: list[Artifact] = field(default_factory=list)
    skipped: list[SkippedArtifact] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    skipped_media: list[str] = field(default_factory=list)
    events: int = 0
    started: bool = False
    held: RunFinished | None = None

    def _start(self, start: RunStarted | None) -> RunStarted:
        i = self.info
        if start is None:
            start = RunStarted(run_id=i.run_id, project=i.project, name=i.name, start_time=i.start_time or 0.0,
                               group=i.group, tags=dict(i.tags), config=dict(i.config), parent=i.parent)
        meta = dict(start.meta)
        meta["migrated_from"] = {"backend": self.source, "location": i.location}
        return RunStarted(run_id=start.run_id, project=start.project, name=start.name, start_time=start.start_time,
                          group=start.group, tags={k: v for k, v in start.tags.items() if k != STATUS_TAG},
                          config=dict(start.config), meta=meta, parent=start.parent)

    def feed(self, chunk: Sequence[Event]) -> list[Event]:
        from ..media.verify import problem

        out: list[Event] = []
        for ev in chunk:
            if isinstance(ev, RunStarted):
                if not self.started:
                    self.started = True
                    out.append(self._start(ev))
                continue  # a later segment's start: the run is already open
            if not self.started:
                self.started = True
                out.append(self._start(None))
            if isinstance(ev, RunFinished):
                if self.held is not None:
                    out.append(self.held)
                self.held = ev
                continue
            if isinstance(ev, RunResumed) and self.held is not None:
                out.append(self.held)  # a segment's end, then the next segment
                self.held = None
            if isinstance(ev, Tags):
                tags = {k: v for k, v in ev.tags.items() if k != STATUS_TAG}
                if tags:
                    out.append(Tags(tags, ev.time))
                continue
            if isinstance(ev, Artifact):
                why = artifact_problem(ev)
                if why:
                    self.skipped.append(SkippedArtifact(ev.name, ev.version, ev.path, why))
                    continue
                self.artifacts.append(ev)
            elif isinstance(ev, Media):
                why = problem(ev)
                if why:
                    self.skipped_media.append(f"{ev.kind} {ev.key}@{ev.step}: {why}")
                    continue
                self.media.append(ev)
            out.append(ev)
        self.events += len(out)
        return out

    def tail(self) -> list[Event]:
        out: list[Event] = [] if self.started else [self._start(None)]
        self.started = True
        if self.held is not None:
            out.append(self.held)
            self.held = None
        self.events += len(out)
        return out


def _emit(sink: Any, events: Sequence[Event]) -> None:
    for i in range(0, len(events), BATCH):
        sink.emit(events[i:i + BATCH])


def _label(spec: BackendSpec) -> str:
    from ..query import backend_label

    return backend_label(spec)


def _ids(reader: Any, project: str | None = None) -> list[RunInfo] | None:
    try:
        return list(reader.list_runs(project))
    except Exception:  # a courtesy (counting copies); a Reader that cannot list must not fail the copy
        return None


def _find(reader: Any, ref: str, where: str) -> RunInfo:
    """The source run ``ref`` names (id, unique id prefix, unique name), from the listing: nothing is read."""
    from ..lookup import pick

    listed = list(reader.list_runs(None))
    rid = pick(ref, [(i.run_id, i.name) for i in listed], where, f"`trackkit runs --backend {where}`")
    found: RunInfo = next(i for i in listed if i.run_id == rid)
    return found


def _fold(info: RunInfo, events: Sequence[Event]) -> None:
    """The run's summary from its events, but for the metric figures: the points are in the digests
    (``Side.add``), and ``compare`` compares the summary's other fields."""
    for ev in events:
        if type(ev) is not Metrics:
            info.apply(ev)


def _side(reader: Any, run_id: str, info: RunInfo | None, float32: bool) -> Side | None:
    """The target's copy folded into a Side (None: the target has no such run)."""
    side = Side(float32=float32)
    acc: RunInfo | None = None
    infos: list[RunInfo] = []
    try:
        for events, _ in chunks(reader, run_id, infos=infos):
            if acc is None:
                acc = RunInfo(run_id, info.project if info else "", info.name if info else "", backend="")
            _fold(acc, events)
            side.add(events)
    except KeyError:
        return None
    side.info = infos[0] if infos else acc
    return side


def _gather(reader: Any, run_id: str, side: Side, keys: set[str]) -> None:
    side.collect = keys
    for events, _ in chunks(reader, run_id):
        side.gather(events)


def _migrate_one(ref: str, src: tuple[BackendSpec, Any], tgt: tuple[BackendSpec, Any], verify_copy: bool,
                 dry_run: bool = False, progress: Progress | None = None) -> Report:
    from ..registry import load_sink

    t0 = time.monotonic()
    (src_spec, src_reader), (tgt_spec, tgt_reader) = src, tgt
    source, target = _label(src_spec), _label(tgt_spec)
    listed = _find(src_reader, ref, source)
    report = Report(run_id=listed.run_id, source=source, target=target, name=listed.name, dry_run=dry_run)
    float32 = "tensorboard" in (src_spec.scheme, tgt_spec.scheme)
    want = Side(float32=float32)
    info = RunInfo(listed.run_id, listed.project, listed.name, backend=listed.backend, location=listed.location)
    planner = Planner(listed, source)

    before = _ids(tgt_reader, listed.project)
    existing = before is not None and any(i.run_id == listed.run_id for i in before)
    if before is None:  # the target cannot list: ask it for the run itself
        existing = _side(tgt_reader, listed.run_id, None, float32) is not None
    sink = None if existing or dry_run else load_sink(tgt_spec)
    read_notes: list[str] = []
    read_infos: list[RunInfo] = []
    clock = time.perf_counter
    read_s = write_s = 0.0
    try:
        source_chunks = chunks(src_reader, listed.run_id, read_notes, read_infos)
        while True:
            t = clock()
            item = next(source_chunks, None)
            read_s += clock() - t
            if item is None:
                break
            events, done = item
            _fold(info, events)
            report.points += want.add(events)
            planned = planner.feed(events)
            if sink is not None:
                t = clock()
                _emit(sink, planned)
                write_s += clock() - t
            if progress is not None:
                progress(report, done)
        if sink is not None:
            t = clock()
            _emit(sink, planner.tail())
            write_s += clock() - t
    finally:
        if sink is not None:
            t = clock()
            sink.close()
            write_s += clock() - t
    report.phases = {"read": read_s, "write": write_s}
    info.location = info.location or listed.location
    want.info = info
    report.name = info.name
    report.copied = sink is not None
    report.skipped, report.skipped_media = planner.skipped, planner.skipped_media
    report.artifacts = [f"{a.name} v{a.version}" for a in planner.artifacts]
    for m in planner.media:
        report.media[m.kind] = report.media.get(m.kind, 0) + 1
    report.events = planner.events
    report.metric_keys = len(want.digests)
    for note in dict.fromkeys([*listed.notes, *read_notes]):
        report.notes.append(f"reading {source}: {note}")
    report.damage = list(dict.fromkeys([*listed.damage, *(d for i in read_infos for d in i.damage)]))
    for note in dict.fromkeys(getattr(sink, "notes", None) or ()):  # what the target took in a lesser form
        report.notes.append(f"writing {target}: {note}")
    if not info.status.terminal:
        report.notes.append("the source run is still running: the copy is a snapshot of what it holds now")
    if existing:
        report.already_present = True
        report.notes.append(f"{target} already holds run {listed.run_id}: not copied again (a second copy would "
                            "duplicate its points); the existing copy is verified")
    if dry_run:
        report.notes.append("dry run: nothing was written to the target")
        report.seconds = time.monotonic() - t0
        return report
    after = _ids(tgt_reader, listed.project)
    if after is not None:
        n = sum(1 for i in after if i.run_id == listed.run_id)
        if n > 1:
            report.notes.append(f"{target} now holds {n} runs with id {listed.run_id}: the backend created a new "
                                "run instead of re-attaching to the existing one")
    if verify_copy:
        t = clock()
        report.verified = True
        got = _side(tgt_reader, listed.run_id, info, float32)
        if got is None or got.info is None:
            from .report import Mismatch

            report.mismatches.append(Mismatch("run", "run_id", listed.run_id, "<not found in target>"))
        else:
            report.target_location = got.info.location or tgt_spec.location
            keys = suspects(want, got)
            if keys:  # read those keys again, point by point (the only time points are held)
                _gather(src_reader, listed.run_id, want, keys)
                _gather(tgt_reader, listed.run_id, got, keys)
            report.mismatches = compare(want, got, artifacts=planner.artifacts, media=planner.media)
        report.phases["verify"] = clock() - t
    report.seconds = time.monotonic() - t0
    return report


def _spec(text: str | BackendSpec) -> BackendSpec:
    from ..registry import parse_backend

    return text if isinstance(text, BackendSpec) else parse_backend(text)


def _pair(source: str | BackendSpec, target: str | BackendSpec) -> tuple[tuple[BackendSpec, Any],
                                                                          tuple[BackendSpec, Any]]:
    from ..registry import load_reader

    src_spec, tgt_spec = _spec(source), _spec(target)
    if (src_spec.scheme, src_spec.location, dict(src_spec.options)) == (
        tgt_spec.scheme, tgt_spec.location, dict(tgt_spec.options)
    ):
        raise ConfigError(f"migrate: source and target are the same backend ({src_spec}). Fix: name another --to")
    # the source must exist (a typo is an error, not "no runs"); the target's sink creates its store,
    # so its reader reads as empty until then and creates nothing itself
    return (src_spec, load_reader(src_spec)), (tgt_spec, load_reader(tgt_spec, must_exist=False))


def migrate(run_id: str, source: str | BackendSpec, target: str | BackendSpec, *, verify: bool = True,
            dry_run: bool = False, progress: Progress | None = None) -> Report:
    """Copy one run (by id, unique id prefix or unique name) from ``source`` to ``target``
    (backend strings) and, with ``verify``, read it back through the target's Reader and list every
    difference in ``Report.mismatches``. ``dry_run``: read and plan only; the report says what
    would be copied and skipped.

    Raises ``ConfigError`` when the run is not in the source or both are the same backend,
    and ``BackendError`` when a backend fails."""
    src, tgt = _pair(source, target)
    return _migrate_one(run_id, src, tgt, verify, dry_run, progress)


def migrate_many(
    run_ids: Sequence[str],
    source: str | BackendSpec,
    target: str | BackendSpec,
    *,
    verify: bool = True,
    dry_run: bool = False,
    progress: Callable[[Report], None] | None = None,
    chunk_progress: Progress | None = None,
) -> list[Report]:
    """Migrate several runs; a run that fails is reported with ``Report.error`` and the others still go."""
    src, tgt = _pair(source, target)
    return _many([(rid, "") for rid in run_ids], src, tgt, verify, dry_run, progress, chunk_progress)


def migrate_all(
    source: str | BackendSpec,
    target: str | BackendSpec,
    project: str | None = None,
    *,
    verify: bool = True,
    dry_run: bool = False,
    progress: Callable[[Report], None] | None = None,
    chunk_progress: Progress | None = None,
) -> list[Report]:
    """Migrate every run of ``source`` (of one ``project``). A run that fails is reported
    with ``Report.error`` and the others still go."""
    src, tgt = _pair(source, target)
    runs = [(i.run_id, i.name) for i in src[1].list_runs(project)]
    return _many(runs, src, tgt, verify, dry_run, progress, chunk_progress)


def _many(
    runs: Sequence[tuple[str, str]],
    src: tuple[BackendSpec, Any],
    tgt: tuple[BackendSpec, Any],
    verify: bool,
    dry_run: bool,
    progress: Callable[[Report], None] | None,
    chunk_progress: Progress | None,
) -> list[Report]:
    reports = []
    for run_id, name in runs:
        try:
            rep = _migrate_one(run_id, src, tgt, verify, dry_run, chunk_progress)
        except Exception as exc:  # one bad run must not stop the others; it is reported
            msg = str(exc) if isinstance(exc, TrackkitError) else f"{type(exc).__name__}: {exc}"
            rep = Report(run_id=run_id, source=_label(src[0]), target=_label(tgt[0]), name=name, error=msg)
        reports.append(rep)
        if progress is not None:
            progress(rep)
    return reports
