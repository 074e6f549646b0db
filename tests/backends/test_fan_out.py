"""One run to TensorBoard + W&B + MLflow at once; each backend isolated from the others."""

from __future__ import annotations

import socket
import time
import warnings

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


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


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
    assert time.monotonic() - t0 < 8 + 5  # bounded by the drain deadline
    assert any("not yet delivered" in str(w.message) and "mlflow" in str(w.message) for w in caught)
    pending = run._agent.pending()
    assert len(pending) == 1 and pending[0].startswith("mlflow")
    for b in backends[:2]:
        rec = load_reader(parse_backend(b)).read_run(run.id)
        assert [s for s, _ in rec.metrics()["loss"]] == list(range(20)), b
        assert rec.info.status is Status.COMPLETED, b


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
        for i in range(20):
            run.log({"loss": float(i)}, step=i)
        deadline = time.monotonic() + 8  # well under MLflow's 15 s HTTP timeout
        while any(p.startswith("tensorboard") for p in run.pending()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in run.pending() if p.startswith("tensorboard")] == []
        assert any(p.startswith("mlflow") for p in run.pending())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run.finish()
    finally:
        hole.close()
    rec = load_reader(parse_backend(f"tensorboard:{tmp}/tb")).read_run(run.id)
    assert [s for s, _ in rec.metrics()["loss"]] == list(range(20))
