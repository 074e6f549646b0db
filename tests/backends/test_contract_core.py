"""The contract suite against the in-memory backend and TensorBoard (read back through tensorboard's reader)."""

from __future__ import annotations

import os

from trackkit.testing import BackendContract


class TestMemoryContract(BackendContract):
    agent = "thread"

    def backend_string(self, tmp_path: str) -> str:
        return f"memory:contract-{os.path.basename(tmp_path)}"


class TestTensorBoardContract(BackendContract):
    rel_tol = 1e-6  # float32 storage: compared with a relative tolerance

    def backend_string(self, tmp_path: str) -> str:
        return f"tensorboard:{tmp_path}/runs"


class TestTensorBoardThreadAgentContract(TestTensorBoardContract):
    agent = "thread"
