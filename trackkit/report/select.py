"""Which runs a report shows: named ones, or the ``trackkit runs`` grammar (``where``, ``sort``,
``limit``) over the local journal or any backends; each run read whole through its Reader."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..errors import ConfigError
from ..events import RunRecord

__all__ = ["select_runs"]


def select_runs(
    backends: Sequence[str] = (),
    refs: Sequence[str] = (),
    *,
    root: str | None = None,
    project: str | None = None,
    where: Sequence[str] = (),
    sort: str | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """The runs to report on, whole (every event), in the order the query gives.

    ``refs`` (run id, unique id prefix or name) picks runs by name; otherwise ``where`` /
    ``sort`` / ``limit`` select them as ``trackkit runs`` does. Without ``backends``, the journal
    under ``root`` (default: the settings' root) is read. Errors are ``TrackkitError`` naming the fix."""
    if backends:
        return _from_backends(list(backends), list(refs), project, list(where), sort, limit)
    from ..lookup import find_in_journal, journal_root, journal_runs
    from ..query import filter_runs

    r = journal_root(root)
    recs = journal_runs(r, project)
    if refs:
        return [find_in_journal(ref, r, recs) for ref in refs]
    by_id = {rec.info.location: rec for rec in recs}
    return [by_id[i.location] for i in filter_runs([rec.info for rec in recs], list(where), sort, limit)]


def _from_backends(backends: list[str], refs: list[str], project: str | None, where: list[str],
                   sort: str | None, limit: int | None) -> list[RunRecord]:
    from ..query import backend_label, find_runs, load_runs
    from ..registry import load_reader, parse_backends

    if refs:
        return load_runs(refs, backends, project)
    rows = find_runs(backends, project=project, where=where, sort_by=sort, limit=limit)
    readers = {backend_label(spec): spec for spec in parse_backends(backends)}
    loaded: dict[str, object] = {}
    out: list[RunRecord] = []
    for info in rows:
        if info.backend not in loaded:
            loaded[info.backend] = load_reader(readers[info.backend])
        reader = loaded[info.backend]
        try:
            rec: RunRecord = reader.read_run(info.run_id)  # type: ignore[attr-defined]
        except KeyError:
            raise ConfigError(f"run {info.run_id}: listed by {info.backend} but gone when read. "
                              "Fix: run the report again") from None
        out.append(RunRecord(dataclasses.replace(rec.info, backend=info.backend), rec.events))
    return out
