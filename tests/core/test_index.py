"""The run index (issue 14, item 1): the agent writes each run's entry as it delivers; readers use
it, catch it up from its offset when the journal grew, and rebuild it when it is missing, damaged,
of another shape or of another file. Every entry must equal what reading the whole journal gives."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import trackkit
from trackkit.cli import main
from trackkit.events import RunStarted, Status
from trackkit.index import IndexEntry, index_entry, index_runs, light_record
from trackkit.journal import JournalWriter, MetricLines, encode, load_run
from trackkit.query import filter_runs
from trackkit.rundir import RunDir, ending_events, root_index_path
from trackkit.sync import run_backends


def _init(root: Path, name: str, backend: str, **kw: Any) -> trackkit.Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trackkit.init({"lr": 0.01, "opt": {"name": "adam"}}, project="p", name=name, root=str(root),
                             backend=backend, capture=False, **kw)


def _own_entry(run_dir: str) -> IndexEntry:
    with open(RunDir(run_dir).index) as fh:
        entry = IndexEntry.from_dict(json.load(fh), run_dir)
    assert entry is not None
    return entry


def _same_as_journal(entry: IndexEntry) -> None:
    rec = load_run(entry.run_dir)
    assert entry.info.to_dict() == rec.info.to_dict()
    assert entry.backends == run_backends(rec)


def _write_journal(run_dir: str, rid: str, start: float | None, steps: int) -> None:
    os.makedirs(run_dir, exist_ok=True)
    w = JournalWriter(RunDir(run_dir).journal, rid, 1.0)
    lines = MetricLines(lambda k, v: None)
    w.write_line(encode(RunStarted(rid, "p", f"n-{rid}", start or 0.0, config={"i": int(rid[1:])},
                                   meta={"backends": []})))
    for s in range(steps):
        line, _ = lines.format({"loss": 1.0 / (s + 1), "acc": s / 10}, s, 2.0 + s)
        assert line is not None
        w.write_line(line)
    for ev in ending_events(Status.COMPLETED, "", steps - 1, 0, now=(start or 0.0) + 9):
        w.write_line(encode(ev))
    w.close()


def test_the_process_agent_writes_the_entry_as_the_journal_says(tmp_path: Path) -> None:
    """The real agent (a process, delivering to TensorBoard) leaves an entry equal to the whole journal."""
    run = _init(tmp_path / "j", "tb", f"tensorboard:{tmp_path / 'tb'}")
    assert run._agent.mode == "process"
    for s in range(50):
        run.log({"loss": 1.0 / (s + 1), "nested": {"acc": s / 50}}, step=s)
    run.set_tags({"team": "vision"})
    run.finish()
    entry = _own_entry(run.dir)
    assert entry.offset == os.path.getsize(RunDir(run.dir).journal)
    _same_as_journal(entry)
    assert entry.info.status is Status.COMPLETED and entry.info.last_step == 49
    assert entry.info.metrics["loss"].min == pytest.approx(1 / 50) and entry.info.metrics["loss"].count == 50
    assert entry.backends == [f"tensorboard:{tmp_path / 'tb'}"]


def test_the_thread_agent_writes_it_too(tmp_path: Path) -> None:
    run = _init(tmp_path / "j", "mem", "memory:index-thread")
    run.log({"loss": 0.5}, step=3)
    run.finish()
    _same_as_journal(_own_entry(run.dir))


def test_a_journal_that_grew_is_caught_up_from_the_offset_not_reread(tmp_path: Path) -> None:
    d = str(tmp_path / "j" / "p" / "r1")
    _write_journal(d, "r1", 10.0, 5)
    first = index_entry(d)
    assert first is not None
    _same_as_journal(first)
    # a mark only the entry holds: a caught-up entry keeps it, a rebuilt one would not
    body = first.to_dict()
    body["info"]["config"]["only_in_the_index"] = 1
    with open(RunDir(d).index, "w") as fh:
        json.dump(body, fh)
    w = JournalWriter(RunDir(d).journal, "r1", 1.0)
    line, _ = MetricLines(lambda k, v: None).format({"loss": 0.01, "new": 7.0}, 99, 3.0)
    assert line is not None
    w.write_line(line)
    w.close()
    (entry,) = index_runs(str(tmp_path / "j"))
    assert entry.info.config["only_in_the_index"] == 1  # not rebuilt
    assert entry.info.last_step == 99 and entry.info.last_metrics["new"] == 7.0  # the tail was read
    assert entry.info.metrics["loss"].min == 0.01 and entry.info.metrics["loss"].count == 6
    assert entry.offset == os.path.getsize(RunDir(d).journal)


@pytest.mark.parametrize("damage", ["garbage", "other shape", "other version", "missing"])
def test_a_missing_damaged_or_foreign_entry_is_rebuilt(tmp_path: Path, damage: str) -> None:
    d = str(tmp_path / "j" / "p" / "r1")
    _write_journal(d, "r1", 10.0, 5)
    entry = index_entry(d)
    assert entry is not None
    body = entry.to_dict()
    body["info"]["config"]["only_in_the_index"] = 1
    if damage == "other shape":
        body["shape"] += ",a_new_field"
    elif damage == "other version":
        body["trackkit_index"] = 999
    with open(RunDir(d).index, "w") as fh:
        fh.write("{not json" if damage == "garbage" else json.dumps(body))
    if damage == "missing":
        os.unlink(RunDir(d).index)
    (got,) = index_runs(str(tmp_path / "j"))
    assert "only_in_the_index" not in got.info.config
    _same_as_journal(got)


def test_a_replaced_journal_is_rebuilt(tmp_path: Path) -> None:
    """gc (or a copy) writes a new file: the entry of the old one is not trusted even at the same size."""
    d = str(tmp_path / "j" / "p" / "r1")
    _write_journal(d, "r1", 10.0, 5)
    entry = index_entry(d)
    assert entry is not None
    body = entry.to_dict()
    body["info"]["config"]["only_in_the_index"] = 1
    with open(RunDir(d).index, "w") as fh:
        json.dump(body, fh)
    shutil.copy(RunDir(d).journal, RunDir(d).journal + ".new")
    os.replace(RunDir(d).journal + ".new", RunDir(d).journal)
    (got,) = index_runs(str(tmp_path / "j"))
    assert "only_in_the_index" not in got.info.config
    _same_as_journal(got)


def test_the_root_file_answers_a_listing_without_reading_the_runs(tmp_path: Path) -> None:
    root = tmp_path / "j"
    for i in range(3):
        _write_journal(str(root / "p" / f"r{i}"), f"r{i}", 10.0 + i, 4)
    for e in index_runs(str(root)):
        _same_as_journal(e)
    path = root_index_path(str(root))
    with open(path) as fh:
        cache = json.load(fh)
    row = cache["runs"]["p/r1"]
    body = json.loads(row["e"])
    body["info"]["name"] = row["name"] = "from-the-root-file"
    row["e"] = json.dumps(body)
    with open(path, "w") as fh:
        json.dump(cache, fh)
    got = {e.run_id: e for e in index_runs(str(root))}
    assert got["r1"].name == "from-the-root-file" and got["r1"].info.name == "from-the-root-file"
    # a run added later: its entry joins the root file
    _write_journal(str(root / "p" / "r3"), "r3", 13.0, 2)
    assert [e.run_id for e in index_runs(str(root))] == ["r0", "r1", "r2", "r3"]
    with open(path) as fh:
        assert set(json.load(fh)["runs"]) == {"p/r0", "p/r1", "p/r2", "p/r3"}
    # a damaged root file costs a re-read, nothing else
    with open(path, "w") as fh:
        fh.write("[1, 2")
    for e in index_runs(str(root)):
        _same_as_journal(e)


def test_runs_lists_the_newest_as_filter_runs_orders_them(tmp_path: Path) -> None:
    """The default listing decodes only the rows it prints: same rows, same order as sorting every run."""
    root = tmp_path / "j"
    starts = [5.0, 3.0, None, 5.0, 9.0, 1.0, None, 7.0]
    for i, t in enumerate(starts):
        _write_journal(str(root / "p" / f"r{i}"), f"r{i}", t, 2)
    infos = [load_run(e.run_dir).info for e in index_runs(str(root))]
    for n in (3, 7, 50):
        res = CliRunner().invoke(main, ["runs", "--root", str(root), "--json", "-n", str(n)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert [r["run_id"] for r in json.loads(res.output)] == [i.run_id for i in filter_runs(infos, limit=n)]


def test_show_reads_the_journal_without_its_metric_lines(tmp_path: Path) -> None:
    run = _init(tmp_path / "j", "show-me", "memory:index-show")
    for s in range(20):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    run.set_tags({"team": "vision"})
    run.finish()
    (entry,) = index_runs(str(tmp_path / "j"))
    light, full = light_record(entry), load_run(run.dir)
    assert light.info.to_dict() == full.info.to_dict()
    assert light.events == [ev for ev in full.events if type(ev).__name__ != "Metrics"]
    res = CliRunner().invoke(main, ["show", "show-me", "--root", str(tmp_path / "j"), "--json"],
                             catch_exceptions=False)
    out = json.loads(res.output)
    assert out["last_metrics"]["loss"] == pytest.approx(1 / 20) and out["tags"] == {"team": "vision"}
    res = CliRunner().invoke(main, ["compare", "show-me", "--root", str(tmp_path / "j"), "--json"],
                             catch_exceptions=False)
    (m,) = json.loads(res.output)["metrics"]["loss"]
    assert (m["last"], m["min"], m["max"], m["points"]) == (pytest.approx(1 / 20), pytest.approx(1 / 20), 1.0, 20)


def test_a_torn_tail_is_not_read_twice_and_never_breaks_the_listing(tmp_path: Path) -> None:
    d = str(tmp_path / "j" / "p" / "r1")
    _write_journal(d, "r1", 10.0, 3)
    with open(RunDir(d).journal, "ab") as fh:
        fh.write(b'{"k":"m","s":7,"t":1.0,"v":{"loss":0.')  # a trainer killed mid-write
    (e,) = index_runs(str(tmp_path / "j"))
    _same_as_journal(e)
    assert e.offset < os.path.getsize(RunDir(d).journal)
    (again,) = index_runs(str(tmp_path / "j"))
    assert again.info.to_dict() == e.info.to_dict()
