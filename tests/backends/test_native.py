"""run.native(...): the SDK's own object for this run (documented as bypassing trackkit's guarantees)."""

from __future__ import annotations

import pytest

import trackkit
from trackkit.registry import load_reader, parse_backend


@pytest.mark.slow
def test_native_mlflow_is_the_same_run(tmp_path: object) -> None:
    backend = f"mlflow:{tmp_path}/m.db"
    with trackkit.init(project="nat", backend=backend, root=f"{tmp_path}/j", capture=False, drain_timeout=60) as run:
        run.log({"loss": 1.0}, step=0)
        client, mlflow_run_id = run.native("mlflow")
        client.log_metric(mlflow_run_id, "native_metric", 7.0, step=3)
    rec = load_reader(parse_backend(backend)).read_run(run.id)
    assert rec.metrics()["native_metric"] == [(3, 7.0)]
    assert rec.metrics()["loss"] == [(0, 1.0)]


@pytest.mark.slow
def test_native_wandb_returns_an_sdk_run(tmp_path: object) -> None:
    backend = f"wandb:nat?mode=offline&dir={tmp_path}/wb"
    with trackkit.init(project="nat", backend=backend, root=f"{tmp_path}/j", capture=False, drain_timeout=60) as run:
        run.log({"loss": 1.0}, step=0)
        native = run.native("wandb")
        assert hasattr(native, "log") and hasattr(native, "summary")
        native.log({"native_metric": 5.0}, step=1)
    rec = load_reader(parse_backend(backend)).read_run(run.id)
    assert rec.metrics()["loss"] == [(0, 1.0)]
    assert [v for _, v in rec.metrics()["native_metric"]] == [5.0]


def test_native_unknown_backend_names_the_fix(tmp_path: object) -> None:
    with trackkit.init(project="nat", backend=f"tensorboard:{tmp_path}/tb", root=f"{tmp_path}/j",
                       capture=False) as run:
        with pytest.raises(trackkit.ConfigError, match="Fix"):
            run.native("mlflow")
        writer = run.native("tensorboard")
        assert hasattr(writer, "add_event")
        writer.close()
