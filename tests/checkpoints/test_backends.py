"""Checkpoints through the real backends: TensorBoard and a local MLflow store hold hard links (no
copies), W&B offline gets an immutable file (no staging copy) with aliases and metadata; a prune
removes the file from TensorBoard and MLflow; ``trackkit.checkpoints.best`` reads each backend back."""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest

import trackkit

torch = pytest.importorskip("torch")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")


def _inodes(root: str) -> dict[str, int]:
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".pt"):
                out[os.path.join(d, f)] = os.stat(os.path.join(d, f)).st_ino
    return out


@pytest.mark.slow
def test_checkpoints_in_every_backend_are_links_and_read_back(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    backends = [f"tensorboard:{tmp_path}/tb", f"wandb:ckp?dir={tmp_path}/wb", f"mlflow:{tmp_path}/mlflow.db"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = trackkit.init(project="ckp", backend=backends, root=str(tmp_path / "tk"), seed=0, capture=False,
                            drain_timeout=240, config={"lr": 0.01})
    ck = run.checkpoints(monitor="val/acc", mode="max", keep_best=1, keep_last=1)
    accs = [0.5, 0.9, 0.6, 0.7]
    for i, acc in enumerate(accs):
        ck.save({"i": i, "w": torch.full((8,), float(i))}, step=i * 10, epoch=i,
                metrics={"val/acc": acc, "val/loss": 1 - acc})
    kept = {e.version: e for e in ck.list()}
    assert set(kept) == {1, 3}
    run.finish()
    assert run.pending() == []
    kept = {e.version: e for e in ck.list()}  # with the agent's hashes now
    journal_inodes = {os.stat(e.path).st_ino for e in kept.values()}
    for where in ("tb", "wb", "mlartifacts"):
        found = _inodes(str(tmp_path / where))
        # every kept checkpoint is in the backend as a link to the journal's file (no copy) ...
        assert journal_inodes <= set(found.values()), (where, found)
        if where != "wb":  # ... and the pruned ones are gone from TensorBoard and MLflow
            assert set(found.values()) == journal_inodes, (where, found)
    # one copy of the bytes in all: the journal's files, each linked 4 times (journal, TB, W&B, MLflow)
    assert all(os.stat(e.path).st_nlink == 4 for e in kept.values())
    # W&B: no staging copy of any checkpoint (W&B names its staging copies tmpXXXX: compare sizes)
    staging = os.path.join(os.environ["WANDB_DATA_DIR"], "artifacts", "staging")
    sizes = {e.size for e in kept.values()}
    staged = [os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(staging) for f in fs]
    assert not sizes & set(staged), staged
    for backend in backends:
        entries = trackkit.checkpoints.list_checkpoints(run.id, backend=backend)
        assert {e.version for e in entries} == {1, 3}, (backend, entries)
        for e in entries:
            assert e.sha256 == kept[e.version].sha256 and len(e.sha256) == 64, backend
            assert e.epoch == e.version and e.metrics["val/acc"] == accs[e.version], backend
            assert e.metadata["config"] == {"lr": 0.01}, backend
            assert torch.load(e.path)["i"] == e.version, backend
            # read where the backend keeps it (its link), not downloaded into a copy
            assert os.stat(e.path).st_ino == os.stat(kept[e.version].path).st_ino, (backend, e.path)
        best = trackkit.checkpoints.best(run.id, metric="val/acc", mode="max", backend=backend)
        assert best is not None and best.version == 1 and "best" in best.aliases, backend
        latest = trackkit.checkpoints.latest(run.id, backend=backend)
        assert latest is not None and latest.version == 3, backend
        by_loss = trackkit.checkpoints.best(run.id, metric="val/loss", mode="min", backend=backend)
        assert by_loss is not None and by_loss.version == 1, backend
