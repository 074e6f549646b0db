"""Make docs/img/report.png, the screenshot in docs/report.md: a small sweep (a study and 8 trials)
and two baseline runs written through ``trackkit.init``, their report drawn in headless Chromium.

    python scripts/report_screenshot.py [--out docs/img/report.png] [--keep report.html]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import tempfile

import numpy as np

import trackkit
from trackkit.report import Options, write_report
from trackkit.report.browser import Browser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(run: trackkit.Run, lr: float, width: int, steps: int, seed: int) -> float:
    rnd = random.Random(seed)
    acc = 0.0
    for s in range(steps):
        loss = math.exp(-lr * s / 30) * (1 + 0.3 / width) + 0.04 * rnd.random()
        acc = (1 - loss / 2) * (1 - abs(math.log10(lr) + 1.5) / 6)
        run.log({"train/loss": loss, "val/acc": acc}, step=s)
    img = np.zeros((32, 32, 3), dtype=np.uint8)
    img[4:28, 4:4 + int(24 * min(acc, 1))] = (60, 120, 200)
    run.log({"samples/reconstruction": trackkit.Image(img, caption=f"lr={lr:.3g}")}, step=steps)
    return acc


def make_runs(root: str) -> None:
    kw = {"project": "cifar-sweep", "backend": "memory", "agent": "thread", "capture": False, "root": root,
          "advisories": False}
    with trackkit.init({"dataset": "cifar10", "sweep": "lr x width"}, name="lr-width-study",
                       tags={"sweep.objective": "val/acc"}, **kw) as study:
        rnd = random.Random(0)
        for t in range(8):
            lr, width = 10 ** rnd.uniform(-3, 0), rnd.choice([64, 128, 256])
            with study.child(name=f"trial-{t}", config={"dataset": "cifar10", "lr": round(lr, 5), "width": width},
                             tags={"sweep.objective": "val/acc"}) as trial:
                acc = _train(trial, lr, width, 300, t)
                trial.summary.update({"val/acc": acc})
                if t == 5:
                    trial.finish("killed", "pruned at step 300")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "img", "report.png"))
    ap.add_argument("--keep", help="also keep the report's HTML here")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tk-shot-")
    try:
        root = os.path.join(tmp, ".trackkit")
        make_runs(root)
        html = os.path.join(tmp, "report.html")
        write_report(html, root=root, where=["parent"], options=Options(title="cifar-sweep: lr x width"))
        with Browser(timeout=120) as b:
            res = b.open(html, width=1280, height=2000, screenshot=True)
        if res.errors or res.rendered_s is None:
            raise SystemExit(f"the report did not draw cleanly: {res.errors}")
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "wb") as fh:
            fh.write(res.png)
        if args.keep:
            shutil.copy(html, args.keep)
        print(f"wrote {args.out} ({len(res.png) / 1e3:.0f} KB, drawn in {res.rendered_s:.1f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
