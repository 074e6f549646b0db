"""The W&B adapter against the real wandb SDK in offline mode (no mocks), read back from its own files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("wandb")

from trackkit.backend import BackendSpec, Reader, Sink
from trackkit.errors import BackendError
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
from trackkit.registry import load_reader, load_sink, parse_backend
from trackkit.testing import BackendContract

from trackkit.backends import wandb as tkw  # isort: skip
from trackkit.backends.wandb.names import project_name  # isort: skip

LONG_KEY = "k" * 300
ODD_CONFIG = {"_wandb": 1, "_trackkit": 2, "a.b": 3, "ü/x y": {"deep": {"er": None}}, "empty": {}}
AWKWARD = ["train/loss@top-1", "with space", "ünïcödé/损失", LONG_KEY, "a.b.c", "", "_step", "trackkit/late"]


def spec(root: Path, project: str = "proj") -> BackendSpec:
    return BackendSpec("wandb", project, {"mode": "offline", "dir": str(root)})


def started(run_id: str, **kw: Any) -> RunStarted:
    base: dict[str, Any] = {
        "run_id": run_id,
        "project": "proj",
        "name": f"name-{run_id}",
        "start_time": time.time(),
    }
    base.update(kw)
    return RunStarted(**base)


def deliver(root: Path, events: list[Event], project: str = "proj", close: bool = True) -> tkw.WandbSink:
    sink = tkw.WandbSink(spec(root, project))
    sink.emit(events)
    if close:
        sink.close()
    return sink


def read(root: Path, run_id: str, project: str = "proj") -> RunRecord:
    return tkw.WandbReader(spec(root, project)).read_run(run_id)


def run_files(root: Path) -> list[Path]:
    return sorted(root.glob("wandb/*run-*/run-*.wandb"))


# ---------------------------------------------------------------- one rich run, shared


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunRecord, list[Event], list[Any]]:
    root = tmp_path_factory.mktemp("wb-rich")
    snap = root / "snap"
    snap.mkdir()
    (snap / "model.bin").write_bytes(b"weights" * 100)
    (snap / "ckpt").mkdir()
    (snap / "ckpt" / "a.txt").write_text("a")
    (snap / "ckpt" / "b.txt").write_text("b")
    t0 = time.time()
    events: list[Event] = [
        started(
            "rich-1",
            group="grp",
            tags={"label": "", "phase": "pretrain", "k:with:colon": "v", "long": "x" * 100},
            config={"optimizer": {"name": "adam", "lr": 0.001, "betas": [0.9, 0.999]}, "epochs": 3, **ODD_CONFIG},
            meta={"git": {"commit": "abc123", "dirty": False}, "trackkit": "0.1.0"},
        ),
        Metrics(step=0, time=t0, values={"loss": 1.0, "acc": 0.5}),
        Metrics(step=1, time=t0 + 1, values={k: float(i) for i, k in enumerate(AWKWARD)}),
        Metrics(step=2, time=t0 + 2, values={"loss": 0.5, "nan": math.nan, "inf": math.inf, "ninf": -math.inf}),
        Metrics(step=2, time=t0 + 2.1, values={"acc": 0.75}),  # same step, new key: same W&B row
        Metrics(step=2, time=t0 + 2.2, values={"loss": 0.45}),  # same step, same key: W&B would overwrite
        Metrics(step=5, time=t0 + 5, values={"loss": 0.25}),
        Metrics(step=3, time=t0 + 3, values={"loss": 0.4, "late_only": 7.0}),  # out of order
        Metrics(step=4, time=t0 + 4, values={"loss": 0.3}),  # out of order
        ConfigUpdate(config={"epochs": 4, "scheduler": {"kind": "cosine"}}),
        Tags(tags={"phase": "finetune", "extra": ""}),
        Artifact(
            path=str(snap / "model.bin"),
            name="my model/v1",
            kind="model",
            sha256="f" * 64,
            size=700,
            version=2,
            aliases=("best", "epoch-3", "odd/alias:x"),
            metadata={"val_loss": 0.25, "nested": {"a": 1}},
            source="model.bin",
            time=t0 + 6,
        ),
        Artifact(path=str(snap / "ckpt"), name="ckpt", kind="checkpoint", sha256="e" * 64, size=2, aliases=()),
        Metrics(step=6, time=t0 + 6, values={"loss": 0.2}),
        StatusChange(status=Status.RUNNING, reason="heartbeat", step=6, time=t0 + 6),
        RunFinished(status=Status.COMPLETED, time=t0 + 7, reason="done", exit_code=0),
    ]
    with pytest.warns(RuntimeWarning, match="trackkit/late"):
        deliver(root, events)
    rec = read(root, "rich-1")
    raw = [r for f in run_files(root) for r in tkw.iter_run_file(str(f))]
    return root, rec, events, raw


def expected_points(events: list[Event]) -> dict[str, list[tuple[int, float]]]:
    return RunRecord(info=None, events=events).metrics()  # type: ignore[arg-type]


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-12)


def test_every_metric_point_reads_back_with_its_step(rich: Any) -> None:
    _, rec, events, _ = rich
    want = expected_points(events)
    got = rec.metrics()
    assert set(got) == set(want)
    for key, pts in want.items():
        assert [s for s, _ in got[key]] == [s for s, _ in pts], key
        for (_, a), (_, b) in zip(got[key], pts):
            assert same(a, b), (key, a, b)


def test_metric_times(rich: Any) -> None:
    # live delivery: W&B's own _timestamp; delivery lagging > 2 s (replay, sync): the event's own time
    got = {(ev.step, k): ev.time for ev in rich[1].events if isinstance(ev, Metrics) for k in ev.values}
    for ev in rich[2]:
        if isinstance(ev, Metrics):
            for k in ev.values:
                assert abs(got[(ev.step, k)] - ev.time) < 2.5, (ev.step, k)


def test_whole_floats_and_non_finite_values(rich: Any) -> None:
    rec = rich[1]
    pts = rec.metrics()
    assert pts["loss"][0] == (0, 1.0) and isinstance(pts["loss"][0][1], float)
    assert math.isnan(pts["nan"][0][1])
    assert pts["inf"][0][1] == math.inf and pts["ninf"][0][1] == -math.inf


def test_out_of_order_and_overwritten_points_keep_their_original_step(rich: Any) -> None:
    pts = rich[1].metrics()
    assert pts["loss"] == [(0, 1.0), (2, 0.5), (2, 0.45), (3, 0.4), (4, 0.3), (5, 0.25), (6, 0.2)]
    assert pts["late_only"] == [(3, 7.0)]
    times = {ev.step: ev.time for ev in rich[1].events if isinstance(ev, Metrics) and "late_only" in ev.values}
    assert times[3] == pytest.approx(rich[2][7].time)


def test_awkward_keys_survive(rich: Any) -> None:
    pts = rich[1].metrics()
    for i, key in enumerate(AWKWARD):
        assert pts[key] == [(1, float(i))], key
    # reserved names were stored under mapped keys, never as W&B internals
    hist = [r for r in rich[3] if r.WhichOneof("record_type") == "history"]
    step1 = next(h for h in hist if any(tkw.item_key(i) == "_step" and i.value_json == "1" for i in h.history.item))
    stored = {tkw.item_key(i) for i in step1.history.item}
    assert "" not in stored and LONG_KEY in stored and "train/loss@top-1" in stored


def test_run_started_round_trip(rich: Any) -> None:
    rec = rich[1]
    ev = rec.events[0]
    assert isinstance(ev, RunStarted)
    assert ev.run_id == "rich-1" and ev.project == "proj" and ev.name == "name-rich-1" and ev.group == "grp"
    assert ev.config == {"optimizer": {"name": "adam", "lr": 0.001, "betas": [0.9, 0.999]}, "epochs": 3, **ODD_CONFIG}
    assert ev.tags == {"label": "", "phase": "pretrain", "k:with:colon": "v", "long": "x" * 100}
    assert ev.meta == {"git": {"commit": "abc123", "dirty": False}, "trackkit": "0.1.0"}
    assert ev.start_time == pytest.approx(rich[2][0].start_time)


def test_config_updates_and_summary(rich: Any) -> None:
    rec = rich[1]
    ups = [ev for ev in rec.events if isinstance(ev, ConfigUpdate)]
    assert ups == [ConfigUpdate(config={"epochs": 4, "scheduler": {"kind": "cosine"}})]
    assert rec.info.config["epochs"] == 4 and rec.info.config["optimizer"]["lr"] == 0.001
    assert rec.info.config["_trackkit"] == 2 and rec.info.config["_wandb"] == 1  # user keys, not internals
    assert rec.info.run_id == "rich-1" and rec.info.project == "proj" and rec.info.group == "grp"
    assert rec.info.last_step == 6 and rec.info.last_metrics["loss"] == pytest.approx(0.2)


def test_tags(rich: Any) -> None:
    rec = rich[1]
    assert rec.info.tags == {
        "label": "",
        "phase": "finetune",
        "extra": "",
        "k:with:colon": "v",
        "long": "x" * 100,
        "trackkit.status": "completed",
    }
    tag_events = [ev for ev in rec.events if isinstance(ev, Tags)]
    added = {k: v for ev in tag_events for k, v in ev.tags.items() if k != "trackkit.status"}
    assert added == {"phase": "finetune", "extra": ""}
    # every W&B tag is within W&B's 64-character limit
    runs = [r.run for r in rich[3] if r.WhichOneof("record_type") == "run"]
    assert all(1 <= len(t) <= 64 for r in runs for t in r.tags)


def test_artifacts_and_aliases(rich: Any) -> None:
    rec = rich[1]
    arts = [ev for ev in rec.events if isinstance(ev, Artifact)]
    assert [a.name for a in arts] == ["my model/v1", "ckpt"]
    model, ckpt = arts
    assert model.kind == "model" and model.sha256 == "f" * 64 and model.size == 700 and model.version == 2
    assert model.aliases == ("best", "epoch-3", "odd/alias:x")
    assert model.metadata == {"val_loss": 0.25, "nested": {"a": 1}}
    assert model.source == "model.bin"
    assert ckpt.kind == "checkpoint" and ckpt.aliases == () and ckpt.size == 2
    # what W&B itself holds: a valid name, 'latest' added, sha256 in the metadata
    stored = [r.artifact for r in rich[3] if r.WhichOneof("record_type") == "artifact"]
    by_type = {a.type: a for a in stored}
    assert "best" in by_type["model"].aliases and "latest" in by_type["model"].aliases
    assert json.loads(by_type["model"].metadata)["sha256"] == "f" * 64
    assert {c.path for c in by_type["checkpoint"].manifest.contents} == {"a.txt", "b.txt"}


def test_full_config_travels_as_config_json_artifact(rich: Any) -> None:
    stored = [r.artifact for r in rich[3] if r.WhichOneof("record_type") == "artifact" and r.artifact.type == "config"]
    assert stored, "no config.json artifact"
    last = stored[-1]
    assert [c.path for c in last.manifest.contents] == ["config.json"]
    data = json.loads(Path(last.manifest.contents[0].local_path).read_text())
    assert data["epochs"] == 4 and data["scheduler"] == {"kind": "cosine"} and data["optimizer"]["lr"] == 0.001


def test_completed_status_and_order(rich: Any) -> None:
    rec = rich[1]
    assert rec.info.status is Status.COMPLETED and rec.info.reason == "done"
    assert isinstance(rec.events[0], RunStarted) and isinstance(rec.events[-1], RunFinished)
    assert rec.events[-1].status is Status.COMPLETED and rec.events[-1].exit_code == 0
    assert rec.info.end_time == pytest.approx(rich[2][-1].time)
    exits = [r.exit.exit_code for r in rich[3] if r.WhichOneof("record_type") == "exit"]
    assert exits == [0]
    assert any(isinstance(ev, StatusChange) and ev.reason == "heartbeat" for ev in rec.events)


def test_list_runs_and_protocols(rich: Any) -> None:
    root = rich[0]
    reader = tkw.WandbReader(spec(root))
    assert isinstance(reader, Reader) and isinstance(tkw.WandbSink(spec(root)), Sink)
    infos = reader.list_runs()
    assert [i.run_id for i in infos] == ["rich-1"]
    assert reader.list_runs("other") == []
    assert tkw.WandbReader(spec(root, "")).list_runs("proj")[0].run_id == "rich-1"
    with pytest.raises(KeyError):
        reader.read_run("nope")


def test_the_backend_string_project_is_the_w_and_b_project(tmp_path: Path) -> None:
    """``wandb:PROJECT`` names the W&B project the run is stored in (mapped by the key rule as the sink
    maps it); ``list_runs(project)`` filters on the run's own project. Each matches one thing."""
    t = time.time()
    deliver(tmp_path, [started("own-1"), RunFinished(Status.COMPLETED, t)], project="team/vision")
    stored = tkw.WandbReader(spec(tmp_path, "team/vision"))
    (info,) = stored.list_runs()
    assert (info.run_id, info.project, info.backend_project) == ("own-1", "proj", project_name("team/vision"))
    assert [i.run_id for i in stored.list_runs("proj")] == ["own-1"] and stored.list_runs("team/vision") == []
    assert stored.read_run("own-1").info.project == "proj"
    other = tkw.WandbReader(spec(tmp_path, "proj"))  # the run's own project is not a W&B project here
    assert other.list_runs() == []
    with pytest.raises(KeyError):
        other.read_run("own-1")
    assert [i.run_id for i in tkw.WandbReader(spec(tmp_path, "")).list_runs("proj")] == ["own-1"]


# ---------------------------------------------------------------- statuses


@pytest.fixture(scope="module")
def statuses(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wb-status")
    t = time.time()
    deliver(root, [started("crash"), Metrics(0, t, {"x": 1.0}), RunFinished(Status.CRASHED, t + 1, "boom", 3)])
    deliver(
        root,
        [
            started("div"),
            Metrics(0, t, {"loss": math.nan}),
            StatusChange(Status.DIVERGED, "loss=nan at step 0", step=0, time=t),
            RunFinished(Status.DIVERGED, t + 1, "loss=nan at step 0"),
        ],
    )
    deliver(root, [started("killed"), Metrics(0, t, {"x": 1.0}), RunFinished(Status.KILLED, t + 1, "SIGTERM", 143)])
    deliver(root, [started("detached"), Metrics(0, t, {"x": 1.0})])  # close() without RunFinished
    return root


@pytest.mark.parametrize(
    ("run_id", "status", "reason", "exit_code"),
    [
        ("crash", Status.CRASHED, "boom", 3),
        ("div", Status.DIVERGED, "loss=nan at step 0", 1),
        ("killed", Status.KILLED, "SIGTERM", 143),
        ("detached", Status.KILLED, "trackkit delivery stopped before the run finished", 1),
    ],
)
def test_status_mapping(statuses: Path, run_id: str, status: Status, reason: str, exit_code: int) -> None:
    rec = read(statuses, run_id)
    assert rec.info.status is status and rec.info.reason == reason
    assert isinstance(rec.events[-1], RunFinished) and rec.events[-1].status is status
    f = next(p for p in run_files(statuses) if p.name == f"run-{run_id}.wandb")
    exits = [r.exit.exit_code for r in tkw.iter_run_file(str(f)) if r.WhichOneof("record_type") == "exit"]
    assert exits == [exit_code]
    if run_id != "detached":
        assert rec.info.tags["trackkit.status"] == status.value
    else:
        assert "trackkit.status" not in rec.info.tags


def test_diverged_keeps_status_change_and_nan(statuses: Path) -> None:
    rec = read(statuses, "div")
    changes = [ev for ev in rec.events if isinstance(ev, StatusChange)]
    assert changes and changes[0].status is Status.DIVERGED and changes[0].step == 0
    assert math.isnan(rec.metrics()["loss"][0][1])


def test_plain_exit_codes_without_trackkit_summary(tmp_path: Path) -> None:
    import wandb

    settings = wandb.Settings(mode="offline", silent=True, console="off", x_disable_stats=True)
    for rid, code in (("plain-ok", 0), ("plain-bad", 2)):
        r = wandb.init(project="proj", id=rid, dir=str(tmp_path), reinit="create_new", settings=settings)
        r.log({"x": 1}, step=0)
        path = r.settings.sync_file
        r.finish(exit_code=code)
        # finish() may return before wandb-core wrote the file (a separate process: slower on a
        # loaded machine); the loop ends as soon as the exit record is there
        deadline = time.monotonic() + 60
        while not tkw.has_exit_record(path) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert read(tmp_path, "plain-ok").info.status is Status.COMPLETED
    bad = read(tmp_path, "plain-bad").info
    assert bad.status is Status.CRASHED and bad.reason == "exit code 2"


# ---------------------------------------------------------------- resume / idempotence


def test_resume_on_a_fresh_sink_continues_the_same_run(tmp_path: Path) -> None:
    t = time.time()
    ev0 = started("resume-me", tags={"a": "1"}, config={"lr": 0.1})
    first = tkw.WandbSink(spec(tmp_path))
    first.emit([ev0, Metrics(0, t, {"loss": 1.0}), Metrics(1, t, {"loss": 0.9})])
    first.emit([ev0])  # RunStarted twice on one sink: no second run
    first.emit([ConfigUpdate({"lr": 0.05}), Tags({"b": "2"}), Metrics(2, t, {"loss": 0.8})])
    wid = first.sdk_run.id
    first.close()  # the agent stops; the run is not over
    assert read(tmp_path, "resume-me").info.status is Status.KILLED

    second = tkw.WandbSink(spec(tmp_path))
    with pytest.warns(RuntimeWarning):
        # the agent re-sends RunStarted and part of the last batch (steps 1, 2 again), then goes on
        second.emit([ev0, Metrics(1, t, {"loss": 0.9}), Metrics(2, t, {"loss": 0.8}), Metrics(3, t, {"loss": 0.7})])
    assert second.sdk_run.id == wid
    second.emit([Metrics(4, t, {"loss": 0.6}), RunFinished(Status.COMPLETED, t + 5)])
    second.close()

    assert len(run_files(tmp_path)) == 2  # W&B offline writes one file per process segment
    rec = read(tmp_path, "resume-me")
    assert rec.metrics()["loss"] == [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    assert rec.info.status is Status.COMPLETED
    assert rec.info.config == {"lr": 0.05}
    assert rec.info.tags == {"a": "1", "b": "2", "trackkit.status": "completed"}
    assert sum(isinstance(ev, RunStarted) for ev in rec.events) == 1
    assert len(tkw.WandbReader(spec(tmp_path)).list_runs()) == 1


def test_a_retried_batch_is_not_duplicated(tmp_path: Path) -> None:
    t = time.time()
    f = tmp_path / "w.bin"
    f.write_bytes(b"w")
    art = Artifact(path=str(f), name="w", kind="model", sha256="a" * 64, size=1, aliases=("best",), time=t)
    batch: list[Event] = [started("retry"), Metrics(0, t, {"x": 1.0}), Metrics(1, t, {"x": 2.0}), art]
    sink = tkw.WandbSink(spec(tmp_path))
    sink.emit(batch)
    with pytest.warns(RuntimeWarning):
        sink.emit(batch)  # the agent retries a whole batch after a failure
    sink.emit([RunFinished(Status.COMPLETED, t)])
    sink.close()
    rec = read(tmp_path, "retry")
    assert rec.metrics() == {"x": [(0, 1.0), (1, 2.0)]}
    assert len([ev for ev in rec.events if isinstance(ev, Artifact)]) == 1


def test_events_before_run_started_raise_backend_error(tmp_path: Path) -> None:
    sink = tkw.WandbSink(spec(tmp_path))
    with pytest.raises(BackendError):
        sink.emit([Metrics(0, 0.0, {"x": 1.0})])
    sink.close()


def test_sdk_errors_are_translated(tmp_path: Path) -> None:
    sink = tkw.WandbSink(spec(tmp_path))
    sink.emit([started("bad-art")])
    with pytest.raises(BackendError):
        sink.emit([Artifact(path=str(tmp_path / "missing"), name="x", kind="model", sha256="0", size=0)])
    sink.emit([RunFinished(Status.COMPLETED, time.time())])
    sink.close()


# ---------------------------------------------------------------- the file format


def test_large_run_crosses_blocks(tmp_path: Path) -> None:
    t = time.time()
    big = "x" * 100_000  # one record spanning several 32 KiB blocks (first/middle/last fragments)
    events: list[Event] = [started("big", config={"blob": big})]
    events += [Metrics(i, t, {"loss": 1.0 / (i + 1), "acc": i / 2000}) for i in range(2000)]
    events.append(RunFinished(Status.COMPLETED, t))
    deliver(tmp_path, events)
    f = run_files(tmp_path)[0]
    assert f.stat().st_size > 3 * 32 * 1024
    rec = read(tmp_path, "big")
    assert rec.events[0].config["blob"] == big  # type: ignore[union-attr]
    loss = rec.metrics()["loss"]
    assert len(loss) == 2000 and all(s == i and v == pytest.approx(1.0 / (i + 1)) for i, (s, v) in enumerate(loss))


def test_truncated_and_corrupt_files_are_tolerated(tmp_path: Path) -> None:
    t = time.time()
    src = tmp_path / "src"
    events: list[Event] = [started("trunc")]
    events += [Metrics(i, t, {"v": float(i), "w": i * 0.5}) for i in range(1500)]
    events.append(RunFinished(Status.COMPLETED, t))
    deliver(src, events)
    f = run_files(src)[0]
    data = f.read_bytes()
    full = read(src, "trunc")
    assert full.info.status is Status.COMPLETED
    for cut in (3, 7, 100, len(data) // 3, len(data) // 2 + 5, len(data) - 1):
        dst = tmp_path / f"cut{cut}"
        target = dst / "wandb" / f.parent.name
        target.mkdir(parents=True)
        (target / f.name).write_bytes(data[:cut])
        reader = tkw.WandbReader(spec(dst))
        if cut < 300:
            assert reader.list_runs() == [] or reader.read_run("trunc").metrics() == {}
            continue
        rec = reader.read_run("trunc")
        pts = rec.metrics().get("v", [])
        assert [s for s, _ in pts] == list(range(len(pts)))  # a clean prefix, nothing invented
        if cut == len(data) - 1:
            # only the exit record is torn: trackkit's own finish summary still says completed
            assert rec.info.status is Status.COMPLETED and len(pts) == 1500
        else:
            assert rec.info.status is Status.KILLED and rec.info.reason == "no exit record"
            assert 0 < len(pts) < 1500
    # a flipped byte in the middle: that block is skipped, the rest still reads
    bad = bytearray(data)
    bad[len(data) // 2] ^= 0xFF
    dst = tmp_path / "corrupt" / "wandb" / f.parent.name
    dst.mkdir(parents=True)
    (dst / f.name).write_bytes(bytes(bad))
    rec = tkw.WandbReader(spec(tmp_path / "corrupt")).read_run("trunc")
    assert 0 < len(rec.metrics()["v"]) < 1500 and rec.info.status is Status.COMPLETED


def test_iter_records_rejects_a_foreign_file() -> None:
    with pytest.raises(ValueError):
        list(tkw.iter_records(b"NOTWANDB" * 10))
    assert list(tkw.iter_records(b"")) == []


# ---------------------------------------------------------------- the seams


def test_registry_string_and_project_from_run_started(tmp_path: Path) -> None:
    s = parse_backend(f"wandb:?mode=offline&dir={tmp_path}")
    sink = load_sink(s)
    sink.emit([started("via-registry", project="from-run"), RunFinished(Status.COMPLETED, time.time())])
    sink.close()
    reader = load_reader(parse_backend(f"wandb:from-run?mode=offline&dir={tmp_path}"))
    assert [i.run_id for i in reader.list_runs()] == ["via-registry"]


def test_awkward_run_ids_map_to_valid_wandb_ids(tmp_path: Path) -> None:
    for rid in ("Run/One:2?", "ok-id_1", "x" * 80):
        wid = tkw.wandb_run_id(rid)
        assert len(wid) <= 64 and not set(wid) & set(":;,#?/'") and wid == tkw.wandb_run_id(rid)
    assert tkw.wandb_run_id("ok-id_1") == "ok-id_1"
    deliver(tmp_path, [started("Run/One:2?"), Metrics(0, 0.0, {"x": 1.0}), RunFinished(Status.COMPLETED, 1.0)])
    assert read(tmp_path, "Run/One:2?").metrics() == {"x": [(0, 1.0)]}


def test_inherited_wandb_service_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SERVICE", "3-1-unix-/tmp/not-ours/socket")
    tkw.clear_inherited_service()
    assert "WANDB_SERVICE" not in os.environ
    own = f"3-{os.getpid()}-unix-/tmp/ours/socket"
    monkeypatch.setenv("WANDB_SERVICE", own)
    tkw.clear_inherited_service()
    assert os.environ["WANDB_SERVICE"] == own


def test_importing_the_adapter_does_not_import_wandb() -> None:
    code = "import sys, trackkit.backends.wandb as m; assert 'wandb' not in sys.modules, 'wandb imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_capabilities() -> None:
    caps = tkw.WandbSink.capabilities
    assert caps.native_killed is False and caps.stores_nan and caps.stores_inf and caps.max_key_length is None


def test_no_scratch_left_behind(tmp_path: Path) -> None:
    # the sink removes the temporary directory of its config.json
    def scratch() -> set[str]:
        return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("trackkit-wandb-")}

    before = scratch()
    deliver(tmp_path, [started("scratch", config={"a": 1}), ConfigUpdate({"b": 2}), RunFinished(Status.COMPLETED, 1.0)])
    assert scratch() <= before


NATIVE_SCRIPT = """
import sys, time
from trackkit.backend import BackendSpec
from trackkit.backends import wandb as tkw
native = tkw.WandbSink.native(BackendSpec("wandb", "proj", {"mode": "offline", "dir": sys.argv[1]}), "nat", "proj", "n")
assert native.id == tkw.wandb_run_id("nat")
native.log({"native/grad_norm": 3.5}, step=0)
native.finish(exit_code=0)
"""


def test_native_in_another_process_adds_metrics_but_not_status(tmp_path: Path) -> None:
    t = time.time()
    sink = tkw.WandbSink(spec(tmp_path))
    sink.emit([started("nat", tags={"a": ""}), Metrics(0, t, {"loss": 1.0})])
    # the trainer's own SDK run (Run.native("wandb")) while the agent holds the run: its own segment
    out = subprocess.run(
        [sys.executable, "-c", NATIVE_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    sink.emit([Metrics(1, t, {"loss": 0.5}), RunFinished(Status.CRASHED, t + 1, "boom", 2)])
    sink.close()
    rec = read(tmp_path, "nat")
    assert rec.metrics() == {"loss": [(0, 1.0), (1, 0.5)], "native/grad_norm": [(0, 3.5)]}
    assert rec.info.status is Status.CRASHED and rec.info.tags == {"a": "", "trackkit.status": "crashed"}
    assert isinstance(rec.events[0], RunStarted) and isinstance(rec.events[-1], RunFinished)


def test_native_in_the_agents_process_is_the_open_run(tmp_path: Path) -> None:
    sink = tkw.WandbSink(spec(tmp_path))
    sink.emit([started("nat-thread")])
    assert tkw.WandbSink.native(spec(tmp_path), "nat-thread", "proj", "n") is sink.sdk_run
    sink.emit([RunFinished(Status.COMPLETED, time.time())])
    own = tkw.WandbSink.native(spec(tmp_path), "nat-thread", "proj", "n")  # no agent holds it: a new SDK run
    assert own is not None and own.id == "nat-thread"
    own.finish()


class TestWandbContract(BackendContract):
    """The shared contract end to end (trackkit.init, thread agent), read back from W&B's own files."""

    agent = "thread"

    def backend_string(self, tmp_path: str) -> str:
        return f"wandb:contract?mode=offline&dir={tmp_path}/wb"
