"""Runs the tools wrote themselves — torch's SummaryWriter (with add_hparams), wandb offline (config,
tags, group, summary, an artifact), mlflow's fluent API (params, tags, a text artifact, a nested child
run) — migrated into each of the other two backends and verified there: every point, the config, the
summary values, the parent of the nested run, the artifact's bytes (issue 11)."""

from __future__ import annotations

import hashlib
import os
import warnings
from typing import Any

import pytest

from trackkit.migrate import migrate_all
from trackkit.registry import load_reader, parse_backend

pytest.importorskip("mlflow")
pytest.importorskip("wandb")
pytest.importorskip("torch")


def _targets(tmp: str) -> dict[str, str]:
    return {"tensorboard": f"tensorboard:{tmp}/tb", "wandb": f"wandb:moved?dir={tmp}/wb",
            "mlflow": f"mlflow:{tmp}/ml.db"}


@pytest.fixture(scope="module")
def tool_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = str(tmp_path_factory.mktemp("tools"))
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(f"{tmp}/tblogs/exp1")
    for s in range(30):
        w.add_scalar("train/loss", 1.0 / (s + 1), s)
        w.add_scalar("val/acc", s / 30, s)
    w.close()

    import wandb

    os.makedirs(f"{tmp}/wbsrc")
    with open(f"{tmp}/weights.bin", "wb") as fh:
        fh.write(b"w" * 2048)
    r = wandb.init(project="tools", dir=f"{tmp}/wbsrc", mode="offline", config={"lr": 0.01, "opt": {"name": "adam"}},
                   tags=["baseline"], group="g1")
    for s in range(30):
        r.log({"loss": 2.0 / (s + 1)}, step=s)
    r.summary["test/acc"] = 0.91
    art = wandb.Artifact("weights", type="model")
    art.add_file(f"{tmp}/weights.bin")
    r.log_artifact(art)
    r.finish()

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlsrc.db")
    mlflow.set_experiment("tools")
    with mlflow.start_run(run_name="parent"):
        mlflow.log_params({"lr": 0.1, "layers": 3})
        mlflow.set_tag("team", "vision")
        for s in range(30):
            mlflow.log_metric("loss", 3.0 / (s + 1), step=s)
        mlflow.log_text("notes of the run", "notes/readme.txt")
        with mlflow.start_run(run_name="child", nested=True):
            mlflow.log_param("trial", 1)
            mlflow.log_metric("score", 0.5, step=0)
    mlflow.set_tracking_uri("")
    return {"tensorboard": f"tensorboard:{tmp}/tblogs", "wandb": f"wandb:tools?dir={tmp}/wbsrc",
            "mlflow": f"mlflow:{tmp}/mlsrc.db"}


@pytest.mark.slow
@pytest.mark.parametrize("src", ["tensorboard", "wandb", "mlflow"])
def test_tool_written_runs_migrate_everywhere(tool_runs: dict[str, str], src: str, tmp_path: Any) -> None:
    source = tool_runs[src]
    src_runs = {i.run_id: i for i in load_reader(parse_backend(source)).list_runs()}
    assert src_runs, source
    for dst in ("tensorboard", "wandb", "mlflow"):
        if dst == src:
            continue
        target = _targets(os.path.join(str(tmp_path), dst))[dst]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reports = migrate_all(source, target)
        assert len(reports) == len(src_runs), (src, dst, reports)
        for rep in reports:
            assert rep.ok, rep.summary()
            assert not rep.skipped, rep.summary()
        reader = load_reader(parse_backend(target))
        for rid in src_runs:
            got = reader.read_run(rid)
            want = load_reader(parse_backend(source)).read_run(rid)
            assert got.info.status is want.info.status, (src, dst, got.info.status)
            assert {k: len(v) for k, v in got.metrics().items()} == {k: len(v) for k, v in want.metrics().items()}
            assert got.info.parent == want.info.parent, (src, dst, rid)
        if src == "wandb":
            (rid,) = src_runs
            got = reader.read_run(rid)
            assert got.info.summary.get("test/acc") == 0.91, got.info.summary
            assert got.info.config.get("lr") == 0.01 and got.info.group == "g1"
            arts = [a for a in got.events if getattr(a, "name", "") == "weights"]
            assert arts and arts[0].sha256 == hashlib.sha256(b"w" * 2048).hexdigest(), arts
        if src == "mlflow":
            child = next(i for i in src_runs.values() if i.name == "child")
            parent = next(i for i in src_runs.values() if i.name == "parent")
            assert child.parent == parent.run_id
            got = reader.read_run(parent.run_id)
            assert any(getattr(a, "source", "").endswith("readme.txt") or getattr(a, "name", "").endswith("readme.txt")
                       for a in got.events), [e for e in got.events if type(e).__name__ == "Artifact"]
            assert got.info.config.get("lr") in (0.1, "0.1") and got.info.tags.get("team") == "vision"
