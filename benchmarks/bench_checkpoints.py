"""A 100 MB state saved 3 times through ``ckpts.save`` with TensorBoard + W&B offline + MLflow sqlite
attached, against ``torch.save`` to a plain path in the same process.

Prints: the training thread's time per save (median of the 3) for both and their ratio (bar: at most
1.15x), and the disk the run and all three backends use (hard links counted once, as ``du`` does)
against the bytes of the kept checkpoints (bar: at most 1.3x). A second part runs the same saves with
``keep_last=1`` and reports the disk after retention.

    python benchmarks/bench_checkpoints.py [--mb 100] [--saves 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


def disk_used(*roots: str) -> int:
    """Bytes of regular files under ``roots``, each inode once (a hard link costs no bytes)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in roots:
        for d, _, files in os.walk(root):
            for f in files:
                try:
                    st = os.lstat(os.path.join(d, f))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def settle(run: object, timeout: float = 300.0) -> None:
    """Wait until the agent delivered everything the journal holds (then a little more)."""
    deadline = time.monotonic() + timeout
    while run.pending() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.5)
    time.sleep(2.0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--saves", type=int, default=3)
    args = p.parse_args()
    import torch

    import trackkit

    state = {"w": torch.randn(args.mb * (1 << 20) // 4)}
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as tmp:
        os.environ["WANDB_DIR"] = os.path.join(tmp, "wandb-env")
        os.environ["WANDB_DATA_DIR"] = os.path.join(tmp, "wandb-data")
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        os.chdir(tmp)
        for label, opts in (("keep all", {}), ("keep_last=1", {"keep_last": 1})):
            sub = os.path.join(tmp, label.replace("=", ""))
            os.makedirs(sub)
            backends = [f"tensorboard:{sub}/tb", f"wandb:bench?dir={sub}/wb", f"mlflow:{sub}/mlflow.db"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = trackkit.init(project="bench", backend=backends, root=f"{sub}/tk", seed=0, capture=False,
                                    drain_timeout=600)
            settle(run)  # the agent's start-up (SDK imports) is not a save's cost
            inner: list[float] = []

            def timed_save(obj: object, path: str, inner: list[float] = inner) -> None:  # torch.save in ckpts.save
                t = time.perf_counter()
                torch.save(obj, path)
                inner.append(time.perf_counter() - t)

            ck = run.checkpoints(monitor="val/acc", save_fn=timed_save, load_fn=torch.load, **opts)
            times, plain = [], []
            for i in range(args.saves):
                # alternated: torch.save (+ fsync, as a careful user does) to a plain path, then ckpts.save;
                # between saves the agent delivers (as it does while a real run trains)
                t0 = time.perf_counter()
                path = os.path.join(tmp, f"plain-{i}.pt")
                torch.save(state, path)
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
                plain.append(time.perf_counter() - t0)
                os.unlink(path)
                t0 = time.perf_counter()
                ck.save(state, step=i, epoch=i, metrics={"val/acc": 0.5 + i / 10})
                times.append(time.perf_counter() - t0)
                settle(run)
            run.finish()
            kept = sum(e.size for e in ck.list())
            used = disk_used(f"{sub}/tk", f"{sub}/tb", f"{sub}/wb", f"{sub}/mlartifacts", os.environ["WANDB_DATA_DIR"])
            mp, mc = statistics.median(plain), statistics.median(times)
            print(f"[{label}] torch.save median {mp:.3f} s; ckpts.save median {mc:.3f} s; ratio {mc / mp:.2f}x "
                  f"(bar 1.15x); per save: torch.save {[round(x, 3) for x in plain]}, ckpts.save "
                  f"{[round(x, 3) for x in times]}; pending {run.pending()}")
            print(f"[{label}] disk used by run + TensorBoard + W&B + MLflow: {used / 2**20:.1f} MiB; kept checkpoints "
                  f"{kept / 2**20:.1f} MiB; ratio {used / max(kept, 1):.2f}x (bar 1.3x)")
            own = [t - i for t, i in zip(times, inner)]
            print(f"[{label}] ckpts.save minus its torch.save (the fsync, link, index and journal record): "
                  f"{[round(x, 3) for x in own]} s; the fsync alone is in the plain arm too")
            for where in ("tk", "tb", "wb", "mlartifacts"):
                print(f"    {where}: {disk_used(f'{sub}/{where}') / 2**20:.1f} MiB alone (links shared)")


if __name__ == "__main__":
    main()
