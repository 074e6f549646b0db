"""Signals and exits of a real training process, read back from every backend.

SIGTERM, SIGINT, an uncaught exception, ``sys.exit(3)``, a SLURM-style SIGTERM followed by
SIGKILL after a grace period, and a program that installed its own SIGTERM handler: the
right status in every backend, the exit code kept, nothing acknowledged lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from trackkit.events import RunFinished, Status, StatusChange
from trackkit.journal import read_journal

from .helpers import (
    acked_steps,
    agent_pid,
    mlflow_db,
    read_run,
    read_until_ack,
    run_line,
    start_child,
    three_backends,
    wait_agent_done,
)


def _tb_mlflow(tmp: str) -> list[str]:
    return [f"tensorboard:{tmp}/tb", f"mlflow:{mlflow_db(tmp)}"]


def _check_all(backends: list[str], run_id: str, run_dir: str, status: Status, acked: set[int]) -> None:
    wait_agent_done(run_dir, timeout=120)
    for backend in backends:
        rec = read_run(backend, run_id)
        assert rec.info.status is status, (backend, rec.info.status, rec.info.reason)
        stored = {s for s, _ in rec.metrics()["loss"]}
        assert acked <= stored, (backend, sorted(acked - stored)[:10])


def _signal_after(backends: list[str], tmp: str, sig: int, *args: str) -> tuple[subprocess.Popen[str], str, str,
                                                                                   set[int], str]:
    proc = start_child(",".join(backends), f"{tmp}/j", "--hz", "100", *args)
    run_id, run_dir = read_until_ack(proc, 10)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=90)
    return proc, run_id, run_dir, set(range(11)) | set(acked_steps(out)), out + err


@pytest.mark.slow
def test_sigterm_is_killed_in_every_backend_with_exit_code_kept(tmp_path: object) -> None:
    tmp = str(tmp_path)
    backends = three_backends(tmp)
    proc, run_id, run_dir, acked, text = _signal_after(backends, tmp, signal.SIGTERM)
    assert proc.returncode == -signal.SIGTERM, text  # re-raised with the default action, as schedulers expect
    _check_all(backends, run_id, run_dir, Status.KILLED, acked)
    for backend in backends:
        assert read_run(backend, run_id).info.reason == "SIGTERM", backend


@pytest.mark.slow
def test_sigint_is_killed_via_keyboard_interrupt(tmp_path: object) -> None:
    tmp = str(tmp_path)
    backends = _tb_mlflow(tmp)
    proc, run_id, run_dir, acked, text = _signal_after(backends, tmp, signal.SIGINT)
    # Python's own rule for an unhandled KeyboardInterrupt: the process ends by SIGINT (-2)
    assert proc.returncode == -signal.SIGINT, text
    assert "KeyboardInterrupt" in text
    _check_all(backends, run_id, run_dir, Status.KILLED, acked)
    for backend in backends:
        assert read_run(backend, run_id).info.reason.startswith("SIGINT"), backend


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "code", "reason"), [
    ("raise", 1, "RuntimeError: exploded at step 20"),
    ("exit3", 3, "sys.exit(3)"),
])
def test_crash_and_exit_code_in_every_backend(tmp_path: object, mode: str, code: int, reason: str) -> None:
    tmp = str(tmp_path)
    backends = _tb_mlflow(tmp)
    proc = start_child(",".join(backends), f"{tmp}/j", "--hz", "1000", "--mode", mode)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == code, err
    run_id, run_dir = run_line(out)
    _check_all(backends, run_id, run_dir, Status.CRASHED, set(range(21)))
    for backend in backends:
        rec = read_run(backend, run_id)
        assert reason in rec.info.reason, (backend, rec.info.reason)
        assert {s for s, _ in rec.metrics()["loss"]} == set(range(21)), backend
        crashed = [ev for ev in rec.events if isinstance(ev, StatusChange) and ev.status is Status.CRASHED]
        assert crashed, backend
        if mode == "raise":  # the traceback travels with the status
            tb = str(crashed[-1].details.get("traceback", ""))
            assert "Traceback (most recent call last)" in tb and "exploded at step 20" in tb, (backend, tb[-300:])
    # the exit code is kept in the journal's finish record
    fin = [r for r in read_journal(os.path.join(run_dir, "journal.jsonl")) if r.get("k") == "finish"]
    assert fin[-1]["exit_code"] == code


@pytest.mark.slow
def test_slurm_sigterm_then_sigkill_mid_finish(tmp_path: object) -> None:
    """SIGTERM, then SIGKILL after a grace period while the trainer is still inside finish()
    waiting for delivery (the agent is paused to make that certain): the run is still
    ``killed`` everywhere and nothing acknowledged is lost, because the agent outlives."""
    tmp = str(tmp_path)
    backends = three_backends(tmp)
    # drain_timeout 60: the trainer waits that long inside finish() for the paused agent, so it is
    # certainly still mid-finish when the "grace period" ends, however slow the machine
    proc = start_child(",".join(backends), f"{tmp}/j", "--hz", "100", "--drain-timeout", "60")
    run_id, run_dir = read_until_ack(proc, 10)
    apid = agent_pid(run_dir)
    os.kill(apid, signal.SIGSTOP)  # a slow agent: finish() cannot complete within the grace period
    try:
        proc.send_signal(signal.SIGTERM)
        # the grace period ends once the trainer is inside finish(): its finish record is in the
        # journal (waited for, not assumed after a fixed sleep)
        journal = os.path.join(run_dir, "journal.jsonl")
        deadline = time.monotonic() + 30
        records = list(read_journal(journal))
        while records[-1]["k"] != "finish" and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            records = list(read_journal(journal))
        assert records[-1]["k"] == "finish" and records[-1]["status"] == "killed", records[-1]
        time.sleep(0.5)  # a little into the drain wait
        assert proc.poll() is None, "the trainer should still be draining (mid-finish) when the grace period ends"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        # the agent holds the trainer's terminal (here: this test's pipe) for the console it shows
        # (docs/console-and-system.md): the pipe ends once the agent runs again and reads the end
        os.kill(apid, signal.SIGCONT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    acked = set(range(11)) | set(acked_steps(out))
    _check_all(backends, run_id, run_dir, Status.KILLED, acked)
    for backend in backends:
        assert read_run(backend, run_id).info.reason == "SIGTERM", backend


@pytest.mark.slow
def test_scancel_sigterm_to_trainer_and_agent_delivers_everything(tmp_path: object) -> None:
    """``scancel`` signals every process of the job, the agent included: the agent drains
    (bounded by drain_timeout) before it exits instead of dying with undelivered data."""
    tmp = str(tmp_path)
    backends = _tb_mlflow(tmp)
    # drain_timeout 60 (the agent's too): the agent was started a moment ago and may still be
    # importing the SDKs when SIGTERM comes; the default 10 s is short for that on a loaded machine
    proc = start_child(",".join(backends), f"{tmp}/j", "--hz", "100", "--drain-timeout", "60")
    run_id, run_dir = read_until_ack(proc, 10)
    apid = agent_pid(run_dir)
    proc.send_signal(signal.SIGTERM)
    os.kill(apid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGTERM, err
    acked = set(range(11)) | set(acked_steps(out))
    log = wait_agent_done(run_dir, timeout=120)
    assert "everything delivered" in log, log
    _check_all(backends, run_id, run_dir, Status.KILLED, acked)


@pytest.mark.slow
def test_user_sigterm_handler_is_chained(tmp_path: object) -> None:
    """The program installed its own SIGTERM handler before init: trackkit records ``killed``
    first, then calls it (it prints and exits 143)."""
    tmp = str(tmp_path)
    backends = _tb_mlflow(tmp)
    proc, run_id, run_dir, acked, text = _signal_after(backends, tmp, signal.SIGTERM, "--user-sigterm")
    assert "USER HANDLER" in text
    assert proc.returncode == 143, text
    _check_all(backends, run_id, run_dir, Status.KILLED, acked)
    rec = read_run(backends[0], run_id)
    assert rec.info.reason == "SIGTERM"
    fin = [ev for ev in rec.events if isinstance(ev, RunFinished)]
    assert fin and fin[-1].status is Status.KILLED
