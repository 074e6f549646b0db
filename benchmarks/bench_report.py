"""``trackkit report`` at scale: 200 runs x 10,000 steps (2 metrics each), built, written and drawn
in headless Chromium.

    python benchmarks/bench_report.py [--runs 200] [--steps 10000] [--metrics 2] [--points 600] [--journal]

Prints: the time to build the report's data from the runs (downsampling included), to render the
HTML, the file's size (and how much of it is plotly's bundle), and in the browser the time from
navigation until every plot is drawn (the page's ``data-rendered`` mark), plus any console error.
The runs are made in memory (``RunRecord``s of ``Metrics`` events, as a Reader returns them);
``--journal`` writes them into a journal first (through ``trackkit.init``, the memory backend) and
times ``select_runs`` reading them back too. docs/report.md quotes the figures."""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _env import offline_tmpdir


def synthetic(runs: int, steps: int, metrics: int) -> list:  # type: ignore[type-arg]
    from trackkit.events import Metrics, RunFinished, RunInfo, RunRecord, RunStarted, Status

    out = []
    t0 = 1_790_000_000.0
    for r in range(runs):
        rnd = random.Random(r)
        lr = 10 ** rnd.uniform(-4, -1)
        start = RunStarted(f"run{r:04d}", "bench", f"run-{r}", t0 + r, config={"lr": lr, "layers": 2 + r % 4})
        events: list = [start]  # type: ignore[type-arg]
        for s in range(steps):
            vals = {f"m{k}/loss": math.exp(-s * lr / 10) + 0.05 * rnd.random() + k for k in range(metrics)}
            events.append(Metrics(s, t0 + r + s * 0.1, vals))
        events.append(RunFinished(Status.COMPLETED, t0 + r + steps * 0.1))
        info = RunInfo(start.run_id, "bench", start.name, "memory:")
        for ev in events:
            info.apply(ev)
        out.append(RunRecord(info, events))
    return out


def via_journal(recs: list, root: str) -> float:  # type: ignore[type-arg]
    import trackkit
    from trackkit.events import Metrics
    from trackkit.report import select_runs

    for rec in recs:
        run = trackkit.init(dict(rec.info.config), project="bench", name=rec.info.name, backend="memory",
                            agent="thread", capture=False, root=root, advisories=False)
        for ev in rec.events:
            if isinstance(ev, Metrics):
                run.log(dict(ev.values), step=ev.step)
        run.finish()
    t = time.perf_counter()
    got = select_runs(root=root)
    took = time.perf_counter() - t
    assert len(got) == len(recs)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--metrics", type=int, default=2)
    ap.add_argument("--points", type=int, default=600)
    ap.add_argument("--journal", action="store_true")
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    tmp = offline_tmpdir("tk-bench-report-")

    from trackkit.report import Options, build, render_html
    from trackkit.report.browser import Browser, find_chromium
    from trackkit.report.render import plotly_bundle

    t = time.perf_counter()
    recs = synthetic(args.runs, args.steps, args.metrics)
    print(f"{args.runs} runs x {args.steps:,} steps x {args.metrics} metrics "
          f"({args.runs * args.steps * args.metrics:,} points) made in {time.perf_counter() - t:.1f} s")
    if args.journal:
        print(f"select_runs over the journal: {via_journal(recs, os.path.join(tmp, 'journal')):.1f} s")
    t = time.perf_counter()
    data = build(recs, Options(points=args.points))
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    page = render_html(data)
    t_render = time.perf_counter() - t
    out = os.path.join(tmp, "report.html")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(page)
    size, bundle = os.path.getsize(out), len(plotly_bundle().encode())
    print(f"build (read series, downsample): {t_build:.2f} s; render HTML: {t_render:.2f} s")
    print(f"points: {data.points_read:,} read, {data.points_drawn:,} drawn (at most {args.points} per curve"
          + (f"; {data.notes[0]}" if data.notes else "") + ")")
    print(f"HTML: {size / 1e6:.1f} MB ({bundle / 1e6:.1f} MB plotly.js, {(size - bundle) / 1e6:.1f} MB report)")
    if args.no_browser:
        return
    if find_chromium() is None:
        print("browser: no Chromium (scripts/setup-test-env.sh)")
        return
    with Browser(timeout=300) as b:
        res = b.open(out, screenshot=False)
        drawn = b.evaluate("window.tkRenderMs")
    print(f"browser: page drawn {res.rendered_s:.1f} s after navigation (all plots: {drawn / 1000:.1f} s of it); "
          f"console errors: {len(res.errors)}" + (f" {res.errors[:3]}" if res.errors else ""))


if __name__ == "__main__":
    main()
