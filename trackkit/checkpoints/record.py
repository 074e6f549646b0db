"""Checkpoints from a stored run: the journal, or any backend's record through its Reader.

``trackkit.checkpoints.best("RUN", metric="val/acc", mode="max")`` works long after the run ended,
from the local journal (default) or from ``backend="mlflow:./mlflow.db"`` (TensorBoard, W&B offline
files, MLflow): every Reader turns a delivered checkpoint back into a ``Checkpoint`` event.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import ConfigError
from ..events import Artifact, Checkpoint, CheckpointPruned, RunRecord, checkpoint_of
from .index import Entry, read_index
from .retention import ranked

__all__ = ["best", "entries_of", "latest", "list_checkpoints", "load_record"]


def entries_of(record: RunRecord, name: str | None = None, *, existing: bool = True) -> list[Entry]:
    """The kept checkpoints of a run record (of manager ``name``), oldest first. ``existing``: only
    those whose file is still there (a local path; a URL is kept)."""
    kept: dict[tuple[str, int], Entry] = {}
    for ev in record.events:
        if isinstance(ev, Artifact):
            c = checkpoint_of(ev)
            if not isinstance(c, Checkpoint):
                continue
            ev2: Checkpoint | CheckpointPruned = c
        elif isinstance(ev, (Checkpoint, CheckpointPruned)):
            ev2 = ev
        else:
            continue
        if name is not None and ev2.name != name:
            continue
        if isinstance(ev2, CheckpointPruned):
            kept.pop((ev2.name, ev2.version), None)
            continue
        kept[(ev2.name, ev2.version)] = Entry(
            path=ev2.path, name=ev2.name, version=ev2.version, step=ev2.step, epoch=ev2.epoch,
            metrics=dict(ev2.metrics), sha256=ev2.sha256, size=ev2.size, aliases=ev2.aliases, time=ev2.time,
            metadata=dict(ev2.metadata), run_id=str(ev2.metadata.get("run_id") or record.info.run_id),
        )
    out = sorted(kept.values(), key=lambda e: (e.name, e.version))
    out = [_hashed(e) for e in out]
    if existing:
        out = [e for e in out if "://" in e.path or os.path.exists(e.path)]
    return _aliased(out)


def _aliased(entries: list[Entry]) -> list[Entry]:
    """``latest`` and ``best`` (by each manager's monitor) as of the kept set, not as saved."""
    from dataclasses import replace

    names: dict[tuple[str, int], list[str]] = {}
    for n in {e.name for e in entries}:
        mine = [e for e in entries if e.name == n]
        names.setdefault((n, mine[-1].version), []).append("latest")
        monitor, mode = mine[-1].metadata.get("monitor"), mine[-1].metadata.get("mode") or "max"
        if isinstance(monitor, str) and monitor:
            r = ranked(mine, monitor, str(mode))
            if r:
                names.setdefault((n, r[0].version), []).append("best")
    return [replace(e, aliases=tuple(sorted(names.get((e.name, e.version), [])))) for e in entries]


def _hashed(e: Entry) -> Entry:
    """A journal record has no hash (the agent computed it): take it from the index."""
    if e.sha256 or not e.metadata.get("index"):
        return e
    from dataclasses import replace

    kept, pruned = read_index(str(e.metadata["index"]), e.run_id, e.name)
    for x in [*kept, *pruned]:
        if x.version == e.version and x.sha256:
            return replace(e, sha256=x.sha256)
    return e


def load_record(run: str, *, backend: str | Sequence[str] | None = None, root: str | None = None,
                project: str | None = None) -> RunRecord:
    """The run ``run`` names (id, unique id prefix or name): from the journal under ``root`` (default:
    the settings' root), or from the first backend that holds it."""
    if backend:
        from ..query import load_runs

        backends = [backend] if isinstance(backend, str) else list(backend)
        return load_runs([run], backends, project)[0]
    from ..lookup import find_in_journal, journal_root

    return find_in_journal(run, journal_root(root))


def list_checkpoints(run: str | RunRecord, *, name: str | None = None, backend: str | Sequence[str] | None = None,
                     root: str | None = None, project: str | None = None) -> list[Entry]:
    """Every kept checkpoint of a stored run, oldest first."""
    rec = run if isinstance(run, RunRecord) else load_record(run, backend=backend, root=root, project=project)
    return entries_of(rec, name)


def best(run: str | RunRecord, metric: str, mode: str = "max", *, name: str | None = None,
         backend: str | Sequence[str] | None = None, root: str | None = None,
         project: str | None = None) -> Entry | None:
    """The kept checkpoint of a stored run with the best ``metric`` (``mode`` ``max``/``min``)."""
    if mode not in ("max", "min"):
        raise ConfigError(f"checkpoints.best(): mode={mode!r} is not 'max' or 'min'. Fix: mode='min' for a loss")
    r = ranked(list_checkpoints(run, name=name, backend=backend, root=root, project=project), metric, mode)
    return r[0] if r else None


def latest(run: str | RunRecord, *, name: str | None = None, backend: str | Sequence[str] | None = None,
           root: str | None = None, project: str | None = None) -> Entry | None:
    """The newest kept checkpoint of a stored run."""
    entries = list_checkpoints(run, name=name, backend=backend, root=root, project=project)
    return max(entries, key=lambda e: (e.time, e.version)) if entries else None
