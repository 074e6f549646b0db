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


def _check_init_kwargs(owner: str, kwargs: dict[str, Any]) -> None:
    """Raise at construction (not mid-training) when a keyword is not one ``trackkit.init`` takes."""
    import inspect

    from ..errors import ConfigError
    from ..run import init

    accepted = set(inspect.signature(init).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"{owner}: unknown keyword(s) {unknown}. Fix: use the keywords of trackkit.init: {sorted(accepted)}"
        )
