"""Runs from different tools side by side: one person logs to TensorBoard, another to MLflow; a
small sweep (a parent run and its trials); one HTML report over both, and a PNG of the curves.

Runs offline in under a minute and writes only below the current directory::

    python examples/report.py

The same from the shell::

    trackkit report --backend tensorboard:./runs --backend mlflow:./mlflow.db --where "config.dataset=toy" \\
        --out report.html
    trackkit compare adam-tb sgd-mlflow --backend tensorboard:./runs --backend mlflow:./mlflow.db --plot curves.png
"""

from __future__ import annotations

import math
import os

import numpy as np

import trackkit
from trackkit.query import load_runs
from trackkit.report import write_report
from trackkit.report.png import plot_shared

TB = "tensorboard:./runs"
MLFLOW = "mlflow:./mlflow.db"


def train(run: trackkit.Run, lr: float, steps: int = 200) -> None:
    """A toy loop: the loss falls faster with a larger learning rate; an image at the end."""
    for step in range(steps):
        loss = math.exp(-lr * step / 20) + 0.02 * math.sin(step)
        run.log({"train/loss": loss, "val/acc": 1 - loss / 2}, step=step)
    img = np.zeros((32, 32, 3), dtype=np.uint8)
    img[:, : int(32 * min(lr, 1.0))] = (40, 160, 90)
    run.log({"samples": trackkit.Image(img, caption=f"lr={lr}")}, step=steps)


def main() -> None:
    # 1. two people, two tools
    with trackkit.init({"dataset": "toy", "optimizer": "adam", "lr": 0.5}, project="compare", name="adam-tb",
                       backend=TB, seed=0) as run:
        train(run, 0.5)
    with trackkit.init({"dataset": "toy", "optimizer": "sgd", "lr": 0.2}, project="compare", name="sgd-mlflow",
                       backend=MLFLOW, seed=0) as run:
        train(run, 0.2)
    # 2. a sweep: the study is the parent run, each trial a child (MLflow nests them)
    with trackkit.init({"dataset": "toy", "sweep": "lr"}, project="compare", name="lr-sweep", backend=MLFLOW,
                       seed=0, tags={"sweep.objective": "val/acc"}) as study:
        for lr in (0.05, 0.1, 0.3):
            with study.child(name=f"trial-lr{lr}", config={"dataset": "toy", "optimizer": "sgd", "lr": lr},
                             tags={"sweep.objective": "val/acc"}) as trial:
                train(trial, lr, steps=100)
                trial.summary.update({"val/acc": 1 - math.exp(-lr * 5) / 2})

    # 3. one report over both tools: the trackkit runs grammar selects
    data = write_report("report.html", backends=[TB, MLFLOW], where=["config.dataset=toy"], project="compare")
    size = os.path.getsize("report.html") / 1e6
    print(f"report.html: {len(data.runs)} runs, curves of {', '.join(data.curves)}, {size:.1f} MB "
          f"(open it in a browser; it needs no network)")
    assert data.sweep is not None, "the trials' sweep view"
    print(f"sweep view: {len(data.sweep['runs'])} trials, {[p['key'] for p in data.sweep['params']]} "
          f"vs {data.sweep['objective']}")

    # 4. a static PNG of the curves two runs share
    recs = load_runs(["adam-tb", "sgd-mlflow"], [TB, MLFLOW], project="compare")
    keys = plot_shared(recs, "curves.png")
    print(f"curves.png: {', '.join(keys)}")


if __name__ == "__main__":
    main()
