"""Test-session environment: no network, no telemetry, nothing written outside tmp dirs."""

from __future__ import annotations

import os
import tempfile

import pytest

_SANDBOX = tempfile.mkdtemp(prefix="trackkit-tests-")

os.environ.update(
    {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": os.path.join(_SANDBOX, "wandb"),
        "WANDB_DATA_DIR": os.path.join(_SANDBOX, "wandb-data"),
        "WANDB_CACHE_DIR": os.path.join(_SANDBOX, "wandb-cache"),
        "WANDB_CONFIG_DIR": os.path.join(_SANDBOX, "wandb-config"),
        "TRACKKIT_ROOT": os.path.join(_SANDBOX, "journal"),
    }
)
for _var in ("WANDB_API_KEY", "WANDB_SERVICE", "TRACKKIT_BACKEND", "MLFLOW_TRACKING_URI"):
    os.environ.pop(_var, None)
for _d in ("wandb", "wandb-data", "wandb-cache", "wandb-config"):
    os.makedirs(os.path.join(_SANDBOX, _d), exist_ok=True)


@pytest.fixture
def in_tmp(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> object:
    """Run the test with the cwd and trackkit's journal root inside tmp_path."""
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    monkeypatch.setenv("TRACKKIT_ROOT", os.path.join(str(tmp_path), ".trackkit"))
    return tmp_path


# ---------------------------------------------------------------- a real MLflow tracking server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> object:
    """One real ``mlflow server`` on 127.0.0.1 for the whole test session (started on first use, ~9 s).

    Yields its URL ``http://127.0.0.1:PORT``. Skips when mlflow is not installed.
    """
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow-server")
    art = root / "artifacts"
    art.mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    cmd = [exe] if exe else [sys.executable, "-m", "mlflow"]
    cmd += [
        "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--no-serve-artifacts",
        "--default-artifact-root", art.as_uri(),
    ]  # fmt: skip
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
            except ProcessLookupError:
                pass
        log.close()

    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            tail = (root / "server.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"mlflow server did not come up on {url} (exit {proc.poll()}):\n{tail}")
        time.sleep(0.25)
    try:
        yield url
    finally:
        stop()
