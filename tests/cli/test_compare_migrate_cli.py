"""`trackkit runs --backend/--where`, `trackkit compare`, `trackkit migrate` through click's CliRunner."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from tk_cli import invoke

from trackkit.events import Metrics, RunFinished, RunStarted, Status, StatusChange
from trackkit.registry import load_sink, parse_backend

pytest.importorskip("tensorboard")


def _write(backend: str, run_id: str, name: str, lr: float, final: float, status: Status = Status.COMPLETED) -> None:
    sink = load_sink(parse_backend(backend))
    events: list[object] = [
        RunStarted(run_id=run_id, project="cli", name=name, start_time=1000.0 + len(run_id) + final,
                   tags={"team": "vision"}, config={"optimizer": {"lr": lr, "name": "sgd"}, "epochs": 2})
    ]
    for i in range(10):
        events.append(Metrics(step=i, time=1000.0 + i, values={"loss": 1.0 - i / 10 * (1 - final), "acc": i / 10}))
    if status is not Status.COMPLETED:
        events.append(StatusChange(status=status, reason="stopped", step=9, time=1011.0))
    events.append(RunFinished(status=status, time=1012.0, reason="" if status is Status.COMPLETED else "stopped"))
    try:
        sink.emit(events)
    finally:
        sink.close()


@pytest.fixture
def tb(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from trackkit.backends.memory import clear

    monkeypatch.setenv("COLUMNS", "250")
    backend = f"tensorboard:{in_tmp}/runs"
    _write(backend, "run-a", "alpha", 0.1, 0.2)
    _write(backend, "run-b", "beta", 0.01, 0.1)
    _write(backend, "run-c", "gamma", 0.01, 0.5, Status.KILLED)
    yield backend
    clear("cli-target")
    clear("cli-all")


def test_runs_queries_backends(tb: str) -> None:
    code, out = invoke("runs", "--backend", tb, "--where", "config.optimizer.lr<0.1", "--where", "status=completed")
    assert code == 0, out
    assert "run-b" in out and "run-a" not in out and "run-c" not in out
    code, out = invoke("runs", "-b", tb, "--sort", "-metrics.loss", "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == ["run-c", "run-a", "run-b"]
    assert rows[0]["status"] == "killed" and rows[0]["backend"] == tb
    code, out = invoke("runs", "-b", tb, "--where", "lr<0.1")
    assert code == 1 and "unknown field 'lr'" in out and "config.lr" in out


def test_runs_journal_where(in_tmp: Path) -> None:
    import trackkit

    for lr in (0.1, 0.001):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = trackkit.init({"lr": lr}, project="j", backend="memory:cli-journal", capture=False)
        run.log({"loss": lr}, step=0)
        run.finish()
    code, out = invoke("runs", "--where", "config.lr<0.01", "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert len(rows) == 1 and rows[0]["config"] == {"lr": 0.001}
    code, out = invoke("runs")  # the plain journal listing is unchanged
    assert code == 0 and out.count("completed") == 2


def test_compare_table_and_json(tb: str) -> None:
    code, out = invoke("compare", "alpha", "run-b", "gamma", "--backend", tb)
    assert code == 0, out
    assert "optimizer.lr" in out and "0.1" in out and "0.01" in out
    assert "2 config keys are the same" in out  # epochs, optimizer.name collapsed
    assert "loss" in out and "killed" in out
    code, out = invoke("compare", "run-a", "run-b", "-b", tb, "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["config_differs"]["optimizer.lr"]["values"] == [0.1, 0.01]
    assert data["config_same"] == {"epochs": 2, "optimizer.name": "sgd"}
    assert math.isclose(data["metrics"]["loss"][1]["min"], 0.19, rel_tol=1e-6)
    code, out = invoke("compare", "run-a", "nope", "-b", tb)
    assert code == 1 and "no run 'nope'" in out


def test_migrate_verifies_and_exits_1_on_mismatch(tb: str) -> None:
    from trackkit.backends.memory import store

    code, out = invoke("migrate", "--from", tb, "--to", "memory:cli-target", "run-a", "run-b")
    assert code == 0, out
    assert "OK" in out and "2 of 2 runs migrated and verified" in out
    code, out = invoke("migrate", "--from", tb, "--to", "memory:cli-target", "run-a")
    assert code == 0 and "already there" in out  # not copied twice
    assert sum(isinstance(e, Metrics) for e in store("cli-target")["run-a"].events) == 10

    store("cli-target")["run-a"].events.pop(3)  # lose a point in the target
    code, out = invoke("migrate", "--from", tb, "--to", "memory:cli-target", "run-a", "--json")
    assert code == 1
    (report,) = json.loads(out[out.index("["):])
    assert not report["ok"] and {m["key"] for m in report["mismatches"]} == {"loss@2", "acc@2"}

    code, out = invoke("migrate", "--from", tb, "--to", "memory:cli-target", "run-a", "nope")
    assert code == 1 and "no run 'nope'" in out


def test_migrate_all_and_usage(tb: str) -> None:
    code, out = invoke("migrate", "--from", tb, "--to", "memory:cli-all", "--all", "--no-verify")
    assert code == 0, out
    assert "3 of 3 runs migrated (not verified)" in out
    code, out = invoke("migrate", "--from", tb, "--to", "memory:cli-all")
    assert code == 2 and "give RUN ids or --all" in out
    code, out = invoke("migrate", "--from", tb, "--to", tb, "--all")
    assert code == 1 and "same backend" in out


@pytest.mark.slow
def test_migrate_to_wandb_offline(tb: str, in_tmp: Path) -> None:
    pytest.importorskip("wandb")
    target = f"wandb:cli?mode=offline&dir={in_tmp}/wb"
    code, out = invoke("migrate", "--from", tb, "--to", target, "run-c")
    assert code == 0, out
    code, out = invoke("runs", "-b", target, "--json")
    (row,) = json.loads(out)
    assert row["run_id"] == "run-c" and row["status"] == "killed" and row["reason"] == "stopped"


def test_compare_plot_without_a_shared_metric_still_prints_the_comparison(in_tmp: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils.tensorboard import SummaryWriter

    monkeypatch.setenv("COLUMNS", "250")
    for run, tag in (("a", "train/loss"), ("b", "val/acc")):
        w = SummaryWriter(str(in_tmp / "logs" / run))
        for s in range(3):
            w.add_scalar(tag, s * 0.5, s)
        w.close()
    png = in_tmp / "curves.png"
    code, out = invoke("compare", "--backend", f"tensorboard:{in_tmp}/logs", "a", "b", "--plot", str(png))
    assert code == 1 and not png.exists()
    assert "metrics: last" in out and "train/loss" in out and "val/acc" in out  # the comparison is printed
    (line,) = [ln for ln in out.splitlines() if "--plot" in ln]
    assert line == (f"Error: --plot {png}: the runs share no metric, nothing was plotted (each run's metrics: "
                    "a: train/loss; b: val/acc). Fix: compare runs that logged a common metric")
    assert out.index("metrics: last") < out.index(line)
    code, out = invoke("compare", "--backend", f"tensorboard:{in_tmp}/logs", "a", "b", "--plot", str(png), "--json")
    assert code == 1 and [r["name"] for r in json.loads(out[:out.index("Error: ")])["runs"]] == ["a", "b"]


def test_a_run_copied_into_another_wandb_project_lists_under_that_project_only(in_tmp: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``wandb:PROJECT`` is the W&B project (docs/backends/wandb.md); ``--project`` is the run's own project
    (the project column). A run MLflow holds in experiment ``e``, migrated to ``wandb:q``, lives in W&B project
    ``q`` and keeps project ``e``: ``wandb:q`` lists it (saying both), ``wandb:e`` does not."""
    pytest.importorskip("wandb")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("COLUMNS", "250")
    client = MlflowClient(tracking_uri=f"sqlite:///{in_tmp}/m.db")
    run = client.create_run(client.create_experiment("e"), run_name="r")
    for s in range(3):
        client.log_metric(run.info.run_id, "loss", 1.0 / (s + 1), step=s)
    client.set_terminated(run.info.run_id)
    wb = f"dir={in_tmp}/wb&mode=offline"
    code, out = invoke("migrate", "--from", f"mlflow:{in_tmp}/m.db", "--to", f"wandb:q?{wb}", "--all")
    assert code == 0, out
    rid = run.info.run_id
    code, out = invoke("runs", "--backend", f"wandb:q?{wb}")
    assert code == 0 and rid in out and "e (stored in project q)" in out, out
    code, out = invoke("runs", "--backend", f"wandb:e?{wb}")  # the directory holds W&B project q only
    flat = " ".join(out.split())
    assert code == 1 and rid not in out and "holds no runs of W&B project e; it holds project(s) q" in flat, out
    code, out = invoke("runs", "--backend", f"wandb:?{wb}", "--project", "e", "--json")
    assert [(r["run_id"], r["project"], r["backend_project"]) for r in json.loads(out)] == [(rid, "e", "q")]
    code, out = invoke("runs", "--backend", f"wandb:?{wb}", "--project", "q", "--json")
    assert json.loads(out) == []
    code, out = invoke("show", rid, "--backend", f"wandb:e?{wb}")
    assert code == 1 and rid in out  # not in W&B project e: the lookup says so
