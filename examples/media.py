"""Images, histograms, texts, tables, figures and audio in one run, to TensorBoard and MLflow at once
(docs/media.md); a model's gradient histograms with run.watch(); then everything read back.

Runs offline in under a minute and writes only below the current directory::

    python examples/media.py
    tensorboard --logdir runs          # IMAGES, HISTOGRAMS, TEXT, AUDIO tabs
    mlflow ui --backend-store-uri sqlite:///mlflow.db
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch

import trackkit
from trackkit.registry import load_reader, parse_backend

BACKENDS = ["tensorboard:./runs", "mlflow:./mlflow.db"]
EPOCHS, STEPS = 3, 20

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(256, 8), torch.randint(0, 3, (256,))

with trackkit.init({"lr": 0.1, "epochs": EPOCHS}, project="media", backend=BACKENDS, seed=0) as run:
    run.watch(model, every=STEPS, log="all")  # gradient + weight histograms once per epoch
    step = 0
    for epoch in range(EPOCHS):
        for _ in range(STEPS):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            run.log({"train/loss": loss.item()}, step=step)
            step += 1
        with torch.no_grad():  # watch() counts training forwards only
            pred = model(x).argmax(1)
        confusion = np.zeros((3, 3), dtype=int)
        for t, p in zip(y.tolist(), pred.tolist()):
            confusion[t, p] += 1
        fig, ax = plt.subplots(figsize=(3, 3))
        ax.imshow(confusion, cmap="Blues")
        ax.set_title(f"epoch {epoch}")
        sample = (torch.rand(3, 32, 32) * (epoch + 1) / EPOCHS)  # a CHW float image, 0-1
        wrong = [[i, int(pred[i]), int(y[i])] for i in range(40) if pred[i] != y[i]][:5]
        run.log({
            "samples": trackkit.Image(sample, caption=f"epoch {epoch}"),
            "weights/fc1": trackkit.Histogram(model[0].weight),
            "notes": trackkit.Text(f"epoch {epoch}: loss **{loss.item():.3f}**"),
            "errors": trackkit.Table(columns=["id", "pred", "label"], rows=wrong),
            "confusion": trackkit.Figure(fig),
            "tone": trackkit.Audio(np.sin(np.linspace(0, 440 * 2 * np.pi, 8000)) * 0.3, sample_rate=8000),
        }, step=step - 1)

print(f"run {run.name} ({run.id}): {run.status}")
run.wait_delivery(timeout=120)  # finish() returned once the journal was safe; the agent delivers
for backend in BACKENDS:
    rec = load_reader(parse_backend(backend)).read_run(run.id)
    counts = {k: len(v) for k, v in sorted(rec.media().items())}
    print(f"{backend}: {dict(sorted(rec.info.media.items()))} {counts}")
    assert rec.info.media.get("image") == 2 * EPOCHS, rec.info.media  # samples + confusion, every epoch
    assert len(rec.media()["samples"]) == EPOCHS and len(rec.media()["errors"]) == EPOCHS
    assert len(rec.media()["gradients/0.weight"]) == EPOCHS, sorted(rec.media())
    assert set(rec.metrics()) == {"train/loss"}, "no media came back as metrics"
