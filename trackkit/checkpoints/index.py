"""The index beside the checkpoints: one JSON line per save, prune and hash (``checkpoints.jsonl``).

Append-only, so the trainer (saves, prunes) and the agent (hashes) both write it without a lock
(one ``write(2)`` of one line each, ``O_APPEND``), a torn last line after a crash is skipped, and a
resumed run reads back everything the earlier segments did. :func:`read_index` folds it into the
:class:`Entry` list of one run's manager.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..util import dumps, jsonable

__all__ = ["Entry", "append_record", "read_index"]


@dataclass(frozen=True)
class Entry:
    """One checkpoint: ``path`` to load, and what was known when it was saved."""

    path: str
    name: str
    version: int
    step: int
    epoch: int | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    #: ``""`` until the agent hashed the file
    sha256: str = ""
    size: int = 0
    #: ``best`` (by the manager's monitor) and ``latest``, as of now
    aliases: tuple[str, ...] = ()
    time: float = 0.0
    #: monitor, mode, config, git commit + dirty flag, run id, trackkit version, file name
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: the run that saved it
    run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items()}
        d["aliases"] = list(self.aliases)
        d["metrics"] = dict(self.metrics)
        d["metadata"] = dict(self.metadata)
        return d


def append_record(index: str, rec: Mapping[str, Any], *, fsync: bool = False) -> None:
    """Append one record as one line (one ``write``). Raises ``OSError``."""
    line = (dumps(jsonable(dict(rec))) + "\n").encode("utf-8")
    fd = os.open(index, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, line)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _records(index: str) -> list[dict[str, Any]]:
    try:
        with open(index, "rb") as fh:
            data = fh.read()
    except OSError:
        return []
    out = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:  # a line torn by a crash
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def read_index(index: str, run_id: str | None = None, name: str | None = None) -> tuple[list[Entry], list[Entry]]:
    """``(kept, pruned)`` entries of the index (of one run and manager name when given), by version."""
    kept: dict[tuple[str, str, int], Entry] = {}
    pruned: dict[tuple[str, str, int], Entry] = {}
    hashes: dict[tuple[str, str, int], str] = {}
    for rec in _records(index):
        try:
            key = (str(rec.get("run_id", "")), str(rec["name"]), int(rec["version"]))
        except (KeyError, TypeError, ValueError):
            continue
        if (run_id is not None and key[0] != run_id) or (name is not None and key[1] != name):
            continue
        op = rec.get("op")
        if op == "save":
            got, meta = rec.get("metrics"), rec.get("metadata")
            metrics: dict[str, Any] = got if isinstance(got, dict) else {}
            epoch = rec.get("epoch")
            kept[key] = Entry(
                path=str(rec.get("path", "")), name=key[1], version=key[2], step=int(rec.get("step") or 0),
                epoch=int(epoch) if isinstance(epoch, (int, float)) else None,
                metrics={str(k): float(v) for k, v in metrics.items() if isinstance(v, (int, float, str))
                         and _floatable(v)},
                sha256=str(rec.get("sha256") or ""), size=int(rec.get("size") or 0),
                time=float(rec.get("time") or 0.0),
                metadata=meta if isinstance(meta, dict) else {}, run_id=key[0],
            )
        elif op == "prune" and key in kept:
            pruned[key] = kept.pop(key)
        elif op == "hash":
            hashes[key] = str(rec.get("sha256") or "")
    def with_hash(entries: dict[tuple[str, str, int], Entry]) -> list[Entry]:
        return [replace(e, sha256=e.sha256 or hashes.get(k, "")) for k, e in sorted(entries.items(),
                                                                                      key=lambda kv: kv[0][2])]
    return with_hash(kept), with_hash(pruned)


def _floatable(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
