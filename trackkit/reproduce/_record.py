"""Finding a run and reading its provenance record (``meta``, the provenance artifacts)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..events import Artifact, RunRecord, RunStarted
from ..rundir import RunDir

__all__ = ["find_record", "mapping_at", "provenance_files", "run_meta"]


def find_record(run: str, *, root: str | None = None, backend: str | None = None) -> RunRecord:
    """Load one run by id, id prefix or name (the rule of :mod:`trackkit.lookup`).

    From the local journal under ``root`` (default: the settings' ``root``), or, with ``backend``
    (a backend string such as ``"tensorboard:./runs"``), through that backend's Reader.
    Raises :class:`~trackkit.lookup.RunLookupError` (a :class:`~trackkit.errors.ConfigError`)
    naming the fix when no run, or several, answer to ``run``.
    """
    from ..lookup import find_in_journal, find_in_readers, journal_root

    if backend:
        from ..query import backend_label
        from ..registry import load_reader, parse_backend

        spec = parse_backend(backend)
        return find_in_readers(run, [(backend_label(spec), load_reader(spec))])[1]
    return find_in_journal(run, journal_root(root))


def _start(record: RunRecord) -> RunStarted | None:
    return next((e for e in record.events if isinstance(e, RunStarted)), None)


def run_meta(record: RunRecord) -> dict[str, Any]:
    """The run's ``meta`` (provenance, trackkit version, backends) from its start event; ``{}`` if none."""
    start = _start(record)
    return dict(start.meta) if start is not None else {}


def provenance_files(record: RunRecord) -> dict[str, str]:
    """``{file name: readable path}`` of the run's provenance artifacts (latest version of each)."""
    latest: dict[str, Artifact] = {}
    for ev in record.events:
        if isinstance(ev, Artifact) and ev.kind == "provenance":
            if ev.name not in latest or ev.version >= latest[ev.name].version:
                latest[ev.name] = ev
    out: dict[str, str] = {}
    for name, art in latest.items():
        candidates = [art.path]
        if record.info.location and os.path.isdir(record.info.location):  # the run directory moved
            base = os.path.basename(art.path.rstrip(os.sep)) or name
            candidates.append(RunDir(record.info.location).stored_artifact(name, art.version, base))
        for p in candidates:
            if p and os.path.isfile(p):
                out[name] = p
                break
    return out


def mapping_at(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``parent[key]`` when it is a mapping, else ``{}`` (provenance records are read defensively)."""
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}
