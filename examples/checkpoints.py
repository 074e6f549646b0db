"""Versioned checkpoints with retention, then the evaluation-bug recovery: re-rank after the fact
(docs/checkpoints.md). Writes only below the current directory, offline, in well under a minute::

    python examples/checkpoints.py
    trackkit checkpoints <run id> --backend tensorboard:./runs
"""

from __future__ import annotations

import torch

import trackkit

torch.manual_seed(0)
model = torch.nn.Linear(4, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))

with trackkit.init(project="ckpt-demo", backend="tensorboard:./runs", config={"lr": 0.1}, seed=0) as run:
    ckpts = run.checkpoints(monitor="val/acc", mode="max", keep_best=2, keep_last=1, every_n_epochs=5)
    for epoch in range(12):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        acc = float((model(x).argmax(1) == y).float().mean())
        run.log({"train/loss": loss.item(), "val/acc": acc}, step=epoch)
        ckpts.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, step=epoch, epoch=epoch,
                   metrics={"val/acc": acc, "val/loss": loss.item()})
    kept = ckpts.list()
    print("kept epochs:", [e.epoch for e in kept])
    best = ckpts.best()
    by_loss = ckpts.best(metric="val/loss", mode="min")  # the evaluation-bug case: rank by another metric
    assert best is not None and by_loss is not None
    print("best by val/acc: epoch", best.epoch, best.path)
    print("best by val/loss: epoch", by_loss.epoch)
    model.load_state_dict(torch.load(by_loss.path)["model"])  # torch.load gives back what was saved
    run_id = run.id

# later, from the backend's own record
again = trackkit.checkpoints.best(run_id, metric="val/acc", mode="max", backend="tensorboard:./runs")
assert again is not None and again.epoch == best.epoch and len(again.sha256) == 64
print("from TensorBoard: epoch", again.epoch, "sha256", again.sha256[:12])
