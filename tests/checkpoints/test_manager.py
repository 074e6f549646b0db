"""The checkpoint manager on the in-memory backend: retention, names, atomic saves, the index, resume,
re-ranking, bad input, and the agent's hashing (docs/checkpoints.md)."""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import warnings
from typing import Any

import pytest

import trackkit
from trackkit.backends.memory import store
from trackkit.checkpoints import Entry
from trackkit.events import Artifact, Checkpoint, CheckpointPruned

torch = pytest.importorskip("torch")


def _init(tmp: Any, name: str = "ck", **kw: Any) -> trackkit.Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trackkit.init(project="p", backend=f"memory:{name}", root=str(tmp / "tk"), seed=0, capture=False,
                             drain_timeout=60, **kw)


def _sha(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _accs(n: int, seed: int = 3) -> list[float]:
    rnd = random.Random(seed)
    return [rnd.random() for _ in range(n)]


def test_fifty_saves_keep_exactly_the_union_of_best_last_and_periodic(tmp_path: Any) -> None:
    accs = _accs(50)
    run = _init(tmp_path, "fifty")
    ck = run.checkpoints(monitor="val/acc", mode="max", keep_best=3, keep_last=1, every_n_epochs=10)
    for epoch, acc in enumerate(accs):
        e = ck.save({"epoch": epoch, "w": torch.full((4,), float(epoch))}, step=epoch * 100, epoch=epoch,
                    metrics={"val/acc": acc, "val/loss": 1.0 - acc + (0.5 if epoch == 7 else 0.0)})
        assert e is not None and os.path.exists(e.path)
    top3 = sorted(range(50), key=lambda i: -accs[i])[:3]
    want = set(top3) | {49} | {9, 19, 29, 39, 49}
    listed = ck.list()
    assert {e.epoch for e in listed} == want
    on_disk = {f for f in os.listdir(ck.dirpath) if f.endswith(".pt")}
    assert on_disk == {os.path.basename(e.path) for e in listed}
    assert not [f for f in os.listdir(ck.dirpath) if ".tmp-" in f]
    best = ck.best()
    assert best is not None and best.epoch == top3[0] and "best" in best.aliases
    # re-rank after the fact (the evaluation-bug case): by val/loss among the kept ones
    kept_losses = {e.epoch: e.metrics["val/loss"] for e in listed}
    by_loss = ck.best(metric="val/loss", mode="min")
    assert by_loss is not None and by_loss.epoch == min(kept_losses, key=lambda k: kept_losses[k])
    latest = ck.latest()
    assert latest is not None and latest.epoch == 49 and "latest" in latest.aliases
    for e in listed:  # each kept file loads and holds what was saved
        obj = torch.load(e.path, weights_only=True)
        assert obj["epoch"] == e.epoch and torch.equal(obj["w"], torch.full((4,), float(e.epoch)))
        assert f"epoch={e.epoch:04d}" in e.path and f"step={e.step:06d}" in e.path and "val_acc=" in e.path
    run.finish()
    # the agent hashed every delivered checkpoint; the sink never saw an unhashed one
    rec = store("fifty")[run.id]
    cks = [ev for ev in rec.events if isinstance(ev, Checkpoint)]
    prunes = [ev for ev in rec.events if isinstance(ev, CheckpointPruned)]
    assert cks and all(len(c.sha256) == 64 for c in cks)
    assert {c.version for c in cks} - {p.version for p in prunes} == {e.version for e in listed}
    for e in ck.list():  # the hash reached the index too (list() reads it)
        assert e.sha256 == _sha(e.path)
    # read back from the journal, later
    entries = trackkit.checkpoints.list_checkpoints(run.id, root=str(tmp_path / "tk"))
    assert {e.epoch for e in entries} == want
    b = trackkit.checkpoints.best(run.id, metric="val/acc", mode="max", root=str(tmp_path / "tk"))
    assert b is not None and b.epoch == top3[0] and b.sha256 == _sha(b.path) and "best" in b.aliases


def test_no_overwrite_metadata_and_index(tmp_path: Any) -> None:
    run = _init(tmp_path, "meta", config={"lr": 0.1, "model": {"depth": 2}})
    ck = run.checkpoints(monitor="val/loss", mode="min")
    a = ck.save({"x": 1}, step=5, epoch=0, metrics={"val/loss": 0.5})
    b = ck.save({"x": 2}, step=5, epoch=0, metrics={"val/loss": 0.5})  # same name: a new file, not an overwrite
    assert a is not None and b is not None and a.path != b.path
    assert torch.load(a.path)["x"] == 1 and torch.load(b.path)["x"] == 2
    meta = b.metadata
    assert meta["config"] == {"lr": 0.1, "model": {"depth": 2}} and meta["run_id"] == run.id
    assert meta["monitor"] == "val/loss" and meta["trackkit_version"] == trackkit.__version__
    assert "git_commit" in meta and "git_dirty" in meta
    assert b.size == os.path.getsize(b.path) and b.time > 0
    run.finish()
    with open(os.path.join(ck.dirpath, "checkpoints.jsonl")) as fh:
        ops = [line.split('"op":"')[1].split('"')[0] for line in fh]
    assert ops.count("save") == 2 and ops.count("hash") == 2


def test_save_fn_without_torch_and_failed_save_warns(tmp_path: Any) -> None:
    run = _init(tmp_path, "fn")

    def save(obj: Any, path: str) -> None:
        with open(path, "wb") as fh:
            pickle.dump(obj, fh)

    def load(path: str) -> Any:
        with open(path, "rb") as fh:
            return pickle.load(fh)

    ck = run.checkpoints(save_fn=save, load_fn=load, extension=".pkl", keep_last=2)
    for i in range(4):
        ck.save({"i": i}, step=i)
    assert [ck.load(e)["i"] for e in ck.list()] == [2, 3]

    def boom(obj: Any, path: str) -> None:
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise RuntimeError("disk on fire")

    bad = run.checkpoints(name="bad", save_fn=boom)
    with pytest.warns(trackkit.TrackkitWarning, match="save at step 9 of 'bad' failed: RuntimeError: disk on fire"):
        assert bad.save({"x": 1}, step=9) is None
    assert run.problems["checkpoint"] == 1 and bad.list() == []
    assert os.listdir(bad.dirpath) == []  # the temporary file is gone, nothing under a final name
    run.finish()


def test_bad_arguments_name_the_field_and_the_fix(tmp_path: Any) -> None:
    run = _init(tmp_path, "bad")
    with pytest.raises(trackkit.ConfigError, match="mode='avg' is not one of .* Fix"):
        run.checkpoints(monitor="val/acc", mode="avg")
    with pytest.raises(trackkit.ConfigError, match="keep_best needs a metric.*Fix: pass monitor="):
        run.checkpoints(keep_best=2)
    with pytest.raises(trackkit.ConfigError, match="keep_last=-1 is not a count"):
        run.checkpoints(keep_last=-1)
    ck = run.checkpoints(monitor="val/acc")
    with pytest.warns(trackkit.TrackkitWarning, match="has no 'val/acc' in metrics="):
        e = ck.save({"x": 1}, step=1, metrics={"acc": 0.3})
    assert e is not None
    run.finish()


def test_resume_continues_retention_and_latest(tmp_path: Any) -> None:
    run = _init(tmp_path, "res")
    ck = run.checkpoints(monitor="val/acc", keep_best=1, keep_last=1)
    for i, acc in enumerate([0.5, 0.9, 0.6]):
        ck.save({"i": i}, step=i, epoch=i, metrics={"val/acc": acc})
    rid = run.id
    run.finish()
    run2 = _init(tmp_path, "res", id=rid, resume="allow")
    ck2 = run2.checkpoints(monitor="val/acc", keep_best=1, keep_last=1)
    latest = ck2.latest()
    assert latest is not None and latest.epoch == 2 and torch.load(latest.path)["i"] == 2
    assert {e.epoch for e in ck2.list()} == {1, 2}
    e = ck2.save({"i": 3}, step=3, epoch=3, metrics={"val/acc": 0.7})
    assert e is not None and e.version == 3  # numbering goes on across segments
    assert {x.epoch for x in ck2.list()} == {1, 3}  # epoch 2 (last of segment 1) pruned now
    best = ck2.best()
    assert best is not None and best.epoch == 1
    run2.finish()


def test_log_artifact_of_a_checkpoint_is_a_link_and_the_agent_hashes(tmp_path: Any) -> None:
    run = _init(tmp_path, "art")
    ck = run.checkpoints()
    e = ck.save({"w": torch.arange(10)}, step=1)
    assert e is not None
    snap = run.log_artifact(e.path, name="model")
    assert snap is not None and os.stat(snap).st_ino == os.stat(e.path).st_ino  # no bytes copied
    user = tmp_path / "notes.txt"
    user.write_text("mutable")
    snap2 = run.log_artifact(str(user))
    assert snap2 is not None and os.stat(snap2).st_ino != os.stat(user).st_ino  # a snapshot: a copy
    user.write_text("changed after")
    run.finish()
    arts = {a.name: a for a in store("art")[run.id].events if isinstance(a, Artifact)}
    assert arts["model"].sha256 == _sha(e.path)
    assert arts["notes.txt"].sha256 == hashlib.sha256(b"mutable").hexdigest()


def test_dirpath_outside_the_journal_gets_a_hard_link(tmp_path: Any) -> None:
    run = _init(tmp_path, "dir")
    ck = run.checkpoints(dirpath=tmp_path / "mine", keep_last=1)
    a = ck.save({"i": 0}, step=0)
    b = ck.save({"i": 1}, step=1)
    assert a is not None and b is not None
    run.finish()
    rec = store("dir")[run.id]
    delivered = [ev for ev in rec.events if isinstance(ev, Checkpoint)]
    assert delivered, rec.events
    last = delivered[-1]
    assert last.path.startswith(run.dir) and os.stat(last.path).st_ino == os.stat(b.path).st_ino
    assert not os.path.exists(a.path)
    assert isinstance(ck.latest(), Entry)


def test_a_crashed_run_delivers_its_checkpoints(tmp_path: Any) -> None:
    run = _init(tmp_path, "crash")
    ck = run.checkpoints(keep_last=2)
    with pytest.raises(RuntimeError, match="boom"):
        with run:
            for i in range(3):
                ck.save({"i": i}, step=i)
            raise RuntimeError("boom")
    rec = store("crash")[run.id]
    assert rec.info.status is trackkit.Status.CRASHED
    cks = {c.version: c for c in rec.events if isinstance(c, Checkpoint)}
    pruned = {p.version for p in rec.events if isinstance(p, CheckpointPruned)}
    assert set(cks) - pruned == {1, 2} and all(len(cks[v].sha256) == 64 for v in (1, 2))
