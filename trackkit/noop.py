"""``NoopRun``: what ``init`` returns on a rank that does not record (docs/distributed.md). The same API
as ``Run``; every call does nothing and costs next to nothing: no run directory, no journal, no agent,
no process hooks, no provenance, no files at all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .events import Status
from .run import Run
from .summary import RunSummary

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["NoopRun"]


class _Handle:
    """What ``watch`` returns."""

    def remove(self) -> None:
        return None


class NoopRun(Run):
    """A run that records nothing (``run.records`` is False). Attributes a script reads are there:
    ``id``, ``name``, ``project``, ``config``, ``tags``, ``group``, ``status``; ``dir`` is ``""``."""

    records = False

    def __init__(self, settings: Settings, *, config: Mapping[str, Any] | None, name: str | None,
                 group: str | None, tags: Mapping[str, str] | Iterable[str] | None, rank: int) -> None:
        # deliberately not Run.__init__: nothing is opened, written or started
        self.settings = settings
        self.specs = []
        self.id = f"rank{rank}"
        self.project = settings.project
        self.group = group
        self.name = name or f"rank{rank}"
        self.start_time = 0.0
        self.config = dict(config or {})
        self.tags = {}
        self.meta = {}
        self.status = Status.RUNNING
        self.reason = ""
        self.problems = Counter()
        self.records_written = 0
        self.logs_lost = 0
        self.resumed = 0
        self.dir = ""
        self.rank = rank
        self._done = False
        self._noop_summary = RunSummary(lambda values: None)

    def log(self, values: Mapping[str, Any], step: int | None = None) -> None:
        return None

    def finish(self, status: Status | str | None = None, reason: str = "", **_: Any) -> None:
        if self._done:
            return
        try:
            self.status = Status.COMPLETED if status is None else Status(status)
        except ValueError:
            raise ConfigError(
                f"status: {status!r} is not a status. Fix: use one of {[s.value for s in Status]}"
            ) from None
        self._done = True

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.finish()

    def watch(self, model: Any, every: int = 100, log: str = "gradients") -> Any:
        return _Handle()

    def pending(self) -> list[str]:
        return []

    @property
    def finished(self) -> bool:
        return self._done

    @property
    def step(self) -> int | None:
        return None

    @property
    def summary(self) -> RunSummary:
        return self._noop_summary

    def __repr__(self) -> str:
        return f"<trackkit.NoopRun rank={self.rank}: records nothing>"


def _nothing(*_: Any, **__: Any) -> None:
    return None


def _fill() -> None:
    """Every other public method of ``Run`` (one added later too) does nothing here; every other public
    property is None: nothing of ``Run``'s own runs on an object that opened nothing."""
    for cls in Run.__mro__:
        if cls is object:
            continue
        for name, value in vars(cls).items():
            if name.startswith("_") or name in vars(NoopRun):
                continue
            if isinstance(value, property):
                setattr(NoopRun, name, property(_nothing))
            elif callable(value) or isinstance(value, (staticmethod, classmethod)):
                setattr(NoopRun, name, _nothing)


_fill()
