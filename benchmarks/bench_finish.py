"""What ``finish()`` costs in a sweep of short runs, ``finish_wait="delivery"`` against ``"journal"``.

    python benchmarks/bench_finish.py [--runs 20] [--steps 100] [--backend mlflow]

Each mode runs a sweep of ``--runs`` runs in one process (``init``, ``--steps`` ``log()`` calls,
``finish()``) delivering to a fresh MLflow sqlite store (``--backend tensorboard`` for TensorBoard).
Printed per mode: the median and total time spent in ``finish()``, the sweep's wall time, and, for
``"journal"``, how long after the sweep the agents (which deliver in the background) were done. Both
modes then read every run back from the store (status and points) to show nothing was lost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings


def sweep(tmp: str, mode: str, runs: int, steps: int, kind: str) -> None:
    import trackkit
    from trackkit.registry import load_reader, parse_backend

    backend = f"mlflow:{tmp}/{mode}.db" if kind == "mlflow" else f"tensorboard:{tmp}/{mode}-tb"
    finishes, started = [], time.perf_counter()
    live = []
    for r in range(runs):
        run = trackkit.init({"lr": 0.01 * (r + 1)}, project="sweep", name=f"{mode}-{r}", root=f"{tmp}/{mode}-j",
                            backend=backend, capture=False, finish_wait=mode, drain_timeout=120)
        for s in range(steps):
            run.log({"loss": 1.0 / (s + 1), "acc": s / steps}, step=s)
        t = time.perf_counter()
        run.finish()
        finishes.append(time.perf_counter() - t)
        live.append(run)
    wall = time.perf_counter() - started
    t = time.perf_counter()
    ok = all(run.wait_delivery(timeout=300) for run in live)
    after = time.perf_counter() - t
    reader = load_reader(parse_backend(backend))
    infos = {i.name: i for i in reader.list_runs("sweep")}
    complete = sum(1 for r in range(runs) if infos.get(f"{mode}-{r}") is not None
                   and infos[f"{mode}-{r}"].status.value == "completed" and infos[f"{mode}-{r}"].last_step == steps - 1)
    print(f"finish_wait={mode:8s}: finish() median {statistics.median(finishes) * 1000:7.1f} ms, total "
          f"{sum(finishes):6.2f} s; sweep wall {wall:6.2f} s; agents done {after:5.2f} s later; "
          f"{complete}/{runs} runs complete in the store{'' if ok else ' (some not delivered!)'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--backend", choices=["mlflow", "tensorboard"], default="mlflow")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.pop("TRACKKIT_FINISH_WAIT", None)
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("delivery", "journal"):
            sweep(tmp, mode, args.runs, args.steps, args.backend)


if __name__ == "__main__":
    main()
