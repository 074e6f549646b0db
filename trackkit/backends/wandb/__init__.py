"""Weights & Biases adapter: ``WandbSink`` writes runs with the W&B SDK, ``WandbReader`` reads them back.

Backend string: ``wandb[:PROJECT][?entity=E&group=G&mode=offline|online&dir=D]``.
See ``docs/backends/wandb.md`` for the mapping, the limits and the status rule.

Modules: ``names`` (name rules), ``framing`` (the ``run-<id>.wandb`` block framing),
``decode`` (the one decoder of W&B records into trackkit events), ``media`` (media as W&B's
own types), ``media_read`` (W&B media values back as ``Media``), ``segments`` (offline run
files), ``sink`` and ``reader``; ``sdk`` (importing W&B, its process-wide state).
Importing this package is cheap: ``wandb`` is imported when a sink or reader is built.
"""

from __future__ import annotations

from .decode import item_key
from .framing import has_exit_record, iter_records, iter_run_file
from .names import wandb_run_id
from .reader import WandbReader
from .sdk import clear_inherited_service
from .sink import WandbSink

__all__ = [
    "WandbReader",
    "WandbSink",
    "clear_inherited_service",
    "has_exit_record",
    "item_key",
    "iter_records",
    "iter_run_file",
    "wandb_run_id",
]
