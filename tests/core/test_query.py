"""The query grammar, sorting, multi-backend find_runs and compare — on the in-memory backend."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator

import pytest

from trackkit.errors import ConfigError
from trackkit.events import Metrics, RunFinished, RunInfo, RunStarted, Status
from trackkit.query import MISSING, compare, filter_runs, find_runs, load_runs, parse_filter
from trackkit.registry import load_sink, parse_backend


def _run(store: str, run_id: str, name: str, *, lr: float, opt: str, status: Status, losses: list[float],
         acc: float | None = None, tags: dict[str, str] | None = None, start: float = 0.0,
         extra: dict[str, object] | None = None) -> None:
    sink = load_sink(parse_backend(f"memory:{store}"))
    cfg: dict[str, object] = {"optimizer": {"name": opt, "lr": lr}, "batch_size": 64, **(extra or {})}
    events: list[object] = [RunStarted(run_id=run_id, project="q", name=name, start_time=start, tags=tags or {},
                                       config=cfg)]
    for i, v in enumerate(losses):
        vals = {"train/loss": v}
        if acc is not None and i == len(losses) - 1:
            vals["eval/acc"] = acc
        events.append(Metrics(step=i, time=start + i, values=vals))
    events.append(RunFinished(status=status, time=start + 100))
    sink.emit(events)
    sink.close()


@pytest.fixture
def stores() -> Iterator[tuple[str, str]]:
    from trackkit.backends.memory import clear

    clear("qa")
    clear("qb")
    _run("qa", "a1", "resnet-a", lr=0.1, opt="sgd", status=Status.COMPLETED, losses=[1.0, 0.5, 0.4], acc=0.91,
         tags={"team": "vision"}, start=10)
    _run("qa", "a2", "resnet-b", lr=0.01, opt="sgd", status=Status.DIVERGED, losses=[1.0, math.nan], acc=0.2,
         tags={"team": "vision", "baseline": ""}, start=20)
    _run("qb", "b1", "vit", lr=0.001, opt="adam", status=Status.COMPLETED, losses=[0.9, 0.3, 0.35], acc=0.95,
         tags={"team": "nlp"}, start=30, extra={"layers": [1, 2], "use_amp": True})
    yield "memory:qa", "memory:qb"
    clear("qa")
    clear("qb")


def _ids(rows: list[RunInfo]) -> list[str]:
    return [r.run_id for r in rows]


def test_filters_over_two_backends(stores: tuple[str, str]) -> None:
    both = list(stores)
    rows = find_runs(both)
    assert _ids(rows) == ["b1", "a2", "a1"]  # newest first
    assert {r.backend for r in rows} == {"memory:qa", "memory:qb"}
    assert _ids(find_runs(both, where=["status=completed"])) == ["b1", "a1"]
    assert _ids(find_runs(both, where=["status=completed", "config.optimizer.lr<0.1"])) == ["b1"]
    assert _ids(find_runs(both, where=["config.optimizer.lr<=0.1", "tag.team=vision"])) == ["a2", "a1"]
    assert _ids(find_runs(both, where=["metrics.eval/acc>=0.9"])) == ["b1", "a1"]
    assert _ids(find_runs(both, where="metrics.eval/acc=0.91")) == ["a1"]
    assert _ids(find_runs(both, where="tag.baseline")) == ["a2"]  # a label: the key exists
    assert _ids(find_runs(both, where="tag.baseline=")) == ["a2"]
    assert _ids(find_runs(both, where="tag.team!=vision")) == ["b1"]
    assert _ids(find_runs(both, where="tag.owner!=bob")) == ["b1", "a2", "a1"]  # != holds when the key is absent
    assert _ids(find_runs(both, where="tag.owner=bob")) == []
    assert _ids(find_runs(both, where="name~resnet-*")) == ["a2", "a1"]
    assert _ids(find_runs(both, where="config.optimizer.name=adam")) == ["b1"]
    assert _ids(find_runs(both, where="config.use_amp=true")) == ["b1"]
    assert _ids(find_runs(both, where="config.layers=[1, 2]")) == ["b1"]
    assert _ids(find_runs(both, where="config.batch_size==64")) == ["b1", "a2", "a1"]
    assert _ids(find_runs(both, where="metrics.train/loss>0")) == ["b1", "a1"]  # NaN compares false
    assert _ids(find_runs(both, where="metrics.train/loss=nan")) == ["a2"]
    assert _ids(find_runs(both, where="step>=2")) == ["b1", "a1"]
    assert _ids(find_runs(both, where="duration=100")) == ["b1", "a2", "a1"]
    assert _ids(find_runs([stores[0]], project="other")) == []


def test_sort_and_limit(stores: tuple[str, str]) -> None:
    both = list(stores)
    assert _ids(find_runs(both, sort_by="metrics.eval/acc")) == ["a2", "a1", "b1"]
    assert _ids(find_runs(both, sort_by="-metrics.eval/acc", limit=2)) == ["b1", "a1"]
    # runs without the key (or with NaN) come last, whichever the direction
    assert _ids(find_runs(both, sort_by="metrics.train/loss")) == ["b1", "a1", "a2"]
    assert _ids(find_runs(both, sort_by="-metrics.train/loss")) == ["a1", "b1", "a2"]
    assert _ids(find_runs(both, sort_by="name")) == ["a1", "a2", "b1"]
    assert _ids(find_runs(both, sort_by="config.layers")) == ["b1", "a1", "a2"]
    assert _ids(find_runs(both, limit=0)) == []


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("lr<0.1", "unknown field 'lr'.*did you mean config.lr, metrics.lr or tag.lr"),
        ("config.lr<abc", "'<' needs a number, got 'abc'"),
        ("status=done", "'done' is not a status.*running, completed, diverged, crashed, killed"),
        ("status>1", "'>' compares numbers and status is text"),
        ("tag.team<3", "compares numbers and tag.team is text"),
        ("=3", "no field before the operator"),
        ("", "empty expression"),
        ("config.=1", "needs a key after the dot"),
        ("config.lr=<3", "operator '=<' is not known"),
    ],
)
def test_bad_expressions_name_the_expression_and_the_fix(expr: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        parse_filter(expr)
    assert f"filter {expr!r}" in str(exc.value) and "Fix:" in str(exc.value)


def test_bad_expression_raises_before_any_backend_is_read() -> None:
    with pytest.raises(ConfigError, match="unknown field"):
        find_runs(["wandb:nowhere"], where="loss<1")  # no W&B reader is built
    with pytest.raises(ConfigError, match="sort 'nope'.*unknown field"):
        filter_runs([], sort_by="nope")


def test_parse_filter_forms() -> None:
    f = parse_filter("  metrics.eval/acc >= 0.9 ")
    assert (f.field, f.op, f.value) == ("metrics.eval/acc", ">=", "0.9")
    assert parse_filter("cfg.optimizer.lr=0.1").field == "config.optimizer.lr"
    assert parse_filter("tags.team='a b'").value == "a b"
    assert parse_filter("metric.x").op == "exists"
    assert parse_filter("id=abc").field == "run_id"


def test_compare_table(stores: tuple[str, str]) -> None:
    recs = load_runs(["a1", "resnet-b", "b"], list(stores))  # id, name, id prefix
    assert [r.info.run_id for r in recs] == ["a1", "a2", "b1"]
    assert [r.info.backend for r in recs] == ["memory:qa", "memory:qa", "memory:qb"]
    c = compare(recs)
    assert c.config_differs["optimizer.lr"] == [0.1, 0.01, 0.001]
    assert c.config_differs["layers"] == [MISSING, MISSING, [1, 2]]
    assert c.config_same == {"batch_size": 64}
    loss = c.metrics["train/loss"]
    assert loss[0] is not None and (loss[0].last, loss[0].min, loss[0].max, loss[0].points) == (0.4, 0.4, 1.0, 3)
    assert loss[1] is not None and math.isnan(loss[1].last) and loss[1].min == 1.0  # NaN ignored by min/max
    assert c.metrics["eval/acc"][2] is not None and c.metrics["eval/acc"][2].last == 0.95
    d = c.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["config_differs"]["layers"] == {"values": [None, None, [1, 2]], "missing": [0, 1]}
    assert d["metrics"]["train/loss"][1]["last"] == "nan"
    assert c.labels == ["resnet-a", "resnet-b", "vit"]


def test_compare_summaries_only_and_errors(stores: tuple[str, str]) -> None:
    infos = find_runs(list(stores))
    c = compare(infos)
    s = c.metrics["eval/acc"][0]
    assert s is not None and s.last == 0.95
    # a listing's RunInfo carries each metric's min/max/count (RunInfo.metrics), not only the last value
    a1 = [i.run_id for i in infos].index("a1")
    loss = c.metrics["train/loss"][a1]
    assert loss is not None and (loss.last, loss.min, loss.max, loss.points) == (0.4, 0.4, 1.0, 3)
    assert s is not None and s.min == 0.95 and s.last == 0.95  # the reader's rows carry min/max
    bare = compare([dataclasses.replace(infos[0], metrics={})]).metrics["eval/acc"][0]
    assert bare is not None and bare.min is None and bare.last == 0.95  # a row with the last value only
    with pytest.raises(ConfigError, match="no runs"):
        compare([])
    with pytest.raises(KeyError, match="no run 'zzz'"):
        load_runs(["zzz"], list(stores))
    with pytest.raises(KeyError, match="matches several runs"):
        load_runs(["a"], list(stores))
