"""Which checkpoints a manager keeps: best-k by the monitored metric, last-k, every n epochs/steps.

Pure functions over :class:`~trackkit.checkpoints.index.Entry` lists; the rules and a worked
example are in docs/checkpoints.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .index import Entry

__all__ = ["Rules", "best_of", "kept"]


@dataclass(frozen=True)
class Rules:
    monitor: str | None = None
    mode: str = "max"
    #: ``None`` everywhere (and no periodic rule): keep every checkpoint
    keep_best: int | None = None
    keep_last: int | None = None
    every_n_epochs: int | None = None
    every_n_steps: int | None = None

    @property
    def keeps_all(self) -> bool:
        return (self.keep_best is None and self.keep_last is None and not self.every_n_epochs
                and not self.every_n_steps)


def _value(e: Entry, metric: str) -> float | None:
    v = e.metrics.get(metric)
    if v is None or not isinstance(v, (int, float)) or math.isnan(v):
        return None
    return float(v)


def ranked(entries: Sequence[Entry], metric: str, mode: str) -> list[Entry]:
    """Entries holding ``metric``, best first (``mode`` ``max``/``min``); a tie goes to the earlier one
    (a later checkpoint must be strictly better to become the best, as in Lightning and Keras)."""
    scored = [(v, e) for e in entries if (v := _value(e, metric)) is not None]
    sign = -1.0 if mode == "max" else 1.0
    scored.sort(key=lambda ve: (sign * ve[0], ve[1].version))
    return [e for _, e in scored]


def best_of(entries: Sequence[Entry], metric: str, mode: str) -> Entry | None:
    r = ranked(entries, metric, mode)
    return r[0] if r else None


def kept(entries: Sequence[Entry], rules: Rules) -> dict[int, list[str]]:
    """``{version: [why kept ...]}`` for the entries the rules keep; the last one and the current best
    are always kept."""
    out: dict[int, list[str]] = {}

    def keep(e: Entry, why: str) -> None:
        out.setdefault(e.version, []).append(why)

    if not entries:
        return out
    by_version = sorted(entries, key=lambda e: e.version)
    if rules.keeps_all:
        for e in by_version:
            keep(e, "all")
        return out
    keep(by_version[-1], "latest")
    if rules.monitor:
        order = ranked(by_version, rules.monitor, rules.mode)
        for e in order[: max(1, rules.keep_best or 0)]:
            keep(e, "best")
    for e in by_version[len(by_version) - (rules.keep_last or 0):] if rules.keep_last else []:
        keep(e, "last")
    for e in by_version:
        if rules.every_n_epochs and e.epoch is not None and (e.epoch + 1) % rules.every_n_epochs == 0:
            keep(e, f"every {rules.every_n_epochs} epochs")
        if rules.every_n_steps and e.step % rules.every_n_steps == 0 and e.step > 0:
            keep(e, f"every {rules.every_n_steps} steps")
    return out
