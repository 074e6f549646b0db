"""``run.child()`` through the real SDKs: each backend stores the parent link its own way (MLflow
``mlflow.parentRunId``, W&B group + job type, TensorBoard a directory in the parent's), and each
Reader, ``trackkit runs --where parent=...`` and the report read it back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import trackkit
from trackkit.cli import main

pytest.importorskip("mlflow")
pytest.importorskip("wandb")


@pytest.mark.slow
def test_children_in_every_backend(in_tmp: Path) -> None:
    tmp = str(in_tmp)
    backends = [f"tensorboard:{tmp}/tb", f"mlflow:{tmp}/mlflow.db", f"wandb:sw?mode=offline&dir={tmp}/wb"]
    parent = trackkit.init(project="sw", name="study", backend=backends, agent="thread", capture=False,
                           drain_timeout=120)
    kids = {}
    for i in range(2):
        with parent.child(name=f"trial-{i}", config={"lr": 0.01 * (i + 1)}) as kid:
            kid.log({"loss": 1.0 - 0.1 * i}, step=0)
            kids[kid.id] = f"trial-{i}"
    parent.finish()
    assert not parent.pending()

    # MLflow: the child's mlflow.parentRunId is the MLflow id of the parent (its UI nests it)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name("sw")
    runs = {r.data.tags["trackkit.run_id"]: r for r in client.search_runs([exp.experiment_id])}
    for kid in kids:
        assert runs[kid].data.tags["mlflow.parentRunId"] == runs[parent.id].info.run_id
    assert "mlflow.parentRunId" not in runs[parent.id].data.tags

    # W&B: the child's run record has the parent's run as its group and job type "child"
    from trackkit.backends.wandb import iter_run_file, wandb_run_id

    files = {p.name: p for p in Path(tmp, "wb").rglob("run-*.wandb")}
    for kid in kids:
        path = files[f"run-{wandb_run_id(kid)}.wandb"]
        rec = next(r.run for r in iter_run_file(str(path)) if r.WhichOneof("record_type") == "run")
        assert (rec.run_group, rec.job_type) == (wandb_run_id(parent.id), "child")

    # TensorBoard: each child's event files are in a directory inside the parent's
    events = [p for p in Path(tmp, "tb").rglob("events.out.tfevents.*")]
    parent_dirs = {p.parent for p in events if not any(k in str(p) for k in kids.values())}
    (pdir,) = {d for d in parent_dirs if d.name.startswith("study")}
    for name in kids.values():
        assert any(p.parent.parent == pdir and p.parent.name.startswith(name) for p in events), (name, events)

    for b in backends:
        res = CliRunner().invoke(main, ["runs", "-b", b, "--where", f"parent={parent.id}", "--json"])
        assert res.exit_code == 0, res.output
        import json

        rows = json.loads(res.output)
        assert sorted(r["name"] for r in rows) == ["trial-0", "trial-1"], b
        assert {r["parent"] for r in rows} == {parent.id}

    # the report over all three backends: three rows per run, one per backend
    res = CliRunner().invoke(main, ["report", *[a for b in backends for a in ("-b", b)], "-o", "r.html"])
    assert res.exit_code == 0, res.output
    html = open(os.path.join(tmp, "r.html"), encoding="utf-8").read()
    for kind in ("tensorboard", "mlflow", "wandb"):
        assert f">trial-0 ({kind})</span>" in html
