"""Where does trackkit's overhead on a launch-bound GPU step come from? (run on a GPU machine)

    python benchmarks/gpu_overhead.py [--rounds 60] [--steps 50]

gpu_check.py measured +1.2 % to +3.2 % on a ~2.8 ms GPU step with ``log()`` every step, more
than ``log()``'s own ~3 µs explains. Four arms, in a shuffled order every round, the same
model and batch, ``loss.item()`` in every arm:

* ``item only``      — no logging (the baseline);
* ``write(2) only``  — one ``os.write`` of a record-sized line to an O_APPEND file: the syscall alone;
* ``log, agent paused`` — ``run.log`` into a run whose delivery agent is SIGSTOPped for the whole
  benchmark: the cost of the call in the training thread, with no agent work anywhere;
* ``log, agent live``  — ``run.log`` into a run whose agent delivers to TensorBoard as usual.

If ``agent live`` > ``agent paused`` ≈ ``item only``, the agent's work competes with the trainer
(CPU, memory bandwidth, the GPU driver); if ``agent paused`` > ``item only``, the call itself costs.

Measured 2026-11-26 on one H100 (torch 2.11.0+cu130), 60 rounds x 50 steps, two runs, ~2.18 ms step:
write(2) only +0.40 % / +0.12 %, log agent paused +1.01 % / +0.75 %, log agent live +1.13 % / +1.00 %.
So the agent's work costs the trainer ~0.1-0.25 %; the rest is the call itself, ~16-22 µs when it
runs between CUDA launches (cold caches) against ~3 µs in bench_log's tight loop.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import tempfile
import time
import warnings

import torch
from torch import nn

import trackkit

warnings.simplefilter("ignore")


def agent_pid(run: trackkit.Run, timeout: float = 30.0) -> int:
    path = os.path.join(run.dir, "agent.log")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as fh:
                for line in fh:
                    if "agent started (pid " in line:
                        return int(line.split("(pid ")[1].split(")")[0])
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the agent never started")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    tmp = tempfile.mkdtemp(prefix="gpu-overhead-")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                          nn.Linear(4096, 10)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(512, 4096, device=dev)
    y = torch.randint(0, 10, (512,), device=dev)

    live = trackkit.init(project="live", backend=f"tensorboard:{tmp}/tb", root=f"{tmp}/j", capture=False,
                         reinit="create_new")
    paused = trackkit.init(project="paused", backend=f"tensorboard:{tmp}/tb", root=f"{tmp}/j", capture=False,
                           reinit="create_new")
    paused_pid = agent_pid(paused)
    agent_pid(live)
    os.kill(paused_pid, signal.SIGSTOP)
    fd = os.open(os.path.join(tmp, "raw.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    line = b'{"k":"m","s":123456,"t":1764150000.123456,"v":{"train/loss":0.123456789}}\n'

    arms = ["item only", "write(2) only", "log, agent paused", "log, agent live"]
    times: dict[str, list[float]] = {a: [] for a in arms}
    counters = {a: 0 for a in arms}
    rng = random.Random(0)
    for _ in range(5):  # warm-up: cuBLAS handles, allocator, clocks
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
    try:
        for _ in range(args.rounds):
            order = arms[:]
            rng.shuffle(order)
            for arm in order:
                for _ in range(args.steps):
                    t0 = time.perf_counter()
                    loss = nn.functional.cross_entropy(model(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    v = loss.item()
                    n = counters[arm]
                    if arm == "write(2) only":
                        os.write(fd, line)
                    elif arm == "log, agent paused":
                        paused.log({"train/loss": v}, step=n)
                    elif arm == "log, agent live":
                        live.log({"train/loss": v}, step=n)
                    counters[arm] = n + 1
                    times[arm].append(time.perf_counter() - t0)
    finally:
        os.kill(paused_pid, signal.SIGCONT)
        os.close(fd)
    live.finish()
    paused.finish()
    base = statistics.median(times["item only"])
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    print(f"{name}, torch {torch.__version__}, {args.rounds} rounds x {args.steps} steps per arm, shuffled")
    for arm in arms:
        ts = sorted(times[arm])
        med = statistics.median(ts)
        p90 = ts[int(0.9 * len(ts))]
        print(f"{arm:<18} median {med * 1e3:.4f} ms ({(med / base - 1) * 100:+.2f}%)  "
              f"mean {statistics.fmean(ts) * 1e3:.4f} ms  p90 {p90 * 1e3:.4f} ms")


if __name__ == "__main__":
    main()
