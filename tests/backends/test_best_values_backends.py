"""Best values in every backend (issue 13, part 3), through the real SDKs and read back from what each
stored: two runs (one peaks at 0.95 then falls to 0.5, one ends at 0.8) delivered by the agent process to
TensorBoard, W&B offline and MLflow (sqlite) at once. ``--where "metrics.val/acc.max>=0.9"`` finds only
the first in the journal and in each backend; the native forms are read with each tool's own reader."""

from __future__ import annotations

import glob
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import trackkit
from trackkit.cli import main
from trackkit.events import MetricGoal, Metrics, RunFinished, RunStarted, Status
from trackkit.query import find_runs
from trackkit.registry import load_reader, load_sink, parse_backend

PEAK = [0.5, 0.7, 0.95, 0.6, 0.5]
STEADY = [0.5, 0.6, 0.7, 0.75, 0.8]


def _backends(tmp: Path) -> dict[str, str]:
    return {"tensorboard": f"tensorboard:{tmp}/tb", "wandb": f"wandb:best?mode=offline&dir={tmp}/wb",
            "mlflow": f"mlflow:{tmp}/mlflow.db"}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("best")
    backends = _backends(tmp)
    ids = {}
    for name, accs in (("peak", PEAK), ("steady", STEADY)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = trackkit.init(project="best", name=name, backend=list(backends.values()), root=f"{tmp}/j",
                                capture=False, drain_timeout=120)
            run.define_metric("val/acc", goal="max")
            for acc in accs:
                run.log({"val/acc": acc, "train/loss": 1 - acc})
            run.summary["test/acc"] = 0.9 if name == "peak" else 0.85
            run.finish()
            assert run.pending() == [], f"{name} not delivered"
        ids[name] = run.id
    yield tmp, backends, ids


def _names(rows: list[trackkit.events.RunInfo]) -> list[str]:
    return sorted(r.name for r in rows)


@pytest.mark.parametrize("which", ["journal", "tensorboard", "wandb", "mlflow"])
def test_where_max_finds_only_the_run_that_peaked(two_runs: tuple[Path, dict[str, str], dict[str, str]],
                                                  which: str) -> None:
    tmp, backends, _ = two_runs
    args = ["runs", "--root", f"{tmp}/j"] if which == "journal" else ["runs", "--backend", backends[which]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(main, [*args, "--where", "metrics.val/acc.max>=0.9", "--json"],
                                 catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert [r["name"] for r in json.loads(res.output)] == ["peak"]
        res = CliRunner().invoke(main, [*args, "--sort", "metrics.val/acc.best", "--json"], catch_exceptions=False)
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == ["peak", "steady"]
    peak = rows[0]
    assert peak["metrics"]["val/acc"]["best"] == pytest.approx(0.95) and peak["metrics"]["val/acc"]["best_step"] == 2
    assert peak["metrics"]["val/acc"]["declared"] is True and peak["summary"]["test/acc"] == pytest.approx(0.9)
    if which != "journal":
        assert find_runs(backends[which], where="metrics.val/acc>=0.9") == []  # plain: the last value


def test_mlflow_holds_min_max_best_and_goal_as_tags(two_runs: tuple[Path, dict[str, str], dict[str, str]]) -> None:
    import mlflow

    tmp, _, ids = two_runs
    client = mlflow.MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name("best")
    run = client.search_runs([exp.experiment_id], filter_string=f"tags.`trackkit.run_id` = '{ids['peak']}'")[0]
    tags = run.data.tags
    assert tags["trackkit.best.val/acc"] == "0.95"  # MLflow's UI shows it with the run's tags
    stats = [json.loads(v) for k, v in tags.items() if k.startswith("trackkit.stats.")]
    acc = next(s for s in stats if s["key"] == "val/acc")
    assert acc == {"key": "val/acc", "min": 0.5, "min_step": 0, "max": 0.95, "max_step": 2, "goal": "max"}
    assert next(s for s in stats if s["key"] == "train/loss")["min_step"] == 2
    assert run.data.metrics["val/acc"] == 0.5  # MLflow's own final metric: the last value
    assert tags["trackkit.summary.test/acc"] == "0.9"
    # MLflow's own search finds the run by its best, with no trackkit in between
    found = client.search_runs([exp.experiment_id], filter_string="tags.`trackkit.best.val/acc` = '0.95'")
    assert [r.info.run_name for r in found] == ["peak"]


def test_tensorboard_writes_the_best_as_a_scalar_at_its_step(two_runs: tuple[Path, dict[str, str],
                                                                             dict[str, str]]) -> None:
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    tmp, backends, ids = two_runs
    (run_dir,) = glob.glob(f"{tmp}/tb/best/peak*")
    acc = EventAccumulator(run_dir, size_guidance={"tensors": 0})
    acc.Reload()
    best = acc.Tensors("trackkit/best/val/acc")
    assert [(e.step, round(float(e.tensor_proto.float_val[0]), 6)) for e in best] == [(2, 0.95)]
    rec = load_reader(parse_backend(backends["tensorboard"])).read_run(ids["peak"])
    assert [ev.goal for ev in rec.events if isinstance(ev, MetricGoal)] == ["max"]
    assert "trackkit/best/val/acc" not in rec.metrics()  # derived: not read back as a metric of its own
    assert rec.info.best("val/acc") == pytest.approx((0.95, 2))


def test_wandb_defines_the_metric_and_keeps_min_max_last(two_runs: tuple[Path, dict[str, str],
                                                                         dict[str, str]]) -> None:
    from trackkit.backends.wandb.framing import iter_run_file

    tmp, backends, ids = two_runs
    files = [f for f in glob.glob(f"{tmp}/wb/wandb/offline-run-*/run-*.wandb")]
    peak_file = next(f for f in files if any(r.WhichOneof("record_type") == "run" and r.run.display_name == "peak"
                                             for r in iter_run_file(f)))
    metric = [r.metric for r in iter_run_file(peak_file) if r.WhichOneof("record_type") == "metric"]
    assert [(m.name, m.summary.min, m.summary.max, m.summary.last) for m in metric] == \
        [("val/acc", True, True, True)]
    summaries = {}
    for r in iter_run_file(peak_file):
        if r.WhichOneof("record_type") == "summary":
            for item in r.summary.update:
                summaries[item.key or ".".join(item.nested_key)] = json.loads(item.value_json)
    assert summaries["val/acc"] == {"last": 0.5, "max": 0.95, "min": 0.5}  # W&B's own summary of the metric
    assert summaries["trackkit/best"]["val/acc"] == {"min": 0.5, "min_step": 0, "max": 0.95, "max_step": 2}
    rec = load_reader(parse_backend(backends["wandb"])).read_run(ids["peak"])
    assert rec.info.goals == {"val/acc": "max"} and rec.info.summary == {"test/acc": 0.9}
    assert rec.info.best("val/acc") == (0.95, 2) and "val/acc.max" not in rec.info.last_metrics


def test_a_restarted_mlflow_sink_keeps_the_extremes_of_what_came_before(tmp_path: Path) -> None:
    spec = parse_backend(f"mlflow:{tmp_path}/m.db")
    start = RunStarted(run_id="r1", project="p", name="n", start_time=1.0)
    first = load_sink(spec)
    first.emit([start, MetricGoal("acc", "max", 1.0), Metrics(0, 1.0, {"acc": 0.9}), Metrics(1, 2.0, {"acc": 0.2})])
    first.close()
    second = load_sink(spec)  # the agent restarted: a fresh sink gets the start again, then what follows
    second.emit([start, Metrics(2, 3.0, {"acc": 0.5}), RunFinished(Status.COMPLETED, 4.0)])
    second.close()
    (info,) = load_reader(spec).list_runs("p")
    st = info.metrics["acc"]
    assert (st.last, st.min, st.min_step, st.max, st.max_step) == (0.5, 0.2, 1, 0.9, 0), st
    assert info.goals == {"acc": "max"} and info.best("acc") == (0.9, 0)


def test_migrate_carries_the_goal(two_runs: tuple[Path, dict[str, str], dict[str, str]], tmp_path: Path) -> None:
    from trackkit.migrate import migrate

    _, backends, ids = two_runs
    target = f"tensorboard:{tmp_path}/copy"
    report = migrate(ids["peak"], backends["mlflow"], target)
    assert report.ok, report.summary()
    (info,) = load_reader(parse_backend(target)).list_runs()
    assert info.goals == {"val/acc": "max"} and info.best("val/acc") == pytest.approx((0.95, 2))
    assert os.path.isdir(f"{tmp_path}/copy")
