"""``run.summary``: a run's summary values (a final test score, a best value the user computed), the
last word per key. Setting a key journals a ``Summary`` event; every backend gets it (docs/reading-back.md)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .events import MetricGoal, Summary

__all__ = ["GOALS", "RunSummary", "goal_event", "summary_event"]

#: the goals ``define_metric`` takes (W&B's words too) and what they mean
GOALS = {"max": "max", "min": "min", "maximize": "max", "minimize": "min"}


def goal_event(key: str, goal: str) -> MetricGoal | None:
    """The ``MetricGoal`` of ``run.define_metric(key, goal)``; None for a goal that is not one."""
    g = GOALS.get(str(goal).lower())
    return None if g is None else MetricGoal(key=str(key), goal=g, time=time.time())


def summary_event(values: Mapping[str, Any]) -> Summary:
    return Summary(values=dict(values), time=time.time())


class RunSummary(Mapping[str, Any]):
    """A read-only mapping of the values set so far, plus ``summary[key] = value`` and
    ``summary.update({...})`` (one journal record per call). Never raises into the caller: a value
    that cannot be recorded is counted and warned about by the run."""

    def __init__(self, write: Callable[[Mapping[str, Any]], Mapping[str, Any] | None]) -> None:
        self._write = write
        self._values: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, values: Mapping[str, Any] | None = None, **more: Any) -> None:
        data = {str(k): v for k, v in {**dict(values or {}), **more}.items()}
        if not data:
            return
        kept = self._write(data)
        if kept is not None:
            self._values.update(kept)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RunSummary({self._values!r})"
