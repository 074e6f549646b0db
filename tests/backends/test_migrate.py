"""migrate / query over the REAL backends: TensorBoard files, W&B offline run files, MLflow sqlite.

Three source runs are written once per module (one per backend, each through trackkit.init or
the backend's own Sink), then copied TB -> MLflow, MLflow -> W&B, W&B -> TB and read back.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import time
from dataclasses import dataclass
from typing import Any

import pytest

from trackkit.errors import ConfigError
from trackkit.events import (
    Artifact,
    ConfigUpdate,
    Event,
    Metrics,
    RunFinished,
    RunRecord,
    RunStarted,
    Status,
    StatusChange,
    Tags,
)
from trackkit.migrate import migrate, migrate_all, verify
from trackkit.query import compare, find_runs, load_runs
from trackkit.registry import load_reader, load_sink, parse_backend

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")


@dataclass
class Sources:
    root: str
    tb: str
    ml: str
    wb: str
    tb_id: str
    ml_id: str = "ml-src-run-1"
    wb_id: str = "wb-src-run-1"


def _sha(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _events(run_id: str, name: str, status: Status, reason: str, artifact: str) -> list[Event]:
    t0 = time.time() - 200
    evs: list[Event] = [
        RunStarted(run_id=run_id, project="migrate", name=name, start_time=t0, group="g1",
                   tags={"team": "vision", "baseline": ""},
                   config={"optimizer": {"name": "adam", "lr": 0.001}, "layers": [64, 128], "seed": 7})
    ]
    for i in range(40):
        evs.append(Metrics(step=i, time=t0 + i, values={"train/loss": 1.0 / (i + 1), "eval/acc": 0.1 + i / 50}))
    evs.append(Metrics(step=12, time=t0 + 41, values={"late/metric": 0.3}))  # below the current step
    evs.append(Metrics(step=41, time=t0 + 42, values={"edge": math.inf, "tiny": 1e-30}))
    evs.append(Metrics(step=42, time=t0 + 43, values={"edge": -math.inf, "nan": math.nan}))
    evs.append(ConfigUpdate({"epochs": 3}, time=t0 + 44))
    evs.append(Tags({"stage": "final"}, time=t0 + 45))
    evs.append(Artifact(path=artifact, name="model", kind="model", sha256=_sha(artifact),
                        size=os.path.getsize(artifact), aliases=("best",), time=t0 + 46))
    evs.append(StatusChange(status=status, reason=reason, step=42, time=t0 + 47))
    evs.append(RunFinished(status=status, time=t0 + 48, reason=reason))
    return evs


def _write(backend: str, events: list[Event]) -> None:
    sink = load_sink(parse_backend(backend))
    try:
        sink.emit(events[:20])
        sink.emit(events[20:])
    finally:
        sink.close()


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    import trackkit

    d = str(tmp_path_factory.mktemp("migrate-src"))
    art = os.path.join(d, "model.bin")
    with open(art, "wb") as fh:
        fh.write(os.urandom(2048))
    s = Sources(root=d, tb=f"tensorboard:{d}/tb", ml=f"mlflow:{d}/src.db",
                wb=f"wandb:migrate?mode=offline&dir={d}/wb", tb_id="")
    # TensorBoard: through the public API (thread agent: the sinks run in this process)
    run = trackkit.init({"optimizer": {"name": "sgd", "lr": 0.05}, "layers": [32], "batch_size": 64},
                        project="migrate", name="tb-run", tags={"team": "vision", "baseline": ""}, backend=s.tb,
                        agent="thread", root=os.path.join(d, ".trackkit"), capture=False,
                        drain_timeout=120)  # read back below: finish() must not give up on a slow machine
    for i in range(60):
        run.log({"train/loss": 1.0 / (i + 1), "eval/acc": 0.2 + i / 100, "lr": 0.05 * 0.99**i}, step=i)
    run.log({"edge": math.inf}, step=60)
    run.log_artifact(art, name="model", kind="model", aliases=["best"])
    run.log({"train/loss": math.nan}, step=61)  # diverged
    run.finish()
    s.tb_id = run.id
    _write(s.ml, _events(s.ml_id, "ml-run", Status.CRASHED, "RuntimeError: boom at step 42", art))
    _write(s.wb, _events(s.wb_id, "wb-run", Status.KILLED, "SIGTERM", art))
    return s


def _read(backend: str, run_id: str) -> RunRecord:
    rec: RunRecord = load_reader(parse_backend(backend)).read_run(run_id)
    return rec


def _assert_points_equal(a: RunRecord, b: RunRecord, rel: float) -> int:
    am, bm = a.metrics(), b.metrics()
    assert sorted(am) == sorted(bm)
    n = 0
    for key, pts in am.items():
        other = bm[key]
        assert [s for s, _ in pts] == [s for s, _ in other], key
        for (s, x), (_, y) in zip(pts, other):
            n += 1
            if math.isnan(x) or math.isinf(x):
                assert (math.isnan(x) and math.isnan(y)) or x == y, (key, s, x, y)
            else:
                assert math.isclose(x, y, rel_tol=rel), (key, s, x, y)
    return n


# ---------------------------------------------------------------- query over several backends


def test_find_runs_over_three_backends(src: Sources) -> None:
    rows = find_runs([src.tb, src.ml, src.wb], project="migrate")
    assert {(r.run_id, r.backend) for r in rows} == {(src.tb_id, src.tb), (src.ml_id, src.ml), (src.wb_id, src.wb)}

    everywhere = [src.tb, src.ml, src.wb]
    hit = find_runs(everywhere, where=["config.optimizer.lr<0.01", "tag.team=vision"])
    assert {(r.run_id, r.backend) for r in hit} == {(src.ml_id, src.ml), (src.wb_id, src.wb)}
    assert [r.run_id for r in find_runs(everywhere, where="status=diverged")] == [src.tb_id]
    assert [r.run_id for r in find_runs(everywhere, where=["status!=diverged", "status!=crashed"])] == [src.wb_id]
    # metrics: the last value; TensorBoard's float32 0.79 still equals 0.79 (6 significant digits)
    assert [r.run_id for r in find_runs(everywhere, where="metrics.eval/acc<0.8")] == [src.tb_id]
    assert [r.run_id for r in find_runs(everywhere, where="metrics.eval/acc=0.79")] == [src.tb_id]
    assert [r.run_id for r in find_runs(everywhere, sort_by="metrics.eval/acc", limit=1)] == [src.tb_id]
    top = find_runs(everywhere, sort_by="-metrics.eval/acc", limit=2)
    assert {r.run_id for r in top} == {src.ml_id, src.wb_id}
    assert {r.run_id for r in find_runs([src.ml, src.wb], where="config.epochs=3")} == {src.ml_id, src.wb_id}
    assert [r.run_id for r in find_runs([src.tb, src.ml, src.wb], where="name~tb-*")] == [src.tb_id]


def test_compare_across_backends(src: Sources) -> None:
    recs = load_runs([src.tb_id, "ml-run", "wb-src"], [src.tb, src.ml, src.wb])
    assert [r.info.backend for r in recs] == [src.tb, src.ml, src.wb]
    c = compare(recs)
    assert c.config_differs["optimizer.lr"] == [0.05, 0.001, 0.001]
    assert c.config_differs["optimizer.name"] == ["sgd", "adam", "adam"]
    assert "batch_size" in c.config_differs and "epochs" in c.config_differs
    assert "optimizer.lr" not in c.config_same
    loss = c.metrics["train/loss"]
    assert loss[0] is not None and math.isnan(loss[0].last) and loss[0].min == pytest.approx(1 / 60, rel=1e-6)
    assert loss[1] is not None and loss[1].max == 1.0 and loss[1].points == 40 and loss[1].last_step == 39
    assert c.metrics["late/metric"][0] is None


# ---------------------------------------------------------------- migrations


@pytest.mark.slow
def test_tensorboard_to_mlflow_every_point_and_no_duplicate(src: Sources, tmp_path: Any) -> None:
    target = f"mlflow:{tmp_path}/target.db"
    report = migrate(src.tb_id, src.tb, target)
    assert report.ok, report.summary()
    assert report.copied and report.verified and not report.already_present
    assert report.points == 60 * 3 + 2 and report.artifacts == ["model v0"]
    # where the seconds went: each phase measured, together no more than the whole
    assert set(report.phases) == {"read", "write", "verify"}, report.phases
    assert all(v > 0 for v in report.phases.values()) and sum(report.phases.values()) <= report.seconds
    assert report.to_dict()["phases"].keys() == report.phases.keys()
    source, copy = _read(src.tb, src.tb_id), _read(target, src.tb_id)
    assert _assert_points_equal(source, copy, rel=0.0) == 182  # float32 values land exactly in MLflow's float64
    assert copy.info.status is Status.DIVERGED and copy.info.reason == source.info.reason
    assert copy.info.config == source.info.config and copy.info.tags == {"team": "vision", "baseline": ""}
    (art,) = [e for e in copy.events if isinstance(e, Artifact)]
    assert os.path.exists(art.path) and _sha(art.path) == art.sha256 == next(
        e for e in source.events if isinstance(e, Artifact)).sha256

    again = migrate(src.tb_id, src.tb, target)
    assert again.ok and again.already_present and not again.copied, again.summary()
    reader = load_reader(parse_backend(target))
    assert [i.run_id for i in reader.list_runs()] == [src.tb_id]
    assert sum(len(p) for p in _read(target, src.tb_id).metrics().values()) == 182

    # tamper with the copy through MLflow itself: the check must fail and say where
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/target.db")
    mid = copy.info.location
    client.log_metric(mid, "train/loss", 123.0, step=3, timestamp=int(time.time() * 1000))
    client.set_tag(mid, "team", "audio")
    bad = migrate(src.tb_id, src.tb, target)
    assert not bad.ok and not bad.copied
    found = {(m.kind, m.key) for m in bad.mismatches}
    assert ("metric", "train/loss@3") in found and ("tag", "team") in found, bad.mismatches
    assert "train/loss@3" in bad.summary() and "audio" in bad.summary()


@pytest.mark.slow
def test_mlflow_to_wandb(src: Sources, tmp_path: Any) -> None:
    target = f"wandb:copies?mode=offline&dir={tmp_path}/wb"
    report = migrate(src.ml_id, src.ml, target)
    assert report.ok, report.summary()
    source, copy = _read(src.ml, src.ml_id), _read(target, src.ml_id)
    assert _assert_points_equal(source, copy, rel=1e-15) == 40 * 2 + 5
    assert copy.metrics()["late/metric"] == [(12, 0.3)]  # a step below the current one survives
    assert copy.metrics()["edge"] == [(41, math.inf), (42, -math.inf)]
    assert copy.info.status is Status.CRASHED and copy.info.reason == "RuntimeError: boom at step 42"
    assert copy.info.config == {"optimizer": {"name": "adam", "lr": 0.001}, "layers": [64, 128], "seed": 7,
                                "epochs": 3}
    assert copy.info.tags.get("stage") == "final" and copy.info.group == "g1"
    assert migrate(src.ml_id, src.ml, target).already_present


@pytest.mark.slow
def test_wandb_to_tensorboard(src: Sources, tmp_path: Any) -> None:
    target = f"tensorboard:{tmp_path}/tb"
    report = migrate(src.wb_id, src.wb, target)
    assert report.ok, report.summary()
    source, copy = _read(src.wb, src.wb_id), _read(target, src.wb_id)
    _assert_points_equal(source, copy, rel=1e-6)  # TensorBoard stores float32
    assert copy.info.status is Status.KILLED and copy.info.reason == "SIGTERM"
    (art,) = [e for e in copy.events if isinstance(e, Artifact)]
    assert art.path.startswith(str(tmp_path)) and _sha(art.path) == art.sha256 and art.aliases == ("best",)
    # the copy records where it came from
    start = next(e for e in copy.events if isinstance(e, RunStarted))
    assert start.meta["migrated_from"]["backend"] == src.wb

    again = migrate(src.wb_id, src.wb, target)
    assert again.ok and again.already_present


# ---------------------------------------------------------------- the check can fail


def test_dropped_point_and_changed_config_are_detected(src: Sources) -> None:
    from trackkit.backends.memory import clear, store

    target = "memory:migrate-drop"
    clear("migrate-drop")
    try:
        assert migrate(src.tb_id, src.tb, target).ok
        rec = store("migrate-drop")[src.tb_id]
        i = next(n for n, e in enumerate(rec.events) if isinstance(e, Metrics) and e.step == 7)
        m = rec.events[i]
        assert isinstance(m, Metrics)
        rec.events[i] = Metrics(step=7, time=m.time, values={k: v for k, v in m.values.items() if k != "eval/acc"})
        rec.info.config["optimizer"] = {"name": "sgd", "lr": 0.5}
        rec.info.status = Status.COMPLETED
        report = migrate(src.tb_id, src.tb, target)
        assert not report.ok and report.already_present
        found = {(m.kind, m.key): m for m in report.mismatches}
        assert ("metric", "eval/acc@7") in found and found[("metric", "eval/acc@7")].got == "<no point>"
        assert ("config", "optimizer.lr") in found and found[("config", "optimizer.lr")].got == 0.5
        assert ("status", "status") in found
        assert len(report.mismatches) == 3, report.mismatches
    finally:
        clear("migrate-drop")


def test_verify_float32_tolerance_nan_inf() -> None:
    from trackkit.events import RunInfo

    def rec(vals: list[float]) -> RunRecord:
        info = RunInfo("r", "p", "n", "memory")
        return RunRecord(info, [Metrics(step=i, time=0.0, values={"x": v}) for i, v in enumerate(vals)])

    a = rec([0.1, math.nan, math.inf, -math.inf, 1e-30])
    f32 = struct.unpack("f", struct.pack("f", 0.1))[0]
    b = rec([f32, math.nan, math.inf, -math.inf, 1e-30])
    assert verify(a, b, float32=True) == []
    assert [m.key for m in verify(a, b, float32=False)] == ["x@0"]  # 0.1 vs float32(0.1) in a float64 pair
    c = rec([0.1, 0.0, math.inf, math.inf, 1e-30])
    assert [m.key for m in verify(a, c, float32=True)] == ["x@1", "x@3"]


def test_artifacts_without_local_file_are_skipped_with_reason(src: Sources, tmp_path: Any) -> None:
    from trackkit.backends.memory import clear

    art = os.path.join(str(tmp_path), "weights.bin")
    with open(art, "wb") as fh:
        fh.write(b"w" * 100)
    events = _events("uri-run", "uri-run", Status.COMPLETED, "", art)
    events.insert(-2, Artifact(path="s3://bucket/ckpt.pt", name="remote", kind="model", sha256="0" * 64, size=1))
    events.insert(-2, Artifact(path=os.path.join(str(tmp_path), "gone.bin"), name="gone", kind="data",
                               sha256="1" * 64, size=1))
    clear("uri-src")
    try:
        _write("memory:uri-src", events)
        report = migrate("uri-run", "memory:uri-src", f"tensorboard:{tmp_path}/tb")
        assert report.ok, report.summary()
        reasons = {s.name: s.reason for s in report.skipped}
        assert "URI" in reasons["remote"] and "no longer exists" in reasons["gone"]
        assert report.artifacts == ["model v0"]
        copy = _read(f"tensorboard:{tmp_path}/tb", "uri-run")
        assert [e.name for e in copy.events if isinstance(e, Artifact)] == ["model"]
    finally:
        clear("uri-src")


def test_migrate_all_and_errors(src: Sources) -> None:
    from trackkit.backends.memory import clear

    clear("migrate-all")
    try:
        reports = migrate_all(src.tb, "memory:migrate-all", project="migrate")
        assert [r.run_id for r in reports] == [src.tb_id] and all(r.ok for r in reports)
    finally:
        clear("migrate-all")
    with pytest.raises(ConfigError, match="no run 'nope'.*Fix: `trackkit runs --backend"):
        migrate("nope", src.tb, "memory:x")
    with pytest.raises(ConfigError, match="same backend"):
        migrate(src.tb_id, src.tb, src.tb)
