"""trackkit: one small, crash-proof experiment-tracking API over TensorBoard, W&B and MLflow.

    import trackkit
    with trackkit.init(config=cfg, project="cifar10", backend="tensorboard:./runs") as run:
        run.log({"train/loss": loss}, step=step)

``import trackkit`` is cheap: no SDK (torch, tensorboard, wandb, mlflow) is imported
until a run needs it, and then only in the delivery agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    BackendError,
    BackendNotFound,
    ConfigError,
    DivergedError,
    MissingDependency,
    TrackkitError,
    TrackkitWarning,
)
from .events import Status
from .media import Audio, Figure, Histogram, Image, Table, Text
from .recommend import recommend
from .run import Run, current_run
from .session import finish, init, log
from .version import __version__

__all__ = [
    "Audio",
    "BackendError",
    "BackendNotFound",
    "ConfigError",
    "DivergedError",
    "Figure",
    "Histogram",
    "Image",
    "MissingDependency",
    "Run",
    "Status",
    "Table",
    "Text",
    "TrackkitError",
    "TrackkitWarning",
    "__version__",
    "current_run",
    "finish",
    "init",
    "log",
    "recommend",
    "seed_everything",
]

if TYPE_CHECKING:
    from .provenance import seed_everything


def __getattr__(name: str) -> Any:
    # lazily loaded public helpers (keep `import trackkit` fast)
    if name == "checkpoints":  # trackkit.checkpoints.best("RUN", metric=..., mode=...)
        import importlib

        return importlib.import_module(".checkpoints", __name__)
    if name == "seed_everything":
        from .provenance import seed_everything

        return seed_everything
    raise AttributeError(f"module 'trackkit' has no attribute {name!r}")
