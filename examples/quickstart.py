"""trackkit quickstart: a small torch model on synthetic data, logged to the default backend (TensorBoard).

    python examples/quickstart.py
    tensorboard --logdir runs
    trackkit doctor RUN      # the run recorded its five pillars: config, seed, code, environment, data
"""

from __future__ import annotations

import torch
from torch import nn

import trackkit

cfg = {
    "model": "mlp",
    "dataset": "synthetic-blobs",
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "batch_size": 64,
    "epochs": 3,
    "seed": 42,
}

trackkit.seed_everything(cfg["seed"])
X = torch.randn(2048, 20)
w_true = torch.randn(20, 3)
y = (X @ w_true).argmax(dim=1)

model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
opt = torch.optim.SGD(model.parameters(), lr=cfg["optimizer"]["lr"], momentum=cfg["optimizer"]["momentum"])
loss_fn = nn.CrossEntropyLoss()

# the data's version: this data is generated, so its name and how it was made identify it; for files,
# pass their path too (data={"name": ..., "version": ..., "path": "data/"}) and trackkit fingerprints them
data = {"name": cfg["dataset"], "version": f"randn-2048x20-seed{cfg['seed']}"}

with trackkit.init(config=cfg, project="quickstart", seed=cfg["seed"], data=data) as run:
    step = 0
    for epoch in range(cfg["epochs"]):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), cfg["batch_size"]):
            idx = perm[i : i + cfg["batch_size"]]
            loss = loss_fn(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.log({"train/loss": loss.item(), "train/lr": opt.param_groups[0]["lr"]}, step=step)
            step += 1
        with torch.no_grad():
            acc = (model(X).argmax(dim=1) == y).float().mean().item()
        run.log({"eval/accuracy": acc, "epoch": epoch}, step=step)
    torch.save(model.state_dict(), "model.pt")
    run.log_artifact("model.pt", kind="model", aliases=["final"])

print(f"run {run.name} ({run.id}) {run.status.value}: final accuracy {acc:.3f}")
print("look at it with:  tensorboard --logdir runs")
print(f"or in the terminal: trackkit show {run.id}")
print(f"is it reproducible:  trackkit doctor {run.id}")
