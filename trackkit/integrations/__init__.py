"""Framework integrations: PyTorch Lightning and the Hugging Face Trainer.

Import the one you use; nothing here is imported by ``import trackkit``::

    from trackkit.integrations.lightning import TrackkitLogger
    from trackkit.integrations.transformers import TrackkitCallback

Both create the run on the main process only (rank 0 / world process zero), record
hyperparameters as config, metrics with their step, checkpoints as artifacts, and how
training ended as the run's status.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrackkitCallback", "TrackkitLogger"]


def __getattr__(name: str) -> Any:
    # imported on first use: each pulls in its framework (torch, Lightning, transformers)
    if name == "TrackkitLogger":
        from .lightning import TrackkitLogger

        return TrackkitLogger
    if name == "TrackkitCallback":
        from .transformers import TrackkitCallback

        return TrackkitCallback
    raise AttributeError(f"module 'trackkit.integrations' has no attribute {name!r}")

