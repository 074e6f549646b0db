"""In-process sink for core tests and ``trackkit.testing.capture()``.

``memory:NAME`` keeps every event of every run in a process-global store keyed
by NAME (default ``default``). Runs using it get the thread agent, since a
separate process would keep the events to itself.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..backend import BackendSpec, Capabilities
from ..events import (
    Event,
    RunInfo,
    RunRecord,
    RunStarted,
)

__all__ = ["MemoryReader", "MemorySink", "clear", "store"]

_LOCK = threading.Lock()
_STORE: dict[str, dict[str, RunRecord]] = {}


def store(name: str = "default") -> dict[str, RunRecord]:
    """The runs recorded under ``memory:NAME``, by run id."""
    with _LOCK:
        return _STORE.setdefault(name, {})


def clear(name: str | None = None) -> None:
    with _LOCK:
        if name is None:
            _STORE.clear()
        else:
            _STORE.pop(name, None)


class MemorySink:
    capabilities = Capabilities()

    def __init__(self, spec: BackendSpec) -> None:
        self.name = spec.location or "default"
        self.run: RunRecord | None = None

    def emit(self, batch: Sequence[Event]) -> None:
        with _LOCK:
            runs = _STORE.setdefault(self.name, {})
            for ev in batch:
                if isinstance(ev, RunStarted):
                    if ev.run_id in runs:  # re-attach on resume
                        self.run = runs[ev.run_id]
                        continue
                    self.run = RunRecord(RunInfo(ev.run_id, ev.project, ev.name, backend=f"memory:{self.name}"), [])
                    runs[ev.run_id] = self.run
                if self.run is None:
                    raise RuntimeError("memory sink received events before RunStarted")
                self.run.events.append(ev)
                self.run.info.apply(ev)

    def close(self) -> None:
        pass


class MemoryReader:
    def __init__(self, spec: BackendSpec) -> None:
        self.name = spec.location or "default"

    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        return [r.info for r in store(self.name).values() if project is None or r.info.project == project]

    def read_run(self, run_id: str) -> RunRecord:
        return store(self.name)[run_id]
