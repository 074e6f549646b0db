"""Query, compare and migrate runs: two TensorBoard runs -> a filter -> a comparison -> MLflow, verified.

Runs offline in a few seconds and writes only below the current directory::

    python examples/migrate_runs.py

The same from the shell::

    trackkit runs --backend tensorboard:./runs --where "config.optimizer.lr<0.05" --sort -metrics.eval/acc
    trackkit compare sgd-0.1 sgd-0.01 --backend tensorboard:./runs
    trackkit migrate --from tensorboard:./runs --to mlflow:./mlflow.db --all
"""

from __future__ import annotations

import math

import trackkit
from trackkit.migrate import migrate
from trackkit.query import compare, find_runs, load_runs

TB = "tensorboard:./runs"
MLFLOW = "mlflow:./mlflow.db"


def train(lr: float) -> str:
    """A toy training loop: the loss decays faster with a larger learning rate."""
    run = trackkit.init({"optimizer": {"name": "sgd", "lr": lr}, "epochs": 3}, project="sweep", name=f"sgd-{lr}",
                        tags={"team": "vision"}, backend=TB, seed=0)
    with run:
        for step in range(30):
            loss = math.exp(-lr * 10 * step / 30)
            run.log({"train/loss": loss, "eval/acc": 1 - loss / 2}, step=step)
    run.wait_delivery(timeout=120)  # finish() returned once the journal was safe; read TensorBoard next
    return run.id


def main() -> None:
    ids = [train(0.1), train(0.01)]

    # 1. query: any backend's stored runs, filtered and sorted
    rows = find_runs([TB], project="sweep", where=["status=completed", "tag.team=vision", "config.optimizer.lr<0.05"])
    print("slow learners:", [(r.name, round(r.last_metrics["eval/acc"], 3)) for r in rows])
    best = find_runs([TB], project="sweep", sort_by="-metrics.eval/acc", limit=1)[0]
    print("best run:", best.name, best.backend)

    # 2. compare: config keys that differ, last/min/max of every metric
    table = compare(load_runs(ids, [TB]))
    print("config differs:", table.config_differs)
    print("config shared:", sorted(table.config_same))
    for key, per_run in table.metrics.items():
        print(f"  {key}: " + "  ".join(f"{label}={s.last:.3f}" for label, s in zip(table.labels, per_run) if s))

    # 3. migrate to MLflow and verify every point, the config, tags, status and artifacts
    for run_id in ids:
        report = migrate(run_id, TB, MLFLOW)
        print(report.summary())
        assert report.ok, report.mismatches
    # a second migration does not duplicate anything: the copy is only verified again
    again = migrate(ids[0], TB, MLFLOW)
    print("second time:", "already there" if again.already_present else "copied", "- ok" if again.ok else "- FAILED")
    print("now in MLflow:", [r.name for r in find_runs([MLFLOW], project="sweep", sort_by="name")])


if __name__ == "__main__":
    main()
