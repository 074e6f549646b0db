"""Cost of one log() call in the calling thread, trackkit vs torch's SummaryWriter.add_scalar.

    python benchmarks/bench_log.py [--n 20000] [--repeats 7]
    python benchmarks/bench_log.py --in-step [--rounds 16] [--block 300]

Both run in this process, alternating, on the same machine; the median of the
per-repeat medians is printed with the ratio. trackkit has TensorBoard attached
through its delivery agent (a separate process by default, --agent thread to
compare the in-process agent).

``--in-step``: the same call timed right after each step of bench_training.py's MLP (784-256-10,
batch 64, one torch thread), where the step has pushed the caller's code and data out of the CPU's
caches, beside its parts: ``MetricLines.encode`` of the values (with ``time.time()``), the journal's
store of a line of the same length, ``repr`` of two floats (what the line's text costs), ``struct``
packing of the same numbers, ``time.time()``, an empty call, and ``SummaryWriter.add_scalar``.
Alternated in blocks of --block steps, in a fresh order each round; mean and median per call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings


def per_call(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    """Median cost in microseconds over n calls, timed in blocks of 100 to beat timer resolution."""
    block = 100
    samples = []
    perf = time.perf_counter_ns
    for b in range(n // block):
        t0 = perf()
        for i in range(b * block, (b + 1) * block):
            fn(i)
        samples.append((perf() - t0) / block / 1000)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--agent", default="process")
    ap.add_argument("--in-step", action="store_true", help="time the call after each step of a training loop")
    ap.add_argument("--rounds", type=int, default=16, help="--in-step: rounds of alternated blocks")
    ap.add_argument("--block", type=int, default=300, help="--in-step: steps per block")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.in_step:
        in_step(args)
        return
    from torch.utils.tensorboard import SummaryWriter

    import trackkit

    tmp = tempfile.mkdtemp(prefix="bench-log-")
    run = trackkit.init(project="bench", backend=f"tensorboard:{tmp}/tk", root=f"{tmp}/j", capture=False,
                        agent=args.agent)
    writer = SummaryWriter(os.path.join(tmp, "native"))
    tk_times, sw_times = [], []
    step = [0]

    def tk(i: int) -> None:
        run.log({"loss": 0.5}, step=step[0] + i)

    def sw(i: int) -> None:
        writer.add_scalar("loss", 0.5, step[0] + i)

    for _ in range(args.repeats):
        tk_times.append(per_call(tk, args.n))
        sw_times.append(per_call(sw, args.n))
        step[0] += args.n
    t0 = time.perf_counter()
    run.finish()
    drain = time.perf_counter() - t0
    writer.close()
    tk_med, sw_med = statistics.median(tk_times), statistics.median(sw_times)
    print(f"calls per repeat      : {args.n} x {args.repeats} repeats (agent={args.agent})")
    print(f"trackkit run.log      : {tk_med:.2f} us/call (repeats: {', '.join(f'{t:.2f}' for t in tk_times)})")
    print(f"SummaryWriter.add_scalar: {sw_med:.2f} us/call (repeats: {', '.join(f'{t:.2f}' for t in sw_times)})")
    print(f"ratio add_scalar / log: {sw_med / tk_med:.1f}x cheaper")
    print(f"finish() drain        : {drain:.2f} s for {args.n * args.repeats} points; pending: {run._agent.pending()}")


def in_step(args: argparse.Namespace) -> None:
    import random
    import struct

    from torch.utils.tensorboard import SummaryWriter

    import trackkit

    sys.path.insert(0, os.path.dirname(__file__))
    from _env import benchmark_mlp

    train_step = benchmark_mlp()

    tmp = tempfile.mkdtemp(prefix="bench-log-step-")
    run = trackkit.init(project="bench", backend=f"tensorboard:{tmp}/tk", root=f"{tmp}/j", capture=False,
                        console=False, system_metrics=False, agent=args.agent)
    run.log({"train/loss": 0.0}, step=0)
    encode, store = run._encode_metrics, run._journal.store
    line, _ = encode({"train/loss": 2.3025850929940455}, 1, time.time())
    assert line is not None
    writer = SummaryWriter(os.path.join(tmp, "native"))
    now, pack, rep = time.time, struct.Struct("<qdd").pack, float.__repr__
    calls = {
        "trackkit run.log": lambda s, v: run.log({"train/loss": v}, step=s),
        "  MetricLines.encode + time.time()": lambda s, v: encode({"train/loss": v}, s, now()),
        "  journal store of the line": lambda s, v: store(line),
        "  repr of 2 floats (time, value)": lambda s, v: (rep(v), rep(now())),
        "  struct.pack of step, time, value": lambda s, v: pack(s, now(), v),
        "  time.time()": lambda s, v: now(),
        "  an empty call": lambda s, v: None,
        "SummaryWriter.add_scalar": lambda s, v: writer.add_scalar("train/loss", v, s),
    }
    times: dict[str, list[float]] = {k: [] for k in calls}
    order, names, step, perf = random.Random(0), list(calls), 1, time.perf_counter
    for _ in range(5):
        train_step()
    for _ in range(args.rounds):
        order.shuffle(names)
        for name in names:
            fn, out = calls[name], times[name]
            for _ in range(args.block):
                v = train_step()
                t0 = perf()
                fn(step, v)
                out.append(perf() - t0)
                step += 1
    run.finish()
    writer.close()
    print(f"after each training step ({args.rounds} rounds x {args.block} steps per call, alternated; "
          f"agent={args.agent})")
    print(f"{'call':<38}{'mean us':>9}{'median us':>11}")
    for name, ts in times.items():
        print(f"{name:<38}{statistics.fmean(ts) * 1e6:>9.2f}{statistics.median(ts) * 1e6:>11.2f}")


if __name__ == "__main__":
    main()
