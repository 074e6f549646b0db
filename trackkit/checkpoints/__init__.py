"""Checkpoints that are never overwritten, know their metrics, and cost no extra disk.

``run.checkpoints(monitor=, mode=, keep_best=, keep_last=, every_n_epochs=)`` returns a
:class:`CheckpointManager`; :func:`best`, :func:`latest` and :func:`list_checkpoints` read a stored
run's checkpoints from the journal or any backend. See docs/checkpoints.md.
"""

from __future__ import annotations

from .index import Entry
from .manager import CheckpointManager
from .record import best, latest, list_checkpoints
from .retention import Rules

__all__ = ["CheckpointManager", "Entry", "Rules", "best", "latest", "list_checkpoints"]
