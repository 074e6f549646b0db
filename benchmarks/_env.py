"""Benchmarks run offline and write only into a temporary directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


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


def benchmark_mlp() -> Callable[[], float]:
    """The benchmarks' training step: a 784-256-10 MLP on CPU, batch 64, one torch thread, SGD; each call
    runs one step and returns its loss (torch is imported here, by the benchmarks that train)."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))

    def train_step() -> float:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.item())

    return train_step
