"""SIGKILL, SIGTERM, crash and exit codes of a real training process, read back from TensorBoard's files."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from trackkit.events import Status
from trackkit.journal import read_journal
from trackkit.registry import load_reader, parse_backend

from .helpers import acked_steps, read_until_ack, run_line, start_child, wait_agent_done


def _read(backend: str, run_id: str):  # type: ignore[no-untyped-def]
    return load_reader(parse_backend(backend)).read_run(run_id)


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_step_loses_nothing_acknowledged(tmp_path: object, seed: int) -> None:
    rnd = random.Random(seed)
    backend = f"tensorboard:{tmp_path}/runs"
    proc = start_child(backend, f"{tmp_path}/j", "--hz", "200")
    run_id, run_dir = read_until_ack(proc, 5)
    time.sleep(rnd.uniform(0.05, 0.5))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    acked = [*range(6), *acked_steps(out)]
    assert proc.returncode == -signal.SIGKILL
    # every acknowledged step is in the journal
    journaled = {r["s"] for r in read_journal(os.path.join(run_dir, "journal.jsonl")) if r.get("k") == "m"}
    assert set(acked) <= journaled
    # the agent outlived the trainer, marked the run killed and delivered everything
    log = wait_agent_done(run_dir)
    assert "marked the run killed" in log
    rec = _read(backend, run_id)
    assert rec.info.status is Status.KILLED
    stored = {s for s, _ in rec.metrics()["loss"]}
    assert set(acked) <= stored, sorted(set(acked) - stored)[:10]


def test_sigterm_marks_killed_and_keeps_exit_code(tmp_path: object) -> None:
    backend = f"tensorboard:{tmp_path}/runs"
    proc = start_child(backend, f"{tmp_path}/j", "--hz", "100")
    run_id, run_dir = read_until_ack(proc, 10)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, err
    acked = [*range(11), *acked_steps(out)]
    # finish() waits at most drain_timeout for delivery; on a slow machine the agent, which outlives
    # the trainer, may still be delivering when the trainer exits: read the backend once it is done
    wait_agent_done(run_dir)
    rec = _read(backend, run_id)
    assert rec.info.status is Status.KILLED and rec.info.reason == "SIGTERM"
    assert set(acked) <= {s for s, _ in rec.metrics()["loss"]}


@pytest.mark.parametrize(("mode", "status", "code", "reason"), [
    ("raise", Status.CRASHED, 1, "RuntimeError: exploded at step 20"),
    ("exit3", Status.CRASHED, 3, "sys.exit(3)"),
])
def test_uncaught_exception_and_exit_code(tmp_path: object, mode: str, status: Status, code: int, reason: str) -> None:
    backend = f"tensorboard:{tmp_path}/runs"
    proc = start_child(backend, f"{tmp_path}/j", "--hz", "1000", "--mode", mode)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    run_id, run_dir = run_line(out)
    wait_agent_done(run_dir)  # the agent may outlive the trainer's drain_timeout on a slow machine
    rec = _read(backend, run_id)
    assert rec.info.status is status
    assert reason in rec.info.reason
    assert {s for s, _ in rec.metrics()["loss"]} == set(range(21))


def test_sync_never_runs_beside_a_live_agent(tmp_path: object) -> None:
    """One deliverer per run: while an agent holds the run's delivery lock, sync skips it (nothing sent twice)."""
    import subprocess
    import sys

    import trackkit
    from trackkit.rundir import RunDir

    # drain_timeout: finish() returns as soon as the thread agent delivered; the default 10 s may
    # be too short for a loaded machine, and the test needs the run delivered (a cursor) below
    run = trackkit.init(project="p", backend=f"tensorboard:{tmp_path}/runs", root=f"{tmp_path}/j", capture=False,
                        agent="thread", drain_timeout=120)
    run.log({"x": 1.0}, step=0)
    run.finish()
    fd = RunDir(run.dir).hold_agent_lock()  # stands for an agent that is still delivering
    assert fd is not None
    try:
        env = dict(os.environ, TRACKKIT_ROOT=f"{tmp_path}/j")
        # make the run look undelivered so sync would otherwise act on it
        os.remove(os.path.join(run.dir, "cursors", os.listdir(os.path.join(run.dir, "cursors"))[0]))
        out = subprocess.run([sys.executable, "-m", "trackkit", "sync", run.id], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 1 and "still delivering" in out.stdout, out.stdout + out.stderr
        assert RunDir(run.dir).hold_agent_lock() is None  # a second agent would also stand down
    finally:
        os.close(fd)
    out = subprocess.run([sys.executable, "-m", "trackkit", "sync", run.id], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
