"""Runs MLflow itself wrote (the fluent API, ``MlflowClient``, sklearn autolog), read by trackkit's reader
and migrated; the copies read back through MLflow's own client. A sqlite store and a real ``mlflow server``
on 127.0.0.1. No mocks: every fixture is made by calling mlflow directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("mlflow")

from trackkit.backend import BackendSpec
from trackkit.backends.mlflow import MlflowReader, MlflowSink
from trackkit.backends.mlflow import history as mlflow_history
from trackkit.backends.mlflow.reader import CHUNK_EVENTS
from trackkit.errors import ConfigError
from trackkit.events import Artifact, Media, Metrics, RunFinished, RunStarted, Status, Summary
from trackkit.migrate import migrate_all
from trackkit.registry import parse_backend

T0 = 1_700_000_000_000  # ms


def _sha(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@dataclass
class Store:
    spec: str  # trackkit backend string
    uri: str  # MLflow tracking URI
    parent: str  # MLflow run ids
    child: str
    failed: str
    killed: str
    running: str
    big: str
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def fluent_uri() -> Iterator[None]:
    """The fluent API is process-global: restore its tracking URI afterwards."""
    import mlflow

    before = mlflow.get_tracking_uri()
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


def _write_runs(uri: str, art_root: str, tmp: str, experiment: str) -> Store:
    """Runs made by mlflow itself: the fluent API (params, tags, metrics with steps and timestamps, text /
    dict / file artifacts in nested directories, a dataset, a nested run), the statuses, a big run."""
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment(experiment, artifact_location=f"{art_root}/{experiment}")
    mlflow.set_experiment(experiment_id=exp)
    src = os.path.join(tmp, "data", "deep")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "weights.bin"), "wb") as fh:
        fh.write(os.urandom(3000))
    with mlflow.start_run(run_name="parent") as p:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"batch": 32, "optimizer": "adam"})
        mlflow.set_tag("team", "vision")
        mlflow.set_tag("mlflow.source.git.commit", "0123abcd")
        mlflow.set_tag("mlflow.note.content", "the baseline")
        for s in range(20):
            mlflow.log_metric("loss", 1.0 / (s + 1), step=s, timestamp=T0 + 1000 * s)
        mlflow.log_metrics({"acc": 0.5, "f1": 0.25}, step=19, timestamp=T0 + 19_000)
        mlflow.log_text("hello from mlflow", "notes/deep/readme.txt")
        mlflow.log_dict({"layers": [64, 32]}, "configs/model.json")
        mlflow.log_artifact(os.path.join(src, "weights.bin"), artifact_path="ckpt/epoch_1")
        try:
            import pandas as pd

            ds = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]}), source="/data/train.csv",
                                         name="train-set", targets="y")
            mlflow.log_input(ds, context="training")
        except ImportError:  # pragma: no cover - pandas comes with mlflow
            pass
        with mlflow.start_run(run_name="child", nested=True) as c:
            mlflow.log_param("fold", 1)
            for s in range(5):
                mlflow.log_metric("val", float(s), step=s, timestamp=T0 + 500 * s)
    with mlflow.start_run(run_name="failed") as f:
        mlflow.log_metric("x", 1.0, step=0)
    mlflow.end_run()
    MlflowClient(uri).set_terminated(f.info.run_id, "FAILED")
    client = MlflowClient(uri)
    killed = client.create_run(exp, run_name="killed").info.run_id
    client.set_terminated(killed, "KILLED")
    running = client.create_run(exp, run_name="running").info.run_id
    # a big run through MlflowClient.log_batch: each key logged after the other (timestamps not in step order)
    big = client.create_run(exp, run_name="big").info.run_id
    steps = CHUNK_EVENTS + 5000
    for k, key in enumerate(("b/second", "a/first")):
        batch = [Metric(key, s * 0.5 + k, T0 + k * 10_000_000 + s, s) for s in range(steps)]
        for i in range(0, len(batch), 1000):
            client.log_batch(big, metrics=batch[i : i + 1000])
    client.set_terminated(big, "FINISHED")
    files = {
        "notes/deep/readme.txt": b"hello from mlflow",
        "configs/model.json": json.dumps({"layers": [64, 32]}, indent=2).encode(),
        "ckpt/epoch_1/weights.bin": open(os.path.join(src, "weights.bin"), "rb").read(),
    }
    return Store("", uri, p.info.run_id, c.info.run_id, f.info.run_id, killed, running, big, files)


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory, fluent_uri: None) -> Store:
    tmp = tmp_path_factory.mktemp("mlflow-foreign")
    db = tmp / "fluent.db"
    st = _write_runs(f"sqlite:///{db}", (tmp / "art").as_uri(), str(tmp), "foreign")
    st.spec = f"mlflow:{db}"
    return st


@pytest.fixture(scope="module")
def server_store(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str, fluent_uri: None) -> Store:
    tmp = tmp_path_factory.mktemp("mlflow-foreign-srv")
    st = _write_runs(mlflow_server, (tmp / "art").as_uri(), str(tmp), f"foreign-{os.getpid()}")
    st.spec = mlflow_server.replace("http://", "mlflow://") + "?timeout=30"
    return st


@pytest.fixture(params=["sqlite", "server"])
def store(request: pytest.FixtureRequest) -> Store:
    st: Store = request.getfixturevalue(f"{request.param}_store")
    return st


def _reader(spec: str) -> MlflowReader:
    return MlflowReader(parse_backend(spec))


# ---------------------------------------------------------------- reading


def test_list_runs_maps_mlflow_system_tags_status_and_parent(store: Store) -> None:
    infos = {i.location.rsplit("/", 1)[-1]: i for i in _reader(store.spec).list_runs()}
    parent, child = infos[store.parent], infos[store.child]
    assert (parent.name, child.name) == ("parent", "child")
    assert parent.run_id == store.parent and child.parent == store.parent  # a foreign parent: its MLflow id
    assert parent.parent is None
    assert parent.tags == {"team": "vision"}  # mlflow.* system tags are not user tags
    assert parent.config == {"lr": 0.01, "batch": 32, "optimizer": "adam"}
    assert parent.status is Status.COMPLETED and parent.end_time and parent.start_time
    assert parent.last_metrics["loss"] == pytest.approx(1 / 20) and parent.last_step == 19
    assert infos[store.failed].status is Status.CRASHED
    assert infos[store.killed].status is Status.KILLED
    assert infos[store.running].status is Status.RUNNING and infos[store.running].end_time is None


def test_read_run_carries_everything_mlflow_wrote(store: Store) -> None:
    rec = _reader(store.spec).read_run(store.parent)
    start = rec.events[0]
    assert isinstance(start, RunStarted) and start.name == "parent" and start.parent is None
    assert start.config == {"lr": 0.01, "batch": 32, "optimizer": "adam"}
    assert start.meta["git"] == {"commit": "0123abcd"}
    system = start.meta["mlflow"]["tags"]
    assert system["mlflow.note.content"] == "the baseline" and "mlflow.source.name" in system
    assert "mlflow.runName" not in system
    (ds,) = start.meta["mlflow"]["datasets"]
    assert ds["name"] == "train-set" and ds["context"] == "training" and ds["source"] == {"uri": "/data/train.csv"}
    loss = [e for e in rec.events if isinstance(e, Metrics) and "loss" in e.values]
    assert [(e.step, e.time) for e in loss] == [(s, (T0 + 1000 * s) / 1000) for s in range(20)]
    (last,) = [e for e in rec.events if isinstance(e, Metrics) and "acc" in e.values]
    # one event per (step, timestamp): log_metric and log_metrics at the same instant are one step's values
    assert dict(last.values) == {"loss": 1 / 20, "acc": 0.5, "f1": 0.25} and last.time == (T0 + 19_000) / 1000
    arts = {a.name: a for a in rec.events if isinstance(a, Artifact)}
    assert set(arts) == set(store.files)
    for name, data in store.files.items():
        a = arts[name]
        assert os.path.isfile(a.path) and "://" not in a.path
        # the download keeps the artifact's path once (``<tmp>/<run>/ckpt/epoch_1/weights.bin``), not twice
        assert a.path.replace(os.sep, "/").endswith("/" + name)
        assert a.path.split(os.sep).count(name.split("/")[0]) == 1, a.path
        assert open(a.path, "rb").read() == data
        assert a.sha256 == hashlib.sha256(data).hexdigest() == _sha(a.path) and a.size == len(data)
        assert a.metadata["mlflow_path"] == name
    assert not [e for e in rec.events if isinstance(e, Media)]  # log_text / log_dict are files, not media
    assert isinstance(rec.events[-1], RunFinished) and rec.events[-1].status is Status.COMPLETED
    child = _reader(store.spec).read_run(store.child)
    assert child.info.parent == store.parent and child.events[0].parent == store.parent  # type: ignore[union-attr]
    assert child.info.config == {"fold": 1}


def test_stream_run_bounded_step_ordered_and_equal_to_read_run(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mlflow_history, "page_size", lambda nkeys: 4000)  # a server's history in several pages
    reader = _reader(store.spec)
    with pytest.raises(KeyError):
        reader.stream_run("no-such-run")
    chunks = list(reader.stream_run(store.big))
    assert len(chunks) >= 2
    assert isinstance(chunks[0][0][0], RunStarted)
    fractions = [f for _, f, _ in chunks]
    assert fractions[-1] == 1.0 and all(f is not None and 0 <= f <= 1 for f in fractions)
    assert fractions == sorted(fractions)
    steps = []
    for events, _, notes in chunks:
        assert len(events) <= CHUNK_EVENTS and notes == []
        steps += [e.step for e in events if isinstance(e, Metrics)]
    assert steps == sorted(steps)  # step order over both keys, though each was logged after the other
    streamed = [e for events, _, _ in chunks for e in events]
    rec = reader.read_run(store.big)
    assert streamed == rec.events
    pts = rec.metrics()
    n = CHUNK_EVENTS + 5000
    assert pts["a/first"] == [(s, s * 0.5 + 1) for s in range(n)] and len(pts["b/second"]) == n


# ---------------------------------------------------------------- the sink: parent, summary, copies


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


@pytest.fixture(params=["sqlite", "server"])
def target(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, str]:
    """(backend string, tracking URI) of an empty target."""
    if request.param == "sqlite":
        return f"mlflow:{tmp_path}/target.db", f"sqlite:///{tmp_path}/target.db"
    url: str = request.getfixturevalue("mlflow_server")
    return url.replace("http://", "mlflow://"), url


def test_sink_parent_child_and_summary_round_trip(target: tuple[str, str], caplog: Any) -> None:
    spec, uri = target
    project = f"nest-{time.time_ns()}"
    t = time.time()
    child_id, parent_id = f"child-{time.time_ns()}", f"parent-{time.time_ns()}"

    def write(events: list[Any]) -> None:
        sink = MlflowSink(parse_backend(spec))
        try:
            sink.emit(events)
        finally:
            sink.close()

    # the child arrives first: the parent is not there yet
    with caplog.at_level("WARNING", logger="trackkit.backends.mlflow"):
        write([RunStarted(child_id, project, "child", t, parent=parent_id), Metrics(0, t, {"x": 1.0}),
               Summary({"best": 0.9, "table": {"rows": 3}}, t + 1), RunFinished(Status.COMPLETED, t + 2)])
    assert "is not in experiment" in caplog.text and parent_id in caplog.text
    write([RunStarted(parent_id, project, "parent", t), Summary({"score": 1.5}, t + 1),
           Summary({"score": 2.5, "n": 3}, t + 2), RunFinished(Status.COMPLETED, t + 3)])
    client = _client(uri)
    exp = client.get_experiment_by_name(project)
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert runs["child"].data.tags["mlflow.parentRunId"] == runs["parent"].info.run_id  # linked when it came
    assert runs["child"].data.tags["trackkit.parent"] == parent_id
    assert runs["parent"].data.tags["trackkit.summary.score"] == "2.5"
    reader = MlflowReader(parse_backend(spec))
    child, parent = reader.read_run(child_id), reader.read_run(parent_id)
    assert child.info.parent == parent_id and child.events[0].parent == parent_id  # type: ignore[union-attr]
    assert child.info.summary == {"best": 0.9, "table": {"rows": 3}}
    assert parent.info.summary == {"score": 2.5, "n": 3}
    assert [dict(e.values) for e in parent.events if isinstance(e, Summary)] == [{"score": 1.5}, {"score": 2.5, "n": 3}]
    listed = {i.run_id: i for i in reader.list_runs(project)}
    assert listed[child_id].parent == parent_id and listed[parent_id].summary == {"score": 2.5, "n": 3}


def test_migrate_fluent_runs_keeps_parent_files_datasets(sqlite_store: Store, target: tuple[str, str]) -> None:
    spec, uri = target
    src = _reader(sqlite_store.spec)
    project = src.client.get_experiment(src.client.get_run(sqlite_store.parent).info.experiment_id).name
    if uri.startswith("http"):  # the shared server: a fresh experiment name is not possible for a copy, so skip
        already = _client(uri).get_experiment_by_name(project)
        if already is not None and _client(uri).search_runs([already.experiment_id]):
            pytest.skip("the session's server already holds this project")
    reports = migrate_all(sqlite_store.spec, spec, project)
    for rep in reports:
        assert rep.ok, rep.summary()
        assert not rep.skipped and not rep.skipped_media
    by_id = {r.run_id: r for r in reports}
    assert set(by_id[sqlite_store.parent].artifacts) == {f"{n} v0" for n in sqlite_store.files}
    client = _client(uri)
    exp = client.get_experiment_by_name(project)
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    parent, child = runs["parent"], runs["child"]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert parent.data.tags["mlflow.source.git.commit"] == "0123abcd"
    assert parent.data.tags["mlflow.note.content"] == "the baseline"
    assert parent.data.params == {"lr": "0.01", "batch": "32", "optimizer": "adam"}
    (ds,) = parent.inputs.dataset_inputs
    assert ds.dataset.name == "train-set" and {t.key: t.value for t in ds.tags}["mlflow.data.context"] == "training"
    # the files at the paths MLflow had them, byte for byte
    for name, data in sqlite_store.files.items():
        local = client.download_artifacts(parent.info.run_id, name, str(os.path.dirname(spec.split(":", 1)[1]))
                                          if not uri.startswith("http") else None)
        assert open(local, "rb").read() == data
    hist = client.get_metric_history(parent.info.run_id, "loss")
    assert sorted((m.step, m.timestamp) for m in hist) == [(s, T0 + 1000 * s) for s in range(20)]
    assert runs["failed"].info.status == "FAILED" and runs["killed"].info.status == "KILLED"
    # read back through trackkit: the parent as its trackkit id (the source's MLflow id)
    back = MlflowReader(parse_backend(spec)).read_run(sqlite_store.child)
    assert back.info.parent == sqlite_store.parent


# ---------------------------------------------------------------- autolog


def test_sklearn_autolog_run_reads_back(tmp_path: Any, fluent_uri: None) -> None:
    pytest.importorskip("sklearn")
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    db = tmp_path / "auto.db"
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    exp = mlflow.create_experiment("auto", artifact_location=(tmp_path / "art").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run(run_name="auto") as run:
            X = np.array([[0.0], [1.0], [2.0], [3.0]])
            LogisticRegression(C=0.5, max_iter=50).fit(X, np.array([0, 0, 1, 1]))
    finally:
        mlflow.sklearn.autolog(disable=True)
    rec = MlflowReader(parse_backend(f"mlflow:{db}")).read_run(run.info.run_id)
    assert rec.info.config["C"] == 0.5 and rec.info.config["max_iter"] == 50
    assert "training_score" in rec.info.last_metrics
    assert rec.info.tags.get("estimator_name") == "LogisticRegression"
    start = rec.events[0]
    assert isinstance(start, RunStarted) and start.meta["mlflow"]["tags"]["mlflow.source.type"] == "LOCAL"
    files = [e for e in rec.events if isinstance(e, (Artifact, Media))]
    names = {f.name if isinstance(f, Artifact) else f.key for f in files}
    assert "estimator.html" in names  # a file: an Artifact; the plots (PNG): images, step 0
    assert {"training_confusion_matrix.png", "training_roc_curve.png"} <= names
    for f in files:
        assert os.path.isfile(f.path) and f.sha256 == _sha(f.path)


# ---------------------------------------------------------------- bad stores


def test_newer_schema_and_foreign_files_get_one_line(sqlite_store: Store, tmp_path: Any) -> None:
    import shutil
    import sqlite3

    newer = tmp_path / "newer.db"
    shutil.copy(sqlite_store.spec.split(":", 1)[1], newer)
    db = sqlite3.connect(newer)
    db.execute("UPDATE alembic_version SET version_num = 'fffffffffff1'")
    db.commit()
    db.close()
    with pytest.raises(ConfigError) as err:
        MlflowReader(BackendSpec("mlflow", str(newer)))
    msg = str(err.value)
    assert str(newer) in msg and "newer schema" in msg and "pip install -U mlflow" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="newer schema"):  # a sink does not touch it either
        MlflowSink(BackendSpec("mlflow", str(newer)))
    text = tmp_path / "notes.db"
    text.write_text("not a database")
    with pytest.raises(ConfigError, match="not an MLflow store: not a sqlite database"):
        MlflowReader(BackendSpec("mlflow", str(text)))
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    proc = subprocess.run([sys.executable, "-m", "trackkit", "runs", "--backend", f"mlflow:{newer}"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    out = (proc.stdout + proc.stderr).strip()
    assert "Traceback" not in out and "newer schema" in out and str(newer) in out


def test_sqlite_read_client_answers_as_mlflows_own_client(sqlite_store: Store, tmp_path: Any) -> None:
    """The reader's sqlite client (the standard library's sqlite3, no SQLAlchemy) gives the entities
    MLflow's own client gives for the same store: experiments, runs (listed, found by tag, by id; a deleted
    run not listed), their tags, params, latest metrics, inputs, artifact listings and files."""
    from mlflow.tracking import MlflowClient

    from trackkit.backends.mlflow.sqlite_read import SqliteReadClient

    db = sqlite_store.spec[len("mlflow:"):]
    real = MlflowClient(f"sqlite:///{db}")
    gone = real.create_run(real.get_experiment_by_name("foreign").experiment_id, run_name="deleted").info.run_id
    real.delete_run(gone)
    made: list[str] = []
    ours = SqliteReadClient(db, lambda: made.append("real") or real)

    def run_view(r: Any) -> Any:
        inputs = sorted((d.dataset.name, d.dataset.digest, d.dataset.source, tuple((t.key, t.value) for t in d.tags))
                        for d in (r.inputs.dataset_inputs if r.inputs else []))
        metrics = sorted((m.key, m.step, m.timestamp, repr(m.value)) for m in r.data._metric_objs)
        return (r.info.run_id, r.info.run_name, r.info.experiment_id, r.info.user_id, r.info.status,
                r.info.start_time, r.info.end_time, r.info.lifecycle_stage, r.info.artifact_uri,
                dict(r.data.tags), dict(r.data.params), metrics, inputs)

    def exp_view(e: Any) -> Any:
        return (e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, dict(e.tags))

    assert [exp_view(e) for e in ours.search_experiments(max_results=1000)] == [
        exp_view(e) for e in real.search_experiments(max_results=1000)]
    exp = real.get_experiment_by_name("foreign").experiment_id
    assert exp_view(ours.get_experiment(exp)) == exp_view(real.get_experiment(exp))
    assert exp_view(ours.get_experiment_by_name("foreign")) == exp_view(real.get_experiment_by_name("foreign"))
    assert ours.get_experiment_by_name("no such") is None
    listed = [run_view(r) for r in ours.search_runs([exp], max_results=1000)]
    assert listed == [run_view(r) for r in real.search_runs([exp], max_results=1000)]
    assert gone not in {v[0] for v in listed} and len(listed) == 6
    flt = "tags.`mlflow.runName` = 'child'"
    assert [run_view(r) for r in ours.search_runs([exp], filter_string=flt, max_results=10)] == [
        run_view(r) for r in real.search_runs([exp], filter_string=flt, max_results=10)]
    for rid in (sqlite_store.parent, sqlite_store.child, sqlite_store.big, gone):
        assert run_view(ours.get_run(rid)) == run_view(real.get_run(rid))
    assert run_view(ours.get_run(sqlite_store.parent))[-1], "the parent's dataset is among its inputs"

    def tree(client: Any, rid: str, path: str | None = None) -> list[Any]:
        out = []
        for f in client.list_artifacts(rid, path):
            out.append((f.path, f.is_dir, f.file_size))
            if f.is_dir:
                out += tree(client, rid, f.path)
        return out

    assert tree(ours, sqlite_store.parent) == tree(real, sqlite_store.parent)
    for path, data in sqlite_store.files.items():
        dest = tmp_path / path.replace("/", "_")
        dest.mkdir()
        with open(ours.download_artifacts(sqlite_store.parent, path, str(dest)), "rb") as fh:
            assert fh.read() == data
    # only the run with a dataset (its inputs) went to MLflow's own client, once made
    assert made == ["real"]
    ours.close()


def test_sqlite_events_are_metric_events_of_sqlite_points(tmp_path: Any) -> None:
    """The reader's one-loop sqlite history (``sqlite_events``) gives exactly the events of the reference
    pipeline (``metric_events(sqlite_points(...))``): NaN, a clamped ±inf restored, trackkit's mapped keys,
    system metrics, two values of one key at one (step, timestamp), steps logged out of order."""
    import math

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    db = tmp_path / "h.db"
    client = MlflowClient(f"sqlite:///{db}")
    rid = client.create_run(client.create_experiment("h"), run_name="h").info.run_id
    pts = [Metric("loss", 1.0 / (s + 1), T0 + s, s) for s in range(50)]
    pts += [Metric("nanny", math.nan, T0 + s, s) for s in range(0, 50, 7)]
    pts += [Metric("big", 1.7976931348623157e308, T0 + 3, 3), Metric("k_mapped", 2.0, T0 + 3, 3)]
    pts += [Metric("system/cpu", 10.0 + s, T0 + s, s) for s in range(0, 50, 5)]
    pts += [Metric("loss", 9.0, T0 + 4, 4), Metric("late", 1.0, T0 + 100, 2)]
    for i in range(0, len(pts), 100):
        client.log_batch(rid, metrics=pts[i:i + 100])
    keys, infs = {"k_mapped": "k/mapped"}, {"big"}
    want = list(mlflow_history.metric_events(mlflow_history.sqlite_points(str(db), rid), keys, infs))
    got = list(mlflow_history.sqlite_events(str(db), rid, keys, infs, batch=7))
    assert len(got) == len(want) > 50 and repr(got) == repr(want)
    assert any(isinstance(e, Metrics) and e.values.get("big") == math.inf for e in got)
