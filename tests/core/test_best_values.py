"""Best values (issue 13, part 3): ``run.define_metric``, ``run.summary``, the journal's ``goal`` record,
the filter grammar ``metrics.KEY.last/min/max/best/best_step`` and ``summary.KEY``, ``--sort
metrics.KEY.best``, and ``trackkit runs`` showing the best where declared — on the local journal."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import trackkit
from trackkit.cli import main
from trackkit.errors import ConfigError
from trackkit.events import MetricGoal, MetricStats, RunInfo, Summary, event_from_record, event_to_record
from trackkit.journal import load_run
from trackkit.query import filter_runs, metric_field, parse_filter

PEAK = [0.5, 0.7, 0.95, 0.6, 0.5]  # peaks at 0.95 (step 2), ends at 0.5
STEADY = [0.5, 0.6, 0.7, 0.75, 0.8]  # ends at 0.8, never above


def _two_runs(root: Path) -> tuple[trackkit.Run, trackkit.Run]:
    runs = []
    for name, accs in (("peak", PEAK), ("steady", STEADY)):
        run = trackkit.init(project="best", name=name, backend="memory:best", root=str(root), agent="thread",
                            capture=False, advisories=False)
        run.define_metric("val/acc", goal="max")
        for acc in accs:
            run.log({"val/acc": acc, "train/loss": 1 - acc})
        run.summary["test/acc"] = 0.9 if name == "peak" else 0.85
        run.finish()
        runs.append(run)
    return runs[0], runs[1]


def _cli(*args: str) -> tuple[int, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(main, list(args), env={"COLUMNS": "250"}, catch_exceptions=False)
    return res.exit_code, res.output


def test_the_journal_holds_goal_and_summary_and_the_record_has_every_figure(tmp_path: Path) -> None:
    peak, _ = _two_runs(tmp_path)
    lines = [json.loads(x) for x in Path(peak.dir, "journal.jsonl").read_text().splitlines()[1:]]
    assert {"k": "goal", "key": "val/acc", "goal": "max"} == {k: v for k, v in lines[1].items() if k != "time"}
    assert any(rec["k"] == "summary" and rec["values"] == {"test/acc": 0.9} for rec in lines)
    info = load_run(peak.dir).info
    assert info.goals == {"val/acc": "max"} and info.summary == {"test/acc": 0.9}
    acc = info.metrics["val/acc"]
    assert (acc.last, acc.last_step, acc.min, acc.min_step, acc.max, acc.max_step, acc.count) == \
        (0.5, 4, 0.5, 0, 0.95, 2, 5)
    assert info.best("val/acc") == (0.95, 2)
    assert info.best("train/loss") == pytest.approx((0.05, 2))  # an undeclared loss: its goal is min
    assert peak.summary["test/acc"] == 0.9 and dict(peak.summary) == {"test/acc": 0.9}


def test_where_max_finds_only_the_run_that_peaked_and_plain_key_stays_the_last(tmp_path: Path) -> None:
    _two_runs(tmp_path)
    root = str(tmp_path)
    code, out = _cli("runs", "--root", root, "--where", "metrics.val/acc.max>=0.9", "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["peak"]
    code, out = _cli("runs", "--root", root, "--where", "metrics.val/acc>=0.9", "--json")
    assert code == 0 and json.loads(out) == []  # the last value: neither run ends above 0.9
    code, out = _cli("runs", "--root", root, "--where", "metrics.val/acc.last>=0.75", "--json")
    assert [r["name"] for r in json.loads(out)] == ["steady"]
    code, out = _cli("runs", "--root", root, "--where", "metrics.val/acc.best_step=2", "--json")
    assert [r["name"] for r in json.loads(out)] == ["peak"]
    code, out = _cli("runs", "--root", root, "--where", "summary.test/acc>0.88", "--json")
    assert [r["name"] for r in json.loads(out)] == ["peak"]
    code, out = _cli("runs", "--root", root, "--where", "metrics.train/loss.min<0.1", "--json")
    assert [r["name"] for r in json.loads(out)] == ["peak"]


def test_sort_by_best_puts_the_best_first_and_minus_reverses(tmp_path: Path) -> None:
    _two_runs(tmp_path)
    root = str(tmp_path)
    _, out = _cli("runs", "--root", root, "--sort", "metrics.val/acc.best", "--json")
    assert [r["name"] for r in json.loads(out)] == ["peak", "steady"]
    _, out = _cli("runs", "--root", root, "--sort", "-metrics.val/acc.best", "--json")
    assert [r["name"] for r in json.loads(out)] == ["steady", "peak"]
    _, out = _cli("runs", "--root", root, "--sort", "metrics.train/loss.best", "--json")  # a loss: lowest first
    assert [r["name"] for r in json.loads(out)] == ["peak", "steady"]
    _, out = _cli("runs", "--root", root, "--sort", "metrics.val/acc", "--json")  # plain: ascending last value
    assert [r["name"] for r in json.loads(out)] == ["peak", "steady"]


def test_runs_shows_the_best_where_declared_and_json_has_every_figure(tmp_path: Path) -> None:
    _two_runs(tmp_path)
    code, out = _cli("runs", "--root", str(tmp_path))
    assert code == 0
    assert "val/acc=0.5 (best 0.95@2)" in out and "val/acc=0.8 (best 0.8@4)" in out
    assert "train/loss=0.5 (best" not in out  # an undeclared metric: the last value only
    _, out = _cli("runs", "--root", str(tmp_path), "--json", "--where", "name=peak")
    row = json.loads(out)[0]
    assert row["metrics"]["val/acc"] == {"last": 0.5, "last_step": 4, "min": 0.5, "min_step": 0, "max": 0.95,
                                         "max_step": 2, "count": 5, "goal": "max", "declared": True, "best": 0.95,
                                         "best_step": 2}
    assert row["metrics"]["train/loss"]["goal"] == "min" and row["metrics"]["train/loss"]["declared"] is False
    assert row["summary"] == {"test/acc": 0.9}
    code, out = _cli("show", "peak", "--root", str(tmp_path))
    assert code == 0 and "0.5 (best 0.95@2)" in out and "test/acc" in out


def test_the_parse_rule_for_keys_with_dots() -> None:
    assert metric_field("val/acc.max") == ("val/acc", "max")
    assert metric_field("val/acc") == ("val/acc", "last")
    assert metric_field("a.b.c") == ("a.b.c", "last")  # 'c' is not an aggregate: part of the key
    assert metric_field("loss.min.last") == ("loss.min", "last")  # a key that itself ends in .min
    assert metric_field("max") == ("max", "last")
    info = RunInfo(run_id="r", project="p", name="n", backend="memory")
    info.add_point("loss.min", 0, 3.0)
    info.add_point("loss.min", 1, 2.0)
    assert parse_filter("metrics.loss.min.last=2")(info)
    assert not parse_filter("metrics.loss.min>1")(info)  # the min of a key 'loss', which it does not have
    # a row with only the last value (an older index, a listing that read none): min/max are not known
    bare = RunInfo(run_id="r", project="p", name="n", backend="memory", last_metrics={"acc": 0.5})
    assert parse_filter("metrics.acc.last=0.5")(bare) and not parse_filter("metrics.acc.max>0")(bare)
    assert filter_runs([bare], sort_by="metrics.acc.best") == [bare]
    with pytest.raises(ConfigError, match=r"metrics\.KEY\.last\|min\|max\|best"):
        parse_filter("acc.max>1")


def test_goal_record_round_trips_and_a_bad_goal_is_one_warning_not_an_error(tmp_path: Path) -> None:
    ev = MetricGoal("val/acc", "min", 1.5)
    assert event_from_record(event_to_record(ev)) == ev
    assert event_from_record({"k": "summary", "values": {"a": 1}, "time": 0.0}) == Summary({"a": 1}, 0.0)
    run = trackkit.init(project="best", backend="memory:best-bad", root=str(tmp_path), agent="thread",
                        capture=False, advisories=False)
    with pytest.warns(trackkit.TrackkitWarning, match=r"define_metric\('acc', goal='up'\): not a goal.*goal='max'"):
        run.define_metric("acc", goal="up")
    run.define_metric("loss", goal="minimize")  # W&B's word works too
    run.summary.update({"x": {"nested": 1}}, y=2)
    run.finish()
    info = load_run(run.dir).info
    assert info.goals == {"loss": "min"} and info.summary == {"x": {"nested": 1}, "y": 2}
    assert run.problems["goal"] == 1


def test_metric_stats_best_by_goal() -> None:
    st = MetricStats.first(0, 1.0)
    for step, v in ((1, float("nan")), (2, 3.0), (3, 0.5)):
        st.add(step, v)
    assert st.best("max") == (3.0, 2) and st.best("min") == (0.5, 3) and st.last == 0.5 and st.count == 4
