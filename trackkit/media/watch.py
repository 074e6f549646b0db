"""``run.watch(model)``: a torch module's gradient and weight histograms, every N steps.

Off unless asked. On a due step every histogram is computed where the tensors live (min, max
and ``torch.histc`` on the GPU), and the counts of all of them leave the device in ONE copy;
between due steps a hook costs one integer compare. Gradients come from a hook on each
parameter during ``backward()``; weights are read before the due step's forward. Logged as
``gradients/<name>`` and ``parameters/<name>`` at the run's current step (``run.step + 1``,
the step the trainer is on), without moving ``run.step``. See docs/media.md for the cost.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .values import Histogram

__all__ = ["Watch", "watch"]

_LOG = ("gradients", "parameters", "all")


class Watch:
    """The hooks of one ``run.watch``; ``remove()`` takes them off."""

    def __init__(self, run: Any, model: Any, every: int, log: str, bins: int) -> None:
        self.run, self.model, self.every, self.log, self.bins = run, model, every, log, bins
        self.calls = 0
        self.due = False
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._pending: list[tuple[str, Any]] = []
        self._handles: list[Any] = [model.register_forward_pre_hook(self._before_forward)]
        if log in ("gradients", "all"):
            for name, p in self.params:
                self._handles.append(p.register_hook(self._grad_hook(name)))

    def remove(self) -> None:
        self.flush()
        self.remove_hooks()

    def remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _step(self) -> int:
        s = self.run.step
        return 0 if s is None else s + 1

    def _before_forward(self, module: Any, args: Any) -> None:
        if self._pending:  # gradients of a due step some parameters never received
            self.flush()
        self.due = self.calls % self.every == 0
        self.calls += 1
        if self.due and self.log in ("parameters", "all"):
            import torch

            with torch.no_grad():
                self._log([(f"parameters/{n}", p.detach()) for n, p in self.params])

    def _grad_hook(self, name: str) -> Any:
        def hook(grad: Any) -> None:
            if self.due:
                self._pending.append((f"gradients/{name}", grad.detach()))
                if len(self._pending) == len(self.params):
                    self.flush()

        return hook

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._log(pending)

    def _log(self, tensors: list[tuple[str, Any]]) -> None:
        """One histogram per tensor, computed on its device; one device-to-host copy for all."""
        try:
            import torch

            rows, stats = [], []
            for _, t in tensors:
                x = t.reshape(-1).float()
                x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
                lo, hi = torch.aminmax(x)
                span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
                idx = ((x - lo) / span * self.bins).long().clamp_(0, self.bins - 1)
                rows.append(torch.bincount(idx, minlength=self.bins)[: self.bins].float())
                stats.append(torch.stack([lo, lo + span]))
            host = torch.cat([torch.stack(rows), torch.stack(stats)], dim=1).cpu().tolist()  # the one copy
            values = {}
            for (key, _), row in zip(tensors, host):
                counts, lo_f, hi_f = row[: self.bins], row[self.bins], row[self.bins + 1]
                width = (hi_f - lo_f) / self.bins
                edges = [lo_f + i * width for i in range(self.bins)] + [hi_f]
                values[key] = Histogram(counts=[int(c) for c in counts], edges=edges)
            self.run.log_media(values, step=self._step())
        except Exception as exc:  # never into the training loop: said once, then watch() stops
            self.remove_hooks()
            from ..errors import TrackkitWarning
            from ..util import warn

            warn(f"trackkit: watch(): histograms could not be computed ({exc!r}); watch() stopped", TrackkitWarning)


def watch(run: Any, model: Any, *, every: int = 100, log: str = "gradients", bins: int = 64) -> Watch:
    if not (hasattr(model, "named_parameters") and hasattr(model, "register_forward_pre_hook")):
        raise ConfigError(f"watch(): {type(model).__name__} is not a torch.nn.Module. Fix: pass the model")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError(f"watch(): every={every!r} is not a whole number >= 1. Fix: e.g. every=100")
    if log not in _LOG:
        raise ConfigError(f"watch(): log={log!r} is not one of {list(_LOG)}. Fix: pass one of them")
    if not isinstance(bins, int) or not 1 <= bins <= 512:
        raise ConfigError(f"watch(): bins={bins!r} is not from 1 to 512. Fix: e.g. bins=64")
    return Watch(run, model, every, log, bins)
