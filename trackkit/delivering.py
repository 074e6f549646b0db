"""Runs of this process still delivering after a ``finish()`` that did not wait for it
(``finish_wait="journal"``, the default): a Reader made in this process for a backend of the same
kind first waits for them (``registry.BEFORE_READ``), so the process that wrote a run reads it back
whole. Another process reads what is delivered so far (``run.wait_delivery()``, docs/configuration.md)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from .backend import BackendSpec
from .registry import BEFORE_READ

__all__ = ["track", "wait_for"]


class Delivering(Protocol):
    @property
    def specs(self) -> Sequence[BackendSpec]: ...

    def wait_delivered(self, timeout: float, finished: bool) -> bool: ...


_lock = threading.Lock()
_pending: list[tuple[Delivering, float]] = []


def track(handle: Delivering, timeout: float) -> None:
    """``handle``'s agent delivers on after ``finish()`` returned: readers wait for it (at most ``timeout``)."""
    with _lock:
        _pending.append((handle, timeout))
        if wait_for not in BEFORE_READ:
            BEFORE_READ.append(wait_for)


def wait_for(spec: BackendSpec) -> None:
    """Wait for this process's runs still delivering to a backend of ``spec``'s kind."""
    with _lock:
        items = [(h, t) for h, t in _pending if any(s.scheme == spec.scheme for s in h.specs)]
    for h, t in items:
        h.wait_delivered(t, finished=True)
        with _lock:
            if (h, t) in _pending:
                _pending.remove((h, t))
