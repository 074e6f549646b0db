"""Cost of one log() call in the calling thread, trackkit vs torch's SummaryWriter.add_scalar.

    python benchmarks/bench_log.py [--n 20000] [--repeats 7]

Both run in this process, alternating, on the same machine; the median of the
per-repeat medians is printed with the ratio. trackkit has TensorBoard attached
through its delivery agent (a separate process by default, --agent thread to
compare the in-process agent).
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    args = ap.parse_args()
    warnings.simplefilter("ignore")
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


if __name__ == "__main__":
    main()
