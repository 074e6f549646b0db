"""Benchmarks run offline and write only into a temporary directory."""

from __future__ import annotations

import os
import tempfile


def offline_tmpdir(prefix: str) -> str:
    tmp = tempfile.mkdtemp(prefix=prefix)
    os.environ.update(
        {
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "WANDB_DIR": tmp,
            "WANDB_DATA_DIR": tmp,
            "WANDB_CACHE_DIR": tmp,
            "WANDB_CONFIG_DIR": tmp,
        }
    )
    os.environ.pop("WANDB_API_KEY", None)
    return tmp
