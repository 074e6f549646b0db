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
        # the tests read a backend right after finish(): they wait for delivery (the user's default,
        # "journal", returns once the journal is safe; tests/core/test_finish_wait.py tests it)
        "TRACKKIT_FINISH_WAIT": "delivery",
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
    pytest.importorskip("mlflow")
    from tk_mlflow_server import MlflowServer

    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    srv.start()  # returns once healthy; its timeout allows for a loaded machine
    try:
        yield srv.url
    finally:
        srv.stop()
