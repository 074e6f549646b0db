"""Console capture and system metrics on vs off: training wall-time overhead on the benchmark MLP.

    python benchmarks/bench_console.py [--blocks 8] [--steps 1500] [--print-every 10] [--interval 1]
    python benchmarks/bench_console.py --prints 50000 [--blocks 4]     # the cost of one print

The MLP of bench_training.py (784-256-10, batch 64, CPU, one torch thread), ``run.log`` every step
and a ``print`` every --print-every steps (what a training script prints), in separate processes
(capture is per process) that alternate on / off block by block so both see the same machine.
"On": ``console=True, system_metrics=True, system_metrics_interval=--interval`` (1 s: ten times the
default rate); "off": both false. Both deliver to TensorBoard. Each block times its training loop
only (not init/finish); the script prints the mean block time of each and the overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _env import offline_tmpdir


def block(on: bool, steps: int, print_every: int, interval: float, tmp: str, out: str) -> None:
    import torch
    from torch import nn

    import trackkit

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    X, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    run = trackkit.init(project="bench-console", backend=f"tensorboard:{tmp}/tb", root=f"{tmp}/journal",
                        capture=False, advisories=False, drain_timeout=120, console=on, system_metrics=on,
                        system_metrics_interval=interval)
    t0 = time.perf_counter()
    for step in range(steps):
        loss = loss_fn(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = loss.item()
        run.log({"train/loss": value}, step=step)
        if step % print_every == 0:
            print(f"step {step} loss {value:.4f}", flush=True)
    elapsed = time.perf_counter() - t0
    run.finish()
    with open(out, "a") as fh:
        fh.write(json.dumps({"on": on, "s": elapsed, "steps": steps, "dir": run.dir}) + "\n")


def prints(on: bool, n: int, tmp: str, out: str) -> None:
    """The trainer's cost of printing itself: ``n`` flushed lines of 60 characters, captured or not."""
    import trackkit

    run = trackkit.init(project="bench-console", backend=f"tensorboard:{tmp}/tb", root=f"{tmp}/journal",
                        capture=False, advisories=False, drain_timeout=120, console=on, system_metrics=on)
    line = "x" * 59
    t0 = time.perf_counter()
    for _ in range(n):
        print(line, flush=True)
    elapsed = time.perf_counter() - t0
    run.finish()
    with open(out, "a") as fh:
        fh.write(json.dumps({"on": on, "s": elapsed, "steps": n, "dir": run.dir}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=8, help="blocks per variant (alternated)")
    ap.add_argument("--steps", type=int, default=1500, help="training steps per block")
    ap.add_argument("--print-every", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1, help="pairs of blocks run first and not counted")
    ap.add_argument("--interval", type=float, default=1.0, help="system_metrics_interval of the 'on' variant")
    ap.add_argument("--prints", type=int, default=0,
                    help="instead of training: time N flushed prints per block (the trainer's cost per line)")
    ap.add_argument("--block", choices=["on", "off"], help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.block and args.prints:
        prints(args.block == "on", args.prints, args.tmp, args.out)
        return
    if args.block:
        block(args.block == "on", args.steps, args.print_every, args.interval, args.tmp, args.out)
        return
    tmp = offline_tmpdir("bench-console-")
    out = os.path.join(tmp, "results.jsonl")
    common = ["--prints", str(args.prints), "--steps", str(args.steps), "--print-every", str(args.print_every),
              "--interval", str(args.interval), "--tmp", tmp, "--out", out]
    for i in range(2 * (args.blocks + args.warmup)):
        variant = ("on", "off")[i % 2] if (i // 2) % 2 == 0 else ("off", "on")[i % 2]  # on off off on on off ...
        subprocess.run([sys.executable, __file__, "--block", variant, *common], check=True,
                       stdout=subprocess.DEVNULL)
    with open(out) as fh:
        rows = [json.loads(line) for line in fh][2 * args.warmup:]
    on = [r["s"] for r in rows if r["on"]]
    off = [r["s"] for r in rows if not r["on"]]
    m_on, m_off = statistics.mean(on), statistics.mean(off)
    steps = rows[0]["steps"]
    kept = sum(1 for r in rows if r["on"] and os.path.exists(os.path.join(r["dir"], "console.log")))
    if args.prints:
        print(f"blocks: {len(on)} on, {len(off)} off, {steps} flushed prints of 60 bytes each (stdout: /dev/null)")
        print(f"off: {m_off / steps * 1e6:.2f} us/print; on: {m_on / steps * 1e6:.2f} us/print "
              f"({(m_on / m_off - 1) * 100:+.1f} %)")
        return
    print(f"blocks: {len(on)} on, {len(off)} off, {steps} steps each, a print every {args.print_every} steps, "
          f"system_metrics_interval={args.interval}")
    print(f"off: mean {m_off:.3f} s/block ({m_off / steps * 1e3:.3f} ms/step), stdev {statistics.stdev(off):.3f}")
    print(f"on:  mean {m_on:.3f} s/block ({m_on / steps * 1e3:.3f} ms/step), stdev {statistics.stdev(on):.3f}")
    print(f"overhead of console capture + system metrics: {(m_on / m_off - 1) * 100:+.1f} % "
          f"({kept}/{len(on)} 'on' runs kept a console.log)")


if __name__ == "__main__":
    main()
