"""TrackkitLogger with real PyTorch Lightning training (no mocks): a tiny model on random data."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

pl = pytest.importorskip("pytorch_lightning")
torch = pytest.importorskip("torch")

import trackkit  # noqa: E402
from trackkit.errors import ConfigError, DivergedError, TrackkitWarning  # noqa: E402
from trackkit.events import Checkpoint, CheckpointPruned, StatusChange  # noqa: E402
from trackkit.integrations.lightning import TrackkitLogger  # noqa: E402
from trackkit.testing import capture  # noqa: E402

BATCHES_PER_EPOCH = 4  # 32 samples, batch 8


class Tiny(pl.LightningModule):
    def __init__(
        self,
        lr: float = 0.05,
        hidden: int = 4,
        optimizer: dict[str, Any] | None = None,
        fail_at: int | None = None,
        nan_at: int | None = None,
        interrupt_at: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        step = self.global_step
        if self.hparams.fail_at is not None and step >= self.hparams.fail_at:
            raise RuntimeError(f"boom in training_step at step {step}")
        if self.hparams.interrupt_at is not None and step >= self.hparams.interrupt_at:
            raise KeyboardInterrupt
        if self.hparams.nan_at is not None and step >= self.hparams.nan_at:
            loss = loss * float("nan")
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader(n: int = 32, seed: int = 0) -> Any:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x.sum(dim=1, keepdim=True)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


def trainer(tmp_path: Any, logger: Any, max_epochs: int = 2, **kw: Any) -> Any:
    from pytorch_lightning.callbacks import ModelCheckpoint

    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=logger,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[ModelCheckpoint(monitor="val/loss", mode="min", save_last=True)],
        **kw,
    )


@pytest.fixture(autouse=True)
def _quiet_and_restore_sigint() -> Iterator[None]:
    # Lightning sets SIGINT to SIG_IGN after a KeyboardInterrupt: give pytest its handler back
    prev = signal.getsignal(signal.SIGINT)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", category=TrackkitWarning, message=".*no seed.*")
        yield
    signal.signal(signal.SIGINT, prev)


def test_fit_records_metrics_config_checkpoints_and_completed(tmp_path: Any) -> None:
    with capture() as cap:
        logger = TrackkitLogger(project="lit", name="tiny", tags={"framework": "lightning"})
        model = Tiny(optimizer={"name": "sgd", "momentum": 0.0})
        trainer(tmp_path, logger).fit(model, loader(), loader(seed=1))
        run = logger.experiment
        assert run._finished and run.status is trackkit.Status.COMPLETED
        linked = {e.version: os.path.exists(e.path) and os.stat(e.path).st_ino for e in cap.run.events
                  if isinstance(e, Checkpoint)}
        sources = {e.version: os.path.exists(str(e.metadata["user"]["lightning_path"])) and
                   os.stat(str(e.metadata["user"]["lightning_path"])).st_ino
                   for e in cap.run.events if isinstance(e, Checkpoint) and not e.metadata["user"]["last"]}
        for v, ino in sources.items():  # a kept one: the same inode as Lightning's file (a link, no copy)
            if ino and linked[v]:
                assert ino == linked[v]
    rec = cap.run
    assert rec.info.status is trackkit.Status.COMPLETED
    assert rec.info.name == "tiny" and rec.info.project == "lit" and rec.info.tags["framework"] == "lightning"
    # Lightning's own names for the run: project / run id, and checkpoints under save_dir/name/version
    assert logger.name == "lit" and logger.version == rec.info.run_id

    metrics = rec.metrics()
    steps = [s for s, _ in metrics["train/loss"]]
    assert steps == list(range(2 * BATCHES_PER_EPOCH)), steps  # every training step, Lightning's step numbers
    assert all(math.isfinite(v) for _, v in metrics["train/loss"])
    assert len(metrics["val/loss"]) == 2  # once per epoch
    assert "epoch" in metrics

    cfg = rec.info.config
    assert cfg["lr"] == 0.05 and cfg["hidden"] == 4
    assert cfg["optimizer"] == {"name": "sgd", "momentum": 0.0}  # nested config stays nested

    # ModelCheckpoint's files, recorded where they are (no copy: the journal holds hard links)
    cks = [e for e in rec.events if isinstance(e, Checkpoint)]
    assert cks, "no checkpoint recorded"
    assert all(len(c.sha256) == 64 and c.path.startswith(run.dir) for c in cks)
    sources = [str(c.metadata["user"]["lightning_path"]) for c in cks]
    assert all(os.path.dirname(p).endswith(os.path.join("lit", rec.info.run_id, "checkpoints")) for p in sources)
    best = [c for c in cks if "best" in c.aliases]
    assert best and os.path.basename(str(best[-1].metadata["user"]["lightning_path"])).startswith("epoch=")
    assert all("val/loss" in c.metrics for c in best) and best[-1].epoch is not None
    assert any(linked.values())
    # the older last.ckpt, replaced by Lightning, is recorded as pruned
    lasts = [c for c in cks if c.metadata["user"].get("last")]
    pruned = {p.version for p in rec.events if isinstance(p, CheckpointPruned)}
    assert len(lasts) == 2 and lasts[0].version in pruned and lasts[1].version not in pruned


def test_lightning_top_k_deletions_reach_the_record(tmp_path: Any) -> None:
    from pytorch_lightning.callbacks import ModelCheckpoint

    with capture() as cap:
        logger = TrackkitLogger(project="lit")
        model = Tiny(optimizer={"name": "sgd", "momentum": 0.0})
        t = trainer(tmp_path, logger, max_epochs=3)
        t.callbacks[:] = [c for c in t.callbacks if not isinstance(c, ModelCheckpoint)]
        cb = ModelCheckpoint(monitor="val/loss", mode="min", save_top_k=1)
        t.callbacks.append(cb)
        t.fit(model, loader(), loader(seed=1))
        run = logger.experiment
        rec = cap.run
        cks = {c.version: c for c in rec.events if isinstance(c, Checkpoint)}
        pruned = {p.version for p in rec.events if isinstance(p, CheckpointPruned)}
        kept = [c for v, c in cks.items() if v not in pruned]
        assert len(cks) >= 2 and pruned, (cks, pruned)
        assert [os.path.abspath(cb.best_model_path)] == [str(c.metadata["user"]["lightning_path"]) for c in kept]
        for v in pruned:  # the journal's link to a file Lightning deleted is gone too: no disk kept for it
            assert not os.path.exists(cks[v].path)
        assert os.path.exists(kept[0].path)
    assert run.problems.get("checkpoint", 0) == 0


def test_failing_training_step_is_crashed_and_propagates(tmp_path: Any) -> None:
    with capture() as cap:
        logger = TrackkitLogger(project="lit")
        with pytest.raises(RuntimeError, match="boom in training_step"):
            trainer(tmp_path, logger).fit(Tiny(fail_at=2), loader())
    rec = cap.run
    assert rec.info.status is trackkit.Status.CRASHED
    assert "RuntimeError: boom in training_step at step 2" in rec.info.reason
    crash = [e for e in rec.events if isinstance(e, StatusChange) and e.status is trackkit.Status.CRASHED][-1]
    assert "training_step" in crash.details["traceback"]
    assert [s for s, _ in rec.metrics()["train/loss"]] == [0, 1]  # what was logged before the crash is kept


def test_keyboard_interrupt_is_killed(tmp_path: Any) -> None:
    with capture() as cap:
        logger = TrackkitLogger(project="lit")
        with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful shutdown + sys.exit(1)
            trainer(tmp_path, logger).fit(Tiny(interrupt_at=1), loader())
    assert cap.run.info.status is trackkit.Status.KILLED
    assert "KeyboardInterrupt" in cap.run.info.reason


def test_nan_loss_is_diverged(tmp_path: Any) -> None:
    with capture() as cap:
        trainer(tmp_path, TrackkitLogger(project="lit")).fit(Tiny(nan_at=3), loader())
    rec = cap.run
    assert rec.info.status is trackkit.Status.DIVERGED
    assert "train/loss" in rec.info.reason and "step 3" in rec.info.reason
    assert math.isnan(dict(rec.metrics()["train/loss"])[3])


def test_nan_loss_with_on_nan_stop_stops_training_as_diverged(tmp_path: Any) -> None:
    with capture(on_nan="stop") as cap:
        with pytest.raises(DivergedError):
            trainer(tmp_path, TrackkitLogger(project="lit")).fit(Tiny(nan_at=3), loader())
    assert cap.run.info.status is trackkit.Status.DIVERGED
    assert max(s for s, _ in cap.run.metrics()["train/loss"]) == 3


def test_given_run_spans_fit_and_test_and_is_left_to_the_user(tmp_path: Any) -> None:
    with capture() as cap:
        with trackkit.init(project="lit", config={"dataset": "random"}) as run:
            logger = TrackkitLogger(run=run)
            t = trainer(tmp_path, logger, max_epochs=1)
            model = Tiny()
            t.fit(model, loader())
            assert not run._finished  # the user's run: Lightning's finalize("success") leaves it open
            t.validate(model, loader(seed=2))
            run.log({"extra": 1.0})
    rec = cap.run
    assert rec.info.status is trackkit.Status.COMPLETED
    assert len(cap.runs) == 1
    assert rec.info.config["dataset"] == "random" and rec.info.config["lr"] == 0.05
    assert "val/loss" in rec.metrics() and "extra" in rec.metrics()


def test_owned_run_used_after_finalize_warns(tmp_path: Any) -> None:
    with capture() as cap:
        logger = TrackkitLogger(project="lit")
        t = trainer(tmp_path, logger, max_epochs=1)
        model = Tiny()
        t.fit(model, loader())
        with pytest.warns(TrackkitWarning, match="already finished"):
            t.validate(model, loader(seed=2))
    assert len(cap.runs) == 1 and cap.run.info.status is trackkit.Status.COMPLETED


def test_bad_keyword_raises_at_construction() -> None:
    with pytest.raises(ConfigError, match="unknown keyword"):
        TrackkitLogger(projcet="typo")


def test_import_trackkit_integrations_is_light() -> None:
    code = (
        "import sys, trackkit, trackkit.integrations; "
        "print(sorted(m for m in ('torch', 'pytorch_lightning', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


DDP_SCRIPT = textwrap.dedent(
    """
    import os, sys, warnings
    import torch
    import pytorch_lightning as pl
    sys.path.insert(0, {tests_dir!r})
    from test_lightning import Tiny, loader
    from trackkit.integrations.lightning import TrackkitLogger

    warnings.filterwarnings("ignore")
    logger = TrackkitLogger(project="ddp", backend={backend!r}, capture=False, seed=0)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", logger=logger,
                         log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=os.getcwd())
    trainer.fit(Tiny(), loader())
    print("RANK", trainer.global_rank, "RUN", logger.version, flush=True)
    """
)


@pytest.mark.slow
def test_ddp_two_processes_make_exactly_one_run(tmp_path: Any) -> None:
    from trackkit.registry import load_reader, parse_backend

    tb = os.path.join(str(tmp_path), "tb")
    backend = f"tensorboard:{tb}"
    script = tmp_path / "train_ddp.py"
    script.write_text(DDP_SCRIPT.format(tests_dir=os.path.dirname(os.path.abspath(__file__)), backend=backend))
    root = os.path.join(str(tmp_path), ".trackkit")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKKIT_", "LOCAL_RANK", "RANK", "WORLD_SIZE"))}
    # TRACKKIT_DRAIN_TIMEOUT: TensorBoard is read right after the process exits, so finish() must not
    # give up on a slow agent (the default 10 s can pass on a loaded machine)
    env.update(TRACKKIT_ROOT=root, PYTHONWARNINGS="ignore", TRACKKIT_DRAIN_TIMEOUT="120")
    proc = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    # both ranks ran the script (Lightning re-launches it for rank 1); only rank 0 has a run
    ranks = {r[1]: r[3] for r in (line.split() for line in proc.stdout.splitlines() if line.startswith("RANK "))}
    assert ranks.keys() == {"0", "1"}, proc.stdout[-2000:]
    assert ranks["1"] == "None"
    run_id = ranks["0"]

    # exactly one journal and one stored run: rank 1 never created one
    assert os.listdir(os.path.join(root, "ddp")) == [run_id]
    reader = load_reader(parse_backend(backend))
    (info,) = reader.list_runs("ddp")
    assert info.run_id == run_id
    rec = reader.read_run(run_id)
    assert rec.info.status is trackkit.Status.COMPLETED
    # each rank sees half of the 32 samples: 2 batches per epoch, 2 epochs, every step delivered
    assert [s for s, _ in rec.metrics()["train/loss"]] == [0, 1, 2, 3]
    assert rec.info.config["lr"] == 0.05
