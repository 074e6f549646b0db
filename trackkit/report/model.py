"""What a report holds, computed from whole runs: the runs table, the curves (downsampled for
display), the config diff, the latest images, the checkpoints and the sweep view. Plain data;
``render`` turns it into HTML (every string escaped there)."""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..events import Artifact, Media, Metrics, RunInfo, RunRecord
from ..query import MISSING
from ..query import compare as compare_runs
from .downsample import minmax_indices

__all__ = ["Options", "ReportData", "build"]

#: the image formats a browser shows inline
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif"}
#: the tag a sweep (trackkit.integrations.optuna) names its objective with, and its direction
OBJECTIVE_TAG = "sweep.objective"
GOAL_TAG = "sweep.goal"


@dataclass(frozen=True)
class Options:
    """How a report is built (``trackkit report --help``)."""

    title: str = "trackkit report"
    #: only these metric keys (default: every key any run logged)
    metrics: Sequence[str] = ()
    #: points drawn per curve at most (min/max per bucket keeps the extremes)
    points: int = 600
    #: points drawn in the whole report at most: with many curves each gets fewer (never under 100), so
    #: the HTML stays under its documented size (docs/report.md#size)
    total_points: int = 250_000
    #: the sweep's objective (default: the runs' ``sweep.objective`` tag, else none)
    objective: str | None = None
    #: latest image per run and key: at most this many keys, this many bytes per image
    image_keys: int = 8
    image_bytes: int = 2_000_000
    #: images in all, at most (the HTML stays small)
    images_total: int = 200
    #: config keys that differ shown in the runs table (all of them in the config diff)
    table_config: int = 6
    #: metrics shown in the runs table (last and best)
    table_metrics: int = 4


@dataclass
class ImageCell:
    step: int
    caption: str
    #: ``data:`` URI, or ``""`` with ``note`` saying why it is not shown
    src: str
    note: str = ""


@dataclass
class ReportData:
    title: str
    runs: list[RunInfo]
    labels: list[str]
    #: metric key -> one series per run that has it: {"run": index, "s": steps, "t": seconds since the
    #: run's start, "v": values (None for NaN/inf), "n": points the run holds}
    curves: dict[str, list[dict[str, Any]]]
    goals: dict[str, str]
    config_differs: dict[str, list[Any]]
    config_same: dict[str, Any]
    #: image key -> one cell per run (None: the run has no image under that key)
    images: dict[str, list[ImageCell | None]] = field(default_factory=dict)
    #: run index -> its checkpoints (name, version, step, size, aliases, path)
    checkpoints: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: {"objective", "goal", "runs": [index...], "values": [...], "params": [{"key", "values", "numeric"}]}
    sweep: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: metric points read, and drawn (after downsampling)
    points_read: int = 0
    points_drawn: int = 0
    #: columns of the runs table: differing config keys, metrics
    table_config: int = 6
    table_metrics: int = 4

    def payload(self) -> dict[str, Any]:
        """What the page's script draws (JSON)."""
        return {
            "runs": [{"id": i.run_id, "name": i.name, "label": lab, "start": i.start_time}
                     for i, lab in zip(self.runs, self.labels)],
            "curves": self.curves, "goals": self.goals, "sweep": self.sweep,
        }


def labels_of(runs: Sequence[RunInfo]) -> list[str]:
    """Run names, made unique with the run id where two runs share one, and with the backend's kind
    where one run is read from several backends (``trial-0 (mlflow)``)."""
    names = [r.name or r.run_id for r in runs]
    same = [(r.name or r.run_id, r.run_id) for r in runs]
    out = []
    for n, r, key in zip(names, runs, same):
        if same.count(key) > 1:
            out.append(f"{n} ({(r.backend or 'journal').split(':')[0]})")
        else:
            out.append(f"{n} ({r.run_id})" if names.count(n) > 1 else n)
    return out


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _round(v: float) -> float:
    return float(f"{v:.7g}")


def _series(rec: RunRecord, keys: set[str] | None) -> dict[str, tuple[list[int], list[float], list[float]]]:
    out: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for ev in rec.events:
        if isinstance(ev, Metrics):
            for k, v in ev.values.items():
                if keys is not None and k not in keys:
                    continue
                s = out.get(k)
                if s is None:
                    s = out[k] = ([], [], [])
                s[0].append(ev.step)
                s[1].append(ev.time)
                s[2].append(v)
    return out


def _curve(run: int, start: float | None, steps: list[int], times: list[float], values: list[float],
           budget: int) -> dict[str, Any]:
    s = np.asarray(steps, dtype=np.int64)
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(s, kind="stable")
    if not (np.diff(s) >= 0).all():
        s, t, v = s[order], t[order], v[order]
    idx = minmax_indices(v, budget)
    t0 = start if start else (float(t[0]) if len(t) else 0.0)
    return {
        "run": run,
        "s": s[idx].tolist(),
        "t": [round(x - t0, 3) for x in t[idx].tolist()],
        "v": [None if x is None else _round(x) for x in (_finite(x) for x in v[idx].tolist())],
        "n": len(v),
    }


def _checkpoints(rec: RunRecord) -> list[dict[str, Any]]:
    """``Artifact`` events of kind ``checkpoint``, and any later ``Checkpoint`` event (read leniently)."""
    out = []
    for ev in rec.events:
        if (isinstance(ev, Artifact) and ev.kind == "checkpoint") or type(ev).__name__ == "Checkpoint":
            meta = getattr(ev, "metadata", None) or {}
            step = getattr(ev, "step", None)
            if step is None and isinstance(meta, Mapping):
                step = meta.get("step")
            out.append({"name": str(getattr(ev, "name", "") or ""), "version": getattr(ev, "version", None),
                        "step": step, "size": getattr(ev, "size", None),
                        "aliases": [str(a) for a in (getattr(ev, "aliases", ()) or ())],
                        "path": str(getattr(ev, "path", "") or "")})
    return out


def _canonical(ev: Media, location: str) -> Media:
    """A journaled image in its delivered format: the agent's file in the run directory (made now with
    the agent's own encoder when it has not made it yet)."""
    if ev.canonical or not location or not os.path.isdir(location):
        return ev
    from ..media.encode import materialize
    from ..rundir import RunDir

    try:
        return materialize(ev, RunDir(location).media_dir())
    except Exception:  # a payload the agent could not encode either: the cell says its format
        return ev


def _images(recs: Sequence[RunRecord], opts: Options, notes: list[str]) -> dict[str, list[ImageCell | None]]:
    per_run = [rec.media("image") for rec in recs]
    keys: list[str] = []
    for m in per_run:
        keys.extend(k for k in m if k not in keys)
    if len(keys) > opts.image_keys:
        notes.append(f"images: {len(keys)} keys, the first {opts.image_keys} shown")
        keys = keys[: opts.image_keys]
    out: dict[str, list[ImageCell | None]] = {}
    budget = opts.images_total
    for key in keys:
        row: list[ImageCell | None] = []
        for rec, m in zip(recs, per_run):
            items = m.get(key)
            if not items:
                row.append(None)
                continue
            last: Media = _canonical(items[-1], rec.info.location)
            cell = ImageCell(last.step, last.caption, "")
            if budget <= 0:
                cell.note = f"not shown: more than {opts.images_total} images in the report"
            elif last.format not in _MIME:
                cell.note = f"not shown: format {last.format!r} (not delivered yet?)"
            elif last.size > opts.image_bytes:
                cell.note = f"not shown: {last.size:,} bytes (over {opts.image_bytes:,})"
            else:
                try:
                    data = last.read_bytes()
                except OSError as exc:
                    cell.note = f"not readable: {exc.strerror or exc}"
                else:
                    cell.src = f"data:{_MIME[last.format]};base64," + base64.b64encode(data).decode("ascii")
                    budget -= 1
            row.append(cell)
        out[key] = row
    return out


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _sweep(infos: Sequence[RunInfo], differs: Mapping[str, list[Any]], opts: Options) -> dict[str, Any] | None:
    """Parameters against the objective: the runs that have a value for it, the config keys that differ."""
    objective = opts.objective
    if objective is None:
        named = [i.tags.get(OBJECTIVE_TAG) for i in infos if i.tags.get(OBJECTIVE_TAG)]
        objective = max(set(named), key=named.count) if named else None
    if not objective:
        return None
    runs, values = [], []
    goal = "max"
    for n, i in enumerate(infos):
        v = _number(i.summary.get(objective))
        if v is None:
            best = i.best(objective)
            v = None if best is None else _number(best[0])
        if v is not None:
            runs.append(n)
            values.append(v)
            goal = i.tags.get(GOAL_TAG) or i.goal(objective)
    if len(runs) < 2:
        return None
    params = []
    for key, vals in differs.items():
        mine = [vals[n] for n in runs]
        if all(v is MISSING for v in mine) or len({repr(v) for v in mine}) < 2:
            continue
        numeric = all(v is MISSING or _number(v) is not None for v in mine)
        shown = [None if v is MISSING else (_number(v) if numeric else str(v)) for v in mine]
        params.append({"key": key, "values": shown, "numeric": numeric})
    if not params:
        return None
    return {"objective": objective, "goal": goal, "runs": runs, "values": values, "params": params}


def build(recs: Sequence[RunRecord], opts: Options | None = None) -> ReportData:
    """The report of ``recs`` (in that order)."""
    opts = opts or Options()
    infos = [r.info for r in recs]
    cmp = compare_runs(list(infos)) if infos else None
    data = ReportData(title=opts.title, runs=infos, labels=labels_of(infos), curves={}, goals={},
                      config_differs=dict(cmp.config_differs) if cmp else {},
                      config_same=dict(cmp.config_same) if cmp else {}, table_config=opts.table_config,
                      table_metrics=opts.table_metrics)
    wanted = set(opts.metrics) if opts.metrics else None
    series = [_series(rec, wanted) for rec in recs]
    n_curves = sum(len(s) for s in series)
    budget = max(min(opts.points, opts.total_points // max(n_curves, 1)), min(opts.points, 100))
    if budget < opts.points:
        data.notes.append(f"{n_curves:,} curves: at most {budget} points drawn per curve "
                          f"(total_points={opts.total_points:,})")
    for n, rec in enumerate(recs):
        for key, (steps, times, values) in sorted(series[n].items()):
            curve = _curve(n, rec.info.start_time, steps, times, values, budget)
            data.curves.setdefault(key, []).append(curve)
            data.goals.setdefault(key, rec.info.goal(key))
            data.points_read += curve["n"]
            data.points_drawn += len(curve["s"])
        cps = _checkpoints(rec)
        if cps:
            data.checkpoints[n] = cps
    data.curves = dict(sorted(data.curves.items()))
    if wanted:
        missing = sorted(wanted - set(data.curves))
        if missing:
            data.notes.append(f"no run logged {', '.join(missing)}")
    data.images = _images(recs, opts, data.notes)
    data.sweep = _sweep(infos, data.config_differs, opts)
    return data
