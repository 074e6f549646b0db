"""Is the copy the run? Every difference between a source run and what the target holds.

Metrics are compared without holding every point: each side folds its points into a per-key
digest (count, an order-free sum of hashes of ``(step, value)``, of the steps alone); only a key
whose digests differ is read again point by point, and then compared with the tolerance
(float32 when TensorBoard holds either side; NaN equals NaN, ±inf itself). The summary (name,
project, group, status, reason, flattened config, tags), every media value (by what it shows,
``media.verify``) and every artifact (sha256, recorded and recomputed) are compared whole.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..events import Artifact, Event, Media, Metrics, RunInfo, RunRecord, flatten_config
from ..util import close, same_value, sha256_of
from .report import STATUS_TAG, Mismatch

__all__ = ["Side", "compare", "verify"]

_MASK = (1 << 64) - 1
#: "the same value" in a copy: equal but for the last bits of a float64 ...
_EXACT: dict[str, Any] = {"rel": 1e-12, "abs_tol": 1e-300}
#: ... or to float32 precision, when TensorBoard (which stores float32) is on either side
_FLOAT32: dict[str, Any] = {"rel": 1e-6, "abs_tol": 1e-30, "float32": True}
_F32 = struct.Struct("<f")
#: at or beyond this a value is ±inf (``_canon``)
_BIG = 1.79e308


def _canon(v: float, f32: bool) -> Any:
    v = float(v)
    if v != v:
        return "nan"
    if math.isinf(v) or abs(v) >= _BIG:  # MLflow clamps ±inf to ±1.797e308; its reader restores it
        return "inf" if v > 0 else "-inf"
    if f32:
        try:
            return _F32.pack(v)
        except OverflowError:
            return "inf" if v > 0 else "-inf"
    return v


@dataclass
class Side:
    """One side of a copy as it streams past: its summary, per-key metric digests, media, artifacts."""

    float32: bool = False
    info: RunInfo | None = None
    #: key -> [points, sum of hash((step, value)), sum of hash(step)]
    digests: dict[str, list[int]] = field(default_factory=dict)
    media: list[Media] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    #: keys to collect point by point (a second pass) and what was collected
    collect: set[str] = field(default_factory=set)
    points: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def add(self, events: Iterable[Event]) -> int:
        """Fold events in; returns the metric points among them."""
        n = 0
        f32 = self.float32
        digests = self.digests
        for ev in events:
            if isinstance(ev, Metrics):
                step = ev.step
                hstep = hash(step)
                for k, v in ev.values.items():
                    d = digests.get(k)
                    if d is None:
                        d = digests[k] = [0, 0, 0]
                    d[0] += 1
                    # a finite float64 is its own canonical form (NaN fails both comparisons)
                    c = v if not f32 and -_BIG < v < _BIG else _canon(v, f32)
                    d[1] = (d[1] + hash((step, c))) & _MASK
                    d[2] = (d[2] + hstep) & _MASK
                    n += 1
            elif isinstance(ev, Media):
                self.media.append(ev)
            elif isinstance(ev, Artifact):
                self.artifacts.append(ev)
        return n

    def gather(self, events: Iterable[Event]) -> None:
        """The second pass: keep the points of the keys in ``collect``."""
        for ev in events:
            if isinstance(ev, Metrics):
                for k, v in ev.values.items():
                    if k in self.collect:
                        self.points.setdefault(k, []).append((ev.step, v))


def _compare_info(e: RunInfo, g: RunInfo) -> list[Mismatch]:
    out: list[Mismatch] = []
    for attr in ("name", "project", "group", "parent"):
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
    for k in sorted(set(e.summary) | set(g.summary)):
        if k not in g.summary:
            out.append(Mismatch("summary", k, e.summary[k], "<missing>"))
        elif k in e.summary and not same_value(e.summary[k], g.summary[k], **_EXACT):
            out.append(Mismatch("summary", k, e.summary[k], g.summary[k]))
    et = {k: v for k, v in e.tags.items() if k != STATUS_TAG}
    gt = {k: v for k, v in g.tags.items() if k != STATUS_TAG}
    for k in sorted(set(et) | set(gt)):
        if k not in gt:
            out.append(Mismatch("tag", k, et[k], "<missing>"))
        elif k not in et:
            out.append(Mismatch("tag", k, "<missing>", gt[k]))
        elif str(et[k]) != str(gt[k]):
            out.append(Mismatch("tag", k, et[k], gt[k]))
    return out


def suspects(want: Side, got: Side) -> set[str]:
    """The metric keys whose digests differ (their points are compared one by one)."""
    return {k for k in set(want.digests) | set(got.digests) if want.digests.get(k) != got.digests.get(k)}


def _by_step(points: list[tuple[int, float]]) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for s, v in points:
        out.setdefault(s, []).append(v)
    for vals in out.values():
        vals.sort(key=lambda x: (math.isnan(x), x if not math.isnan(x) else 0.0))
    return out


def _compare_points(key: str, want: Side, got: Side, tol: dict[str, Any]) -> list[Mismatch]:
    if key not in got.digests:
        return [Mismatch("metric", key, f"{want.digests[key][0]} points", "<missing>")]
    if key not in want.digests:
        return [Mismatch("metric", key, "<missing>", f"{got.digests[key][0]} points")]
    out: list[Mismatch] = []
    es, gs = _by_step(want.points.get(key, [])), _by_step(got.points.get(key, []))
    for step in sorted(set(es) | set(gs)):
        ev, gv = es.get(step, []), gs.get(step, [])
        if len(ev) != len(gv):
            out.append(Mismatch("metric", f"{key}@{step}", ev or "<no point>", gv or "<no point>"))
        elif not all(close(a, b, **tol) for a, b in zip(ev, gv)):
            out.append(Mismatch("metric", f"{key}@{step}", ev[0] if len(ev) == 1 else ev,
                                gv[0] if len(gv) == 1 else gv))
    return out


def _compare_media(want: Sequence[Media], have: Sequence[Media], float32: bool) -> list[Mismatch]:
    from ..media.verify import differences

    def group(items: Sequence[Media]) -> dict[tuple[str, str, int], list[Media]]:
        out: dict[tuple[str, str, int], list[Media]] = {}
        for m in items:
            out.setdefault((m.kind, m.key, m.step), []).append(m)
        for ms in out.values():
            ms.sort(key=lambda m: (int(m.meta.get("index", 0) or 0), m.sha256))
        return out

    w, h = group(want), group(have)
    out: list[Mismatch] = []
    for (kind, key, step), ws in sorted(w.items()):
        hs = h.pop((kind, key, step), [])
        label = f"{kind} {key}@{step}"
        if len(hs) != len(ws):
            out.append(Mismatch("media", label, f"{len(ws)} values", f"{len(hs)} values" if hs else "<missing>"))
            continue
        for a, b in zip(ws, hs):
            for d in differences(a, b, float32=float32):
                out.append(Mismatch("media", label, d, b.path))
    for (kind, key, step), hs in sorted(h.items()):
        out.append(Mismatch("media", f"{kind} {key}@{step}", "<missing>", f"{len(hs)} values"))
    return out


def _compare_artifacts(want: Sequence[Artifact], got: Sequence[Artifact], exhaustive: bool) -> list[Mismatch]:
    out: list[Mismatch] = []
    have = list(got)
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
    if exhaustive:
        for h in have:
            out.append(Mismatch("artifact", f"{h.name} v{h.version}", "<missing>", h.sha256 or "present"))
    return out


def compare(want: Side, got: Side, *, artifacts: Sequence[Artifact] | None = None,
            media: Sequence[Media] | None = None) -> list[Mismatch]:
    """Every difference; the points of ``suspects(want, got)`` must have been gathered."""
    assert want.info is not None and got.info is not None
    out = _compare_info(want.info, got.info)
    tol = _FLOAT32 if want.float32 else _EXACT
    for key in sorted(suspects(want, got)):
        out += _compare_points(key, want, got, tol)
    out += _compare_media(want.media if media is None else media, got.media, want.float32)
    out += _compare_artifacts(want.artifacts if artifacts is None else artifacts, got.artifacts, artifacts is None)
    return out


def verify(
    expected: RunRecord,
    got: RunRecord,
    *,
    float32: bool = False,
    artifacts: Sequence[Artifact] | None = None,
    media: Sequence[Media] | None = None,
) -> list[Mismatch]:
    """Every difference between a source run and its copy (both read whole).

    ``float32``: metric values are compared as float32 (TensorBoard on either side).
    ``artifacts``/``media``: what is expected in the copy (default: every artifact / media value of
    ``expected``). A media value is compared by what it shows (``media.verify``: pixels, counts, cells)."""
    sides = []
    for rec in (expected, got):
        side = Side(float32=float32, info=rec.info)
        side.add(rec.events)
        sides.append(side)
    want, have = sides
    keys = suspects(want, have)
    for side, rec in ((want, expected), (have, got)):
        side.collect = keys
        side.gather(rec.events)
    return compare(want, have, artifacts=artifacts, media=media)
