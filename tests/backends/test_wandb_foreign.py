"""Runs ``wandb`` wrote itself (offline, no trackkit involved) read back through trackkit's W&B reader,
and the sink's parent/child and Summary read back from W&B's own run file (docs/backends/wandb.md).

Fixtures call ``wandb.init``/``log``/``log_artifact``/``finish`` directly; no mocks.
"""

from __future__ import annotations

import hashlib
import os
import resource
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("wandb")
np = pytest.importorskip("numpy")

from trackkit.backend import BackendSpec  # noqa: E402
from trackkit.backends import wandb as tkw  # noqa: E402
from trackkit.backends.wandb.decode import items_of  # noqa: E402
from trackkit.errors import ConfigError  # noqa: E402
from trackkit.events import (  # noqa: E402
    Artifact,
    Metrics,
    RunFinished,
    RunRecord,
    RunStarted,
    Status,
    Summary,
)


def _finish(run: Any, **kw: Any) -> str:
    path = str(run.settings.sync_file)
    run.finish(**kw)
    deadline = time.monotonic() + 30
    while not tkw.has_exit_record(path) and time.monotonic() < deadline:  # finish() can return before the file is
        time.sleep(0.05)
    return path


def _reader(root: Path, project: str = "") -> tkw.WandbReader:
    return tkw.WandbReader(BackendSpec("wandb", project, {"mode": "offline", "dir": str(root)}))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs made by wandb: a rich one, a crashed one, a printing one; and a model file."""
    import wandb

    root = tmp_path_factory.mktemp("wbforeign")
    model = root / "model.bin"
    model.write_bytes(os.urandom(3000))
    quiet = wandb.Settings(silent=True, console="off", x_disable_stats=True)
    run = wandb.init(project="foreign", id="rich1", dir=str(root), reinit="create_new", settings=quiet,
                     name="rich", config={"lr": 0.01, "opt": {"name": "adam", "betas": [0.9, 0.99]}, "epochs": 3},
                     tags=["baseline", "v2"], group="sweep-a", job_type="train", notes="first try")
    for s in range(4):
        row: dict[str, Any] = {"loss": 1.0 / (s + 1), "acc": s / 10}
        if s == 2:
            row["sample"] = wandb.Image(np.full((4, 6, 3), 40 * s, dtype=np.uint8), caption="two")
            row["preds"] = wandb.Table(columns=["id", "label"], data=[[1, "cat"], [2, "dog"]])
        run.log(row, step=s * 10)
    run.summary["best_acc"] = 0.95
    run.summary["note"] = "kept"
    art = wandb.Artifact("my-model", type="model", metadata={"epoch": 3})
    art.add_file(str(model))
    run.log_artifact(art, aliases=["best", "v-final"])
    rich = _finish(run)

    run = wandb.init(project="foreign", id="child1", dir=str(root), reinit="create_new", settings=quiet,
                     group="rich1", job_type="eval")
    run.log({"x": 1.0}, step=0)
    _finish(run)

    run = wandb.init(project="foreign", id="crash1", dir=str(root), reinit="create_new", settings=quiet)
    run.log({"loss": 2.0}, step=0)
    _finish(run, exit_code=1)

    run = wandb.init(project="foreign", id="talk1", dir=str(root), reinit="create_new",
                     settings=wandb.Settings(silent=True, console="wrap", x_disable_stats=True))
    print("hello from the training loop")
    run.log({"loss": 0.5}, step=0)
    _finish(run)
    return {"root": root, "rich": rich, "model": model}


def test_config_tags_group_notes_and_internals(foreign: dict[str, Any]) -> None:
    rec = _reader(foreign["root"]).read_run("rich1")
    start = rec.events[0]
    assert isinstance(start, RunStarted)
    assert (start.run_id, start.project, start.name, start.group) == ("rich1", "foreign", "rich", "sweep-a")
    assert start.config == {"lr": 0.01, "opt": {"name": "adam", "betas": [0.9, 0.99]}, "epochs": 3}
    assert start.tags == {"baseline": "", "v2": ""} and rec.info.tags == {"baseline": "", "v2": ""}
    wb = start.meta["wandb"]
    assert (wb["job_type"], wb["notes"]) == ("train", "first try")
    assert "_wandb" not in start.config and "host" in wb  # W&B's internals: in meta, never in config
    assert rec.info.start_time == pytest.approx(time.time(), abs=600)
    assert rec.info.end_time is not None and rec.info.end_time >= rec.info.start_time


def test_history_with_steps_media_and_tables(foreign: dict[str, Any]) -> None:
    rec = _reader(foreign["root"]).read_run("rich1")
    assert rec.metrics() == {"loss": [(s * 10, 1.0 / (s + 1)) for s in range(4)],
                             "acc": [(s * 10, s / 10) for s in range(4)]}
    media = rec.media()
    assert [(m.kind, m.step, m.caption) for m in media["sample"]] == [("image", 20, "two")]
    (table,) = media["preds"]
    assert table.kind == "table" and b'"cat"' in table.read_bytes()


def test_summary_without_wandb_auto_summary(foreign: dict[str, Any]) -> None:
    rec = _reader(foreign["root"]).read_run("rich1")
    (summary,) = [e for e in rec.events if isinstance(e, Summary)]
    assert dict(summary.values) == {"best_acc": 0.95, "note": "kept"}  # not loss/acc/_step/_runtime/_wandb
    assert rec.info.summary == {"best_acc": 0.95, "note": "kept"}


def test_artifact_with_aliases_has_a_local_copy(foreign: dict[str, Any]) -> None:
    rec = _reader(foreign["root"]).read_run("rich1")
    arts = [e for e in rec.events if isinstance(e, Artifact)]
    assert {a.kind for a in arts} == {"model", "run_table"}  # W&B logs a Table as an artifact too
    (art,) = [a for a in arts if a.kind == "model"]
    assert (art.name, art.kind, art.version, art.metadata) == ("my-model", "model", 0, {"epoch": 3})
    assert set(art.aliases) == {"best", "v-final", "latest"}
    data = foreign["model"].read_bytes()
    assert os.path.basename(art.path) == "model.bin" and Path(art.path).read_bytes() == data
    assert (art.sha256, art.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_exit_status(foreign: dict[str, Any]) -> None:
    reader = _reader(foreign["root"])
    assert reader.read_run("rich1").info.status is Status.COMPLETED
    crashed = reader.read_run("crash1")
    assert (crashed.info.status, crashed.info.reason) == (Status.CRASHED, "exit code 1")
    assert isinstance(crashed.events[-1], RunFinished) and crashed.events[-1].exit_code == 1


def test_group_naming_a_run_is_its_parent(foreign: dict[str, Any]) -> None:
    reader = _reader(foreign["root"])
    child = reader.read_run("child1")
    assert child.info.parent == "rich1" and child.info.group == "rich1"
    assert reader.read_run("rich1").info.parent is None
    listed = {i.run_id: i for i in reader.list_runs()}
    assert listed["child1"].parent == "rich1" and listed["crash1"].status is Status.CRASHED


def test_console_output_is_an_artifact(foreign: dict[str, Any]) -> None:
    rec = _reader(foreign["root"]).read_run("talk1")
    logs = [e for e in rec.events if isinstance(e, Artifact) and e.kind == "console"]
    if not logs:
        pytest.skip("this wandb version wrote no files/output.log offline")
    assert "hello from the training loop" in Path(logs[0].path).read_text()
    assert logs[0].sha256 == hashlib.sha256(Path(logs[0].path).read_bytes()).hexdigest()


def test_listing_reads_no_history_and_matches_read_run(foreign: dict[str, Any]) -> None:
    reader = _reader(foreign["root"], "foreign")
    listed = {i.run_id: i for i in reader.list_runs()}
    assert set(listed) == {"rich1", "child1", "crash1", "talk1"}
    full = reader.read_run("rich1").info
    info = listed["rich1"]
    assert (info.status, info.group, info.tags, info.config, info.last_step) == (
        full.status, full.group, full.tags, full.config, full.last_step)
    # a listing reads no history: a number in the summary counts as a metric's last value there
    assert info.last_metrics.items() >= full.last_metrics.items() and info.summary == {"note": "kept"}


def test_a_file_cut_mid_record_is_read_to_the_cut(foreign: dict[str, Any], tmp_path: Path) -> None:
    src = Path(foreign["rich"])
    run_dir = tmp_path / "wandb" / src.parent.name
    run_dir.mkdir(parents=True)
    data = src.read_bytes()
    cut = len(data) - 50
    (run_dir / src.name).write_bytes(data[:cut])
    rec = _reader(tmp_path).read_run("rich1")
    assert rec.info.status is Status.KILLED  # the exit record is gone
    assert len(rec.metrics()["loss"]) >= 3
    (note,) = [n for n in rec.info.notes if "cut mid-record" in n]
    assert str(run_dir / src.name) in note and "byte" in note
    assert rec.info.damage == [f"{run_dir / src.name} cut at byte {rec.info.damage[0].split()[-3]} of {cut}"]
    assert _reader(tmp_path).list_runs()[0].damage == rec.info.damage
    chunks = list(_reader(tmp_path).stream_run("rich1"))
    assert any(note in notes for _, _, notes in chunks)


def test_a_directory_without_runs_is_named(tmp_path: Path) -> None:
    (tmp_path / "wandb").mkdir()
    with pytest.raises(ConfigError, match=str(tmp_path) + ".*holds no W&B runs"):
        _reader(tmp_path)
    assert _reader_empty(tmp_path) == []


def _reader_empty(root: Path) -> list[Any]:
    return tkw.WandbReader(BackendSpec("wandb", "", {"mode": "offline", "dir": str(root)}),
                           must_exist=False).list_runs()


def test_stream_run_is_bounded_and_equals_read_run(tmp_path: Path) -> None:
    import wandb

    run = wandb.init(project="big", id="big1", dir=str(tmp_path), reinit="create_new",
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
    for s in range(6000):
        run.log({f"k{k}": s * 0.5 + k for k in range(5)}, step=s)
    _finish(run)
    reader = _reader(tmp_path)
    with pytest.raises(KeyError):
        reader.stream_run("nope")
    chunks = list(reader.stream_run("big1"))
    assert isinstance(chunks[0][0][0], RunStarted)
    assert all(len(ev) <= 20_001 for ev, _, _ in chunks)
    fractions = [f for _, f, _ in chunks]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    streamed = [e for ev, _, _ in chunks for e in ev]
    whole = reader.read_run("big1").events
    assert streamed == whole
    steps = [e.step for e in streamed if isinstance(e, Metrics)]
    assert steps == sorted(steps) and len(steps) == 6000


# ---------------------------------------------------------------- the sink, read back from W&B's run file


def test_parent_child_and_summary_round_trip_through_the_sink(tmp_path: Path) -> None:
    spec = BackendSpec("wandb", "fam", {"mode": "offline", "dir": str(tmp_path)})
    t0 = 1_700_000_000.0
    for rid, parent in (("parent-1", None), ("child-1", "parent-1")):
        sink = tkw.WandbSink(spec)
        sink.emit([RunStarted(run_id=rid, project="fam", name=rid, start_time=t0, parent=parent),
                   Metrics(step=0, time=t0, values={"loss": 1.0}),
                   Metrics(step=0, time=t0, values={"acc": 0.5}),
                   Metrics(step=1, time=t0 + 1, values={"loss": 0.5, "acc": 0.7}),
                   Summary(values={"test/acc": 0.91, "loss": 0.5, "_step": 3}, time=t0 + 2),
                   RunFinished(status=Status.COMPLETED, time=t0 + 3)])
        sink.close()
    child_file = next(tmp_path.glob("wandb/*-child-1/run-child-1.wandb"))
    recs = list(tkw.iter_run_file(str(child_file)))
    run_rec = next(r.run for r in recs if r.WhichOneof("record_type") == "run")
    assert (run_rec.run_group, run_rec.job_type) == ("parent-1", "child")
    summary: dict[str, Any] = {}
    for r in recs:
        if r.WhichOneof("record_type") == "summary":
            summary.update(items_of(r.summary.update))
    assert summary["test/acc"] == 0.91
    rows = [r for r in recs if r.WhichOneof("record_type") == "history"]
    assert len(rows) == 2  # one history row per step
    reader = _reader(tmp_path)
    child = reader.read_run("child-1")
    assert (child.info.parent, child.info.group) == ("parent-1", None)
    assert child.info.summary == {"test/acc": 0.91, "loss": 0.5, "_step": 3}
    assert child.metrics() == {"loss": [(0, 1.0), (1, 0.5)], "acc": [(0, 0.5), (1, 0.7)]}
    assert all(e.time in (t0, t0 + 1) for e in child.events if isinstance(e, Metrics))
    parent = reader.read_run("parent-1")
    assert parent.info.parent is None and parent.info.summary["test/acc"] == 0.91
    assert {i.run_id: i.parent for i in reader.list_runs()} == {"parent-1": None, "child-1": "parent-1"}


def test_stream_memory_is_flat(tmp_path: Path) -> None:
    """A W&B run file far larger than a chunk streams with memory well below its decoded size."""
    import wandb

    run = wandb.init(project="mem", id="mem1", dir=str(tmp_path), reinit="create_new",
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
    for s in range(30000):
        run.log({f"k{k}": float(s + k) for k in range(10)}, step=s)
    _finish(run)
    reader = _reader(tmp_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = 0
    for ev, _, _ in reader.stream_run("mem1"):
        n += sum(len(e.values) for e in ev if isinstance(e, Metrics))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert n == 300_000
    assert grown < 60, f"peak RSS grew {grown:.0f} MB streaming 300k points"
    assert isinstance(RunRecord, type)


def test_files_saved_with_wandb_save_are_artifacts_and_migrate(tmp_path: Path) -> None:
    """``wandb.save`` files (a ``files`` record, type OTHER) come back as ``file`` artifacts named by
    their path in the run, carried by migrate into MLflow's own artifact store; one the record names
    that is gone from ``files/`` is listed in the notes, never dropped unsaid."""
    import wandb
    from mlflow.tracking import MlflowClient

    from trackkit.migrate import migrate

    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(2048))
    run = wandb.init(project="saves", id="save1", dir=str(tmp_path), reinit="create_new",
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
    os.makedirs(os.path.join(run.dir, "sub"), exist_ok=True)
    Path(run.dir, "sub", "notes.txt").write_text("lr sweep, take 3")
    Path(run.dir, "gone.txt").write_text("removed after the run")
    run.save(str(weights), base_path=str(tmp_path), policy="now")
    run.save(os.path.join(run.dir, "sub", "notes.txt"), base_path=run.dir, policy="now")
    run.save(os.path.join(run.dir, "gone.txt"), base_path=run.dir, policy="now")
    run.log({"loss": 0.5}, step=0)
    files_dir = Path(run.dir)
    _finish(run)
    (files_dir / "gone.txt").unlink()

    rec = _reader(tmp_path).read_run("save1")
    saved = {a.name: a for a in rec.events if isinstance(a, Artifact) and a.kind == "file"}
    assert set(saved) == {"weights.bin", "sub/notes.txt"}, saved
    assert Path(saved["weights.bin"].path).read_bytes() == weights.read_bytes()
    assert saved["weights.bin"].sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert saved["sub/notes.txt"].size == len("lr sweep, take 3")
    (note,) = [n for n in rec.info.notes if "gone.txt" in n]
    assert "not in the run's files/" in note and "listed, not copied" in note

    report = migrate("save1", f"wandb:saves?dir={tmp_path}", f"mlflow:{tmp_path}/copy.db")
    assert report.ok, report.summary()
    assert sorted(report.artifacts) == ["sub/notes.txt v0", "weights.bin v0"]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/copy.db")
    (copy,) = client.search_runs([e.experiment_id for e in client.search_experiments()])

    def stored(path: str = "") -> list[str]:
        out = []
        for f in client.list_artifacts(copy.info.run_id, path):
            out += stored(f.path) if f.is_dir else [f.path]
        return out

    found = {os.path.basename(p): p for p in stored()}
    assert {"weights.bin", "notes.txt"} <= set(found), found
    local = client.download_artifacts(copy.info.run_id, found["weights.bin"], str(tmp_path / "dl"))
    assert Path(local).read_bytes() == weights.read_bytes()


def test_wandb_own_run_files_are_told_from_saved_ones(tmp_path: Path) -> None:
    """A server's file list mixes W&B's own run files with ``wandb.save`` ones; the reader tells them
    apart by name (``own_run_file``). The names are checked against what W&B itself records: every
    file a real offline run's ``files`` records mark as W&B's (type WANDB) or media's, and the
    console capture, is own; the user's saved file is not."""
    import wandb

    from trackkit.backends.wandb.framing import iter_run_file
    from trackkit.backends.wandb.names import own_run_file

    run = wandb.init(project="own", id="own1", dir=str(tmp_path), reinit="create_new", config={"a": 1},
                     settings=wandb.Settings(silent=True, console="wrap", x_disable_stats=True))
    print("captured line")
    Path(run.dir, "mine.ckpt").write_bytes(b"\x00" * 64)
    run.save(os.path.join(run.dir, "mine.ckpt"), base_path=run.dir, policy="now")
    run.log({"img": wandb.Image(np.zeros((4, 4, 3), dtype=np.uint8)), "loss": 1.0}, step=0)
    path = _finish(run)
    by_type: dict[int, set[str]] = {}
    for rec in iter_run_file(path):
        if rec.WhichOneof("record_type") == "files":
            for item in rec.files.files:
                by_type.setdefault(int(item.type), set()).add(str(item.path))
    on_disk = {str(p.relative_to(Path(path).parent / "files")).replace(os.sep, "/")
               for p in (Path(path).parent / "files").rglob("*") if p.is_file()}
    assert "mine.ckpt" in by_type.get(0, set()) and "mine.ckpt" in on_disk
    theirs = (on_disk | set().union(*by_type.values())) - {"mine.ckpt"}
    assert any(n.startswith("media/") for n in theirs) and "output.log" in theirs, theirs
    assert {n for n in theirs if not own_run_file(n)} == set()
    assert not own_run_file("mine.ckpt") and not own_run_file("sub/notes.txt")
