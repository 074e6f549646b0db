"""``trackkit gc`` (issue 14, item 4): a finished, fully delivered run's journal is compacted
losslessly (every reader gets the same events; `trackkit sync` re-delivers it whole to TensorBoard,
read back from TensorBoard's own files); anything running or undelivered is never touched."""

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
from trackkit.events import RunStarted, Status, event_to_record
from trackkit.index import index_entry
from trackkit.journal import JournalReader, JournalWriter, encode, load_run
from trackkit.registry import load_reader, parse_backend
from trackkit.rundir import RunDir, ending_events, sink_key


def _cli(*args: str) -> tuple[int, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(main, list(args), env={"COLUMNS": "200"}, catch_exceptions=False)
    return res.exit_code, res.output


def _events(run_dir: str) -> list[str]:
    return [json.dumps(event_to_record(ev), sort_keys=True, default=str) for ev in load_run(run_dir).events]


def _delivered_run(tmp_path: Path, steps: int = 300, **kw: Any) -> tuple[trackkit.Run, str]:
    tb = f"tensorboard:{tmp_path / 'tb'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = trackkit.init({"lr": 0.1}, project="p", name="gc-me", root=str(tmp_path / "j"), backend=tb,
                            capture=False, finish_wait="delivery", drain_timeout=120, **kw)
    for s in range(steps):
        run.log({"train/loss": 1.0 / (s + 1), "eval/acc": s / steps, **({"odd": float(s)} if s % 2 else {})}, step=s)
        if s == 100:
            run.set_tags({"team": "vision"})
    run.log({"nan": float("nan")}, step=steps)
    run.finish()
    assert RunDir(run.dir).pending([parse_backend(tb)]) == []
    return run, tb


def test_gc_compacts_losslessly_and_sync_redelivers_the_compacted_journal(tmp_path: Path) -> None:
    run, tb = _delivered_run(tmp_path)
    rd = RunDir(run.dir)
    before, size = _events(run.dir), os.path.getsize(rd.journal)
    info = load_run(run.dir).info.to_dict()

    code, out = _cli("gc", "--root", str(tmp_path / "j"), "--dry-run")
    assert code == 0 and "would compact" in out and "dry run" in out, out
    assert os.path.getsize(rd.journal) == size  # nothing changed

    code, out = _cli("gc", "--root", str(tmp_path / "j"))
    assert code == 0 and "compacted 1 of 1" in out, out
    after = os.path.getsize(rd.journal)
    assert after < size * 0.7, (size, after)
    with open(rd.journal) as fh:
        assert json.loads(fh.readline())["trackkit_journal"] == 2  # an older trackkit refuses it
    assert _events(run.dir) == before
    assert json.dumps(load_run(run.dir).info.to_dict(), sort_keys=True) == json.dumps(info, sort_keys=True)
    assert [m for m, _ in JournalReader(rd.journal).read_events() if not isinstance(m, dict)] == []  # blocks only
    assert rd.pending([parse_backend(tb)]) == []  # the cursor moved to the new end
    entry = index_entry(run.dir)
    assert entry is not None
    assert json.dumps(entry.info.to_dict(), sort_keys=True) == json.dumps({**info, "location": run.dir}, sort_keys=True)

    code, out = _cli("gc", "--root", str(tmp_path / "j"))
    assert "already compact" in out, out

    # deliver the compacted journal again, from nothing: TensorBoard gets every point
    shutil.rmtree(tmp_path / "tb")
    os.unlink(rd.cursor_path(sink_key(parse_backend(tb))))
    code, out = _cli("sync", run.id, "--root", str(tmp_path / "j"), "--timeout", "120")
    assert code == 0, out
    got = load_reader(parse_backend(tb)).read_run(run.id).metrics()
    assert got["train/loss"] == [(s, pytest.approx(1.0 / (s + 1), rel=1e-6)) for s in range(300)]  # float32
    assert [s for s, _ in got["odd"]] == list(range(1, 300, 2))

    code, out = _cli("show", run.id, "--root", str(tmp_path / "j"), "--json")
    assert json.loads(out)["tags"] == {"team": "vision"}


def test_gc_never_touches_a_running_or_undelivered_run(tmp_path: Path) -> None:
    root = tmp_path / "j"
    # undelivered: a finished journal whose backend has no cursor
    d = str(root / "p" / "r-undelivered")
    os.makedirs(d)
    w = JournalWriter(RunDir(d).journal, "r-undelivered", 1.0)
    w.write_line(encode(RunStarted("r-undelivered", "p", "u", 1.0, meta={"backends": [f"tensorboard:{tmp_path}/x"]})))
    for s in range(200):
        w.write_line(f'{{"k":"m","s":{s},"t":2.0,"v":{{"loss":0.5}}}}')
    for ev in ending_events(Status.COMPLETED, "", 199, 0, now=3.0):
        w.write_line(encode(ev))
    w.close()
    # running: a live trainer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        live = trackkit.init(project="p", name="live", root=str(root), backend="memory:gc-live", capture=False)
    for s in range(200):
        live.log({"loss": 0.5}, step=s)
    sizes = {p: os.path.getsize(RunDir(p).journal) for p in (d, live.dir)}
    try:
        code, out = _cli("gc", "--root", str(root))
        assert code == 0, out
        assert "r-undelivered: skipped: not delivered to tensorboard:" in out, out
        assert f"{live.id}: skipped: its trainer is running" in out, out
        assert "compacted 0 of 2" in out
        assert {p: os.path.getsize(RunDir(p).journal) for p in sizes} == sizes
    finally:
        live.finish()


def test_a_compacted_run_resumes_and_reads_both_segments(tmp_path: Path) -> None:
    run, tb = _delivered_run(tmp_path, steps=50)
    assert _cli("gc", run.id, "--root", str(tmp_path / "j"))[0] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = trackkit.init(project="p", root=str(tmp_path / "j"), backend=tb, id=run.id, resume="must",
                              capture=False, drain_timeout=120)
    assert again.step == 50
    again.log({"train/loss": 0.001}, step=51)
    again.finish()
    rec = load_run(run.dir)
    assert rec.info.status is Status.COMPLETED and rec.info.resumed == 1
    assert [s for s, _ in rec.metrics()["train/loss"]] == [*range(50), 51]
