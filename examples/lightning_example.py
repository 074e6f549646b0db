"""trackkit with PyTorch Lightning: a small classifier on synthetic data, logged through TrackkitLogger.

    python examples/lightning_example.py
    tensorboard --logdir runs

Hyperparameters (``save_hyperparameters``) become the run's config, ``self.log`` calls become
metrics with Lightning's step, the best and last checkpoints become artifacts, and the
run ends ``completed`` (or ``crashed`` / ``killed`` / ``diverged``) with ``fit``.
"""

from __future__ import annotations

import sys
import warnings

try:
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint
    from torch import nn
except ImportError:
    print("this example needs PyTorch Lightning: pip install 'trackkit[lightning]'")
    sys.exit(0)

import trackkit
from trackkit.integrations.lightning import TrackkitLogger

warnings.filterwarnings("ignore", message=".*does not have many workers.*")


class Classifier(pl.LightningModule):
    def __init__(self, lr: float = 0.1, hidden: int = 32, optimizer: str = "sgd") -> None:
        super().__init__()
        self.save_hyperparameters()  # -> the run's config
        self.net = nn.Sequential(nn.Linear(20, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val/loss", nn.functional.cross_entropy(logits, y))
        self.log("val/accuracy", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def data(n: int, seed: int) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    y = (x @ torch.randn(20, 3, generator=torch.Generator().manual_seed(0))).argmax(dim=1)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=seed == 1)


# the logger takes trackkit.init's keywords and creates the run on rank 0 when training starts
logger = TrackkitLogger(project="lightning-example", backend="tensorboard:./runs", seed=42, tags=["example"])
trainer = pl.Trainer(
    max_epochs=3,
    accelerator="cpu",
    logger=logger,
    log_every_n_steps=4,
    enable_progress_bar=False,
    enable_model_summary=False,
    callbacks=[ModelCheckpoint(monitor="val/loss", mode="min", save_last=True)],  # -> artifacts "best", "latest"
)
trainer.fit(Classifier(), data(1024, seed=1), data(256, seed=2))

run = logger.experiment
assert isinstance(run, trackkit.Run)
print(f"run {run.name} ({run.id}) {run.status.value}: val/loss {trainer.callback_metrics['val/loss']:.3f}")
print("look at it with:  tensorboard --logdir runs")
print(f"or in the terminal: trackkit show {run.id}")
