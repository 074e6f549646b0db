"""Best values in MLflow: per metric its lowest and highest value with their steps, and its declared goal,
kept as tags (MLflow's own listing holds only the last value). Written by the sink as points pass, read back
by the reader's listing into ``RunInfo.metrics`` / ``goals`` (docs/backends/mlflow.md, "Best values").

* ``trackkit.stats.<digest of the key>`` = ``{"key", "min", "min_step", "max", "max_step", "goal"?}`` (JSON);
* ``trackkit.best.<MLflow key>`` = the best value, for a metric whose goal was declared (MLflow's UI
  shows it in the run's tags; the reader does not need it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...events import MetricStats, RunInfo
from .names import MAX_KEY_LENGTH, T_BEST, T_STATS, mlflow_key, tag_digest

__all__ = ["BestValues", "read_best"]


class BestValues:
    """What the sink has seen of each metric: ``[min, min_step, max, max_step]`` per key, the goals, and
    the keys whose tags are out of date. Merged with what the store already holds on (re-)attach, so an
    agent restart or a resumed run keeps the extremes of every segment."""

    def __init__(self) -> None:
        self.stats: dict[str, list[Any]] = {}
        self.goals: dict[str, str] = {}
        self.dirty: set[str] = set()

    def attach(self, tags: Mapping[str, str]) -> None:
        self.stats, self.goals, self.dirty = {}, {}, set()
        for key, d in _parsed(tags):
            if d.get("min_step") is not None and d.get("max_step") is not None:
                self.stats[key] = [float(d["min"]), int(d["min_step"]), float(d["max"]), int(d["max_step"])]
            if d.get("goal") in ("min", "max"):
                self.goals[key] = str(d["goal"])

    def add(self, key: str, step: int, value: float) -> None:
        if value != value:  # NaN: not an extreme
            return
        st = self.stats.get(key)
        if st is None:
            self.stats[key] = [value, step, value, step]
        elif value < st[0]:
            st[0], st[1] = value, step
        elif value > st[2]:
            st[2], st[3] = value, step
        else:
            return
        self.dirty.add(key)

    def goal(self, key: str, goal: str) -> None:
        self.goals[key] = goal
        self.dirty.add(key)

    def again(self) -> None:
        """What was pending was dropped (a failed send): write every key's tags again."""
        self.dirty = set(self.stats) | set(self.goals)

    def tags(self) -> dict[str, str]:
        """The tags of the keys changed since the last call."""
        out: dict[str, str] = {}
        for key in sorted(self.dirty):
            st, goal = self.stats.get(key), self.goals.get(key)
            rec: dict[str, Any] = {"key": key}
            if st is not None:
                rec.update(min=st[0], min_step=st[1], max=st[2], max_step=st[3])
            if goal is not None:
                rec["goal"] = goal
            out[T_STATS + tag_digest(key)] = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
            name = T_BEST + mlflow_key(key)
            if st is not None and goal is not None and len(name) <= MAX_KEY_LENGTH and mlflow_key(name) == name:
                out[name] = repr(st[0] if goal == "min" else st[2])
        self.dirty = set()
        return out


def _parsed(tags: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, text in tags.items():
        if not name.startswith(T_STATS):
            continue
        try:
            d = json.loads(text)
        except ValueError:
            continue
        if isinstance(d, dict) and isinstance(d.get("key"), str):
            out.append((d["key"], d))
    return out


def read_best(info: RunInfo, tags: Mapping[str, str], last_steps: Mapping[str, int]) -> None:
    """Fill ``info.metrics`` (last from ``info.last_metrics``; min/max from the tags) and ``info.goals``."""
    for key, d in _parsed(tags):
        if d.get("goal") in ("min", "max"):
            info.goals[key] = str(d["goal"])
        if d.get("min_step") is None or key not in info.last_metrics:
            continue
        try:
            lo, hi = float(d["min"]), float(d["max"])
            info.metrics[key] = MetricStats(
                last=info.last_metrics[key], last_step=int(last_steps.get(key, d["max_step"])),
                min=lo, min_step=int(d["min_step"]), max=hi, max_step=int(d["max_step"]),
            )
        except (TypeError, ValueError, KeyError):
            continue
