"""Best values, names that say what ran, and ranks: two runs of a learning-rate sweep, found by their
best validation accuracy (not their last), in the journal and in TensorBoard and MLflow.

    python examples/best_values.py
    trackkit runs --where "metrics.val/acc.max>=0.9"          # the run that peaked, though it ended low
    trackkit runs --sort metrics.val/acc.best                 # best first
    trackkit runs --backend mlflow:./mlflow.db --where "metrics.val/acc.max>=0.9"

The runs are named from their config (``mlp_blobs_lr0.3_bs128_<time>``); a process with ``RANK=1``
(a second torchrun worker) records nothing at all. See docs/reading-back.md#best-values.
"""

from __future__ import annotations

import os
import subprocess
import sys

import trackkit
from trackkit.query import find_runs

BACKENDS = ["tensorboard:./runs", "mlflow:./mlflow.db"]
# a stand-in for training: validation accuracy per epoch of two learning rates
CURVES = {0.3: [0.55, 0.8, 0.95, 0.7, 0.5],  # too high: peaks at epoch 2, then falls apart
          0.03: [0.5, 0.6, 0.7, 0.75, 0.8]}  # steady

for lr, accs in CURVES.items():
    cfg = {"model": "mlp", "dataset": "blobs", "optimizer": {"name": "sgd", "lr": lr}, "batch_size": 128}
    with trackkit.init(cfg, project="sweep", backend=BACKENDS, seed=0, drain_timeout=120) as run:
        run.define_metric("val/acc", goal="max")  # which way is better: its best value and step are kept
        for epoch, acc in enumerate(accs):
            run.log({"val/acc": acc, "train/loss": 1.2 - acc}, step=epoch)
        run.summary["test/acc"] = round(max(accs) - 0.02, 2)  # a final figure: not a series
    print(f"{run.name}: last {accs[-1]}, best {max(accs)}")
    assert run.name.startswith(f"mlp_blobs_lr{lr:g}_bs128_"), run.name


def cli_runs(*args: str) -> list[dict]:
    """``trackkit runs ... --json`` as a user would type it."""
    import json

    out = subprocess.run([sys.executable, "-m", "trackkit", "runs", "--project", "sweep", *args, "--json"],
                         capture_output=True, text=True, check=True).stdout
    return list(json.loads(out))


peaked_names = [r["name"] for r in cli_runs("--where", "metrics.val/acc.max>=0.9")]
ranked = cli_runs("--sort", "metrics.val/acc.best")
print(f"journal: max>=0.9 -> {peaked_names}; best first -> {[r['name'] for r in ranked]}")
assert len(peaked_names) == 1 and "_lr0.3_" in peaked_names[0]
assert ranked[0]["metrics"]["val/acc"]["best"] == 0.95 and ranked[0]["metrics"]["val/acc"]["best_step"] == 2

for backend in BACKENDS:
    peaked = find_runs(backend, project="sweep", where="metrics.val/acc.max>=0.9")
    best = find_runs(backend, project="sweep", sort_by="metrics.val/acc.best")[0].best("val/acc")
    print(f"{backend}: max>=0.9 -> {[r.name for r in peaked]}; best (value, step) {best}")
    assert [r.name for r in peaked] == peaked_names
    assert best is not None and abs(best[0] - 0.95) < 1e-6 and best[1] == 2

# a second worker of a torchrun launch: init + log record nothing, create nothing
before = sorted(os.listdir("."))
worker = subprocess.run(
    [sys.executable, "-c", "import trackkit; r = trackkit.init(backend='tensorboard:./runs'); r.log({'x': 1}); "
                           "r.finish(); print(r.records)"],
    env={**os.environ, "RANK": "1", "WORLD_SIZE": "2"}, capture_output=True, text=True, check=True)
assert worker.stdout.strip() == "False" and sorted(os.listdir(".")) == before
print("rank 1 of 2: recorded nothing")
