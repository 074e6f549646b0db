"""Listing MLflow runs costs ``search_runs`` pages, never a request per metric key (issue 14, item 1):
a run with 1,200 metric keys, made with MLflow's own client in a sqlite store, lists with every
key's last value and without one metric-history read (counted on MLflow's real store, which still
answers every call)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("mlflow")

from trackkit.cli import main
from trackkit.registry import load_reader, parse_backend


def test_a_run_with_1200_keys_lists_without_reading_any_history(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.entities import Metric
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracking import MlflowClient

    db = tmp_path / "m.db"
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("wide")
    rid = client.create_run(exp, run_name="wide-run").info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(f"layer{i:04d}/grad_norm", i / 7, now, step) for step in (0, 1) for i in range(1200)]
    for i in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[i:i + 1000])
    client.set_terminated(rid)

    calls: list[str] = []
    real = SqlAlchemyStore.get_metric_history

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[:2]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SqlAlchemyStore, "get_metric_history", counted)
    (info,) = load_reader(parse_backend(f"mlflow:{db}")).list_runs("wide")
    assert len(info.last_metrics) == 1200
    assert info.last_metrics["layer0700/grad_norm"] == pytest.approx(100.0) and info.last_step == 1
    res = CliRunner().invoke(main, ["runs", "--backend", f"mlflow:{db}", "--json"], catch_exceptions=False)
    (row,) = json.loads(res.output)
    assert row["name"] == "wide-run" and len(row["last_metrics"]) == 1200
    assert calls == []  # not one metric history: the listing is search_runs pages only
    client.get_metric_history(rid, "layer0000/grad_norm")
    assert len(calls) == 1  # the counter sees a history read when there is one


def test_show_from_mlflow_reads_no_metric_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``show`` prints the last values, which the run's own record has: the histories (one request per
    key over a server) are not read; ``compare``, which prints min/max, still reads them."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    import trackkit.backends.mlflow.reader as reader_mod

    db = tmp_path / "m.db"
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("wide")
    rid = client.create_run(exp, run_name="wide-run").info.run_id
    now = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric(f"k{i:03d}", float(step * i), now, step)
                                   for step in (0, 3) for i in range(300)])
    client.set_terminated(rid)
    reads: list[str] = []
    for name in ("sqlite_events", "paged_points"):  # the two ways the reader reads histories
        real = getattr(reader_mod, name)
        monkeypatch.setattr(reader_mod, name, lambda *a, _real=real, _n=name, **k: reads.append(_n) or _real(*a, **k))
    res = CliRunner().invoke(main, ["show", "wide-run", "--backend", f"mlflow:{db}", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["last_metrics"]) == 300 and out["last_metrics"]["k299"] == 897.0 and out["last_step"] == 3
    assert reads == []
    res = CliRunner().invoke(main, ["compare", "wide-run", "--backend", f"mlflow:{db}", "--json"],
                             catch_exceptions=False)
    assert json.loads(res.output)["metrics"]["k299"][0]["min"] == 0.0 and reads  # compare needs every point
