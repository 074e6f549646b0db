from __future__ import annotations

import os
import subprocess
import sys
import time

CHILD = os.path.join(os.path.dirname(__file__), "child.py")


def start_child(backend: str, root: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    return subprocess.Popen(
        [sys.executable, CHILD, backend, root, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env,
    )


def read_until_ack(proc: subprocess.Popen[str], n: int, timeout: float = 60.0) -> tuple[str, str]:
    """Read the child's stdout until it acknowledged step n; returns (run id, run dir)."""
    assert proc.stdout is not None
    run_id = run_dir = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("RUN "):
            _, run_id, run_dir = line.split()
        if line.strip() == f"ACK {n}":
            return run_id, run_dir
    raise AssertionError(f"child never acknowledged step {n}; stderr: {proc.stderr.read() if proc.stderr else ''}")


def acked_steps(out: str) -> list[int]:
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("ACK ")]


def wait_agent_done(run_dir: str, timeout: float = 90.0) -> str:
    """Wait until the run's delivery agent logged that it is done; returns the agent log."""
    path = os.path.join(run_dir, "agent.log")
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            with open(path) as fh:
                text = fh.read()
        except OSError:
            text = ""
        if "agent done" in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"agent did not finish within {timeout}s; log:\n{text}")
