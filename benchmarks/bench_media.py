"""Cost of media in the training thread: trackkit vs torch's SummaryWriter, and the training overhead.

    python benchmarks/bench_media.py [--only calls|training] [--quick]

Part 1 (``calls``), in this one process, alternating blocks of calls between the two sides:

* ``run.log({"img": trackkit.Image(64x64x3 uint8)})`` vs ``SummaryWriter.add_image`` of the same image;
* a histogram of 1M float32 values: ``trackkit.Histogram`` vs ``add_histogram``;
* a matplotlib figure: ``trackkit.Figure`` vs ``add_figure`` (the figure is made outside the timing).

Each prints the mean wall time per call over all blocks (never a median), the process CPU per call
(SummaryWriter's writer thread included: it is flushed, untimed, after each of its blocks), the
ratio, and the CPU the trackkit delivery agent (a separate process, TensorBoard attached) burned
per media value: after each trackkit block the benchmark waits until the agent has delivered it,
so the agent never competes with a timed block of the other side.

Part 2 (``training``): the benchmark MLP of bench_training.py (784-256-10, batch 64, one torch
thread, CPU), one model copy and one run per variant, all runs open at once and the variants
alternating in blocks of --block steps (shuffled each round). The baseline logs the loss every step; the others add
(i) an image every epoch (--epoch steps), (ii) histograms of the four parameters every 100 steps,
(iii) ``run.watch(model, every=100)`` (gradients) and ``log="all"``. Prints the mean step time of
each and its overhead over the baseline, the trainer process's CPU per step (robust to other
processes taking the CPU) and the CPU each run's agent burned.

``--quick`` runs both parts in a few seconds (for tests; the figures are not meaningful).
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _env import offline_tmpdir


def agent_procs(run: Any) -> list[Any]:
    """The run's agent process and its children (SDK helper processes)."""
    import psutil

    proc = getattr(run._agent, "proc", None)
    if proc is None:
        return []
    try:
        p = psutil.Process(proc.pid)
        return [p, *p.children(recursive=True)]
    except psutil.Error:
        return []


def agent_cpu(run: Any) -> float:
    """CPU seconds (user + system) the run's agent process and its children have burned so far."""
    import psutil

    total = 0.0
    for p in agent_procs(run):
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def drained(run: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while run.pending() and time.monotonic() < deadline:
        time.sleep(0.005)


# ---------------------------------------------------------------- part 1: one call


def bench_calls(args: argparse.Namespace, tmp: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    import trackkit

    run = trackkit.init(project="bench-media", backend=f"tensorboard:{tmp}/tk", root=f"{tmp}/j", capture=False,
                        agent="process", reinit="create_new")
    writer = SummaryWriter(os.path.join(tmp, "native"))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    values = rng.standard_normal(1_000_000).astype(np.float32)
    step = {"tk": 0, "sw": 0}

    def make_fig() -> Any:
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot(np.arange(100), rng.standard_normal(100).cumsum())
        ax.set_title("loss")
        return fig

    # name: (trackkit call, SummaryWriter call, calls per block, blocks, argument maker)
    q = args.quick
    cases: dict[str, tuple[Callable[[Any], None], Callable[[Any], None], int, int, Callable[[], Any]]] = {
        "image 64x64x3 uint8": (
            lambda a: run.log({"img": trackkit.Image(a)}, step=step["tk"]),
            lambda a: writer.add_image("img", a, step["sw"], dataformats="HWC"),
            20 if q else 200, 2 if q else 15, lambda: img),
        "histogram 1M float32": (
            lambda a: run.log({"hist": trackkit.Histogram(a)}, step=step["tk"]),
            lambda a: writer.add_histogram("hist", a, step["sw"]),
            1 if q else 5, 2 if q else 8, lambda: values),
        "matplotlib figure": (
            lambda a: run.log({"fig": trackkit.Figure(a)}, step=step["tk"]),
            lambda a: writer.add_figure("fig", a, step["sw"]),
            1 if q else 5, 2 if q else 8, make_fig),
    }
    # warm-up: imports, first-of-kind notes, the payload file, the agent's first encodes
    for tk_fn, sw_fn, _, _, make in cases.values():
        tk_fn(make())
        sw_fn(make())
        step["tk"] += 1
        step["sw"] += 1
    drained(run)
    t0, c0 = time.monotonic(), agent_cpu(run)
    time.sleep(0.5 if q else 2.0)
    idle_rate = (agent_cpu(run) - c0) / (time.monotonic() - t0)

    perf, cpu = time.perf_counter, time.process_time
    print(f"part 1: one media value per call, alternating blocks; agent=process (TensorBoard attached); "
          f"agent idle CPU {idle_rate * 1e3:.1f} ms/s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'media':<22}{'trackkit':>12}{'add_*':>12}{'ratio':>8}{'tk CPU':>12}{'add_* CPU':>12}"
          f"{'agent CPU/value':>18}{'calls':>8}")
    for name, (tk_fn, sw_fn, per_block, blocks, make) in cases.items():
        tk_wall = sw_wall = tk_cpu = sw_cpu = agent = 0.0
        n = 0
        for _ in range(blocks):
            args_tk = [make() for _ in range(per_block)]
            a0 = agent_cpu(run)
            w0, p0 = perf(), cpu()
            for a in args_tk:
                tk_fn(a)
                step["tk"] += 1
            tk_wall += perf() - w0
            tk_cpu += cpu() - p0
            d0 = time.monotonic()
            drained(run)
            agent += agent_cpu(run) - a0 - idle_rate * (time.monotonic() - d0)
            args_sw = [make() for _ in range(per_block)]
            w0, p0 = perf(), cpu()
            for a in args_sw:
                sw_fn(a)
                step["sw"] += 1
            sw_wall += perf() - w0
            writer.flush()  # its writer thread's work: counted in its CPU, not in the next trackkit block
            sw_cpu += cpu() - p0
            n += per_block
        writer.flush()
        tk_us, sw_us = tk_wall / n * 1e6, sw_wall / n * 1e6
        print(f"{name:<22}{_us(tk_us):>12}{_us(sw_us):>12}{sw_us / tk_us:>7.1f}x{_us(tk_cpu / n * 1e6):>12}"
              f"{_us(sw_cpu / n * 1e6):>12}{_us(max(agent, 0.0) / n * 1e6):>18}{n:>8}")
        if name.startswith("image"):
            ok = tk_us <= 50 and sw_us / tk_us >= 5
            print(f"  image bar (trackkit <= 50 us and >= 5x cheaper than add_image): {'met' if ok else 'NOT met'}")
    t0 = time.perf_counter()
    run.finish()
    print(f"  (ratio = add_* / trackkit; trackkit finish(): {time.perf_counter() - t0:.2f} s; "
          f"pending {run._agent.pending()}; problems {dict(run.problems)})")
    writer.close()


def _us(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.1f} us"


# ---------------------------------------------------------------- part 2: training overhead


def bench_training(args: argparse.Namespace, tmp: str) -> None:
    import numpy as np
    import torch
    from torch import nn

    import trackkit

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base_model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    loss_fn = nn.CrossEntropyLoss()
    X = torch.randn(64, 784)
    y = torch.randint(0, 10, (64,))
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    every, epoch = args.every, args.epoch

    class Arm:
        def __init__(self, name: str, label: str, kind: str, with_run: bool = True) -> None:
            self.name, self.label, self.kind = name, label, kind
            self.model = copy.deepcopy(base_model)
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01)
            self.run = None
            if with_run:
                self.run = trackkit.init(project="bench-media-train", name=name,
                                         backend=f"tensorboard:{tmp}/tb-{name}", root=f"{tmp}/j-{name}",
                                         capture=False, agent="process", reinit="create_new", drain_timeout=120)
            if kind in ("watch", "watch-all"):
                self.run.watch(self.model, every=every, log="all" if kind == "watch-all" else "gradients")
            self.step = 0
            self.seconds = self.cpu = 0.0
            self.steps = 0

        def train_step(self) -> None:
            loss = loss_fn(self.model(X), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            lv = loss.item()
            s = self.step
            if self.kind == "none":
                pass
            elif self.kind == "image" and s % epoch == 0:
                self.run.log({"train/loss": lv, "sample": trackkit.Image(img)}, step=s)
            elif self.kind == "hist" and s % every == 0:
                vals: dict[str, Any] = {"train/loss": lv}
                for pname, p in self.model.named_parameters():
                    vals[f"weights/{pname}"] = trackkit.Histogram(p.detach())
                self.run.log(vals, step=s)
            else:
                self.run.log({"train/loss": lv}, step=s)
            self.step += 1

    arms = [
        Arm("none", "no logging", "none", with_run=False),
        Arm("scalars", "scalars only (baseline)", "scalars"),
        Arm("image", f"+ image 64x64x3 every epoch ({epoch} steps)", "image"),
        Arm("hist", f"+ 4 parameter histograms every {every} steps", "hist"),
        Arm("watch", f"+ watch(model, every={every})", "watch"),
        Arm("watch-all", f"+ watch(model, every={every}, log='all')", "watch-all"),
    ]
    for arm in arms:  # warm-up; also the first of each kind (imports, notes)
        for _ in range(every + 1 if not args.quick else 2):
            arm.train_step()
    for arm in arms:
        arm.step = arm.steps = 0
        arm.seconds = arm.cpu = 0.0
    cpu0 = {a.name: agent_cpu(a.run) for a in arms if a.run is not None}
    perf, pcpu = time.perf_counter, time.process_time
    block = args.block
    order = list(arms)
    shuffle = random.Random(0).shuffle
    for _ in range(args.steps // block):
        shuffle(order)  # no variant always follows the same one
        for arm in order:
            t0, c0 = perf(), pcpu()
            for _ in range(block):
                arm.train_step()
            arm.seconds += perf() - t0
            arm.cpu += pcpu() - c0
            arm.steps += block
    for arm in arms:
        if arm.run is not None:
            drained(arm.run)
    cpu = {a.name: agent_cpu(a.run) - cpu0[a.name] for a in arms if a.run is not None}
    base = next(a for a in arms if a.name == "scalars")
    base_mean, base_cpu = base.seconds / base.steps, base.cpu / base.steps
    print(f"\npart 2: training overhead; MLP 784-256-10, batch 64, 1 torch thread, CPU; {args.steps} steps per "
          f"variant in alternated blocks of {block} (shuffled each round); TensorBoard attached, agent=process; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'variant':<46}{'mean step':>12}{'vs baseline':>13}{'per step':>11}{'trainer CPU':>14}{'vs baseline':>13}"
          f"{'agent CPU':>11}")
    for arm in arms:
        mean, c = arm.seconds / arm.steps, arm.cpu / arm.steps
        extra = (mean - base_mean) * 1e6
        agent = f"{cpu[arm.name]:.2f} s" if arm.name in cpu else "-"
        print(f"{arm.label:<46}{mean * 1e3:>9.3f} ms{(mean / base_mean - 1) * 100:>+12.2f}%{extra:>+8.1f} us"
              f"{c * 1e3:>11.3f} ms{(c / base_cpu - 1) * 100:>+12.2f}%{agent:>11}")
    for arm in arms:
        if arm.run is not None:
            arm.run.finish()
            if arm.run.problems:
                print(f"  {arm.name}: problems {dict(arm.run.problems)}")
    from trackkit.journal import read_journal

    media = {}
    for arm in arms:
        if arm.run is not None:
            journal = os.path.join(arm.run.dir, "journal.jsonl")
            media[arm.name] = sum(1 for r in read_journal(journal) if r.get("k") == "media")
    print("  media values journaled: " + ", ".join(f"{k}={v}" for k, v in media.items()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["calls", "training"], default=None)
    ap.add_argument("--quick", action="store_true", help="a few seconds, for tests")
    ap.add_argument("--steps", type=int, default=5000, help="part 2: steps per variant")
    ap.add_argument("--block", type=int, default=10, help="part 2: steps per alternated block")
    ap.add_argument("--every", type=int, default=100, help="part 2: histogram / watch period")
    ap.add_argument("--epoch", type=int, default=500, help="part 2: steps per epoch (one image each)")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.block, args.every, args.epoch = 40, 10, 10, 20
    warnings.simplefilter("ignore")
    tmp = offline_tmpdir("bench-media-")
    if args.only in (None, "calls"):
        bench_calls(args, tmp)
    if args.only in (None, "training"):
        bench_training(args, tmp)


if __name__ == "__main__":
    main()
