"""One run to TensorBoard + W&B + MLflow at once; each backend isolated from the others."""

from __future__ import annotations

import os
import signal
import socket
import time
import warnings
from collections.abc import Callable

import pytest

import trackkit
from trackkit.events import Status
from trackkit.registry import load_reader, parse_backend


def _backends(tmp: str) -> list[str]:
    return [f"tensorboard:{tmp}/tb", f"wandb:fan?mode=offline&dir={tmp}/wb", f"mlflow:{tmp}/mlflow.db"]


@pytest.mark.slow
def test_same_run_in_all_three(tmp_path: object) -> None:
    tmp = str(tmp_path)
    with trackkit.init(config={"optimizer": {"lr": 0.1}}, project="fan", backend=_backends(tmp), root=f"{tmp}/j",
                       capture=False, tags={"team": "a"}, drain_timeout=60) as run:
        for i in range(50):
            run.log({"loss": 1.0 / (i + 1)}, step=i)
    for b in _backends(tmp):
        rec = load_reader(parse_backend(b)).read_run(run.id)
        assert [s for s, _ in rec.metrics()["loss"]] == list(range(50)), b
        assert rec.info.status is Status.COMPLETED, b
        assert rec.info.config["optimizer"]["lr"] == pytest.approx(0.1), b
        assert rec.info.tags.get("team") == "a", b


def _stop_agent(run_dir: str) -> None:
    """SIGTERM the run's lingering agent (it would retry a dead backend for another 2 minutes)."""
    with open(os.path.join(run_dir, "agent.log")) as fh:
        pids = [int(line.split("(pid ")[1].split(")")[0]) for line in fh if "agent started (pid " in line]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cf:
                cmdline = cf.read()
            # only that agent: a pid since reused by another process is left alone
            if b"trackkit.agent" in cmdline and os.path.abspath(run_dir).encode() in cmdline:
                os.kill(pid, signal.SIGTERM)
        except (OSError, ProcessLookupError):
            pass


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def _eventually(check: Callable[[], None], timeout: float) -> None:
    """Run ``check`` until it passes; after ``timeout`` seconds run it once more and let it fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            check()
            return
        except Exception:  # not there yet (AssertionError, or a backend file still being written)
            time.sleep(0.2)
    check()


#: finish()'s bound: AgentHandle.wait gives the agent drain_timeout + 1 s; the other 4 s are for
#: writing and fsyncing the journal's last records on a loaded machine. A finish() that waited for
#: the dead backend would take its whole retry schedule (the agent lingers 120 s).
FINISH_MARGIN_S = 1 + 4


@pytest.mark.slow
def test_a_failing_backend_never_blocks_the_others(tmp_path: object) -> None:
    tmp = str(tmp_path)
    dead = f"mlflow://127.0.0.1:{_dead_port()}"
    backends = [f"tensorboard:{tmp}/tb", f"wandb:fan?mode=offline&dir={tmp}/wb", dead]
    run = trackkit.init(project="fan", backend=backends, root=f"{tmp}/j", capture=False, drain_timeout=8)
    for i in range(20):
        run.log({"loss": float(i)}, step=i)
    t0 = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.finish()
    assert time.monotonic() - t0 < 8 + FINISH_MARGIN_S  # bounded by the drain deadline
    assert any("not yet delivered" in str(w.message) and "mlflow" in str(w.message) for w in caught)

    # The good backends get everything although MLflow keeps failing. On a slow machine the agent
    # (which outlives finish() and keeps delivering) may need longer than the drain deadline to start
    # W&B: wait for the data itself, read back through each backend's Reader, not for a fixed time.
    def good_backends_have_the_run() -> None:
        for b in backends[:2]:
            rec = load_reader(parse_backend(b)).read_run(run.id)
            assert [s for s, _ in rec.metrics()["loss"]] == list(range(20)), b
            assert rec.info.status is Status.COMPLETED, b

    _eventually(good_backends_have_the_run, timeout=120)
    pending = run._agent.pending()
    assert len(pending) == 1 and pending[0].startswith("mlflow")
    _stop_agent(run.dir)


@pytest.mark.slow
def test_a_backend_that_hangs_never_holds_up_the_others(tmp_path: object) -> None:
    """MLflow's server accepts connections and never answers (each call waits its full HTTP timeout):
    TensorBoard still receives every point while the run is live, not after MLflow gives up."""
    from tk_mlflow_server import Blackhole, free_port

    tmp = str(tmp_path)
    port = free_port()
    hole = Blackhole(port)
    try:
        # MLflow first: a serial agent would reach TensorBoard only after MLflow's call gave up
        run = trackkit.init(project="fan", backend=[f"mlflow://127.0.0.1:{port}", f"tensorboard:{tmp}/tb"],
                            root=f"{tmp}/j", capture=False, drain_timeout=3, flush_interval=0.2)
        # first MLflow's call must hang: wait until the agent (which imports mlflow first, slow on a
        # loaded machine) has connected to the silent server
        deadline = time.monotonic() + 120
        while not hole.conns and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hole.conns, "the agent never connected to the silent MLflow server"
        for i in range(20):
            run.log({"loss": float(i)}, step=i)
        # then TensorBoard must get every point while that call still hangs: before it gives up
        # (MLflow's 15 s HTTP timeout) and the agent logs the failure. A serial agent would deliver
        # TensorBoard only after that. The 60 s deadline only bounds a broken agent.
        deadline = time.monotonic() + 60
        while any(p.startswith("tensorboard") for p in run.pending()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in run.pending() if p.startswith("tensorboard")] == []
        assert any(p.startswith("mlflow") for p in run.pending())
        with open(os.path.join(run.dir, "agent.log")) as fh:
            agent_log = fh.read()
        assert "mlflow: delivery failed" not in agent_log, agent_log[-3000:]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run.finish()
    finally:
        hole.close()
    _stop_agent(run.dir)
    rec = load_reader(parse_backend(f"tensorboard:{tmp}/tb")).read_run(run.id)
    assert [s for s, _ in rec.metrics()["loss"]] == list(range(20))
