"""TrackkitCallback with a real Hugging Face Trainer: a tiny BERT built from a config (no hub download)."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it

import trackkit  # noqa: E402
from trackkit.errors import TrackkitWarning  # noqa: E402
from trackkit.events import Checkpoint, CheckpointPruned  # noqa: E402
from trackkit.integrations.transformers import TrackkitCallback  # noqa: E402
from trackkit.testing import capture  # noqa: E402


class Data(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, n: int = 32, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 30, (n, 6), generator=g)
        self.labels = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


class NanAfter(torch.nn.Module):  # type: ignore[misc]
    """A plain module with the Trainer's forward contract whose loss turns NaN after a few calls."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(30, 4)
        self.head = torch.nn.Linear(4, 2)
        self.after, self.calls = after, 0

    def forward(self, input_ids: Any, labels: Any = None) -> dict[str, Any]:
        self.calls += 1
        logits = self.head(self.emb(input_ids).mean(dim=1))
        loss = torch.nn.functional.cross_entropy(logits, labels)
        if self.calls > self.after:
            loss = loss * float("nan")
        return {"loss": loss, "logits": logits}


def tiny_bert() -> Any:
    cfg = transformers.BertConfig(
        vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8,
        max_position_embeddings=16, num_labels=2,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(cfg)


def make_trainer(tmp_path: Any, model: Any, callback: Any, **args: Any) -> Any:
    kw: dict[str, Any] = {
        "output_dir": str(tmp_path / "out"), "num_train_epochs": 2, "per_device_train_batch_size": 8,
        "logging_steps": 2, "report_to": [], "save_strategy": "no", "use_cpu": True, "disable_tqdm": True,
        "seed": 0,
    }
    kw.update(args)
    targs = transformers.TrainingArguments(**kw)
    return transformers.Trainer(model=model, args=targs, train_dataset=Data(), eval_dataset=Data(16, seed=1),
                                callbacks=[callback])


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=TrackkitWarning, message=".*no seed.*")
        yield


def test_train_records_logs_config_and_completed(tmp_path: Any) -> None:
    with capture() as cap:
        cb = TrackkitCallback(project="hf", name="tiny-bert", tags=["hf"])
        make_trainer(tmp_path, tiny_bert(), cb).train()
        assert cb.run is not None and cb.run._finished
    rec = cap.run
    assert rec.info.status is trackkit.Status.COMPLETED
    assert rec.info.name == "tiny-bert" and "hf" in rec.info.tags
    m = rec.metrics()
    assert [s for s, _ in m["loss"]] == [2, 4, 6, 8]  # 32 samples / 8 = 4 steps per epoch, 2 epochs, every 2
    assert [v for _, v in m["epoch"]][:4] == [0.5, 1.0, 1.5, 2.0]
    assert "learning_rate" in m and "train_runtime" in m
    cfg = rec.info.config
    assert cfg["training_args"]["learning_rate"] == 5e-05 and cfg["training_args"]["logging_steps"] == 2
    assert cfg["model_config"]["hidden_size"] == 8 and cfg["model_config"]["num_hidden_layers"] == 1
    assert cfg["model_class"].endswith("BertForSequenceClassification")


def test_checkpoints_recorded_in_place_with_best_alias(tmp_path: Any) -> None:
    with capture() as cap:
        cb = TrackkitCallback(project="hf", log_checkpoints=True)
        make_trainer(
            tmp_path, tiny_bert(), cb, eval_strategy="epoch", save_strategy="epoch", metric_for_best_model="loss",
            greater_is_better=False,
        ).train()
        rec = cap.run
        _check_linked(rec, tmp_path)
    rec = cap.run
    assert rec.info.status is trackkit.Status.COMPLETED
    cks = [e for e in rec.events if isinstance(e, Checkpoint)]
    assert [c.step for c in cks] == [4, 8]
    assert all("latest" in c.aliases and "eval_loss" in c.metrics and len(c.sha256) == 64 for c in cks)
    assert any("best" in c.aliases for c in cks)
    assert "eval_loss" in rec.metrics()


def _check_linked(rec: Any, tmp_path: Any) -> None:
    """The Trainer's folders, linked file by file into the journal directory: no copy."""
    cks = [e for e in rec.events if isinstance(e, Checkpoint)]
    assert cks
    for c in cks:
        src = os.path.join(str(tmp_path / "out"), f"checkpoint-{c.step}")
        for f in os.listdir(src):
            if os.path.isfile(os.path.join(src, f)):
                assert os.stat(os.path.join(src, f)).st_ino == os.stat(os.path.join(c.path, f)).st_ino


def test_save_total_limit_rotation_is_recorded_as_pruned(tmp_path: Any) -> None:
    with capture() as cap:
        cb = TrackkitCallback(project="hf", log_checkpoints=True)
        make_trainer(tmp_path, tiny_bert(), cb, save_strategy="epoch", save_total_limit=1).train()
        rec = cap.run
        cks = {c.version: c for c in rec.events if isinstance(c, Checkpoint)}
        pruned = {p.version for p in rec.events if isinstance(p, CheckpointPruned)}
        assert len(cks) == 2 and pruned == {0}
        # the journal's links to the rotated folder are gone too; the kept one is there
        assert not os.path.exists(cks[0].path) and os.path.isdir(cks[1].path)


def test_checkpoints_off_by_default(tmp_path: Any) -> None:
    with capture() as cap:
        make_trainer(tmp_path, tiny_bert(), TrackkitCallback(project="hf"), save_strategy="epoch").train()
    assert not [e for e in cap.run.events if isinstance(e, Checkpoint)]


def test_nan_loss_is_diverged(tmp_path: Any) -> None:
    with capture() as cap:
        make_trainer(tmp_path, NanAfter(after=3), TrackkitCallback(project="hf"), logging_nan_inf_filter=False,
                     num_train_epochs=1, logging_steps=1).train()
    rec = cap.run
    assert rec.info.status is trackkit.Status.DIVERGED
    assert "step 4" in rec.info.reason
    assert math.isnan(dict(rec.metrics()["loss"])[4])


def test_active_run_is_reused_and_left_open(tmp_path: Any) -> None:
    with capture() as cap:
        with trackkit.init(project="hf", config={"task": "toy"}) as run:
            cb = TrackkitCallback()
            make_trainer(tmp_path, tiny_bert(), cb).train()
            assert cb.run is run and not run._finished
            run.log({"after": 1.0})
    assert len(cap.runs) == 1
    assert cap.run.info.status is trackkit.Status.COMPLETED
    assert cap.run.info.config["task"] == "toy" and "training_args" in cap.run.info.config


def test_exception_in_train_is_crashed_through_the_with_block(tmp_path: Any) -> None:
    class Boom(trackkit.TrackkitError):
        pass

    class Exploding(NanAfter):
        def forward(self, input_ids: Any, labels: Any = None) -> dict[str, Any]:
            if self.calls >= 2:
                raise Boom("boom in forward")
            return super().forward(input_ids, labels)

    with capture() as cap:
        with pytest.raises(Boom), trackkit.init(project="hf") as run:
            make_trainer(tmp_path, Exploding(after=99), TrackkitCallback(run=run), logging_steps=1).train()
    assert cap.run.info.status is trackkit.Status.CRASHED
    assert "boom in forward" in cap.run.info.reason
