"""``run.watch(model)``: a torch module's gradient and weight histograms, every N steps.

Off unless asked. On a due step every histogram is computed where the tensors live (min, max
and the bin counts on the GPU, with no kernel that waits for the device), and the counts of all
of them (weights and gradients alike) leave the device in ONE copy at the end of the due step's
``backward()``. Between due steps the only cost is the forward pre-hook's integer compare: the
gradient hooks are put on the parameters for a due step and taken off after it. Weights are read
before the due step's forward. Logged as ``gradients/<name>`` and ``parameters/<name>`` at the
run's current step when the due forward began (``run.step + 1``, the step the trainer is on),
without moving ``run.step``. See docs/media.md for the cost.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import ConfigError
from .values import MediaValue, Options, Payload

__all__ = ["Watch", "watch"]

_LOG = ("gradients", "parameters", "all")


class Watch:
    """The hooks of one ``run.watch``; ``remove()`` takes them off."""

    def __init__(self, run: Any, model: Any, every: int, log: str, bins: int) -> None:
        self.run, self.model, self.every, self.log, self.bins = run, model, every, log, bins
        self.calls = 0
        self.due = False
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        #: the due step's gradients received so far (tensors on their device)
        self._pending: list[tuple[str, Any]] = []
        #: the due step's weight histograms, computed on the device, not yet copied
        self._binned: list[tuple[str, Any]] = []
        self._due_step = 0
        self._expected = 0
        self._queued = False
        self._stopped = False
        #: the autograd engine runs our flush at the end of backward() (else: after the last gradient)
        self._callbacks = True
        self._grad_handles: list[Any] = []
        self._handles: list[Any] = [model.register_forward_pre_hook(self._before_forward)]

    def remove(self) -> None:
        self.flush()
        self.remove_hooks()

    def remove_hooks(self) -> None:
        self._drop_grad_hooks()
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _drop_grad_hooks(self) -> None:
        for h in self._grad_handles:
            h.remove()
        self._grad_handles.clear()

    def _step(self) -> int:
        s = self.run.step
        return 0 if s is None else s + 1

    def _before_forward(self, module: Any, args: Any) -> None:
        if self._pending or self._binned or self._grad_handles:  # a due step whose backward never came or ended
            self.flush()
        if not module.training or not _grad_enabled():  # evaluation (model.eval(), torch.no_grad()): not a step
            return
        self.due = self.calls % self.every == 0
        self.calls += 1
        if not self.due or self._stopped:
            return
        self._due_step = self._step()
        if self.log in ("parameters", "all"):
            try:
                import torch

                with torch.no_grad():
                    self._binned = self._bin([(f"parameters/{n}", p.detach()) for n, p in self.params])
            except Exception as exc:
                self._fail(exc)
                return
            if self.log == "parameters":
                self.flush()
                return
        self._queued = False
        self._expected = 0
        for name, p in self.params:
            if p.requires_grad:  # frozen after watch(): no gradient will come
                self._grad_handles.append(p.register_hook(self._grad_hook(name)))
                self._expected += 1

    def _grad_hook(self, name: str) -> Any:
        def hook(grad: Any) -> None:
            self._pending.append((f"gradients/{name}", grad.detach()))
            if self._queued:
                return
            if self._callbacks:  # flush once the whole backward() is done: a parameter that gets no
                try:  # gradient (unused, frozen) does not hold the others back
                    from torch.autograd import Variable

                    Variable._execution_engine.queue_callback(self.flush)
                    self._queued = True
                    return
                except Exception:
                    self._callbacks = False
            if len(self._pending) >= self._expected:
                self.flush()

        return hook

    def flush(self) -> None:
        self._drop_grad_hooks()
        self._queued = False
        pending, self._pending = self._pending, []
        binned, self._binned = self._binned, []
        if not (pending or binned):
            return
        try:
            binned += self._bin(pending)
            self._emit(binned)
        except Exception as exc:
            self._fail(exc)

    def _bin(self, tensors: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """Per tensor, a row ``counts (bins) + [lo, hi]`` computed on its device; nothing waits for it."""
        import torch

        bins = self.bins
        out = []
        for key, t in tensors:
            if t.numel() == 0:
                continue
            x = t.reshape(-1)
            if x.device.type == "cpu":  # no device to wait for: host bounds and one histc kernel
                out.append((key, _cpu_row(torch, x, bins)))
                continue
            x = torch.nan_to_num(x.float(), nan=0.0, posinf=0.0, neginf=0.0)
            lo, hi = torch.aminmax(x)
            span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
            idx = (x - lo).div_(span).mul_(bins).long().clamp_(0, bins - 1)
            # not bincount: it sizes its output from the data, a device sync per tensor; scatter_add_ does not
            ones = torch.ones(1, dtype=torch.int64, device=idx.device).expand(idx.numel())
            counts = torch.zeros(bins, dtype=torch.int64, device=idx.device).scatter_add_(0, idx, ones)
            dtype = torch.float32 if idx.device.type == "mps" else torch.float64  # exact counts where it can
            out.append((key, torch.cat([counts.to(dtype), torch.stack([lo, lo + span]).to(dtype)])))
        return out

    def _emit(self, binned: list[tuple[str, Any]]) -> None:
        """The one device-to-host copy of all the due step's histograms, then one log_media call."""
        if not binned:
            return
        import torch

        groups: dict[Any, list[int]] = {}
        for i, (_, row) in enumerate(binned):
            groups.setdefault(row.device, []).append(i)
        host: list[list[float]] = [[] for _ in binned]
        for idx in groups.values():  # one copy (one per device for a model split over devices)
            for i, row in zip(idx, torch.stack([binned[i][1] for i in idx]).cpu().tolist()):
                host[i] = row
        values = {}
        bins = self.bins
        for (key, _), row in zip(binned, host):
            counts, lo_f, hi_f = row[:bins], row[bins], row[bins + 1]
            width = (hi_f - lo_f) / bins
            edges = [lo_f + i * width for i in range(bins)] + [hi_f]
            ints = [int(c) for c in counts]
            values[key] = _Binned({"counts": ints, "edges": edges, "num": float(sum(ints))})
        self.run.log_media(values, step=self._due_step)

    def _fail(self, exc: BaseException) -> None:
        """Never into the training loop: said once, then watch() stops."""
        self._stopped = True
        self._pending, self._binned = [], []
        self.remove_hooks()
        from ..errors import TrackkitWarning
        from ..util import warn

        warn(f"trackkit: watch(): histograms could not be computed ({exc!r}); watch() stopped", TrackkitWarning)


def _cpu_row(torch: Any, x: Any, bins: int) -> Any:
    """The row of a CPU tensor: ``histc`` between its bounds (NaN/inf counted as 0, as on a device);
    float64 counts for a tensor too large for float32 to count exactly."""
    x = x.double() if x.numel() > 1 << 24 else x.float()
    lo, hi = (float(v) for v in torch.aminmax(x))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = (float(v) for v in torch.aminmax(x))
    if hi <= lo:
        hi = lo + 1.0
    counts = torch.histc(x, bins=bins, min=lo, max=hi).double()
    return torch.cat([counts, torch.tensor([lo, hi], dtype=torch.float64)])


class _Binned(MediaValue):
    """A histogram watch() binned itself (valid by construction: no checks, one json.dumps)."""

    kind = "histogram"

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def payload(self, key: str, opts: Options) -> Payload:
        return Payload("json", json.dumps(self.data).encode())


def _grad_enabled() -> bool:
    import torch

    return bool(torch.is_grad_enabled())


def watch(run: Any, model: Any, *, every: int = 100, log: str = "gradients", bins: int = 64) -> Watch:
    if not (hasattr(model, "named_parameters") and hasattr(model, "register_forward_pre_hook")):
        raise ConfigError(f"watch(): {type(model).__name__} is not a torch.nn.Module. Fix: pass the model")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError(f"watch(): every={every!r} is not a whole number >= 1. Fix: e.g. every=100")
    if not isinstance(log, str) or log not in _LOG:
        raise ConfigError(f"watch(): log={log!r} is not one of {list(_LOG)}. Fix: pass one of them")
    if not isinstance(bins, int) or isinstance(bins, bool) or not 1 <= bins <= 512:
        raise ConfigError(f"watch(): bins={bins!r} is not from 1 to 512. Fix: e.g. bins=64")
    return Watch(run, model, every, log, bins)
