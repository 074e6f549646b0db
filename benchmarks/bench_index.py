"""The read side as runs pile up: ``trackkit runs``, ``runs --where``, ``runs --sort``, ``show`` and
``compare`` over a journal root of many runs, against ``trackkit --help`` (the CLI's start-up).

    python benchmarks/bench_index.py [--runs 1000] [--steps 1000] [--repeats 3] [--root DIR]

The root is built with trackkit's own journal writer (the line ``Run.log`` writes, the start and
finish records ``Run`` writes), then each command runs as a fresh process (``python -m trackkit``),
``--repeats`` times; the median wall time is printed with its ratio to ``--help``. The first
``runs`` after the build is timed apart ("cold"): no run has an index entry yet (runs whose agent
did not run, e.g. a journal copied from elsewhere), so every journal is read once and the index
written. The agent writes the entries as it delivers, so a root made by real runs is warm from
the start. ``--agent-index`` writes the entries as the agent would (``index.Summarizer``) before
timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def build(root: str, runs: int, steps: int) -> None:
    from trackkit.events import RunStarted, Status
    from trackkit.journal import JournalWriter, MetricLines, encode
    from trackkit.rundir import RunDir, ending_events

    lines = MetricLines(lambda k, v: None)
    t0 = time.time() - runs * 10
    for r in range(runs):
        rid = f"r{r:05d}"
        d = os.path.join(root, "bench", rid)
        os.makedirs(d, exist_ok=True)
        w = JournalWriter(RunDir(d).journal, rid, t0 + r)
        start = RunStarted(rid, "bench", f"run-{r}", t0 + r, group=f"g{r % 10}", tags={"team": "vision"},
                           config={"optimizer": {"lr": 10 ** -(1 + r % 4), "name": "adam"}, "seed": r},
                           meta={"backends": []})
        body = [encode(start)]
        for s in range(steps):
            line, _ = lines.format({"train/loss": 1.0 / (s + 1 + r), "eval/acc": s / steps, "lr": 0.1}, s,
                                   t0 + r + s * 0.001)
            assert line is not None
            body.append(line)
        body += [encode(ev) for ev in ending_events(Status.COMPLETED, "", steps - 1, 0, now=t0 + r + 5)]
        w.write_line("\n".join(body))  # one write: the same bytes as one write per record
        w.close()


def timed(args: list[str], repeats: int) -> float:
    times = []
    env = dict(os.environ, COLUMNS="200")
    for _ in range(repeats):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "trackkit", *args], capture_output=True, env=env)
        times.append(time.perf_counter() - t)
        if p.returncode != 0:
            raise SystemExit(f"trackkit {' '.join(args)} failed: {p.stderr.decode()[-2000:]}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--root", help="build the root here (default: a temporary directory)")
    ap.add_argument("--agent-index", action="store_true", help="write the index entries as the agent does")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        t = time.perf_counter()
        build(root, args.runs, args.steps)
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(root) for f in fs)
        print(f"built {args.runs} runs x {args.steps} steps ({size / 1e6:.0f} MB of journal) in "
              f"{time.perf_counter() - t:.1f} s")
        if args.agent_index:
            from trackkit.index import Summarizer

            t = time.perf_counter()
            for p in os.listdir(os.path.join(root, "bench")):
                s = Summarizer(os.path.join(root, "bench", p))
                s.catch_up()
                s.save()
            print(f"index entries written as the agent does: {time.perf_counter() - t:.1f} s")
        mid = f"r{args.runs // 2:05d}"
        help_s = timed(["--help"], args.repeats)
        cold = timed(["runs", "--root", root], 1)
        cases = [
            ("runs (cold: no index yet)" if not args.agent_index else "runs (first)", cold),
            ("runs", timed(["runs", "--root", root], args.repeats)),
            ("runs --where", timed(["runs", "--root", root, "--where", "config.optimizer.lr<0.01",
                                    "--where", "metrics.eval/acc>=0.5"], args.repeats)),
            ("runs --sort", timed(["runs", "--root", root, "--sort", "-metrics.train/loss", "-n", "10"],
                                  args.repeats)),
            (f"show {mid}", timed(["show", mid, "--root", root], args.repeats)),
            (f"compare {mid} r00001", timed(["compare", mid, "r00001", "--root", root], args.repeats)),
        ]
        print(f"trackkit --help: {help_s:.3f} s (median of {args.repeats})")
        for name, s in cases:
            print(f"{name:32s} {s:7.3f} s  {s / help_s:5.1f}x --help")


if __name__ == "__main__":
    main()
