"""Artifacts into W&B: trackkit's snapshot files, and the ``config.json`` copy of the full config.

W&B keeps only its own names, types and aliases: trackkit's originals travel in the
artifact's metadata under ``_trackkit`` and ``Decoder.artifact`` restores them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

from ...backend import sdk_errors
from ...errors import BackendError
from ...events import Artifact, Checkpoint
from .names import INTERNAL, alias_name, artifact_kind, artifact_name, wandb_run_id
from .sdk import LABEL

__all__ = ["checkpoint_name", "log_artifact", "log_checkpoint", "log_config"]


def log_files(wandb: Any, run: Any, name: str, kind: str, path: str, metadata: dict[str, Any],
              aliases: list[str], policy: str = "mutable") -> Any:
    """Log the file or directory ``path`` as the W&B artifact ``name`` of type ``kind``; ``policy=
    "immutable"`` (a file that stays: trackkit's snapshot) skips W&B's staging copy."""
    with sdk_errors(LABEL, f"artifact {name!r}"):
        art = wandb.Artifact(name, type=kind, metadata=metadata)
        if os.path.isdir(path):
            art.add_dir(path, policy=policy)
        else:
            art.add_file(path, name=os.path.basename(path), policy=policy)
        return run.log_artifact(art, aliases=aliases)


def checkpoint_name(name: str, run_id: str | None) -> str:
    """One W&B artifact per run and manager (W&B artifact names are per project): ``<name>-<run id>``."""
    return artifact_name(f"{name}-{wandb_run_id(run_id or '')}")


def log_checkpoint(wandb: Any, run: Any, run_id: str | None, ev: Checkpoint, keep_dir: str) -> Any | None:
    """A checkpoint as a new version of the run's W&B ``model`` artifact, aliases ``latest`` (and
    ``best``), its epoch/step/metrics/config/git in the metadata. The file is added with ``policy=
    "immutable"``: no staging copy. W&B uploads an immutable file from its path when the run is
    synced, so the sink keeps a hard link to it in ``keep_dir`` (no bytes: a link) that retention in the
    trainer does not remove. Never a reference artifact: a reference would not upload the bytes."""
    dest = os.path.join(keep_dir, f"v{ev.version}", os.path.basename(ev.path))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if not os.path.exists(dest):
        try:
            if os.path.isdir(ev.path):
                shutil.copytree(ev.path, dest, copy_function=os.link)
            else:
                os.link(ev.path, dest)
        except FileNotFoundError:
            return None  # retention removed it before it was delivered
        except OSError:
            shutil.copy2(ev.path, dest)  # another filesystem: W&B's copy, the only one
    art = ev.as_artifact()
    return log_artifact(wandb, run, run_id, Artifact(**{**vars(art), "path": dest}), kind="model",
                        wandb_name=checkpoint_name(ev.name, run_id), policy="immutable")


def log_artifact(wandb: Any, run: Any, run_id: str | None, ev: Artifact, *, kind: str | None = None,
                 wandb_name: str | None = None, policy: str | None = None) -> Any:
    """A trackkit ``Artifact`` event as a W&B artifact (names, type and aliases mapped)."""
    aliases = [alias_name(a) for a in ev.aliases]
    metadata: dict[str, Any] = dict(ev.metadata)
    added = [] if "sha256" in metadata else ["sha256"]
    metadata.setdefault("sha256", ev.sha256)
    metadata[INTERNAL] = {
        "run_id": run_id,
        "name": ev.name,
        "kind": ev.kind,
        "sha256": ev.sha256,
        "size": ev.size,
        "version": ev.version,
        "aliases": list(ev.aliases),
        "alias_map": {m: a for m, a in zip(aliases, ev.aliases) if m != a},
        "added": added,
        "path": ev.path,
        "source": ev.source,
        "time": ev.time,
    }
    if not os.path.exists(ev.path):
        raise BackendError(f"wandb: artifact {ev.name!r}: the snapshot {ev.path!r} does not exist")
    # trackkit's snapshot stays where it is: no staging copy. A file under the temp directory (what a
    # Reader downloaded for a migration, removed when it exits) is staged by W&B so the run keeps it.
    tmp = os.path.realpath(tempfile.gettempdir()) + os.sep
    policy = policy or ("mutable" if os.path.realpath(ev.path).startswith(tmp) else "immutable")
    return log_files(wandb, run, wandb_name or artifact_name(ev.name), kind or artifact_kind(ev.kind), ev.path,
                     metadata, aliases, policy)


def log_config(wandb: Any, run: Any, run_id: str | None, config: Mapping[str, Any]) -> None:
    """The house rule: the full config always travels as the ``config.json`` artifact too."""
    tmp = tempfile.mkdtemp(prefix="trackkit-wandb-")
    try:
        path = os.path.join(tmp, "config.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(config, fh, indent=2, sort_keys=True, default=str)
        name = artifact_name(f"trackkit-config-{wandb_run_id(run_id or '')}")
        meta = {INTERNAL: {"internal": "config", "run_id": run_id}}
        log_files(wandb, run, name, "config", path, meta, [])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
