"""The CLI in a terminal (issue 16, points 7 and 5): tables that fit 80 columns without cutting an
id, name or status; newest first everywhere; ``show`` with --backend, --json, artifacts, provenance
and the crash traceback; ``migrate`` naming each run once; no MLflow INFO lines; the delivery state."""

from __future__ import annotations

import json
import logging
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest
from tk_cli import invoke

import trackkit
from trackkit.events import Metrics, RunFinished, RunStarted, Status
from trackkit.registry import load_sink, parse_backend

#: ids as long as MLflow's (32 hex digits): the ones an 80-column table used to cut ("32fafe…")
LONG_IDS = ["32fafe0c9d1b4e6f8a7b2c3d4e5f6a7b", "5e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b", "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"]


def _memory_runs(name: str, ids: list[str], statuses: list[Status] | None = None) -> None:
    from trackkit.backends.memory import clear

    clear(name)
    sink = load_sink(parse_backend(f"memory:{name}"))
    for n, rid in enumerate(ids):
        status = statuses[n] if statuses else Status.COMPLETED
        sink.emit([
            RunStarted(run_id=rid, project="vision-experiments", name=f"resnet50-lr{n}", start_time=1000.0 + n,
                       config={"lr": 0.1 / (n + 1)}),
            Metrics(step=9, time=1001.0 + n, values={"train/loss": 0.123456789, "eval/accuracy": 0.987654321,
                                                     "eval/f1": 0.5, "throughput/samples_per_sec": 1234.5678}),
            RunFinished(status=status, time=1100.0 + n),
        ])


def _journal_run(name: str, root: Path, **kw: Any) -> trackkit.Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trackkit.init({"lr": 0.01}, project="p", name=name, root=str(root), agent="thread",
                             **{"backend": "memory:term-journal", "capture": False, **kw})


# ---------------------------------------------------------------- 80 columns


def test_runs_at_80_columns_keeps_ids_names_and_statuses_whole() -> None:
    _memory_runs("term-80", LONG_IDS, [Status.COMPLETED, Status.CRASHED, Status.COMPLETED])
    code, out = invoke("runs", "--backend", "memory:term-80", columns=80)
    assert code == 0, out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out  # fits the terminal
    assert "…" not in out, out  # nothing cut with an ellipsis
    for n, rid in enumerate(LONG_IDS):  # each id whole on one line, with its name and status
        (row,) = [line for line in lines if rid in line]
        assert f"resnet50-lr{n}" in row and ("crashed" if n == 1 else "completed") in row, out
    assert "not shown at this width:" in out and "--json" in out  # what was left out is said
    code, wide = invoke("runs", "--backend", "memory:term-80", columns=250)
    assert code == 0 and "start" in wide and "last metrics" in wide and "not shown" not in wide


def test_fitted_table_folds_only_when_the_kept_columns_cannot_fit() -> None:
    from rich.console import Console
    from rich.text import Text

    from trackkit.cli.common import Column, fitted_table

    cols = [Column("id"), Column("status", wrap=True, min_width=10), Column("extra", drop=1)]
    rows = [[Text("x" * 30), Text("completed, not delivered to mlflow:http://nohost:1"), Text("e" * 30)]]
    for width in (80, 60, 50):
        table, hidden = fitted_table("t", cols, rows, width)
        c = Console(width=width, record=True)
        c.print(table)
        text = c.export_text()
        assert "x" * 30 in text and "completed," in text and max(map(len, text.splitlines())) <= width
        assert hidden == ([] if width == 80 else ["extra"])
    table, _ = fitted_table("t", cols, rows, 30)  # too narrow for the id: it folds, every character stays
    c = Console(width=30, record=True)
    c.print(table)
    text = c.export_text()
    assert "…" not in text and text.count("x") == 30


# ---------------------------------------------------------------- newest first, same columns and digits


def test_runs_newest_first_with_and_without_filters(tmp_path: Path) -> None:
    root = tmp_path / "j"
    for n in range(3):
        run = _journal_run(f"run-{n}", root)
        run.log({"loss": 0.123456789 * (n + 1)}, step=0)
        run.finish()
    outs = []
    for extra in ([], ["--where", "status=completed"], ["--where", "config.lr<1"]):
        code, out = invoke("runs", "--root", str(root), *extra, columns=200)
        assert code == 0, out
        outs.append(out)
        names = [n for line in out.splitlines() for n in ("run-0", "run-1", "run-2") if n in line]
        assert names == ["run-2", "run-1", "run-0"], out  # newest first
        assert "0.123457" in out and "0.246914" in out, out  # the same digits
    headers = {next(line for line in out.splitlines() if "┃ id" in line) for out in outs}
    assert len(headers) == 1 and "duration" in headers.pop()  # the same columns
    code, out = invoke("runs", "--root", str(root), "--json")
    assert [r["name"] for r in json.loads(out)] == ["run-2", "run-1", "run-0"]
    code, out = invoke("runs", "--root", str(root), "-n", "1")
    assert "run-2" in out and "run-0" not in out  # -n keeps the newest


# ---------------------------------------------------------------- show


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_show_prints_traceback_artifacts_provenance_and_no_empty_tags(in_tmp: Path) -> None:
    _git(in_tmp, "init", "-q")
    (in_tmp / "train.py").write_text("print('hi')\n")
    _git(in_tmp, "add", "train.py")
    _git(in_tmp, "commit", "-qm", "first")
    commit = _git(in_tmp, "rev-parse", "HEAD")
    (in_tmp / "model.pt").write_bytes(b"weights")
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with trackkit.init({"lr": 0.1}, project="p", name="crashy", agent="thread", backend="memory:term-show",
                           seed=42, data={"name": "mnist", "version": "v3"},
                           capture={"git": True, "environment": True, "invocation": True}) as run:
            run.log({"loss": 0.5}, step=3)
            run.log_artifact("model.pt", name="model", kind="model")
            raise ValueError("boom [red]not markup[/]")
    code, out = invoke("show", "crashy", columns=100)
    assert code == 0, out
    assert "crashed" in out and "Traceback (most recent call last)" in out
    assert 'raise ValueError("boom [red]not markup[/]")' in out  # printed as recorded, not as rich markup
    assert "model" in out and "artifacts/model/v0/model.pt" in out and "7 B" in out
    assert f"commit {commit[:12]}" in out and "clean" in out  # git
    assert "Python 3." in out and "seed 42" in out and "mnist v3" in out  # environment, seed, data
    assert not any(line.strip() == "tags" for line in out.splitlines()), out  # no empty tags table
    assert max(len(line) for line in out.splitlines()) <= 100

    code, out = invoke("show", "crashy", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["status"] == "crashed" and "ValueError: boom" in data["traceback"]
    assert [a["name"] for a in data["artifacts"] if a["kind"] == "model"] == ["model"]
    pillars = {p["pillar"]: p for p in data["provenance"]}
    assert pillars["git"]["status"] == "ok" and commit[:12] in pillars["git"]["detail"]
    assert pillars["seed"]["status"] == "ok" and pillars["data"]["status"] == "ok"
    assert data["not_delivered"] == []


def test_show_reads_a_run_from_a_backend(in_tmp: Path) -> None:
    _memory_runs("term-show-b", LONG_IDS[:2])
    code, out = invoke("show", "resnet50-lr1", "--backend", "memory:term-show-b", columns=80)
    assert code == 0, out
    assert LONG_IDS[1] in out and "read from memory:term-show-b" in out and "completed" in out
    assert "eval/accuracy" in out and "0.987654" in out
    code, out = invoke("show", LONG_IDS[0][:6], "-b", "memory:term-show-b", "--json")
    assert code == 0 and json.loads(out)["run_id"] == LONG_IDS[0]
    # bad input: one line naming the cause and the fix, exit 1, no traceback
    for args in (["show", "nope", "-b", "memory:term-show-b"], ["show", "x", "-b", "bogus:1"]):
        code, out = invoke(*args)
        assert code == 1 and "Traceback" not in out and len(out.strip().splitlines()) == 1, out
        assert "Fix:" in out


# ---------------------------------------------------------------- delivery state (point 5, display)


def test_a_finished_run_with_undelivered_data_says_so(tmp_path: Path) -> None:
    from trackkit.rundir import RunDir, sink_key

    root = tmp_path / "j"
    ok = _journal_run("all-there", root)
    ok.finish()
    behind = _journal_run("behind", root)
    behind.log({"x": 1.0})
    behind.finish()
    spec = parse_backend("memory:term-journal")
    RunDir(behind.dir).save_cursor(sink_key(spec), 0, "memory:term-journal", 0)  # as if the backend was down
    code, out = invoke("runs", "--root", str(root), columns=200)
    assert code == 0, out
    (row,) = [line for line in out.splitlines() if "behind" in line]
    assert "completed, not delivered to memory:term-journal" in row, out
    (row,) = [line for line in out.splitlines() if "all-there" in line]
    assert "completed" in row and "delivered" not in row
    code, out = invoke("runs", "--root", str(root), "--json")
    assert {r["name"]: r["not_delivered"] for r in json.loads(out)} == {
        "behind": ["memory:term-journal"], "all-there": []}
    code, out = invoke("show", "behind", "--root", str(root))
    assert code == 0 and "status completed, not delivered to memory:term-journal" in out, out
    # the deliverer's last word on why (agent.delivery_state) is the cause shown
    RunDir(behind.dir).save_delivery_state({sink_key(spec): {"backend": "memory:term-journal",
                                                             "error": "connection refused on 127.0.0.1:1"}})
    code, out = invoke("runs", "--root", str(root), columns=200)
    assert "completed, not delivered to memory:term-journal (connection refused on 127.0.0.1:1)" in out, out
    code, out = invoke("show", "behind", "--root", str(root), "--json")
    assert json.loads(out)["delivery_errors"] == {"memory:term-journal": "connection refused on 127.0.0.1:1"}


def test_an_unreachable_mlflow_server_shows_as_not_delivered(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    root = tmp_path / "j"
    run = _journal_run("nohost", root, backend="mlflow://nohost:1", drain_timeout=0.5)
    run.log({"loss": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not yet delivered": finish's own word on it
        run.finish()
    code, out = invoke("runs", "--root", str(root), columns=200)
    assert code == 0, out
    assert "completed, not delivered to mlflow://nohost:1" in out, out
    code, out = invoke("runs", "--root", str(root), "--json")
    (row,) = json.loads(out)
    assert row["not_delivered"] == ["mlflow://nohost:1"] and "nohost" in row["delivery_errors"]["mlflow://nohost:1"]


# ---------------------------------------------------------------- migrate; MLflow's INFO lines


def test_migrate_names_each_run_once(in_tmp: Path) -> None:
    from trackkit.backends.memory import clear

    _memory_runs("term-mig-src", LONG_IDS)
    clear("term-mig-dst")
    for _ in range(2):  # copied, then already there (a note every run shares is said once)
        code, out = invoke("migrate", "--from", "memory:term-mig-src", "--to", "memory:term-mig-dst", "--all",
                            columns=120)
        assert code == 0, out
        for rid in LONG_IDS:
            assert out.count(rid) == 1, out
        assert "3 of 3 runs migrated and verified" in out
    assert "already there" in out


def test_read_commands_keep_mlflow_info_lines_out(in_tmp: Path) -> None:
    pytest.importorskip("mlflow")
    _memory_runs("term-mlflow-src", LONG_IDS[:1])
    code, out = invoke("migrate", "--from", "memory:term-mlflow-src", "--to", f"mlflow:{in_tmp}/fresh.db",
                        LONG_IDS[0])
    assert code == 0, out
    code2, out2 = invoke("runs", "--backend", f"mlflow:{in_tmp}/fresh.db")
    assert code2 == 0, out2
    for text in (out, out2):
        assert "INFO" not in text and "mlflow.store" not in text and "alembic" not in text, text
    assert LONG_IDS[0] in out2
    assert logging.root.manager.disable == logging.NOTSET  # the command put logging back as it was
