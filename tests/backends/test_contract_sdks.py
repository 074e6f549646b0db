"""The same contract suite against the real SDKs: W&B offline, MLflow sqlite, and a real `mlflow server` on 127.0.0.1.

Each case writes through trackkit.init/log/finish with the real delivery agent, then
reads back through the backend's own storage (the .wandb run file via W&B's protobuf
module; MLflow through its tracking store / REST API)."""

from __future__ import annotations

import pytest

from trackkit.testing import BackendContract


class TestWandbContract(BackendContract):
    def backend_string(self, tmp_path: str) -> str:
        return f"wandb:contract?mode=offline&dir={tmp_path}/wandb"


class TestMlflowSqliteContract(BackendContract):
    """One sqlite store for the class (a new store costs a 2-5 s schema migration); runs are kept apart by id."""

    @pytest.fixture(autouse=True)
    def _db(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        cls = type(self)
        if not hasattr(cls, "db"):
            cls.db = str(tmp_path_factory.mktemp("mlflow-contract") / "mlflow.db")

    def backend_string(self, tmp_path: str) -> str:
        return f"mlflow:{self.db}"


class TestMlflowServerContract(BackendContract):
    @pytest.fixture(autouse=True)
    def _server(self, mlflow_server: str) -> None:
        self.url = mlflow_server

    def backend_string(self, tmp_path: str) -> str:
        return self.url.replace("http://", "mlflow://")
