"""``run.watch(model)`` with real torch on the CPU, into the in-memory backend: histograms at the due
steps only, counts that sum to each tensor's numel, one clear ConfigError for bad arguments,
``remove()``, frozen/unused parameters and NaN gradients; and bench_media.py --quick runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import trackkit
from trackkit import ConfigError
from trackkit.backends import memory
from trackkit.events import RunRecord

torch = pytest.importorskip("torch")
nn = torch.nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def new_run(tmp_path: Any) -> Iterator[Callable[[], tuple[trackkit.Run, Callable[[], RunRecord]]]]:
    names: list[str] = []

    def go() -> tuple[trackkit.Run, Callable[[], RunRecord]]:
        name = f"watch-{uuid.uuid4().hex[:8]}"
        names.append(name)
        run = trackkit.init(project="watch", backend=f"memory:{name}", root=str(tmp_path / "j"), capture=False)

        def record() -> RunRecord:
            if not run.finished:
                run.finish()
            return memory.store(name)[run.id]

        return run, record

    yield go
    for name in names:
        memory.clear(name)


def model() -> Any:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def train(run: trackkit.Run, m: Any, steps: int, *, poison: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.01)
    for step in range(steps):
        loss = m(torch.randn(5, 4)).pow(2).mean()
        if step in poison:
            loss = loss * float("nan")
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log({"loss": float(loss.detach())})


def histograms(rec: RunRecord) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    out = {}
    for key, items in rec.media("histogram").items():
        out[key] = [(ev.step, json.loads(open(ev.path, "rb").read())) for ev in items]
    return out


NAMES = ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_all_logs_both_at_due_steps_only(new_run: Any) -> None:
    run, record = new_run()
    m = model()
    run.watch(m, every=2, log="all")
    train(run, m, 7)
    got = histograms(record())
    assert sorted(got) == sorted([f"gradients/{n}" for n in NAMES] + [f"parameters/{n}" for n in NAMES])
    numel = dict(m.named_parameters())
    for key, items in got.items():
        assert [s for s, _ in items] == [0, 2, 4, 6], key  # the due steps, the loss's steps
        for _, h in items:
            assert len(h["counts"]) == 64 and len(h["edges"]) == 65
            assert sum(h["counts"]) == numel[key.split("/", 1)[1]].numel()
            assert h["edges"] == sorted(h["edges"])
    assert not run.problems


def test_gradients_default_and_parameters(new_run: Any) -> None:
    for log, prefix in (("gradients", "gradients/"), ("parameters", "parameters/")):
        run, record = new_run()
        m = model()
        run.watch(m, every=3) if log == "gradients" else run.watch(m, every=3, log=log)
        train(run, m, 7)
        got = histograms(record())
        assert sorted(got) == sorted(prefix + n for n in NAMES)
        assert all([s for s, _ in items] == [0, 3, 6] for items in got.values())


def test_weights_histogram_matches_the_weights(new_run: Any) -> None:
    run, record = new_run()
    m = model()
    w0 = m[0].weight.detach().clone()
    run.watch(m, every=100, log="parameters")
    train(run, m, 1)
    (step, h), = histograms(record())["parameters/0.weight"]
    assert step == 0
    assert h["edges"][0] == pytest.approx(float(w0.min())) and h["edges"][-1] == pytest.approx(float(w0.max()))
    expected = torch.histc(w0, bins=64, min=float(w0.min()), max=float(w0.max()))
    assert h["counts"] == [int(c) for c in expected]


@pytest.mark.parametrize("kwargs, text", [
    ({"log": "weights"}, "log='weights' is not one of ['gradients', 'parameters', 'all']"),
    ({"log": None}, "log=None is not one of"),
    ({"every": 0}, "every=0 is not a whole number >= 1"),
    ({"every": 2.5}, "every=2.5 is not a whole number"),
    ({"every": True}, "every=True is not a whole number"),
])
def test_bad_arguments_are_one_config_error(new_run: Any, kwargs: dict[str, Any], text: str) -> None:
    run, record = new_run()
    with pytest.raises(ConfigError) as info:
        run.watch(model(), **kwargs)
    msg = str(info.value)
    assert text in msg and "Fix:" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="is not a torch.nn.Module"):
        run.watch(object())
    record()


def test_remove_stops_it(new_run: Any) -> None:
    run, record = new_run()
    m = model()
    handle = run.watch(m, every=2, log="all")
    train(run, m, 3)  # due: 0, 2
    handle.remove()
    train(run, m, 4)  # steps 3..6: nothing more
    got = histograms(record())
    assert all([s for s, _ in items] == [0, 2] for items in got.values()), got
    assert not m._forward_pre_hooks
    assert all(not p._backward_hooks for p in m.parameters())


def test_no_gradient_hooks_between_due_steps(new_run: Any) -> None:
    run, record = new_run()
    m = model()
    handle = run.watch(m, every=4)
    train(run, m, 2)
    assert handle._grad_handles == [] and all(not p._backward_hooks for p in m.parameters())
    record()


def test_frozen_and_unused_parameters_do_not_stall_the_flush(new_run: Any) -> None:
    run, record = new_run()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.unused = nn.Linear(4, 4), nn.Linear(4, 2), nn.Linear(4, 4)

        def forward(self, x: Any) -> Any:
            return self.b(self.a(x))

    torch.manual_seed(0)
    m = Net()
    m.a.bias.requires_grad_(False)  # frozen before watch()
    run.watch(m, every=2)
    m.b.bias.requires_grad_(False)  # frozen after watch()
    train(run, m, 5)  # due 0, 2, 4; no remove(): the last due step is not left behind
    got = histograms(record())
    assert sorted(got) == ["gradients/a.weight", "gradients/b.weight"]
    for items in got.values():
        assert [s for s, _ in items] == [0, 2, 4]


def test_nan_gradient_does_not_raise(new_run: Any) -> None:
    run, record = new_run()
    m = model()
    run.watch(m, every=2, log="all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the NaN loss marks the run diverged; that is not watch()'s business
        train(run, m, 5, poison={2})
    got = histograms(record())
    for key, items in got.items():
        assert [s for s, _ in items] == [0, 2, 4], key
        for _, h in items:
            assert sum(h["counts"]) == dict(m.named_parameters())[key.split("/", 1)[1]].numel()


def test_one_copy_per_due_step(new_run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The counts of all histograms (weights and gradients) leave the device in ONE copy."""
    run, record = new_run()
    m = model()
    run.watch(m, every=2, log="all")
    calls = []
    real = torch.Tensor.cpu

    def counted(self: Any, *a: Any, **k: Any) -> Any:
        calls.append(tuple(self.shape))
        return real(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "cpu", counted)
    per_step = []
    for step in range(4):
        before = len(calls)
        train_one = m(torch.randn(5, 4)).pow(2).mean()
        train_one.backward()
        run.log({"loss": 1.0}, step=step)
        per_step.append(len(calls) - before)
    monkeypatch.undo()
    assert per_step == [1, 0, 1, 0]
    record()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_due_step_syncs_once(new_run: Any) -> None:
    run, record = new_run()
    m = model().cuda()
    run.watch(m, every=2, log="all")
    x = torch.randn(5, 4, device="cuda")
    syncs = []
    for step in range(4):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                m(x).pow(2).mean().backward()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs.append(sum("synchroniz" in str(w.message) for w in caught))
        run.log({"loss": 1.0}, step=step)
    assert syncs == [1, 0, 1, 0]
    assert len(histograms(record())) == 8


@pytest.mark.slow
def test_bench_media_quick_prints_ratios() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_media.py"), "--quick"],
                         capture_output=True, text=True, timeout=240, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for name in ("image 64x64x3 uint8", "histogram 1M float32", "matplotlib figure"):
        line = next(ln for ln in text.splitlines() if ln.startswith(name))
        assert re.search(r" \d+\.\dx ", line), line  # the ratio add_* / trackkit
    assert "image bar" in text
    for label in ("scalars only (baseline)", "every epoch", "histograms every", "watch(model, every=",
                  "log='all'"):
        assert label in text, text
    assert "%" in text


def test_evaluation_forwards_are_not_steps(new_run: Any) -> None:
    """Forwards under torch.no_grad() or in eval mode (a validation pass) do not count toward
    `every` and log nothing: the due steps stay the training steps."""
    run, record = new_run()
    m = model()
    run.watch(m, every=2, log="all")
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    for step in range(6):
        loss = m(torch.randn(5, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log({"loss": loss.item()}, step=step)
        with torch.no_grad():
            m(torch.randn(5, 4))  # validation, grad off
        m.eval()
        m(torch.randn(5, 4))  # eval mode, grad on
        m.train()
    rec = record()
    steps = sorted({h.step for h in rec.media("histogram")["gradients/0.weight"]})
    assert steps == [0, 2, 4], steps
    assert sorted({h.step for h in rec.media("histogram")["parameters/0.weight"]}) == [0, 2, 4]
