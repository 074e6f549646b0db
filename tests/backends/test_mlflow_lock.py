"""The lock around a new MLflow sqlite store (``PATH.trackkit-lock``): nothing is left beside the store
once a sink or a migration is done, and the lock still excludes when its holder removes the file
(docs/backends/mlflow.md, "The lock beside a sqlite store"). A real sqlite store, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from trackkit.events import Metrics, RunFinished, RunStarted, Status
from trackkit.registry import load_sink, parse_backend


def _log(backend: str, run_id: str) -> None:
    sink = load_sink(parse_backend(backend))
    try:
        sink.emit([RunStarted(run_id=run_id, project="lock", name=run_id, start_time=1000.0),
                   Metrics(step=0, time=1001.0, values={"loss": 0.5}),
                   RunFinished(status=Status.COMPLETED, time=1002.0)])
    finally:
        sink.close()


def test_no_lock_file_is_left_beside_a_sqlite_store(tmp_path: Path) -> None:
    from trackkit.backends.memory import clear
    from trackkit.migrate import migrate

    db = tmp_path / "m.db"
    _log(f"mlflow:{db}", "r1")  # a new store
    _log(f"mlflow:{db}", "r2")  # an existing one
    assert db.is_file() and not (tmp_path / "m.db.trackkit-lock").exists()
    try:
        _log("memory:lock-src", "r3")
        report = migrate("r3", "memory:lock-src", f"mlflow:{tmp_path / 'to.db'}")
    finally:
        clear("lock-src")
    assert report.ok, report.summary()
    assert sorted(p.name for p in tmp_path.iterdir() if "trackkit-lock" in p.name) == []


_TAKER = """
import os, sys
from trackkit.backends.mlflow.connection import lock_beside, unlock_beside
path, inside, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(n):
    fd = lock_beside(path)
    try:
        mark = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # fails if another taker is inside
    except FileExistsError:
        print("TWO HOLDERS", flush=True)
        sys.exit(3)
    os.close(mark)
    os.unlink(inside)
    unlock_beside(path, fd)
"""


def test_the_lock_still_excludes_when_its_holder_removes_the_file(tmp_path: Path) -> None:
    """Takers that opened the file just before its holder removed it must not share the lock with a
    newcomer that creates the next one: each checks that it holds the file at the path."""
    path, inside = str(tmp_path / "s.db"), str(tmp_path / "inside")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get(
        "PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", _TAKER, path, inside, "400"], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    assert not os.path.exists(path + ".trackkit-lock")
