"""What ``log()`` makes of a value that is not a float or an int64: a number (a 0-d tensor, a numpy
scalar, a bool) or ``None`` with one problem line naming the key, the cause and the fix."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .journal import I64_MAX, I64_MIN
from .util import safe_repr

__all__ = ["to_number"]


def to_number(key: Any, v: Any, problem: Callable[[str, str, str], None]) -> float | int | None:
    """``v`` as a float or an int64, or None (skipped; ``problem(kind, message, cause)`` says why)."""
    if v is None or isinstance(v, (str, bytes, Mapping)):
        what = f"log(): {safe_repr(key)} has a non-numeric value {safe_repr(v, 60)}; skipped"
        problem(f"value:{key}", what, "non-numeric")
        return None
    if isinstance(v, bool):
        return int(v)
    try:
        numel = getattr(v, "numel", None) or getattr(v, "size", None)
        n = numel() if callable(numel) else numel
        if n is not None and n != 1:
            problem(
                f"value:{key}",
                f"log(): {safe_repr(key)} holds {n} elements; skipped. "
                "Fix: log a scalar (e.g. tensor.mean().item())",
                "elements",
            )
            return None
        if hasattr(v, "item"):
            v = v.item()
        out: float | int = int(v) if isinstance(v, int) else float(v)
        if not I64_MIN <= out <= I64_MAX:  # beyond int64: a float, or skipped when no float holds it
            out = float(out)
    except Exception as exc:
        what = f"log(): {safe_repr(key)}={safe_repr(v, 60)} is not a number ({safe_repr(exc)}); skipped"
        problem(f"value:{key}", what, type(exc).__name__)
        return None
    return out
