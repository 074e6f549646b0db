"""Optuna: the study is a parent run, each trial a child run, read back from MLflow's own store
(sqlite, through MlflowClient) and through trackkit's Reader."""

from __future__ import annotations

from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("mlflow")

from trackkit.integrations.optuna import TrackkitCallback  # noqa: E402


def _objective(trial: object) -> float:
    x = trial.suggest_float("x", -4.0, 4.0)  # type: ignore[attr-defined]
    opt = trial.suggest_categorical("opt", ["adam", "sgd"])  # type: ignore[attr-defined]
    n = trial.number  # type: ignore[attr-defined]
    if n == 1:
        raise RuntimeError("out of memory (a test)")
    for step in range(4):
        trial.report((x - 1) ** 2 + 1.0 / (step + 1), step)  # type: ignore[attr-defined]
        if n == 2 and step == 1:
            raise optuna.TrialPruned()
    trial.set_user_attr("note", "ok")  # type: ignore[attr-defined]
    return float((x - 1) ** 2 + (0.5 if opt == "sgd" else 0.0))


@pytest.mark.slow
def test_study_is_a_parent_and_trials_are_children(in_tmp: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    db = f"{in_tmp}/mlflow.db"
    # drain_timeout: on a loaded machine MLflow's first sqlite store takes seconds to create
    with TrackkitCallback(project="hpo", backend=f"mlflow:{db}", metric_name="val/loss", agent="thread",
                          drain_timeout=120, capture=False) as cb:
        study = optuna.create_study(study_name="demo", direction="minimize",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(cb.wrap(_objective), n_trials=4, callbacks=[cb], catch=(RuntimeError,))
    assert cb.run is not None and len(cb.trials) == 4

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("hpo")
    runs = {r.data.tags["trackkit.run_id"]: r for r in client.search_runs([exp.experiment_id])}
    parent = runs[cb.run.id]
    assert parent.info.run_name == "demo" and parent.info.status == "FINISHED"
    trials = {n: runs[rid] for n, rid in cb.trials.items()}
    for n, r in trials.items():
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert r.info.run_name == f"demo-trial-{n}"
    done = study.trials
    # a completed trial: its params as config (MLflow params), its value as summary and as the metric
    ok = trials[0]
    assert float(ok.data.params["x"]) == pytest.approx(done[0].params["x"], rel=1e-6)
    assert ok.data.params["opt"] == done[0].params["opt"]
    assert ok.info.status == "FINISHED"
    assert float(ok.data.tags["trackkit.summary.val/loss"]) == pytest.approx(done[0].value, rel=1e-6)
    history = client.get_metric_history(ok.info.run_id, "val/loss")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
        [done[0].intermediate_values[s] for s in range(4)], rel=1e-6)
    # the failed and the pruned trial, with their reason
    assert trials[1].info.status == "FAILED"
    assert trials[2].info.status == "KILLED"

    from trackkit.registry import load_reader, parse_backend

    reader = load_reader(parse_backend(f"mlflow:{db}"))
    infos = {i.run_id: i for i in reader.list_runs("hpo")}
    kids = {n: infos[rid] for n, rid in cb.trials.items()}
    assert {i.parent for i in kids.values()} == {cb.run.id}
    assert kids[0].status.value == "completed" and kids[0].summary["user.note"] == "ok"
    assert kids[1].status.value == "crashed" and "out of memory (a test)" in kids[1].reason
    assert kids[2].status.value == "killed" and kids[2].reason == "pruned by optuna at step 1"
    assert kids[0].tags["sweep.objective"] == "val/loss" and kids[0].tags["sweep.goal"] == "min"
    best = study.best_trial
    assert infos[cb.run.id].summary["best/trial"] == best.number
    assert infos[cb.run.id].summary["best/val/loss"] == pytest.approx(best.value, rel=1e-6)

    # the report draws the sweep: the children with a value, against x and opt
    from trackkit.report import build, select_runs

    d = build(select_runs([f"mlflow:{db}"], where=[f"parent={cb.run.id}"]))
    assert d.sweep is not None and d.sweep["objective"] == "val/loss" and d.sweep["goal"] == "min"
    assert {p["key"] for p in d.sweep["params"]} == {"x", "opt"} or {p["key"] for p in d.sweep["params"]} == {"x"}


def test_bad_keyword_raises_at_construction() -> None:
    from trackkit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown keyword"):
        TrackkitCallback(project="p", nope=1)
