"""Delivery throughput into MLflow: trackkit's agent vs raw MlflowClient.log_batch, same run, same store.

    python benchmarks/bench_delivery.py [--points 50000] [--server]

Raw capacity: log_batch in requests of 1000 metrics, as fast as the store takes them.
trackkit: log() the same number of points (returns at once), then time until the
delivery agent's cursor reaches the end of the journal. --server adds a real
`mlflow server` on 127.0.0.1 (started and stopped here).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from _env import offline_tmpdir


def raw_capacity(uri: str, n: int) -> float:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.create_experiment(f"raw-{time.time_ns()}")
    run_id = client.create_run(exp).info.run_id
    now = int(time.time() * 1000)
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (j + 1), now, j) for j in range(i, min(n, i + 1000))])
    return n / (time.perf_counter() - t0)


def trackkit_rate(backend: str, root: str, n: int) -> float:
    import trackkit

    run = trackkit.init(project="bench", backend=backend, root=root, capture=False, drain_timeout=600)
    run.log({"warmup": 0.0}, step=0)
    # wait until the agent is up and has delivered the start of the run (SDK import, run creation)
    while run._agent.pending():
        time.sleep(0.05)
    t0 = time.perf_counter()
    for i in range(n):
        run.log({"loss": 1.0 / (i + 1)}, step=i + 1)
    # finish() returns at once (timeout=0); the agent drains the backlog; delivered = every
    # backend's cursor at the end of the journal (the agent's process exit is not counted)
    run.finish(timeout=0)
    while run._agent.pending():
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    return n / elapsed


def start_server(tmp: str) -> tuple[subprocess.Popen[bytes], str]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp}/server.db", "--no-serve-artifacts",
         "--default-artifact-root", f"file://{tmp}/server-art"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("mlflow server did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=50000)
    ap.add_argument("--server", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are printed")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    tmp = offline_tmpdir("bench-delivery-")
    targets = [("sqlite", f"sqlite:///{tmp}/mlflow.db", f"mlflow:{tmp}/mlflow.db")]
    server = None
    if args.server:
        server, url = start_server(tmp)
        targets.append(("server", url, url.replace("http://", "mlflow://")))
    try:
        for label, uri, backend in targets:
            raw_capacity(uri, 1000)  # warm-up: schema, experiment, connection
            raws, tks = [], []
            for _ in range(args.rounds):
                raws.append(raw_capacity(uri, args.points))
                tks.append(trackkit_rate(backend, f"{tmp}/journal", args.points))
            raw, tk = statistics.median(raws), statistics.median(tks)
            print(f"mlflow {label:<7} raw log_batch: {raw:>9.0f} points/s   trackkit delivery: {tk:>9.0f} points/s   "
                  f"ratio {tk / raw * 100:5.1f}%")
            # each trackkit round against the raw round just before it (the load on a shared machine drifts)
            per_round = sorted(t / r * 100 for r, t in zip(raws, tks, strict=True))
            print(f"       {'':<7} per-round ratios: median {statistics.median(per_round):5.1f}%, "
                  f"range {per_round[0]:.1f}-{per_round[-1]:.1f}%", flush=True)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
