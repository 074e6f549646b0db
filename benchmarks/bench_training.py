"""Training-step overhead and the delivery agent's CPU: no logging vs trackkit (per backend set) vs each native SDK.

    python benchmarks/bench_training.py [--steps 2000] [--chunk 400] [--agent-steps 3000] [--floor-points 5000]
                                        [--only tk-tb,native-tb]

A 784-256-10 MLP on CPU, batch 64, one torch thread, the loss logged every step.

**Part 1, the trainer.** All variants run in this one process, alternating in blocks of --chunk
steps (in a fresh, seeded order each round) so they see the same machine state: no logging;
trackkit with TensorBoard, with W&B (offline), with MLflow (sqlite), with all three (process
agent), all three with agent="thread"; each native SDK called from the loop as users do
(SummaryWriter.add_scalar, wandb.log, MlflowClient.log_metric). Printed per variant, against no
logging: the median step, the **mean over the alternated blocks** of wall time and of the training
thread's own CPU (``time.thread_time``) with the half-width of its 95 % confidence interval and the
range over the rounds, and the p99 step. An agent delivers its block's points up to
``flush_interval`` (1 s) after the block, so part of its CPU lands on the blocks that follow (any
variant's, "no logging" too; the order changes every round, so no variant always follows the same
one): its cost is in part 2, per point.

**Part 2, the agent's CPU per point**, per backend set, after part 1: --agent-steps steps of the
same loop logging to that run alone (the agent's steady state at the trainer's pace), between two
moments at which it had delivered everything: the agent process's CPU
(from its own account, ``agent-stats.json``, written by the agent: RUSAGE_SELF, the delivery
loop's thread clock, each backend's sender thread clock and the part of it spent inside the
backend's calls, ``sink.emit``/``close``); the processes it started (W&B's ``wandb-core``, from
``/proc``, once they are idle); and trackkit's own share = the delivery loop + the senders outside
the backends' calls (the journal read and decode, the run index, cursors, the account itself).
The rest of the agent process is threads the SDKs started. Console capture and system metrics
are off in these runs (their cost is per second, not per point: bench_console.py).

**Part 3, each SDK's own floor** per point, used directly and alone after part 1 (this process's CPU,
all threads, plus W&B's helper process once idle): SummaryWriter.add_scalar + flush, wandb.log
(offline) + its helper, MlflowClient.log_batch of 1000 points to sqlite (what trackkit's MLflow
backend sends).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _env import benchmark_mlp, offline_tmpdir

#: the trackkit variants: label -> backends ("{tmp}" is the benchmark's directory)
SETS = {
    "tb": ["tensorboard:{tmp}/tb-{name}"],
    "wandb": ["wandb:bench-{name}?mode=offline&dir={tmp}/wb-{name}"],
    "mlflow": ["mlflow:{tmp}/ml-{name}.db"],
    "all": ["tensorboard:{tmp}/tb-{name}", "wandb:bench-{name}?mode=offline&dir={tmp}/wb-{name}",
            "mlflow:{tmp}/ml-{name}.db"],
}
LABELS = {"tb": "TensorBoard", "wandb": "W&B", "mlflow": "MLflow", "all": "TB + W&B + MLflow"}
#: the variants of part 1 besides no logging (--only picks some)
VARIANTS = [f"tk-{k}" for k in SETS] + ["tk-thread", "native-tb", "native-wandb", "native-mlflow"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000, help="steps per variant")
    ap.add_argument("--chunk", type=int, default=400, help="steps per block (variants alternate by block)")
    ap.add_argument("--mlflow-native-steps", type=int, default=400,
                    help="native MlflowClient.log_metric costs ~7-20 ms a step; fewer steps keep the run short")
    ap.add_argument("--agent-steps", type=int, default=3000, help="steps per backend set in part 2")
    ap.add_argument("--floor-points", type=int, default=5000, help="points per SDK in part 3")
    ap.add_argument("--no-thread", action="store_true", help="leave out the agent='thread' variant")
    ap.add_argument("--only", default="", help="a comma-separated subset of the variants (no logging always runs): "
                    + ",".join(VARIANTS) + "; fewer variants make each round shorter, so the machine drifts less "
                    "within it, and leave out the other variants' agents and helper processes")
    args = ap.parse_args()
    only = {v.strip() for v in args.only.split(",") if v.strip()} or set(VARIANTS)
    if only - set(VARIANTS):
        unknown = ", ".join(sorted(only - set(VARIANTS)))
        ap.error(f"--only: unknown variant(s) {unknown}; pick from {', '.join(VARIANTS)}")
    if args.no_thread:
        only.discard("tk-thread")
    warnings.simplefilter("ignore")
    tmp = offline_tmpdir("bench-training-")

    train_step = benchmark_mlp()

    import trackkit

    runs: dict[str, Any] = {}
    for name, backends in SETS.items():
        if f"tk-{name}" not in only:
            continue
        runs[name] = trackkit.init(
            project=f"bench-{name}", backend=[b.format(tmp=tmp, name=name) for b in backends],
            root=f"{tmp}/journal", capture=False, console=False, system_metrics=False, drain_timeout=120,
            reinit="create_new",  # every run stays open: the variants alternate
        )
    if "tk-thread" in only:
        runs["thread"] = trackkit.init(
            project="bench-thread", backend=[b.format(tmp=tmp, name="thread") for b in SETS["all"]],
            root=f"{tmp}/journal", capture=False, console=False, system_metrics=False, drain_timeout=120,
            agent="thread", reinit="create_new",
        )
    def tk(run: Any) -> Any:
        return lambda step, loss: run.log({"train/loss": loss}, step=step)

    variants: dict[str, Any] = {"none": lambda step, loss: None}
    variants.update({f"tk-{name}": tk(run) for name, run in runs.items()})
    writer = wb = None
    if "native-tb" in only:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(f"{tmp}/native-tb")
        variants["native-tb"] = lambda step, loss: writer.add_scalar("train/loss", loss, step)
    if "native-wandb" in only:
        import wandb

        wb = wandb.init(project="bench-native", dir=f"{tmp}/native-wb", mode="offline", reinit="create_new")
        variants["native-wandb"] = lambda step, loss: wb.log({"train/loss": loss}, step=step)
    if "native-mlflow" in only:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{tmp}/native-mlflow.db")
        mlrun = client.create_run(client.create_experiment("bench-native")).info.run_id
        variants["native-mlflow"] = lambda step, loss: client.log_metric(mlrun, "train/loss", loss, step=step)
    counters = dict.fromkeys(variants, 0)
    budget = dict.fromkeys(variants, args.steps)
    if "native-mlflow" in budget:
        budget["native-mlflow"] = args.mlflow_native_steps
    times: dict[str, list[float]] = {k: [] for k in variants}
    #: per round, per variant: (mean wall per step, mean training-thread CPU per step) of its block
    rounds: list[dict[str, tuple[float, float]]] = []
    for _ in range(5):  # warm-up
        train_step()
    # one point each, delivered, so the agents' SDK start-up (imports, stores) is not counted per point
    for name, run in runs.items():
        run.log({"train/loss": 0.0}, step=0)
        counters[f"tk-{name}"] = 1
    for run in runs.values():
        assert run.wait_delivery(timeout=300), run.pending()
    # each round runs the variants in a fresh order (seeded): a block is not always preceded by the
    # same variant, whose agent may still be delivering during it, nor always first or last in a round
    order = random.Random(0)
    while any(counters[k] < budget[k] for k in variants):
        rnd: dict[str, tuple[float, float]] = {}
        names = list(variants)
        order.shuffle(names)
        for name in names:
            fn = variants[name]
            if counters[name] >= budget[name]:
                continue
            n = min(args.chunk, budget[name] - counters[name])
            if name == "native-mlflow":
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
    assert all(not r.finished and not r.problems for r in runs.values())
    accounts = {}
    for name, run in runs.items():  # part 2: each process agent alone, at the trainer's pace
        if run._agent.proc is None:
            continue
        a = _account(run)
        for step in range(counters[f"tk-{name}"], counters[f"tk-{name}"] + args.agent_steps):
            run.log({"train/loss": train_step()}, step=step)
        accounts[name] = (a, _account(run))
    drains = {}
    for name, run in runs.items():
        t0 = time.perf_counter()
        run.finish(wait="delivery")
        drains[name] = (time.perf_counter() - t0, run._agent.pending())
    if writer is not None:
        writer.close()
    if wb is not None:
        wb.finish()

    labels = {"none": "no logging", "native-tb": "native SummaryWriter.add_scalar",
              "native-wandb": "native wandb.log (offline)", "native-mlflow": "native MlflowClient.log_metric",
              "tk-thread": "trackkit -> all three, agent='thread'"}
    labels.update({f"tk-{k}": f"trackkit -> {v}" for k, v in LABELS.items()})
    print("torch threads 1, MLP 784-256-10, batch 64; steps per variant: "
          + ", ".join(f"{k}={len(v)}" for k, v in times.items()) + f"; blocks of {args.chunk}, {len(rounds)} rounds")
    base, mean_base = statistics.median(times["none"]), statistics.fmean(times["none"])
    print(f"{'variant':<40}{'median step':>12}{'ovh':>8}{'p99':>10}{'block mean: wall, ±95 % CI':>36}"
          f"{'trainer CPU':>30}")
    for name, ts in times.items():
        med = statistics.median(ts)
        p99 = sorted(ts)[int(len(ts) * 0.99)]
        print(f"{labels[name]:<40}{med * 1e3:>9.3f} ms{(med / base - 1) * 100:>+7.1f}%{p99 * 1e3:>7.2f} ms"
              f"{_block_overhead(rounds, name, 0):>36}{_block_overhead(rounds, name, 1):>30}")
    print(f"(mean step of no logging {mean_base * 1e3:.3f} ms)")

    print(f"\nthe agent's CPU per point (us), {args.agent_steps} steps logged to each run alone; own = delivery loop "
          "+ senders outside the backends' calls")
    print(f"{'backends':<22}{'points':>7}{'agent total':>13}{'in SDK calls':>14}{'SDK threads':>13}"
          f"{'own (loop)':>14}{'helper procs':>14}{'finish(wait=delivery)':>24}")
    for name, (a, b) in accounts.items():
        points = args.agent_steps
        per = 1e6 / points
        total = b["process"] - a["process"]
        helpers = b["helpers"] - a["helpers"]
        if "sdk" in a:
            sdk = b["sdk"] - a["sdk"]
            loop = b["loop"] - a["loop"]
            own = loop + (b["senders"] - a["senders"]) - sdk
            split = f"{sdk * per:>14.1f}{(total - sdk - own) * per:>13.1f}{own * per:>8.2f} ({loop * per:.1f})"
        else:  # an agent without its CPU account (trackkit before it had one)
            split = f"{'-':>14}{'-':>13}{'-':>14}"
        print(f"{LABELS[name]:<22}{points:>7}{total * per:>13.1f}{split}{helpers * per:>14.1f}"
              f"{drains[name][0]:>19.2f} s {drains[name][1] or ''}")
    if "thread" in runs:
        print(f"agent='thread' (all three): finish {drains['thread'][0]:.2f} s (its CPU is the trainer process's)")

    print("\neach SDK's own floor, used directly and alone (us CPU per point, this process + its helper processes):")
    sdks = {sdk for sdk in ("tb", "wandb", "mlflow") if only & {f"tk-{sdk}", "tk-all", "tk-thread", f"native-{sdk}"}}
    for label, cost in _floors(tmp, args.floor_points, sdks):
        print(f"  {label:<60}{cost * 1e6:>8.1f}")


def _account(run: Any) -> dict[str, float]:
    """The agent's CPU so far, once it has delivered everything: its own account (agent-stats.json,
    written when it caught up) and its helper processes' CPU from /proc, once they are idle."""
    from trackkit.rundir import RunDir

    assert run.wait_delivery(timeout=300), run.pending()
    pid = run._agent.proc.pid
    helpers = _descendants(pid)
    idle = _idle(lambda: _cpu(helpers))
    rd = RunDir(run.dir)
    if not hasattr(rd, "load_agent_stats"):  # trackkit before the account: the agent's total from /proc
        return {"process": _idle(lambda: _cpu([pid])), "helpers": idle}
    cursors = {k: rd.load_cursor(k) for k in rd.load_agent_stats().get("sinks", {})}
    for _ in range(500):  # written when the agent caught up after a poke (just after the cursors)
        stats = rd.load_agent_stats()
        sinks = stats.get("sinks", {})
        if sinks and all(v["offset"] >= cursors.get(k, 0) for k, v in sinks.items()):
            break
        run._agent.poke()
        time.sleep(0.02)
    else:
        raise SystemExit(f"{run.dir}: the agent's account does not reach its cursors")
    return {"process": stats["process_cpu_s"], "loop": stats["loop_cpu_s"],
            "senders": sum(v["sender_cpu_s"] or 0.0 for v in sinks.values()),
            "sdk": sum(v["sdk_cpu_s"] for v in sinks.values()), "helpers": idle}


def _idle(measure: Any, quiet: float = 0.3, limit: float = 30.0) -> float:
    """``measure()`` once it stopped growing for ``quiet`` seconds (a helper process that still works
    through what it was sent), at most ``limit`` seconds."""
    last, since, end = measure(), time.monotonic(), time.monotonic() + limit
    while time.monotonic() < end:
        time.sleep(0.1)
        now = measure()
        if now > last + 0.005:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def _floors(tmp: str, n: int, sdks: set[str]) -> list[tuple[str, float]]:
    """Each SDK's floor per point, for the SDKs in ``sdks`` ("tb", "wandb", "mlflow")."""
    import resource

    def cpu() -> float:  # this process (every thread, to the microsecond) and its helper processes, once idle
        helpers = _descendants(os.getpid())

        def now() -> float:
            ru = resource.getrusage(resource.RUSAGE_SELF)
            return ru.ru_utime + ru.ru_stime + _cpu(helpers)

        return _idle(now)

    out = []
    if "tb" in sdks:
        out.append(_floor_tb(tmp, n, cpu))
    if "wandb" in sdks:
        out.append(_floor_wandb(tmp, n, cpu))
    if "mlflow" in sdks:
        out.append(_floor_mlflow(tmp, n, cpu))
    return out


def _floor_tb(tmp: str, n: int, cpu: Any) -> tuple[str, float]:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(f"{tmp}/floor-tb")
    w.add_scalar("train/loss", 0.0, 0)
    w.flush()
    c0 = cpu()
    for s in range(1, n + 1):
        w.add_scalar("train/loss", 1.0 / s, s)
    w.flush()
    cost = (cpu() - c0) / n
    w.close()
    return "TensorBoard: SummaryWriter.add_scalar + flush", cost


def _floor_wandb(tmp: str, n: int, cpu: Any) -> tuple[str, float]:
    import wandb

    run = wandb.init(project="bench-floor", dir=f"{tmp}/floor-wb", mode="offline", reinit="create_new")
    run.log({"train/loss": 0.0}, step=0)
    c0 = cpu()
    for s in range(1, n + 1):
        run.log({"train/loss": 1.0 / s}, step=s)
    cost = (cpu() - c0) / n
    run.finish()
    return "W&B: wandb.log, one row per step (offline), with wandb-core", cost


def _floor_mlflow(tmp: str, n: int, cpu: Any) -> tuple[str, float]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp}/floor-mlflow.db")
    rid = client.create_run(client.create_experiment("bench-floor")).info.run_id
    client.log_batch(rid, metrics=[Metric("train/loss", 0.0, 0, 0)])
    now = int(time.time() * 1000)
    c0 = cpu()
    for i in range(1, n + 1, 1000):
        client.log_batch(rid, metrics=[Metric("train/loss", 1.0 / s, now, s) for s in range(i, min(i + 1000, n + 1))])
    return "MLflow: MlflowClient.log_batch of 1000 points (sqlite)", (cpu() - c0) / n


def _block_overhead(rounds: list[dict[str, tuple[float, float]]], name: str, i: int) -> str:
    """The mean over rounds of a variant's block mean against no logging's block mean in the same
    round, the half-width of its 95 % confidence interval (t over the rounds) and the range over the
    rounds: ``+3.9 % ±1.2 [+3.1, +4.6]``."""
    each = [r[name][i] / r["none"][i] - 1 for r in rounds if name in r and "none" in r and r["none"][i] > 0]
    if not each:
        return "-"
    half = _T95.get(len(each) - 1, 1.96) * statistics.stdev(each) / len(each) ** 0.5 if len(each) > 1 else 0.0
    return f"{statistics.fmean(each) * 100:+.1f} % ±{half * 100:.1f} [{min(each) * 100:+.1f}, {max(each) * 100:+.1f}]"


#: Student's t at 97.5 % by degrees of freedom (beyond: the normal 1.96)
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 12: 2.18,
        15: 2.13, 20: 2.09, 24: 2.06, 30: 2.04, 40: 2.02, 60: 2.00}
_T95.update({d: _T95[max(k for k in _T95 if k <= d)] for d in range(1, 61) if d not in _T95})


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (W&B's wandb-core ...), from /proc (Linux): one scan, before measuring."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        todo += kids
    return out


def _cpu(pids: list[int]) -> float:
    """CPU seconds of these processes, every thread, from /proc/PID/task/TID/schedstat (nanoseconds;
    /proc/PID/stat counts 10 ms ticks); a process gone counts 0."""
    total = 0
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total / 1e9


if __name__ == "__main__":
    main()
