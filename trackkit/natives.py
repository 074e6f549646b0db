"""``Run.native()``: the SDK's own run object for a backend, handed out once and finished with
the run. It bypasses every trackkit guarantee (calls block, can raise, are not journaled)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .backend import BackendSpec
from .errors import ConfigError

__all__ = ["Natives"]


class Natives:
    def __init__(self, specs: Sequence[BackendSpec], run: Any, problem: Callable[[str, str], None]) -> None:
        self._specs, self._run, self._problem = specs, run, problem
        self._objects: dict[str, Any] = {}

    def get(self, backend: str) -> Any:
        from .registry import load_native

        if backend in self._objects:
            return self._objects[backend]
        for spec in self._specs:
            if spec.scheme == backend:
                obj = self._objects[backend] = load_native(spec, self._run)
                return obj
        raise ConfigError(
            f"native({backend!r}): this run has no {backend!r} backend. "
            f"Fix: use one of {[s.scheme for s in self._specs]}"
        )

    def close(self) -> None:
        """Finish what was handed out (a W&B run, a TensorBoard writer) with the run."""
        for name, obj in self._objects.items():
            for method in ("finish", "close"):
                fn = getattr(obj, method, None)
                if callable(fn):
                    try:
                        fn()
                    except Exception as exc:
                        self._problem("native", f"closing the native {name} object failed: {exc!r}")
                    break
        self._objects.clear()
