"""Training-step overhead: no logging vs trackkit (TensorBoard + W&B + MLflow attached) vs each native SDK.

    python benchmarks/bench_training.py [--steps 2000] [--chunk 400]

A 784-256-10 MLP on CPU, batch 64, one torch thread, the loss logged every step.
All variants run in this one process, alternating in blocks of --chunk steps so
they see the same machine state. Printed per variant, against no logging:

* the median step (what a tight loop hides: a cold cache, a syscall, the agent on the sibling CPU);
* the **mean over the alternated blocks**, of wall time and of the training thread's own CPU
  (``time.thread_time``), with the range over the rounds (one block of each variant per round);
* the p99 step;

and, for trackkit, the **agent's CPU per point** (the agent process and the processes it started,
e.g. W&B's helper, from ``/proc``, once it has delivered every point), beside the CPU per point of
this process's other threads and helper processes (the native SDKs' writer threads, W&B's helper,
the thread agent). Native SDKs are called directly from the training loop, as users do:
SummaryWriter.add_scalar, wandb.log (offline), MlflowClient.log_metric (sqlite).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from _env import offline_tmpdir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000, help="steps per variant")
    ap.add_argument("--chunk", type=int, default=400, help="steps per block (variants alternate by block)")
    ap.add_argument("--mlflow-native-steps", type=int, default=400,
                    help="native MLflow costs ~20 ms a step; fewer steps keep the run short")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    tmp = offline_tmpdir("bench-training-")

    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    X = torch.randn(64, 784)
    y = torch.randint(0, 10, (64,))

    def train_step() -> float:
        loss = loss_fn(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    import trackkit

    run = trackkit.init(
        project="bench",
        backend=[f"tensorboard:{tmp}/tb", f"wandb:bench?mode=offline&dir={tmp}/wb", f"mlflow:{tmp}/tk-mlflow.db"],
        root=f"{tmp}/journal",
        capture=False,
        drain_timeout=120,
    )
    run_thread = trackkit.init(
        project="bench-thread",
        backend=[f"tensorboard:{tmp}/tb2", f"wandb:bench2?mode=offline&dir={tmp}/wb2", f"mlflow:{tmp}/tk2-mlflow.db"],
        root=f"{tmp}/journal2",
        capture=False,
        drain_timeout=120,
        agent="thread",
        reinit="create_new",  # both runs stay open: the variants alternate
    )
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(f"{tmp}/native-tb")
    import wandb

    wb = wandb.init(project="bench-native", dir=f"{tmp}/native-wb", mode="offline", reinit="create_new")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp}/native-mlflow.db")
    exp = client.create_experiment("bench-native")
    mlrun = client.create_run(exp).info.run_id

    counters = {"none": 0, "trackkit": 0, "trackkit-thread": 0, "tensorboard": 0, "wandb": 0, "mlflow": 0}

    def log_none(step: int, loss: float) -> None:
        pass

    def log_tk(step: int, loss: float) -> None:
        run.log({"train/loss": loss}, step=step)

    def log_tk_thread(step: int, loss: float) -> None:
        run_thread.log({"train/loss": loss}, step=step)

    def log_tb(step: int, loss: float) -> None:
        writer.add_scalar("train/loss", loss, step)

    def log_wb(step: int, loss: float) -> None:
        wb.log({"train/loss": loss}, step=step)

    def log_ml(step: int, loss: float) -> None:
        client.log_metric(mlrun, "train/loss", loss, step=step)

    variants = {"none": log_none, "trackkit": log_tk, "trackkit-thread": log_tk_thread, "tensorboard": log_tb,
                "wandb": log_wb, "mlflow": log_ml}
    budget = {k: args.steps for k in variants}
    budget["mlflow"] = args.mlflow_native_steps
    times: dict[str, list[float]] = {k: [] for k in variants}
    #: per round, per variant: (mean wall per step, mean training-thread CPU per step) of its block
    rounds: list[dict[str, tuple[float, float]]] = []
    for _ in range(5):  # warm-up
        train_step()
    # one point each, delivered, so the agents' SDK start-up (imports, stores) is not counted per point
    for name in ("trackkit", "trackkit-thread"):
        variants[name](0, 0.0)
        counters[name] = 1
    run.wait_delivery(timeout=300)
    run_thread.wait_delivery(timeout=300)
    agent0 = _process_tree_cpu(run._agent.proc.pid) if run._agent.proc is not None else 0.0
    cpu0 = _process_tree_cpu(os.getpid(), skip={run._agent.proc.pid} if run._agent.proc else set())
    main0 = time.thread_time()
    while any(counters[k] < budget[k] for k in variants):
        rnd: dict[str, tuple[float, float]] = {}
        for name, fn in variants.items():
            if counters[name] >= budget[name]:
                continue
            n = min(args.chunk, budget[name] - counters[name])
            if name == "mlflow":
                n = min(n, max(1, args.chunk // 5))
            w0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(n):
                t0 = time.perf_counter()
                loss = train_step()
                fn(counters[name], loss)
                times[name].append(time.perf_counter() - t0)
                counters[name] += 1
            rnd[name] = ((time.perf_counter() - w0) / n, (time.thread_time() - c0) / n)
        rounds.append(rnd)
    assert not run.finished and not run_thread.finished and not run.problems and not run_thread.problems
    main_cpu = time.thread_time()
    agent_cpu = None
    if run._agent.proc is not None:  # the agent's CPU once it has delivered every point, before finish
        run.wait_delivery(timeout=300)
        agent_cpu = _process_tree_cpu(run._agent.proc.pid) - agent0
    others = _process_tree_cpu(os.getpid(), skip={run._agent.proc.pid} if run._agent.proc else set()) - cpu0
    others -= main_cpu - main0
    t0 = time.perf_counter()
    run.finish(wait="delivery")
    drain = time.perf_counter() - t0
    run_thread.finish()
    writer.close()
    wb.finish()
    base = statistics.median(times["none"])
    print("torch threads 1, MLP 784-256-10, batch 64; steps per variant: "
          + ", ".join(f"{k}={len(v)}" for k, v in times.items()))
    mean_base = statistics.fmean(times["none"])
    print(f"{'variant':<34}{'median step':>14}{'overhead':>10}{'mean step':>12}{'overhead':>10}{'p99':>10}"
          f"{'block mean: wall':>26}{'trainer CPU':>22}")
    labels = {
        "none": "no logging",
        "trackkit": "trackkit -> TB + W&B + MLflow",
        "trackkit-thread": "  same, agent='thread'",
        "tensorboard": "native SummaryWriter.add_scalar",
        "wandb": "native wandb.log (offline)",
        "mlflow": "native MlflowClient.log_metric",
    }
    for name, ts in times.items():
        med, mean = statistics.median(ts), statistics.fmean(ts)
        p99 = sorted(ts)[int(len(ts) * 0.99)]
        print(f"{labels[name]:<34}{med * 1e3:>11.3f} ms{(med / base - 1) * 100:>+9.1f}%"
              f"{mean * 1e3:>9.3f} ms{(mean / mean_base - 1) * 100:>+9.1f}%{p99 * 1e3:>7.2f} ms"
              f"{_block_overhead(rounds, name, 0):>26}{_block_overhead(rounds, name, 1):>22}")
    points = counters["trackkit"] - 1
    if agent_cpu is not None:
        print(f"trackkit agent process (+ the processes it started, e.g. W&B's helper), after its SDKs started: "
              f"{agent_cpu / points * 1e6:.0f} us CPU per point ({points} points, each to TB + W&B + MLflow; "
              "trackkit's own share apart from the SDK calls is not separated here)")
    native = counters["tensorboard"] + counters["wandb"] + counters["mlflow"] + counters["trackkit-thread"]
    print(f"this process's other threads and helper processes (native SDK writers, W&B's helper, the thread agent): "
          f"{others / max(native, 1) * 1e6:.0f} us CPU per point over {native} points")
    print(f"trackkit finish(wait='delivery'): {drain:.2f} s to drain to all three; pending: {run._agent.pending()}")


def _block_overhead(rounds: list[dict[str, tuple[float, float]]], name: str, i: int) -> str:
    """The mean over rounds of a variant's block mean against no logging's block mean in the same
    round, with the range over the rounds: ``+3.9 % [+3.1, +4.6]``."""
    each = [r[name][i] / r["none"][i] - 1 for r in rounds if name in r and "none" in r and r["none"][i] > 0]
    if not each:
        return "-"
    return f"{statistics.fmean(each) * 100:+.1f} % [{min(each) * 100:+.1f}, {max(each) * 100:+.1f}]"


def _process_tree_cpu(pid: int, skip: set[int] | None = None) -> float:
    """CPU seconds (user + system) of a process and its descendants, from /proc (Linux); a subtree
    rooted at a pid in ``skip`` is left out."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    skip = skip or set()
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in skip:
            continue
        total += cpu.get(p, 0.0)
        todo += [c for c, pp in parents.items() if pp == p]
    return total


if __name__ == "__main__":
    main()
