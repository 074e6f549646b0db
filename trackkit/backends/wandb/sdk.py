"""What the sink and the reader share about the W&B SDK: importing it, its process-wide state,
and the trainer-side SDK run of ``Run.native("wandb")``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ...backend import BackendSpec, sdk_errors
from ...errors import MissingDependency
from .names import INTERNAL, project_name, wandb_run_id

__all__ = ["LABEL", "OPEN_RUNS", "clear_inherited_service", "default_root", "import_wandb", "native_run"]

#: how the adapter names itself in error messages (``sdk_errors(LABEL, ...)``)
LABEL = "wandb"

#: SDK runs the sinks of this process hold open, by W&B id (``WandbSink.native`` hands them out)
OPEN_RUNS: dict[str, Any] = {}


def import_wandb() -> Any:
    """The ``wandb`` module; ``MissingDependency`` naming the extra when it is not installed."""
    try:
        import wandb
    except ImportError as exc:
        raise MissingDependency(
            "the wandb backend needs the 'wandb' package. Fix: pip install 'trackkit[wandb]'"
        ) from exc
    return wandb


def clear_inherited_service() -> None:
    """Drop a ``WANDB_SERVICE`` this process inherited from its parent (e.g. the trainer).

    W&B's helper started by the trainer dies with the trainer; the agent must run
    its own. A token written by this very process (its pid is in the token) is kept.
    """
    token = os.environ.get("WANDB_SERVICE")
    if not token:
        return
    parts = token.split("-", 2)
    if len(parts) < 2 or parts[1] != str(os.getpid()):
        os.environ.pop("WANDB_SERVICE", None)


def default_root(options: Mapping[str, str]) -> str:
    """Where W&B writes and the reader looks: the ``dir`` option, else ``WANDB_DIR``, else the cwd."""
    return os.path.abspath(os.path.expanduser(options.get("dir") or os.environ.get("WANDB_DIR") or os.getcwd()))


#: ``wandb.Settings`` of a ``Run.native("wandb")`` run in the trainer
_NATIVE_SETTINGS: dict[str, Any] = {"silent": True, "x_disable_stats": True, "x_save_requirements": False}


def native_run(spec: BackendSpec, run_id: str, project: str, name: str) -> Any:
    """The SDK run of ``WandbSink.native``: the agent's own when this process holds it open,
    else a new one attached to the same W&B run id, marked native in ``_trackkit``."""
    wandb = import_wandb()
    wid = wandb_run_id(run_id)
    if wid in OPEN_RUNS:  # the thread agent holds it in this process: W&B allows one writer per id
        return OPEN_RUNS[wid]
    opts = dict(spec.options)
    clear_inherited_service()
    settings_kw = dict(_NATIVE_SETTINGS)
    if opts.get("mode"):
        settings_kw["mode"] = opts["mode"]
    root = default_root(opts)
    os.makedirs(root, exist_ok=True)
    with sdk_errors(LABEL, "init (native)"):
        return wandb.init(
            project=project_name(spec.location or project),
            entity=opts.get("entity") or None,
            group=opts.get("group") or None,
            name=name or None,
            id=wid,
            resume="allow",
            config={INTERNAL: {"native": True, "run_id": run_id}},
            dir=root,
            reinit="create_new",
            settings=wandb.Settings(**settings_kw),
        )
