"""The MLflow adapter against the real SDK: a sqlite store and a real ``mlflow server`` on 127.0.0.1.

Events go in through ``MlflowSink``; they are read back through ``MlflowReader`` AND
directly through ``MlflowClient`` (what MLflow itself stored). No mocks.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
import uuid
from typing import Any

import pytest

pytest.importorskip("mlflow")

from trackkit.backend import BackendSpec, map_key
from trackkit.backends.mlflow import MAX_PARAM_LENGTH, MlflowReader, MlflowSink, mlflow_key, shorten
from trackkit.errors import BackendError, ConfigError
from trackkit.events import (
    Artifact,
    ConfigUpdate,
    Metrics,
    RunFinished,
    RunStarted,
    Status,
    StatusChange,
    Tags,
)
from trackkit.registry import parse_backend

T0 = 1_700_000_000.0
FMAX = 1.7976931348623157e308


@pytest.fixture(params=["sqlite", "server"])
def spec(request: pytest.FixtureRequest, tmp_path: Any) -> BackendSpec:
    if request.param == "sqlite":
        return parse_backend(f"mlflow:{tmp_path}/mlflow.db")
    url: str = request.getfixturevalue("mlflow_server")
    return parse_backend("mlflow://" + url.split("://", 1)[1])


def client_for(spec: BackendSpec) -> Any:
    from mlflow.tracking import MlflowClient

    loc = spec.location
    return MlflowClient(loc if "://" in loc or loc.startswith("sqlite:") else f"sqlite:///{loc}")


def start(run_id: str | None = None, **kw: Any) -> RunStarted:
    args: dict[str, Any] = {
        "run_id": run_id or uuid.uuid4().hex[:12],
        "project": f"proj-{uuid.uuid4().hex[:8]}",
        "name": "run-a",
        "start_time": T0,
    }
    args.update(kw)
    return RunStarted(**args)


def mlflow_run(spec: BackendSpec, ev: RunStarted) -> Any:
    client = client_for(spec)
    exp = client.get_experiment_by_name(ev.project)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def history(spec: BackendSpec, mid: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client_for(spec).get_metric_history(mid, key))


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# ---------------------------------------------------------------- metrics


def test_every_point_and_large_batches(spec: BackendSpec) -> None:
    ev = start()
    sink = MlflowSink(spec)
    steps = [Metrics(i, T0 + i, {"train/loss": 1.0 / (i + 1), "lr": 0.1}) for i in range(1500)]
    wide = Metrics(1500, T0 + 1500, {f"layer{n}/grad": float(n) for n in range(1200)})  # > 1000 in one event
    sink.emit([ev, *steps, wide])
    sink.close()
    run = mlflow_run(spec, ev)
    got = history(spec, run.info.run_id, "train/loss")
    assert got == [(i, 1.0 / (i + 1)) for i in range(1500)]
    assert len(run.data.metrics) == 2 + 1200
    assert history(spec, run.info.run_id, "layer1199/grad") == [(1500, 1199.0)]

    rec = MlflowReader(spec).read_run(ev.run_id)
    pts = rec.metrics()
    assert pts["train/loss"] == got
    assert len(pts) == 1202 and pts["layer7/grad"] == [(1500, 7.0)]
    ms = [e for e in rec.events if isinstance(e, Metrics)]
    assert ms[0].step == 0 and ms[0].time == T0


def test_redelivered_batch_adds_no_duplicate_points(spec: BackendSpec) -> None:
    ev = start()
    batch = [Metrics(i, T0 + i, {"loss": float(i), "nan": math.nan}) for i in range(50)]
    MlflowSink(spec).emit([ev, *batch])
    again = MlflowSink(spec)  # a fresh sink after an agent restart: RunStarted first, then the batch again
    again.emit([ev, *batch])
    again.emit(batch)
    run = mlflow_run(spec, ev)
    assert len(history(spec, run.info.run_id, "loss")) == 50
    assert len(history(spec, run.info.run_id, "nan")) == 50
    assert len(MlflowReader(spec).read_run(ev.run_id).metrics()["loss"]) == 50


def test_nan_and_inf_round_trip(spec: BackendSpec) -> None:
    ev = start()
    vals = [1.0, math.nan, math.inf, -math.inf, 2.0]
    MlflowSink(spec).emit([ev, *[Metrics(i, T0 + i, {"loss": v}) for i, v in enumerate(vals)]])
    run = mlflow_run(spec, ev)
    stored = [v for _, v in history(spec, run.info.run_id, "loss")]
    assert stored[0] == 1.0 and math.isnan(stored[1]) and stored[2] == FMAX and stored[3] == -FMAX  # MLflow clamps
    got = [v for _, v in MlflowReader(spec).read_run(ev.run_id).metrics()["loss"]]
    assert all(same(a, b) for a, b in zip(got, vals, strict=True)), got
    info = MlflowReader(spec).list_runs(ev.project)[0]
    assert info.last_metrics["loss"] == 2.0 and info.last_step == 4


@pytest.mark.slow
def test_long_history_is_read_in_full(spec: BackendSpec) -> None:
    """More points than one page of MLflow's paginated GetMetricHistory (25 000)."""
    ev = start()
    n = 30_000
    sink = MlflowSink(spec)
    sink.emit([ev])
    for lo in range(0, n, 5000):
        sink.emit([Metrics(i, T0 + i / 1000, {"loss": float(i)}) for i in range(lo, lo + 5000)])
    pts = MlflowReader(spec).read_run(ev.run_id).metrics()["loss"]
    assert len(pts) == n and pts[-1] == (n - 1, float(n - 1))


# ---------------------------------------------------------------- keys and config


AWKWARD = ["train/loss@top-1", "a b", "k" * 300, "损失", "a//b", "/lead", "x/./y", "bad,(chars)=1"]


def test_awkward_keys_are_mapped_and_restored(spec: BackendSpec) -> None:
    ev = start(config={k: i for i, k in enumerate(AWKWARD)})
    MlflowSink(spec).emit([ev, Metrics(0, T0, {k: float(i) for i, k in enumerate(AWKWARD)})])
    run = mlflow_run(spec, ev)
    expected = {k: map_key(k, allowed=r"/\w.\- :", max_length=250) for k in AWKWARD}
    assert expected["a b"] == "a b" and expected["损失"] == "损失"  # valid MLflow keys stay as they are
    assert expected["train/loss@top-1"].startswith("train/loss_top-1-h")
    assert expected["a//b"].startswith("a/b-h") and len(expected["k" * 300]) == 250
    assert set(run.data.metrics) == set(expected.values())
    assert set(run.data.params) == set(expected.values())
    assert all(mlflow_key(k) == v for k, v in expected.items())  # deterministic

    rec = MlflowReader(spec).read_run(ev.run_id)
    assert set(rec.metrics()) == set(AWKWARD)
    assert rec.metrics()["k" * 300] == [(0, 2.0)]
    assert rec.events[0].config == {k: i for i, k in enumerate(AWKWARD)}  # type: ignore[union-attr]
    info = MlflowReader(spec).list_runs(ev.project)[0]
    assert set(info.last_metrics) == set(AWKWARD)


def test_user_tags_in_reserved_namespaces_round_trip(spec: BackendSpec) -> None:
    """A user's tag named ``trackkit.*`` or ``mlflow.*`` is stored outside those namespaces (the
    reader keeps them for bookkeeping) and read back under its own name; it never overrides
    trackkit's status tag."""
    user = {"trackkit.": "a", "trackkit.status": "mine", "mlflow.note": "b", "plain": "c"}
    ev = start(tags=user)
    MlflowSink(spec).emit([ev, Metrics(0, T0, {"x": 1.0}), RunFinished(Status.COMPLETED, T0 + 1)])
    run = mlflow_run(spec, ev)
    assert run.data.tags["trackkit.status"] == "completed" and "mlflow.note" not in run.data.tags
    rec = MlflowReader(spec).read_run(ev.run_id)
    assert rec.info.tags == user and rec.info.status is Status.COMPLETED


def test_nested_config_params_long_value_and_artifact(spec: BackendSpec) -> None:
    long = "x" * 7000
    cfg = {
        "model": "resnet18",
        "optimizer": {"name": "sgd", "lr": 0.01, "betas": [0.9, 0.99]},
        "flags": {"amp": True, "ckpt": None},
        "notes": long,
    }
    ev = start(config=cfg)
    sink = MlflowSink(spec)
    sink.emit([ev])
    sink.emit([ev])  # re-logging the same params is fine
    run = mlflow_run(spec, ev)
    p = run.data.params
    assert p["optimizer.lr"] == "0.01" and p["optimizer.name"] == "sgd" and p["optimizer.betas"] == "[0.9, 0.99]"
    assert p["flags.amp"] == "true" and p["flags.ckpt"] == "null"
    assert len(p["notes"]) == MAX_PARAM_LENGTH
    digest = hashlib.sha256(long.encode()).hexdigest()[:8]
    assert p["notes"] == "x" * (MAX_PARAM_LENGTH - 18) + f"…[sha256:{digest}]" == shorten(long, MAX_PARAM_LENGTH)

    client = client_for(spec)
    path = client.download_artifacts(run.info.run_id, "config.json", _tmp())
    with open(path, encoding="utf-8") as fh:
        assert json.load(fh) == cfg  # complete, long value included

    rec = MlflowReader(spec).read_run(ev.run_id)
    assert rec.events[0].config == cfg  # type: ignore[union-attr]
    assert rec.info.config == cfg


def test_config_update_and_conflicting_value(spec: BackendSpec) -> None:
    ev = start(config={"lr": 0.1})
    MlflowSink(spec).emit([ev, ConfigUpdate({"epochs": 3, "lr": 0.2, "sched": {"gamma": 0.5}}, time=T0 + 1)])
    run = mlflow_run(spec, ev)
    # params are immutable: the first value stays, nothing raised; the update is kept as an artifact
    assert run.data.params == {"lr": "0.1", "epochs": "3", "sched.gamma": "0.5"}
    rec = MlflowReader(spec).read_run(ev.run_id)
    ups = [e for e in rec.events if isinstance(e, ConfigUpdate)]
    assert len(ups) == 1 and ups[0].config == {"epochs": 3, "lr": 0.2, "sched": {"gamma": 0.5}}
    assert rec.info.config == {"lr": 0.2, "epochs": 3, "sched": {"gamma": 0.5}}


def test_tags_group_and_meta(spec: BackendSpec) -> None:
    meta = {"git": {"commit": "abc123", "dirty": False}, "python": "3.11", "status": "meta-wins-not"}
    ev = start(group="sweep-1", tags={"team": "vision", "baseline": "", "odd key!": "v"}, meta=meta)
    MlflowSink(spec).emit([ev, Tags({"later": "yes"})])
    run = mlflow_run(spec, ev)
    t = run.data.tags
    assert t["trackkit.run_id"] == ev.run_id and t["trackkit.group"] == "sweep-1"
    assert t["team"] == "vision" and t["baseline"] == "" and t["later"] == "yes"
    assert t["trackkit.git.commit"] == "abc123" and t["trackkit.python"] == "3.11"
    assert t["trackkit.meta.status"] == "meta-wins-not" and "trackkit.status" not in t
    assert run.info.run_name == "run-a"

    rec = MlflowReader(spec).read_run(ev.run_id)
    st = rec.events[0]
    assert isinstance(st, RunStarted)
    assert st.group == "sweep-1" and st.meta == meta and st.name == "run-a" and st.project == ev.project
    assert dict(st.tags) == {"team": "vision", "baseline": "", "odd key!": "v"}
    assert any(isinstance(e, Tags) and e.tags == {"later": "yes"} for e in rec.events)
    assert rec.info.tags == {"team": "vision", "baseline": "", "odd key!": "v", "later": "yes"}
    assert rec.info.group == "sweep-1" and rec.info.status is Status.RUNNING


# ---------------------------------------------------------------- status and resume


@pytest.mark.parametrize(
    ("status", "native"),
    [
        (Status.COMPLETED, "FINISHED"),
        (Status.CRASHED, "FAILED"),
        (Status.KILLED, "KILLED"),
        (Status.DIVERGED, "FAILED"),
    ],
)
def test_status_mapping(spec: BackendSpec, status: Status, native: str) -> None:
    ev = start()
    batch: list[Any] = [ev, Metrics(0, T0, {"loss": 1.0})]
    if status is not Status.COMPLETED:
        batch.append(StatusChange(status, f"why {status}", step=0, time=T0 + 1, details={"traceback": "tb" * 5000}))
    batch.append(RunFinished(status, T0 + 2, reason=f"why {status}", exit_code=0 if status is Status.COMPLETED else 1))
    MlflowSink(spec).emit(batch)
    run = mlflow_run(spec, ev)
    assert run.info.status == native
    assert run.info.end_time == int((T0 + 2) * 1000)
    assert run.data.tags["trackkit.status"] == status.value
    assert run.data.tags["trackkit.reason"] == f"why {status}"

    rec = MlflowReader(spec).read_run(ev.run_id)
    assert rec.info.status is status and rec.info.reason == f"why {status}"
    assert rec.info.end_time == T0 + 2
    fin = rec.events[-1]
    assert isinstance(fin, RunFinished) and fin.status is status and fin.time == T0 + 2
    assert fin.exit_code == (0 if status is Status.COMPLETED else 1)
    changes = [e for e in rec.events if isinstance(e, StatusChange)]
    if status is not Status.COMPLETED:
        assert len(changes) == 1 and changes[0].status is status and changes[0].step == 0
        assert changes[0].details["traceback"].endswith("tb")


def test_resume_reuses_the_run(spec: BackendSpec) -> None:
    ev = start(config={"lr": 0.1, "opt": {"name": "adam"}}, tags={"a": "1"})
    first = MlflowSink(spec)
    first.emit([ev, Metrics(0, T0, {"loss": 1.0}), RunFinished(Status.KILLED, T0 + 1, "SIGKILL")])
    first.close()
    second = MlflowSink(spec)  # e.g. the trainer restarted with resume=...
    second.emit([ev, StatusChange(Status.RUNNING, "resumed", time=T0 + 5), Metrics(1, T0 + 6, {"loss": 0.5})])
    second.emit([RunFinished(Status.COMPLETED, T0 + 9)])
    run = mlflow_run(spec, ev)  # still one run in the experiment
    assert run.info.status == "FINISHED"
    assert history(spec, run.info.run_id, "loss") == [(0, 1.0), (1, 0.5)]
    rec = MlflowReader(spec).read_run(ev.run_id)
    assert rec.info.status is Status.COMPLETED and rec.events[0].config == ev.config  # type: ignore[union-attr]


def test_events_before_run_started_raise(spec: BackendSpec) -> None:
    with pytest.raises(BackendError, match="before RunStarted"):
        MlflowSink(spec).emit([Metrics(0, T0, {"x": 1.0})])


# ---------------------------------------------------------------- artifacts


def test_artifacts(spec: BackendSpec, tmp_path: Any) -> None:
    f = tmp_path / "model.pt"
    f.write_bytes(b"weights-v1")
    d = tmp_path / "tokenizer"
    d.mkdir()
    (d / "vocab.txt").write_text("a\nb\n")
    sha = hashlib.sha256(b"weights-v1").hexdigest()
    ev = start()
    arts = [
        Artifact(str(f), "model", "model", sha, 10, version=0, aliases=("best",), metadata={"acc": 0.9}, time=T0 + 1),
        Artifact(str(d), "tok/../x", "data", "", 4, version=2, time=T0 + 2),
    ]
    sink = MlflowSink(spec)
    sink.emit([ev, *arts])
    sink.emit([arts[0]])  # redelivery: same path, same record
    run = mlflow_run(spec, ev)
    client = client_for(spec)
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model/model/v0")] == ["model/model/v0/model.pt"]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "data/tok/_/x/v2")] == ["data/tok/_/x/v2/tokenizer"]

    rec = MlflowReader(spec).read_run(ev.run_id)
    got = [e for e in rec.events if isinstance(e, Artifact)]
    assert [(a.name, a.kind, a.version) for a in got] == [("model", "model", 0), ("tok/../x", "data", 2)]
    assert got[0].sha256 == sha and got[0].aliases == ("best",) and got[0].metadata == {"acc": 0.9}
    assert got[0].size == 10 and got[0].source == "" and got[0].time == T0 + 1
    with open(got[0].path, "rb") as fh:  # file:// artifact store: a local path
        assert fh.read() == b"weights-v1"


# ---------------------------------------------------------------- reader on plain MLflow runs


def test_plain_mlflow_runs_are_listed_and_read(spec: BackendSpec) -> None:
    from mlflow.entities import Metric, Param

    client = client_for(spec)
    project = f"plain-{uuid.uuid4().hex[:8]}"
    exp_id = client.create_experiment(project, artifact_location=None if "://" in spec.location else _tmp_uri())
    r = client.create_run(exp_id, run_name="by-hand", tags={"who": "me"})
    client.log_batch(
        r.info.run_id,
        metrics=[Metric("acc", 0.5, int(T0 * 1000), 0), Metric("acc", 0.7, int(T0 * 1000) + 1, 1)],
        params=[Param("opt.lr", "0.01"), Param("name", "sgd")],
    )
    client.set_terminated(r.info.run_id, "FAILED")
    reader = MlflowReader(spec)
    infos = reader.list_runs(project)
    assert len(infos) == 1
    info = infos[0]
    assert info.run_id == r.info.run_id and info.name == "by-hand" and info.status is Status.CRASHED
    assert info.config == {"opt": {"lr": 0.01}, "name": "sgd"} and info.tags == {"who": "me"}
    rec = reader.read_run(r.info.run_id)
    assert rec.metrics() == {"acc": [(0, 0.5), (1, 0.7)]}
    assert isinstance(rec.events[-1], RunFinished) and rec.events[-1].status is Status.CRASHED
    assert r.info.run_id in {i.run_id for i in reader.list_runs()}
    with pytest.raises(KeyError):
        reader.read_run("no-such-run")


# ---------------------------------------------------------------- transport


def test_unreachable_server_fails_fast() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = MlflowSink(parse_backend(f"mlflow://127.0.0.1:{port}"))
    t = time.monotonic()
    with pytest.raises(BackendError, match="127.0.0.1"):
        sink.emit([start()])
    assert time.monotonic() - t < 10
    t = time.monotonic()
    with pytest.raises(BackendError):
        MlflowReader(parse_backend(f"mlflow://127.0.0.1:{port}")).list_runs()
    assert time.monotonic() - t < 10


def test_http_options_belong_to_their_connection(mlflow_server: str) -> None:
    """Two MLflow connections with different options in ONE process (two servers in one agent, a
    reader beside a sink): each request carries its own connection's timeout and retries, and
    nothing is put into the process environment. Both talk to a real listener that accepts and
    never answers, through MLflow's own REST client: a call fails after that connection's timeout,
    once per attempt (1 + retries), each attempt a new TCP connection. Under a per-process setting
    the connection made last would have imposed its options on both."""
    from tk_mlflow_server import Blackhole, free_port

    def http_env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_HTTP_REQUEST")}

    env = http_env()
    port = free_port()
    hole = Blackhole(port)
    try:
        patient = MlflowReader(parse_backend(f"mlflow://127.0.0.1:{port}?timeout=4"))
        hasty = MlflowReader(parse_backend(f"mlflow://127.0.0.1:{port}?timeout=1&retries=1"))
        took: dict[str, tuple[float, int]] = {}
        for name, reader in (("patient", patient), ("hasty", hasty)):
            before, t = len(hole.conns), time.monotonic()
            with pytest.raises(BackendError, match=f"127.0.0.1:{port}"):
                reader.list_runs()
            took[name] = (time.monotonic() - t, len(hole.conns) - before)
    finally:
        hole.close()
    assert 4.0 <= took["patient"][0] < 10 and took["patient"][1] == 1, took  # one attempt of 4 s
    assert 2.0 <= took["hasty"][0] < 3.9 and took["hasty"][1] == 2, took  # two attempts of 1 s
    assert http_env() == env
    # the same options against the real server: delivered and read back
    hostport = mlflow_server.split("://", 1)[1]
    ev = start()
    MlflowSink(parse_backend(f"mlflow://{hostport}?timeout=5&retries=2")).emit([ev, Metrics(0, T0, {"x": 1.0})])
    info = MlflowReader(parse_backend(f"mlflow://{hostport}?timeout=1")).list_runs(ev.project)[0]
    assert info.last_metrics == {"x": 1.0}
    assert http_env() == env


def test_bad_http_option_is_a_setup_error() -> None:
    with pytest.raises(ConfigError, match=r"timeout='soon'.*Fix"):
        MlflowSink(parse_backend("mlflow://127.0.0.1:9?timeout=soon"))


@pytest.fixture(scope="module")
def artifact_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real ``mlflow server`` that proxies artifacts (``mlflow-artifacts:``, sent over HTTP)."""
    from tk_mlflow_server import MlflowServer

    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-artifact-server"), serve_artifacts=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_artifacts_proxied_by_the_server(artifact_server: Any, tmp_path: Any) -> None:
    """Artifacts go over HTTP to the server (each request with the connection's options) and
    read back through the reader and through MLflow's own client."""
    spec = parse_backend("mlflow://" + artifact_server.url.split("://", 1)[1] + "?timeout=5&retries=0")
    f = tmp_path / "model.bin"
    f.write_bytes(b"\x00weights" * 1000)
    ev = start(config={"lr": 0.1, "net": {"depth": 3}}, meta={"git": {"commit": "abc"}})
    sink = MlflowSink(spec)
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    sink.emit([ev, Artifact(str(f), "net", "model", sha, f.stat().st_size, version=1, time=T0 + 1)])
    sink.emit([ConfigUpdate({"lr": 0.2}, time=T0 + 2), RunFinished(status=Status.COMPLETED, time=T0 + 3)])
    run = mlflow_run(BackendSpec("mlflow", artifact_server.url), ev)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    rec = MlflowReader(spec).read_run(ev.run_id)
    assert rec.info.config == {"lr": 0.2, "net": {"depth": 3}}
    assert isinstance(rec.events[0], RunStarted) and rec.events[0].config == {"lr": 0.1, "net": {"depth": 3}}
    assert rec.events[0].meta == {"git": {"commit": "abc"}}
    assert [e.config for e in rec.events if isinstance(e, ConfigUpdate)] == [{"lr": 0.2}]
    (art,) = [e for e in rec.events if isinstance(e, Artifact)]
    assert (art.name, art.kind, art.version, art.sha256) == ("net", "model", 1, sha)
    local = client_for(BackendSpec("mlflow", artifact_server.url)).download_artifacts(
        run.info.run_id, "model/net/v1/model.bin", str(tmp_path)
    )
    assert open(local, "rb").read() == f.read_bytes()


def test_credentials_are_not_recorded(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "")  # restored after the test
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "")
    hostport = mlflow_server.split("://", 1)[1]
    spec = parse_backend(f"mlflow://alice:s3cret@{hostport}")
    sink = MlflowSink(spec)
    assert "s3cret" not in sink.tracking_uri
    # never put into the process environment, where MLflow would send them to every server
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "" and os.environ["MLFLOW_TRACKING_USERNAME"] == ""
    ev = start()
    sink.emit([ev])
    info = MlflowReader(spec).list_runs(ev.project)[0]
    assert "s3cret" not in info.backend + info.location and "alice" not in info.backend
    assert not any("s3cret" in v for v in mlflow_run(BackendSpec("mlflow", mlflow_server), ev).data.tags.values())


def test_native_attaches_to_the_same_run(spec: BackendSpec) -> None:
    client, mid = MlflowSink.native(spec, "native-run-1" + uuid.uuid4().hex[:6], f"proj-{uuid.uuid4().hex[:6]}", "n")
    run = client.get_run(mid)
    tk_id = run.data.tags["trackkit.run_id"]
    exp = client.get_experiment(run.info.experiment_id)
    ev = start(run_id=tk_id, project=exp.name)
    MlflowSink(spec).emit([ev, Metrics(0, T0, {"x": 1.0})])
    assert mlflow_run(spec, ev).info.run_id == mid


def test_capabilities() -> None:
    caps = MlflowSink.capabilities
    assert caps.max_key_length == 250 and caps.restricted_key_chars and not caps.stores_inf
    assert caps.max_param_length == 6000 and caps.stores_nan and caps.native_killed


# The shared contract suite (trackkit.testing.BackendContract) runs on MLflow sqlite and the real server
# in tests/backends/test_contract_sdks.py.


# ---------------------------------------------------------------- helpers


def _tmp() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="trackkit-mlflow-test-")


def _tmp_uri() -> str:
    from pathlib import Path

    return Path(_tmp()).as_uri()


def test_credentials_go_to_their_own_server_only() -> None:
    """Two MLflow backends in one process (an agent fanning out to two servers): the user and
    password of one URI are sent, as basic auth, to that server and never to the other. The two
    listeners only record the Authorization header of each request and answer an empty experiment
    list; this is about what goes on the wire, the adapter itself is proven on a real server above."""
    import base64
    import http.server
    import threading

    seen: dict[int, list[str | None]] = {}

    class Recorder(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.setdefault(self.server.server_address[1], []).append(self.headers.get("Authorization"))
            body = b'{"experiments": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder) for _ in range(2)]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with_creds, without = (srv.server_address[1] for srv in servers)
        a = MlflowReader(parse_backend(f"mlflow://alice:s3%40cret@127.0.0.1:{with_creds}"))
        b = MlflowReader(parse_backend(f"mlflow://127.0.0.1:{without}"))
        for reader in (a, b, a, b):
            reader.client.search_experiments()
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()
    expected = "Basic " + base64.b64encode(b"alice:s3@cret").decode()
    assert seen[with_creds] and all(h == expected for h in seen[with_creds]), seen
    assert seen[without] and all(h is None for h in seen[without]), seen
    assert "s3" not in a.tracking_uri and "alice" not in a.tracking_uri
