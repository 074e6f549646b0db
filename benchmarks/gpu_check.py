"""GPU check: trackkit on a CUDA training loop (run on a machine with a GPU).

    python benchmarks/gpu_check.py

1. provenance records CUDA, cuDNN and the GPU when torch uses one;
2. log() accepts 0-d CUDA tensors (one device sync each, which the user would pay for .item());
3. seed_everything(seed, deterministic=True) makes two GPU runs bit-identical, read back from TensorBoard;
4. the cost of trackkit on a GPU training step, against no logging, alternating, medians.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings

import torch
from torch import nn

import trackkit
from trackkit.registry import load_reader, parse_backend

warnings.simplefilter("ignore")
assert torch.cuda.is_available(), "no CUDA device"
tmp = tempfile.mkdtemp(prefix="gpu-check-")
backend = f"tensorboard:{tmp}/tb"


def train(seed: int, steps: int = 300) -> trackkit.Run:
    trackkit.seed_everything(seed, deterministic=True)
    with trackkit.init(project="gpu", backend=backend, root=f"{tmp}/j", seed=seed,
                       capture={"git": False, "packages": False}, drain_timeout=60) as run:
        model = nn.Sequential(nn.Linear(784, 2048), nn.ReLU(), nn.Linear(2048, 10)).cuda()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        g = torch.Generator(device="cuda").manual_seed(seed)
        for step in range(steps):
            x = torch.randn(256, 784, device="cuda", generator=g)
            y = torch.randint(0, 10, (256,), device="cuda", generator=g)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.log({"loss": loss.detach(), "lr": 0.05}, step=step)  # a 0-d CUDA tensor
    return run


r1, r2 = train(7), train(7)
env = r1.meta["env"]
print("provenance env.torch:", env.get("torch"))
print("provenance env.gpus:", env.get("gpus"))
reader = load_reader(parse_backend(backend))
m1 = reader.read_run(r1.id).metrics()["loss"]
m2 = reader.read_run(r2.id).metrics()["loss"]
print(f"run 1: {len(m1)} points, status {r1.status.value}, problems {dict(r1.problems)}")
print(f"bit-identical losses across two deterministic GPU runs: {m1 == m2} "
      f"(first {m1[0][1]:.6f}, last {m1[-1][1]:.6f})")

# overhead on a GPU step: a bigger model, loss logged every step (the .item() sync included in both arms)
model = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10)).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(512, 4096, device="cuda")
y = torch.randint(0, 10, (512,), device="cuda")
run = trackkit.init(project="gpu-bench", backend=backend, root=f"{tmp}/j", capture=False)
times: dict[str, list[float]] = {"item only": [], "trackkit log": []}
for rnd in range(40):
    for arm in (list(times) if rnd % 2 else list(times)[::-1]):  # alternate which arm goes first
        for _ in range(50):
            t0 = time.perf_counter()
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            v = loss.item()
            if arm == "trackkit log":
                run.log({"loss": v}, step=len(times[arm]))
            times[arm].append(time.perf_counter() - t0)
run.finish()
base = statistics.median(times["item only"])
for arm, ts in times.items():
    med = statistics.median(ts)
    print(f"{arm:<14} median step {med * 1e3:.3f} ms  overhead {(med / base - 1) * 100:+.2f}%")
print(torch.cuda.get_device_name(0), "torch", torch.__version__)
