"""A run's metric histories as one stream of ``Metrics`` events in step order, memory flat.

Two sources, the fastest each store offers (measured, docs/backends/mlflow.md "Reading"):

* a **sqlite store**: one read-only SQL query over MLflow's ``metrics`` table (``sqlite3`` of the
  standard library, ``ORDER BY step, timestamp, key``), streamed by the cursor: sqlite sorts, Python
  holds one chunk. The schema revision was checked when the store was opened (``connection``), and
  the columns read (``key, value, timestamp, step, is_nan`` of ``run_uuid``) are the ones every
  MLflow schema since 1.x has;
* a **server**: ``GetMetricHistory`` paged (``max_results`` + ``page_token``) per key, the keys
  merged by ``(step, timestamp)`` (``heapq.merge``): at most one page per key is held. MLflow returns a
  key's points in timestamp order; where a key's steps do not rise with its timestamps the merge keeps
  MLflow's order for that key and says so in a note.

Points of one ``(step, timestamp)`` become one ``Metrics`` event (a key seen twice there starts
another), so a step logged with ``log_batch`` is one event.
"""

from __future__ import annotations

import heapq
import math
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ...events import Metrics, SystemMetrics
from .names import FMAX

#: a point: (step, timestamp ms, stored key, value)
Point = tuple[int, int, str, float]


def restore(key: str, value: float, infs: set[str]) -> float:
    """The value trackkit logged: ±inf where MLflow clamped it (the key is in a ``trackkit.inf.*`` tag)."""
    if key in infs and abs(value) >= FMAX:
        return math.copysign(math.inf, value)
    return float(value)


def sqlite_points(path: str, mid: str, batch: int = 5000) -> Iterator[Point]:
    """Every metric point of MLflow run ``mid`` in a sqlite store, in step order (the store opened read-only)."""
    from urllib.parse import quote

    db = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, check_same_thread=False)
    try:
        cur = db.execute(
            "SELECT step, timestamp, key, value, is_nan FROM metrics WHERE run_uuid = ? ORDER BY step, timestamp, key",
            (mid,),
        )
        nan = math.nan
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                return
            for step, ts, key, value, is_nan in rows:
                yield int(step), int(ts), key, nan if is_nan else float(value)
    finally:
        db.close()


#: sqlite's page cache of a history read, KiB (its default, 2 MB, and 5,000-row fetches held ~4 MB more at
#: the peak of a 200k-point migrate for no speed: measured, docs/backends/mlflow.md "Reading")
_CACHE_KIB = 256


def sqlite_events(path: str, mid: str, keys: Mapping[str, str], infs: set[str],
                  batch: int = 1000) -> Iterator[Metrics | SystemMetrics]:
    """``metric_events(sqlite_points(path, mid), keys, infs)`` in one loop over the cursor's rows (the
    same events; each stored key mapped and classified once, not once per point)."""
    from urllib.parse import quote

    db = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, check_same_thread=False)
    try:
        db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        cur = db.execute(
            "SELECT step, timestamp, key, value, is_nan FROM metrics WHERE run_uuid = ? ORDER BY step, timestamp, key",
            (mid,),
        )
        names: dict[str, tuple[str, bool]] = {}
        nan = math.nan
        at: int | None = None
        at_ts = 0
        vals: dict[str, float] = {}
        system = False
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                break
            for step, ts, key, value, is_nan in rows:
                named = names.get(key)
                if named is None:
                    name = keys.get(key, key)
                    named = names[key] = (name, name.startswith("system/"))
                name, is_system = named
                if step != at or ts != at_ts or name in vals:
                    if vals:
                        if system:
                            yield from _grouped(at or 0, at_ts, vals)
                        else:
                            yield Metrics(step=at or 0, time=at_ts / 1000, values=vals)
                    at, at_ts, vals, system = step, ts, {}, False
                if is_nan:
                    value = nan
                elif infs and key in infs:
                    value = restore(key, value, infs)
                vals[name] = float(value)
                system = system or is_system
        if vals:
            if system:
                yield from _grouped(at or 0, at_ts, vals)
            else:
                yield Metrics(step=at or 0, time=at_ts / 1000, values=vals)
    finally:
        db.close()


def sqlite_count(path: str, mid: str) -> int:
    from urllib.parse import quote

    db = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    try:
        (n,) = db.execute("SELECT count(*) FROM metrics WHERE run_uuid = ?", (mid,)).fetchone()
        return int(n)
    finally:
        db.close()


def page_size(nkeys: int) -> int:
    """Points per page of one key: about 200,000 points held over all keys, 1,000 to 25,000 a page."""
    return max(1000, min(25_000, 200_000 // max(nkeys, 1)))


def paged_points(
    page: Callable[[str, int, str | None], tuple[Sequence[Any], str | None]],
    keys: Sequence[str],
    notes: list[str],
    *,
    first_pages: Mapping[str, tuple[Sequence[Any], str | None]] | None = None,
) -> Iterator[Point]:
    """The points of ``keys`` merged in step order. ``page(key, max_results, token)`` returns one page of
    ``mlflow.entities.Metric`` and the next token; ``first_pages`` may hold each key's first page already."""
    size = page_size(len(keys))

    def one(key: str) -> Iterator[Point]:
        got = (first_pages or {}).get(key)
        items, token = got if got is not None else page(key, size, None)
        last = None
        warned = False
        while True:
            for m in items:
                step = int(m.step)
                if last is not None and step < last and not warned:
                    warned = True
                    notes.append(
                        f"metric {key!r}: its steps do not rise with its timestamps (step {step} logged after "
                        f"step {last}); its points are in MLflow's (timestamp) order"
                    )
                last = step
                yield step, int(m.timestamp), key, float(m.value)
            if not token:
                return
            items, token = page(key, size, token)

    return heapq.merge(*(one(k) for k in keys), key=lambda p: (p[0], p[1]))


def metric_events(
    points: Iterator[Point], keys: Mapping[str, str], infs: set[str]
) -> Iterator[Metrics | SystemMetrics]:
    """Points (in step order) grouped into ``Metrics`` events, one per ``(step, timestamp)``; stored keys
    back to the originals (``keys``: the ``trackkit.key.*`` map) and ±inf restored."""
    cur_step: int | None = None
    cur_ts = 0
    vals: dict[str, float] = {}
    for step, ts, key, value in points:
        if step != cur_step or ts != cur_ts or keys.get(key, key) in vals:
            if vals:
                yield from _grouped(cur_step or 0, cur_ts, vals)
            cur_step, cur_ts, vals = step, ts, {}
        if infs and key in infs:
            value = restore(key, value, infs)
        vals[keys.get(key, key)] = value
    if vals:
        yield from _grouped(cur_step or 0, cur_ts, vals)


def _grouped(step: int, ts: int, vals: dict[str, float]) -> Iterator[Metrics | SystemMetrics]:
    """One point group as events: ``system/...`` keys (MLflow's system metrics, trackkit's or MLflow's own
    monitor's: step = the sample's number) as ``SystemMetrics``, the rest as ``Metrics``."""
    system = {k: v for k, v in vals.items() if k.startswith("system/")}
    if system:
        yield SystemMetrics(time=ts / 1000, values=system, seq=step)
        if len(system) == len(vals):
            return
        vals = {k: v for k, v in vals.items() if k not in system}
    yield Metrics(step=step, time=ts / 1000, values=vals)
