"""Migrating runs other tools wrote: trackkit migrate against the target's raw batch-write floor.

    python benchmarks/bench_migrate.py [--points 200000] [--keys 10] [--rounds 3] [--quick] [--growth]

For each direction (TensorBoard -> MLflow sqlite, MLflow sqlite -> W&B offline, W&B offline ->
TensorBoard) the source run is written by the tool itself (SummaryWriter, MlflowClient.log_batch,
wandb.log), then, each in a fresh child process:

* the floor: the same points written into the target with its own batch API, as fast as it takes
  them (MLflow ``log_batch`` of 1000 metrics, W&B one ``log`` per step, TensorBoard one
  ``add_scalar`` per point through one writer);
* ``trackkit.migrate.migrate`` of the run, verification included.

The two alternate over ``--rounds`` rounds (floor first in odd rounds, migrate first in even ones,
each into a fresh target), so a neighbour's burst on this shared machine falls on both sides alike.
Printed per round: seconds of each and the ratio, and where migrate's seconds went (``Report.phases``:
the source's read, the target's write, the verification); then the mean of each, the ratio of the means
(the figure for the bar) and the range of the per-round ratios; and each child's peak RSS (VmHWM)
beside the RSS of the same child after importing the two SDKs of the direction (what the
interpreter and the SDKs cost before any point; the floor's child imports the same two, so the two
peaks compare).
``--growth`` repeats TB -> MLflow at 10x the points to show how peak RSS grows with the run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _env import offline_tmpdir

STEP_KEYS = "train/loss", "train/acc", "val/loss", "val/acc", "lr", "grad_norm", "m6", "m7", "m8", "m9"


_SDK = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def _value(k: int, s: int) -> float:
    return 1.0 / (s + 1 + k)


def _rss_mb() -> float:
    """This process's peak RSS (VmHWM, which exec resets; ru_maxrss of a child starts at its parent's)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- fixtures, written by the tools


def make_tensorboard(logdir: str, steps: int, keys: int) -> None:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(logdir)
    for s in range(steps):
        for k in range(keys):
            w.add_scalar(STEP_KEYS[k], _value(k, s), s)
    w.close()


def make_mlflow(db: str, steps: int, keys: int) -> str:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("bench")
    run_id = client.create_run(exp, run_name="bench-src").info.run_id
    now = int(time.time() * 1000)
    batch: list[Metric] = []
    for s in range(steps):
        for k in range(keys):
            batch.append(Metric(STEP_KEYS[k], _value(k, s), now + s, s))
            if len(batch) == 1000:
                client.log_batch(run_id, metrics=batch)
                batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)
    client.set_terminated(run_id, "FINISHED")
    return run_id


def make_wandb(wdir: str, steps: int, keys: int) -> str:
    import wandb

    run = wandb.init(project="bench", dir=wdir, mode="offline", name="bench-src")
    for s in range(steps):
        run.log({STEP_KEYS[k]: _value(k, s) for k in range(keys)}, step=s)
    rid = run.id
    run.finish()
    return rid


# ---------------------------------------------------------------- the floors, in a child


def floor(target: str, dest: str, steps: int, keys: int) -> float:
    t0 = time.perf_counter()
    if target == "mlflow":
        make_mlflow(dest, steps, keys)
    elif target == "wandb":
        make_wandb(dest, steps, keys)
    else:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        w = EventFileWriter(dest)
        for s in range(steps):
            for k in range(keys):
                w.add_event(Event(step=s, wall_time=time.time(),
                                  summary=Summary(value=[Summary.Value(tag=STEP_KEYS[k], simple_value=_value(k, s))])))
        w.close()
    return time.perf_counter() - t0


def child(argv: list[str]) -> None:
    a = argparse.Namespace(**json.loads(argv[0]))
    offline_tmpdir("trackkit-bench-migrate-child-")
    import importlib

    # the SDKs this direction uses (what `trackkit migrate` itself imports), loaded before any point:
    # the baseline RSS. mlflow alone is ~170 MB (it imports pandas, pyarrow and scipy).
    for sdk in a.sdks:
        importlib.import_module(sdk)
    import trackkit.migrate

    base = _rss_mb()
    if a.what == "floor":
        secs = floor(a.target, a.dest, a.steps, a.keys)
        out = {"seconds": secs}
    else:
        t0 = time.perf_counter()
        rep = trackkit.migrate.migrate(a.run, a.source, a.target_spec)
        out = {"seconds": time.perf_counter() - t0, "ok": rep.ok, "points": rep.points, "phases": rep.phases,
               "mismatches": [str(m) for m in rep.mismatches[:3]], "error": rep.error}
    out.update(base_rss_mb=base, peak_rss_mb=_rss_mb())
    print(json.dumps(out))


def _run_child(**kw: object) -> dict[str, object]:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(kw)], capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"child failed: {proc.stderr[-2000:]}")
    last: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return last


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--points", type=int, default=200_000)
    p.add_argument("--keys", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="2,000 points: a smoke run in seconds")
    p.add_argument("--growth", action="store_true", help="also TB -> MLflow at 10x the points (peak RSS growth)")
    p.add_argument("--only", choices=["tb-mlflow", "mlflow-wandb", "wandb-tb"], default=None)
    p.add_argument("--rounds", type=int, default=3, help="alternated floor/migrate pairs per direction")
    p.add_argument("--child", default=None)
    a = p.parse_args()
    if a.child:
        child([a.child])
        return
    points = 2_000 if a.quick else a.points
    rounds = max(1, a.rounds)
    tmp = offline_tmpdir("trackkit-bench-migrate-")
    print(f"points per run: {points:,} ({a.keys} keys x {points // a.keys:,} steps); machine: {os.cpu_count()} CPUs; "
          f"{rounds} alternated rounds per direction")
    peaks: dict[tuple[str, int], float] = {}
    sizes = [points] + ([points * 10] if a.growth else [])
    for n in sizes:
        steps = n // a.keys
        for direction in ("tb-mlflow", "mlflow-wandb", "wandb-tb"):
            if (a.only and direction != a.only) or (n != points and direction != "tb-mlflow"):
                continue
            d = os.path.join(tmp, f"{direction}-{n}")
            os.makedirs(d)
            if direction == "tb-mlflow":
                make_tensorboard(os.path.join(d, "tb", "run1"), steps, a.keys)
                source, run, target = f"tensorboard:{d}/tb", "run1", "mlflow"
            elif direction == "mlflow-wandb":
                run = make_mlflow(os.path.join(d, "src.db"), steps, a.keys)
                source, target = f"mlflow:{d}/src.db", "wandb"
            else:
                os.makedirs(os.path.join(d, "ws"))
                run = make_wandb(os.path.join(d, "ws"), steps, a.keys)
                source, target = f"wandb:bench?dir={d}/ws", "tensorboard"
            sdks = sorted({_SDK[source.split(":")[0]], _SDK[target]})
            floors, migrates, ratios, fl_rss, mg_rss, base_rss = [], [], [], 0.0, 0.0, 0.0
            for r in range(rounds):
                fdest = os.path.join(d, f"floor{r}" + (".db" if target == "mlflow" else ""))
                if target == "wandb":
                    os.makedirs(fdest)
                tspec = {"mlflow": f"mlflow:{d}/target{r}.db", "wandb": f"wandb:bench?dir={d}/wt{r}",
                         "tensorboard": f"tensorboard:{d}/tt{r}"}[target]

                floor_kw = dict(what="floor", target=target, dest=fdest, steps=steps, keys=a.keys, sdks=sdks)
                migrate_kw = dict(what="migrate", run=run, source=source, target_spec=tspec, sdks=sdks)
                if r % 2 == 0:
                    fl, mg = _run_child(**floor_kw), _run_child(**migrate_kw)
                else:
                    mg = _run_child(**migrate_kw)
                    fl = _run_child(**floor_kw)
                f_s, m_s = float(fl["seconds"]), float(mg["seconds"])  # type: ignore[arg-type]
                floors.append(f_s)
                migrates.append(m_s)
                ratios.append(m_s / f_s)
                fl_rss = max(fl_rss, float(fl["peak_rss_mb"]))  # type: ignore[arg-type]
                mg_rss = max(mg_rss, float(mg["peak_rss_mb"]))  # type: ignore[arg-type]
                base_rss = max(base_rss, float(mg["base_rss_mb"]))  # type: ignore[arg-type]
                phases = ", ".join(f"{k} {v:.2f}" for k, v in dict(mg.get("phases") or {}).items())  # type: ignore[call-overload]
                print(f"{direction:13s} {n:>9,} points, round {r + 1}: floor {f_s:.2f} s, migrate {m_s:.2f} s "
                      f"({phases} s; verified: {mg['ok']}) = {m_s / f_s:.2f}x", flush=True)
                if not mg["ok"]:
                    print(f"   NOT OK: {mg['error'] or mg['mismatches']}")
            f_mean, m_mean = sum(floors) / rounds, sum(migrates) / rounds
            peaks[(direction, n)] = mg_rss
            print(f"{direction:13s} {n:>9,} points: mean floor {f_mean:.2f} s, mean migrate {m_mean:.2f} s "
                  f"= {m_mean / f_mean:.2f}x the floor (rounds {min(ratios):.2f}-{max(ratios):.2f}x); "
                  f"peak RSS floor {fl_rss:.0f} MB, migrate {mg_rss:.0f} MB (after imports: {base_rss:.0f} MB)",
                  flush=True)
    if a.growth and len(sizes) > 1:
        grow = peaks[("tb-mlflow", sizes[1])] - peaks[("tb-mlflow", sizes[0])]
        print(f"peak RSS growth TB -> MLflow {sizes[0]:,} -> {sizes[1]:,} points: {grow:+.0f} MB")


if __name__ == "__main__":
    main()
