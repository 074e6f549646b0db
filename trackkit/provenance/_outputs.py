"""Where trackkit and its local backends write: paths that are never the user's uncommitted changes.

Standard library only; a backend spec is read by its ``scheme``, ``location`` and ``options``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..backend import BackendSpec

__all__ = ["output_paths"]

#: W&B's own directories, when set in the environment (by default they live in the home directory)
_WANDB_ENV_DIRS = ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR")


def _abs(path: str, cwd: str) -> str:
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(path)))


def _mlflow_paths(location: str, cwd: str) -> list[str]:
    loc = (location or "./mlflow.db").strip()
    if loc.startswith("sqlite:"):
        if not loc.startswith("sqlite:///"):
            return []
        loc = loc[len("sqlite:///") :]
    elif "://" in loc:  # a tracking server: it writes where it runs
        return []
    db = _abs(loc, cwd)
    here = os.path.dirname(db)
    # the sqlite file, its transient siblings and trackkit's lock beside it; the artifact root MLflow
    # puts beside it; the old file store
    siblings = [db + sfx for sfx in ("", "-journal", "-wal", "-shm", ".trackkit-lock")]
    return [*siblings, os.path.join(here, "mlartifacts"), os.path.join(here, "mlruns")]


def output_paths(
    root: str | os.PathLike[str] | None,
    specs: Iterable[BackendSpec],
    *,
    cwd: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The absolute paths trackkit writes to for these settings: the journal ``root`` and the local
    backends' stores (the TensorBoard logdir, an MLflow sqlite file with its ``mlartifacts/`` and
    ``mlruns/`` beside it, W&B's ``wandb/`` directory in ``dir=``, ``WANDB_DIR`` or the working
    directory). Relative paths are taken against ``cwd`` (default: the process's). Remote backends
    and plug-ins add nothing. Pass the result to ``capture(exclude_paths=...)``."""
    where = os.path.abspath(cwd) if cwd else os.getcwd()
    env = os.environ if environ is None else environ
    out: list[str] = []
    if root:
        out.append(_abs(os.fspath(root), where))
    for spec in specs:
        scheme = getattr(spec, "scheme", "")
        location = str(getattr(spec, "location", "") or "")
        options: Mapping[str, str] = getattr(spec, "options", None) or {}
        if scheme == "tensorboard":
            out.append(_abs(location or "./runs", where))
        elif scheme == "mlflow":
            local = _mlflow_paths(location, where)
            out += [*local, os.path.join(where, "mlruns")] if local else []
        elif scheme == "wandb":
            base = _abs(options.get("dir") or env.get("WANDB_DIR") or where, where)
            out += [os.path.join(base, "wandb"), os.path.join(base, ".wandb")]
            out += [_abs(env[var], where) for var in _WANDB_ENV_DIRS if env.get(var)]
    return list(dict.fromkeys(out))
