"""Copy runs between backends (Reader -> Sink) and prove the copy by reading it back.

::

    from trackkit.migrate import migrate, migrate_all

    report = migrate("a1b2c3", "tensorboard:./runs", "mlflow:./mlflow.db")
    print(report.summary())          # points, artifacts, every mismatch
    assert report.ok

What happens (``docs/reading-back.md``):

1. the run is read through the source backend's Reader;
2. when the target already holds a run with that id, nothing is replayed (a second
   replay would duplicate points in TensorBoard and W&B): the report says so and the
   existing copy is verified;
3. otherwise its events are replayed into the target's Sink, ``RunStarted`` first, in
   batches; artifacts whose stored file is local are handed to the sink (which copies
   them), others are skipped with the reason; the sink is closed;
4. verification reads the run back through the target's Reader and compares every
   metric point (step and value; float32 tolerance when TensorBoard is on either side;
   NaN equals NaN, ±inf equals itself), the flattened config, the tags, the status and
   its reason, the name/project/group and every copied artifact's sha256 (recorded, and
   recomputed from the file when the target's copy is a local file). Every difference
   is one ``Mismatch`` in the report.

The run keeps its trackkit run id, so the target's own resume key finds it again; the
source is recorded in the copy's run metadata as ``migrated_from``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .backend import BackendSpec
from .errors import ConfigError, TrackkitError
from .events import Artifact, Event, Media, RunFinished, RunInfo, RunRecord, RunStarted, Tags, flatten_config
from .util import close, jsonable, same_value, sha256_of

__all__ = ["Mismatch", "Report", "SkippedArtifact", "migrate", "migrate_all", "migrate_many", "sha256_of", "verify"]

#: the status tag every sink writes by its own rule: not replayed, not compared as a user tag
STATUS_TAG = "trackkit.status"
#: events per ``emit`` call
BATCH = 500


@dataclass(frozen=True)
class Mismatch:
    """One difference between the source run and what the target holds."""

    #: run, config, tag, status, metric, artifact
    kind: str
    key: str
    expected: Any
    got: Any

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: expected {_show(self.expected)}, got {_show(self.got)}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "expected": jsonable(self.expected), "got": jsonable(self.got)}


@dataclass(frozen=True)
class SkippedArtifact:
    name: str
    version: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} v{self.version}: {self.reason}"


@dataclass
class Report:
    """The outcome of migrating one run."""

    run_id: str
    source: str
    target: str
    name: str = ""
    #: events were replayed into the target by this call
    copied: bool = False
    #: the target held the run before this call (nothing was replayed)
    already_present: bool = False
    #: verification ran (``verify=True``)
    verified: bool = False
    events: int = 0
    points: int = 0
    metric_keys: int = 0
    artifacts: list[str] = field(default_factory=list)
    skipped: list[SkippedArtifact] = field(default_factory=list)
    #: media values copied, by kind (``{"image": 5, "histogram": 5}``)
    media: dict[str, int] = field(default_factory=dict)
    #: media values not copied, each ``"<kind> <key>@<step>: <why>"``
    skipped_media: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: where the target keeps the copy (read back), when verified
    target_location: str = ""
    #: set when the migration itself failed (the run could not be read or written)
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No error and no mismatch (skipped artifacts are listed, not failures)."""
        return not self.error and not self.mismatches

    def summary(self, max_mismatches: int = 20) -> str:
        head = f"{self.run_id} ({self.name}) {self.source} -> {self.target}: "
        if self.error:
            return head + f"FAILED: {self.error}"
        what = "copied" if self.copied else ("already there, not copied again" if self.already_present else "")
        lines = [head + f"{what}; {self.points} points in {self.metric_keys} metrics, "
                 f"{len(self.artifacts)} artifacts, {len(self.skipped)} skipped, {_media_text(self.media)}"
                 + (f", {len(self.skipped_media)} media skipped" if self.skipped_media else "")]
        lines += [f"  skipped artifact {s}" for s in self.skipped]
        lines += [f"  skipped media {s}" for s in self.skipped_media]
        lines += [f"  note: {n}" for n in self.notes]
        if self.verified:
            lines.append(f"  verified: {'OK' if not self.mismatches else f'{len(self.mismatches)} mismatches'}")
        lines += [f"  mismatch: {m}" for m in self.mismatches[:max_mismatches]]
        if len(self.mismatches) > max_mismatches:
            lines.append(f"  ... and {len(self.mismatches) - max_mismatches} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "name": self.name, "source": self.source, "target": self.target,
            "ok": self.ok, "copied": self.copied, "already_present": self.already_present,
            "verified": self.verified, "events": self.events, "points": self.points,
            "metric_keys": self.metric_keys, "artifacts": list(self.artifacts), "media": dict(self.media),
            "skipped_media": list(self.skipped_media),
            "skipped": [{"name": s.name, "version": s.version, "path": s.path, "reason": s.reason}
                        for s in self.skipped],
            "mismatches": [m.to_dict() for m in self.mismatches], "notes": list(self.notes),
            "target_location": self.target_location, "error": self.error, "seconds": round(self.seconds, 3),
        }


def _media_text(counts: dict[str, int]) -> str:
    if not counts:
        return "0 media"
    return f"{sum(counts.values())} media (" + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ")"


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------- artifacts


def _artifact_problem(ev: Artifact) -> str:
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


# ---------------------------------------------------------------- verification


#: "the same value" in a copy: equal but for the last bits of a float64 ...
_EXACT: dict[str, Any] = {"rel": 1e-12, "abs_tol": 1e-300}
#: ... or to float32 precision, when TensorBoard (which stores float32) is on either side
_FLOAT32: dict[str, Any] = {"rel": 1e-6, "abs_tol": 1e-30, "float32": True}


def _by_step(points: list[tuple[int, float]]) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for s, v in points:
        out.setdefault(s, []).append(v)
    for vals in out.values():
        vals.sort(key=lambda x: (math.isnan(x), x if not math.isnan(x) else 0.0))
    return out


def _artifacts(rec: RunRecord) -> list[Artifact]:
    return [e for e in rec.events if isinstance(e, Artifact)]


def verify(
    expected: RunRecord,
    got: RunRecord,
    *,
    float32: bool = False,
    artifacts: Sequence[Artifact] | None = None,
    media: Sequence[Media] | None = None,
) -> list[Mismatch]:
    """Every difference between a source run and its copy.

    ``float32``: metric values are compared as float32 (TensorBoard on either side).
    ``artifacts``/``media``: what is expected in the copy (default: every artifact / media value of
    ``expected``). A media value is compared by what it shows (``media.verify``: pixels, counts, cells)."""
    out: list[Mismatch] = []
    tol = _FLOAT32 if float32 else _EXACT
    e, g = expected.info, got.info
    for attr in ("name", "project", "group"):
        if (getattr(e, attr) or None) != (getattr(g, attr) or None):
            out.append(Mismatch("run", attr, getattr(e, attr), getattr(g, attr)))
    if e.status is not g.status:
        out.append(Mismatch("status", "status", e.status.value, g.status.value))
    if (e.reason or "") != (g.reason or ""):
        out.append(Mismatch("status", "reason", e.reason, g.reason))

    ec, gc = flatten_config(e.config), flatten_config(g.config)
    for k in sorted(set(ec) | set(gc)):
        if k not in gc:
            out.append(Mismatch("config", k, ec[k], "<missing>"))
        elif k not in ec:
            out.append(Mismatch("config", k, "<missing>", gc[k]))
        elif not same_value(ec[k], gc[k], **_EXACT):
            out.append(Mismatch("config", k, ec[k], gc[k]))

    et = {k: v for k, v in e.tags.items() if k != STATUS_TAG}
    gt = {k: v for k, v in g.tags.items() if k != STATUS_TAG}
    for k in sorted(set(et) | set(gt)):
        if k not in gt:
            out.append(Mismatch("tag", k, et[k], "<missing>"))
        elif k not in et:
            out.append(Mismatch("tag", k, "<missing>", gt[k]))
        elif str(et[k]) != str(gt[k]):
            out.append(Mismatch("tag", k, et[k], gt[k]))

    em, gm = expected.metrics(), got.metrics()
    for key in sorted(set(em) | set(gm)):
        if key not in gm:
            out.append(Mismatch("metric", key, f"{len(em[key])} points", "<missing>"))
            continue
        if key not in em:
            out.append(Mismatch("metric", key, "<missing>", f"{len(gm[key])} points"))
            continue
        es, gs = _by_step(em[key]), _by_step(gm[key])
        for step in sorted(set(es) | set(gs)):
            ev, gv = es.get(step, []), gs.get(step, [])
            if len(ev) != len(gv):
                out.append(Mismatch("metric", f"{key}@{step}", ev or "<no point>", gv or "<no point>"))
            elif not all(close(a, b, **tol) for a, b in zip(ev, gv)):
                out.append(Mismatch("metric", f"{key}@{step}", ev[0] if len(ev) == 1 else ev,
                                    gv[0] if len(gv) == 1 else gv))

    out += _verify_media(expected, got, float32, media)

    want = list(_artifacts(expected) if artifacts is None else artifacts)
    have = _artifacts(got)
    for a in want:
        match = next((h for h in have if h.name == a.name and h.version == a.version), None)
        label = f"{a.name} v{a.version}"
        if match is None:
            out.append(Mismatch("artifact", label, a.sha256 or "present", "<missing>"))
            continue
        have.remove(match)
        if a.sha256 and match.sha256 and match.sha256 != a.sha256:
            out.append(Mismatch("artifact", f"{label} sha256 (recorded)", a.sha256, match.sha256))
        if a.sha256 and match.path and "://" not in match.path and os.path.exists(match.path):
            try:
                actual = sha256_of(match.path)
            except OSError as exc:
                actual = f"<unreadable: {exc}>"
            if actual != a.sha256:
                out.append(Mismatch("artifact", f"{label} sha256 (file {match.path})", a.sha256, actual))
    if artifacts is None:
        for h in have:
            out.append(Mismatch("artifact", f"{h.name} v{h.version}", "<missing>", h.sha256 or "present"))
    return out


def _verify_media(expected: RunRecord, got: RunRecord, float32: bool, media: Sequence[Media] | None) -> list[Mismatch]:
    from .media.verify import differences

    def group(items: Sequence[Media]) -> dict[tuple[str, str, int], list[Media]]:
        out: dict[tuple[str, str, int], list[Media]] = {}
        for m in items:
            out.setdefault((m.kind, m.key, m.step), []).append(m)
        for ms in out.values():
            ms.sort(key=lambda m: (int(m.meta.get("index", 0) or 0), m.sha256))
        return out

    want = group([e for e in expected.events if isinstance(e, Media)] if media is None else media)
    have = group([e for e in got.events if isinstance(e, Media)])
    out: list[Mismatch] = []
    for (kind, key, step), ws in sorted(want.items()):
        hs = have.pop((kind, key, step), [])
        label = f"{kind} {key}@{step}"
        if len(hs) != len(ws):
            out.append(Mismatch("media", label, f"{len(ws)} values", f"{len(hs)} values" if hs else "<missing>"))
            continue
        for w, h in zip(ws, hs):
            for d in differences(w, h, float32=float32):
                out.append(Mismatch("media", label, d, h.path))
    for (kind, key, step), hs in sorted(have.items()):
        out.append(Mismatch("media", f"{kind} {key}@{step}", "<missing>", f"{len(hs)} values"))
    return out


# ---------------------------------------------------------------- migrate


def _spec(text: str | BackendSpec) -> BackendSpec:
    from .registry import parse_backend

    return text if isinstance(text, BackendSpec) else parse_backend(text)


def _label(spec: BackendSpec) -> str:
    from .query import backend_label

    return backend_label(spec)


def _read(reader: Any, ref: str, where: str) -> RunRecord:
    from .lookup import find_in_readers

    return find_in_readers(ref, [(where, reader)])[1]


def _try_read(reader: Any, run_id: str) -> RunRecord | None:
    try:
        rec: RunRecord = reader.read_run(run_id)
    except KeyError:
        return None
    return rec


def _count(reader: Any, run_id: str, project: str | None) -> int | None:
    try:
        return sum(1 for i in reader.list_runs(project) if i.run_id == run_id)
    except Exception:  # counting is a courtesy check; a Reader that cannot list must not fail the copy
        return None


@dataclass
class _Plan:
    events: list[Event]
    artifacts: list[Artifact]
    skipped: list[SkippedArtifact]
    media: list[Media]
    skipped_media: list[str]


def _plan(rec: RunRecord, source: str) -> _Plan:
    """The events to replay: RunStarted first (with ``migrated_from``), status tags dropped,
    artifacts and media values without a local stored file left out (and listed)."""
    from .media.verify import problem
    events = list(rec.events)
    start = next((ev for ev in events if isinstance(ev, RunStarted)), None)
    if start is None:
        i = rec.info
        start = RunStarted(run_id=i.run_id, project=i.project, name=i.name, start_time=i.start_time or 0.0,
                           group=i.group, tags=dict(i.tags), config=dict(i.config))
    meta = dict(start.meta)
    meta["migrated_from"] = {"backend": source, "location": rec.info.location}
    first = RunStarted(run_id=start.run_id, project=start.project, name=start.name, start_time=start.start_time,
                       group=start.group, tags={k: v for k, v in start.tags.items() if k != STATUS_TAG},
                       config=dict(start.config), meta=meta)
    out: list[Event] = [first]
    copied: list[Artifact] = []
    skipped: list[SkippedArtifact] = []
    media: list[Media] = []
    skipped_media: list[str] = []
    for ev in events:
        if ev is start:
            continue
        if isinstance(ev, RunStarted):
            continue  # a second segment's start: the run is already open
        if isinstance(ev, Tags):
            tags = {k: v for k, v in ev.tags.items() if k != STATUS_TAG}
            if tags:
                out.append(Tags(tags, ev.time))
            continue
        if isinstance(ev, Artifact):
            why = _artifact_problem(ev)
            if why:
                skipped.append(SkippedArtifact(ev.name, ev.version, ev.path, why))
                continue
            copied.append(ev)
        if isinstance(ev, Media):
            why = problem(ev)
            if why:
                skipped_media.append(f"{ev.kind} {ev.key}@{ev.step}: {why}")
                continue
            media.append(ev)
        out.append(ev)
    finished = [i for i, ev in enumerate(out) if isinstance(ev, RunFinished)]
    if finished and finished[-1] != len(out) - 1:  # a reader that sorted by time: the finish goes last
        last = out.pop(finished[-1])
        out.append(last)
    return _Plan(out, copied, skipped, media, skipped_media)


def _replay(sink: Any, events: Sequence[Event]) -> None:
    try:
        for i in range(0, len(events), BATCH):
            sink.emit(events[i : i + BATCH])
    finally:
        sink.close()


def _migrate_one(
    run_id: str,
    src: tuple[BackendSpec, Any],
    tgt: tuple[BackendSpec, Any],
    verify_copy: bool,
) -> Report:
    from .registry import load_sink

    t0 = time.monotonic()
    (src_spec, src_reader), (tgt_spec, tgt_reader) = src, tgt
    source, target = _label(src_spec), _label(tgt_spec)
    rec = _read(src_reader, run_id, source)
    info: RunInfo = rec.info
    report = Report(run_id=info.run_id, source=source, target=target, name=info.name)
    plan = _plan(rec, source)
    events, copied = plan.events, plan.artifacts
    report.skipped, report.skipped_media = plan.skipped, plan.skipped_media
    report.artifacts = [f"{a.name} v{a.version}" for a in copied]
    for m in plan.media:
        report.media[m.kind] = report.media.get(m.kind, 0) + 1
    report.events = len(events)
    metrics = rec.metrics()
    report.metric_keys = len(metrics)
    report.points = sum(len(p) for p in metrics.values())
    if not info.status.terminal:
        report.notes.append("the source run is still running: the copy is a snapshot of what it holds now")

    before = _count(tgt_reader, info.run_id, info.project)
    existing = _try_read(tgt_reader, info.run_id)
    if existing is not None:
        report.already_present = True
        report.notes.append(f"{target} already holds run {info.run_id}: not copied again (a second copy would "
                            "duplicate its points); the existing copy is verified")
    else:
        sink = load_sink(tgt_spec)
        _replay(sink, events)
        report.copied = True
    after = _count(tgt_reader, info.run_id, info.project)
    if before is not None and after is not None:
        expected_after = before if existing is not None else before + 1
        if after > expected_after or after > 1:
            report.notes.append(f"{target} now holds {after} runs with id {info.run_id}: the backend created a new "
                                "run instead of re-attaching to the existing one")

    if verify_copy:
        got = _try_read(tgt_reader, info.run_id)
        report.verified = True
        if got is None:
            report.mismatches.append(Mismatch("run", "run_id", info.run_id, "<not found in target>"))
        else:
            report.target_location = got.info.location
            float32 = "tensorboard" in (src_spec.scheme, tgt_spec.scheme)
            report.mismatches = verify(rec, got, float32=float32, artifacts=copied, media=plan.media)
    report.seconds = time.monotonic() - t0
    return report


def _pair(source: str | BackendSpec, target: str | BackendSpec) -> tuple[tuple[BackendSpec, Any],
                                                                          tuple[BackendSpec, Any]]:
    from .registry import load_reader

    src_spec, tgt_spec = _spec(source), _spec(target)
    if (src_spec.scheme, src_spec.location, dict(src_spec.options)) == (
        tgt_spec.scheme, tgt_spec.location, dict(tgt_spec.options)
    ):
        raise ConfigError(f"migrate: source and target are the same backend ({src_spec}). Fix: name another --to")
    # the source must exist (a typo is an error, not "no runs"); the target's sink creates its store,
    # so its reader reads as empty until then and creates nothing itself
    return (src_spec, load_reader(src_spec)), (tgt_spec, load_reader(tgt_spec, must_exist=False))


def migrate(run_id: str, source: str | BackendSpec, target: str | BackendSpec, *, verify: bool = True) -> Report:
    """Copy one run from ``source`` to ``target`` (backend strings) and, with ``verify``, read it
    back through the target's Reader and list every difference in ``Report.mismatches``.

    Raises ``ConfigError`` when the run is not in the source or both are the same backend,
    and ``BackendError`` when a backend fails."""
    src, tgt = _pair(source, target)
    return _migrate_one(run_id, src, tgt, verify)


def migrate_many(
    run_ids: Sequence[str],
    source: str | BackendSpec,
    target: str | BackendSpec,
    *,
    verify: bool = True,
    progress: Callable[[Report], None] | None = None,
) -> list[Report]:
    """Migrate several runs; a run that fails is reported with ``Report.error`` and the others still go."""
    src, tgt = _pair(source, target)
    return _many([(rid, "") for rid in run_ids], src, tgt, verify, progress)


def migrate_all(
    source: str | BackendSpec,
    target: str | BackendSpec,
    project: str | None = None,
    *,
    verify: bool = True,
    progress: Callable[[Report], None] | None = None,
) -> list[Report]:
    """Migrate every run of ``source`` (of one ``project``). A run that fails is reported
    with ``Report.error`` and the others still go."""
    src, tgt = _pair(source, target)
    return _many([(i.run_id, i.name) for i in src[1].list_runs(project)], src, tgt, verify, progress)


def _many(
    runs: Sequence[tuple[str, str]],
    src: tuple[BackendSpec, Any],
    tgt: tuple[BackendSpec, Any],
    verify: bool,
    progress: Callable[[Report], None] | None,
) -> list[Report]:
    reports = []
    for run_id, name in runs:
        try:
            rep = _migrate_one(run_id, src, tgt, verify)
        except Exception as exc:  # one bad run must not stop the others; it is reported
            msg = str(exc) if isinstance(exc, TrackkitError) else f"{type(exc).__name__}: {exc}"
            rep = Report(run_id=run_id, source=_label(src[0]), target=_label(tgt[0]), name=name, error=msg)
        reports.append(rep)
        if progress is not None:
            progress(rep)
    return reports
