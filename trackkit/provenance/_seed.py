"""The seed pillar: seed every RNG present, optionally force deterministic algorithms, remember it.

Imports numpy and torch only inside :func:`seed_everything` (the user asked for them to be seeded).
"""

from __future__ import annotations

import copy
import datetime as _dt
import importlib
import os
import random
import threading
from typing import Any

from ..errors import ConfigError

__all__ = ["clear_seed_record", "last_seed_record", "seed_everything"]

_MAX_SEED = 2**32 - 1  # numpy's legacy seeder takes 0 <= seed < 2**32
_LOCK = threading.Lock()
_LAST: dict[str, Any] | None = None


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception:  # not installed, or broken: seed what is there
        return None


def seed_everything(seed: int, deterministic: bool = False) -> dict[str, Any]:
    """Seed Python's ``random``, NumPy, torch and CUDA (those installed) and record it.

    * ``PYTHONHASHSEED`` is set in ``os.environ``: it reaches child processes (DataLoader workers,
      subprocesses) only, never the running interpreter's ``hash()``.
    * ``deterministic=True`` also calls ``torch.use_deterministic_algorithms(True)`` (an op with no
      deterministic implementation then raises), sets ``cudnn.deterministic = True``,
      ``cudnn.benchmark = False`` and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless already set.

    Returns the record (also kept for :func:`last_seed_record`, which ``init`` reads)::

        {"seed": 42, "deterministic": False, "seeded": ["python", "numpy", "torch"], ...}

    Raises :class:`~trackkit.errors.ConfigError` for a seed that is not an int in ``[0, 2**32)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed_everything: seed must be an int, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed <= _MAX_SEED:
        raise ConfigError(f"seed_everything: seed must be in [0, 2**32 - 1], got {seed}; use seed % 2**32")
    seeded: list[str] = []
    notes: dict[str, str] = {}

    random.seed(seed)
    seeded.append("python")
    os.environ["PYTHONHASHSEED"] = str(seed)
    notes["PYTHONHASHSEED"] = "set for child processes only; this interpreter's hash() is unchanged"

    np = _import("numpy")
    if np is not None:
        try:
            np.random.seed(seed)
            seeded.append("numpy")
        except Exception as exc:
            notes["numpy"] = f"error: {exc}"

    record: dict[str, Any] = {"seed": seed, "deterministic": bool(deterministic)}
    torch = _import("torch")
    if torch is not None:
        try:
            torch.manual_seed(seed)  # also seeds every CUDA device (lazily)
            seeded.append("torch")
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(seed)
                seeded.append("cuda")
        except Exception as exc:
            notes["torch"] = f"error: {exc}"
        if deterministic:
            try:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True)
                torch.backends.cudnn.deterministic = True
                torch.backends.cudnn.benchmark = False
                record["torch_deterministic_algorithms"] = True
                record["cublas_workspace_config"] = os.environ["CUBLAS_WORKSPACE_CONFIG"]
            except Exception as exc:
                notes["deterministic"] = f"error: {exc}"
    elif deterministic:
        notes["deterministic"] = "torch is not installed: nothing to make deterministic beyond seeding"
    record["seeded"] = seeded
    record["notes"] = notes
    record["time"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    global _LAST
    with _LOCK:
        _LAST = copy.deepcopy(record)
    return record


def last_seed_record() -> dict[str, Any] | None:
    """A copy of the record of the latest :func:`seed_everything` call in this process, or ``None``."""
    with _LOCK:
        return copy.deepcopy(_LAST)


def clear_seed_record() -> None:
    """Forget the last seed record (tests; a new run in the same process that wants its own seed)."""
    global _LAST
    with _LOCK:
        _LAST = None
