"""Parent and child runs in the journal: ``init(parent=...)``, ``run.child()``, ``runs`` shows and filters them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import trackkit
from trackkit.cli import main
from trackkit.errors import ConfigError
from trackkit.lookup import journal_runs
from trackkit.query import filter_runs, parse_filter


def _init(**kw: object) -> trackkit.Run:
    return trackkit.init(project="sweep", backend="memory", agent="thread", capture=False, **kw)  # type: ignore[arg-type]


def _start_record(run_dir: str) -> dict[str, object]:
    with open(f"{run_dir}/journal.jsonl") as fh:
        rec: dict[str, object] = next(r for r in map(json.loads, fh) if r.get("k") == "start")
    return rec


def test_child_runs_record_their_parent_in_the_journal(in_tmp: object) -> None:
    parent = _init(name="study")
    kids = []
    for i in range(3):
        with parent.child(name=f"trial-{i}", config={"lr": 0.1 * (i + 1)}) as kid:
            assert trackkit.run.current_run() is kid  # the child is the active run while it is open
            kid.log({"loss": 1.0 / (i + 1)})
            kids.append(kid.id)
        assert trackkit.run.current_run() is parent  # and hands it back when it finishes
    by_id_kid = trackkit.init(project="sweep", backend="memory", agent="thread", capture=False, parent=parent.id,
                              name="by-id")
    assert not parent.finished  # init(parent=<the active run's id>) keeps the parent open
    by_id_kid.finish()
    parent.finish()
    recs = {r.info.name: r.info for r in journal_runs(str(in_tmp) + "/.trackkit")}
    assert recs["study"].parent is None
    assert [recs[f"trial-{i}"].parent for i in range(3)] == [parent.id] * 3
    assert recs["by-id"].parent == parent.id
    assert recs["trial-2"].config == {"lr": pytest.approx(0.3)}
    assert recs["trial-1"].project == "sweep"
    # the journal's start record holds the parent only when there is one
    assert "parent" not in _start_record(f"{in_tmp}/.trackkit/sweep/{parent.id}")
    assert _start_record(f"{in_tmp}/.trackkit/sweep/{kids[0]}")["parent"] == parent.id


def test_parent_filter_and_runs_column(in_tmp: object) -> None:
    with _init(name="study") as parent:
        with parent.child(name="t0"):
            pass
    with _init(name="other"):
        pass
    infos = [r.info for r in journal_runs(str(in_tmp) + "/.trackkit")]
    assert {i.name for i in filter_runs(infos, [f"parent={parent.id}"])} == {"t0"}
    assert {i.name for i in filter_runs(infos, ["parent"])} == {"t0"}
    assert {i.name for i in filter_runs(infos, ["parent!=" + parent.id])} == {"study", "other"}
    with pytest.raises(ConfigError, match="parent is text"):
        parse_filter("parent>3")
    res = CliRunner().invoke(main, ["runs", "--where", f"parent={parent.id}"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "parent" in res.output and parent.id in res.output and "t0" in res.output
    assert "other" not in res.output
    res = CliRunner().invoke(main, ["runs", "--json"])
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["t0"]["parent"] == parent.id and rows["study"]["parent"] is None


@pytest.mark.parametrize("bad", [3, "", "a/b", object()])
def test_bad_parent_is_one_line_naming_the_fix(in_tmp: object, bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        _init(parent=bad)
    msg = str(err.value)
    assert msg.startswith("parent: ") and "Fix:" in msg and "\n" not in msg
