from __future__ import annotations

import os
import subprocess
import sys
import time

CHILD = os.path.join(os.path.dirname(__file__), "child.py")


def start_child(backend: str, root: str, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env.update(env_extra or {})
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


def wait_agent_done(run_dir: str, timeout: float = 90.0, count: int = 1) -> str:
    """Wait until ``count`` delivery agents of the run (one per segment of a resumed run)
    logged that they are done; returns the agent log."""
    path = os.path.join(run_dir, "agent.log")
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            with open(path) as fh:
                text = fh.read()
        except OSError:
            text = ""
        if text.count("agent done") >= count:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{count} agent(s) did not finish within {timeout}s; log:\n{text}")


def read_run(backend: str, run_id: str):  # type: ignore[no-untyped-def]
    """The run as the backend's own Reader reads it back."""
    from trackkit.registry import load_reader, parse_backend

    return load_reader(parse_backend(backend)).read_run(run_id)


def journal_steps(run_dir: str) -> list[int]:
    """Metric steps in the run's journal, in order."""
    from trackkit.journal import read_journal

    return [r["s"] for r in read_journal(os.path.join(run_dir, "journal.jsonl")) if r.get("k") == "m"]


def run_line(out: str) -> tuple[str, str]:
    """(run id, run dir) from the child's ``RUN`` line."""
    for line in out.splitlines():
        if line.startswith("RUN "):
            _, run_id, run_dir = line.split()
            return run_id, run_dir
    raise AssertionError(f"child printed no RUN line:\n{out[-2000:]}")


_MLFLOW_TEMPLATE: list[str] = []


def mlflow_db(dest_dir: str) -> str:
    """A fresh MLflow sqlite store at ``dest_dir/m.db``, copied from one migrated once per
    session (a new store migrates its schema for 2-5 s; the copy is instant)."""
    import shutil
    import tempfile

    if not _MLFLOW_TEMPLATE:
        from mlflow.tracking import MlflowClient

        d = tempfile.mkdtemp(prefix="trackkit-mlflow-template-")
        path = os.path.join(d, "m.db")
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
        _MLFLOW_TEMPLATE.append(path)
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, "m.db")
    shutil.copyfile(_MLFLOW_TEMPLATE[0], dest)
    return dest


def three_backends(tmp: str) -> list[str]:
    """TensorBoard + W&B (offline) + MLflow (sqlite) under ``tmp``."""
    return [f"tensorboard:{tmp}/tb", f"wandb:rel?mode=offline&dir={tmp}/wb", f"mlflow:{mlflow_db(tmp)}"]


def agent_pid(run_dir: str, timeout: float = 90.0) -> int:
    """The pid of the run's delivery agent, from its ``agent started (pid N)`` line."""
    path = os.path.join(run_dir, "agent.log")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as fh:
                for line in fh:
                    if "agent started (pid " in line:
                        return int(line.split("(pid ")[1].split(")")[0])
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no agent started in {run_dir}")
