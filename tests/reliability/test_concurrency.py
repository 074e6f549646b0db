"""Concurrency: threads logging into one run; processes starting runs of one name in one root at once.

Every point is counted (journal and backend), and no file is shared by accident.
"""

from __future__ import annotations

import collections
import os
import threading
import time

import pytest

import trackkit
from trackkit.backend import BackendSpec
from trackkit.events import RunStarted, Status
from trackkit.journal import read_journal

from .helpers import journal_steps, read_run, run_line, start_child, wait_agent_done

THREADS = 8
POINTS = 400


def _journal_points(run_dir: str) -> collections.Counter[tuple[str, int]]:
    out: collections.Counter[tuple[str, int]] = collections.Counter()
    for r in read_journal(os.path.join(run_dir, "journal.jsonl")):
        if r.get("k") == "m":
            for k in r["v"]:
                out[(k, r["s"])] += 1
    return out


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["thread", "process"])
def test_threads_logging_into_one_run_lose_nothing(tmp_path: object, agent: str) -> None:
    """8 threads, each its own key with its own steps, and all of them one shared key at
    distinct explicit steps: every point lands in the journal once and in every backend."""
    tmp = str(tmp_path)
    backends = [f"tensorboard:{tmp}/tb"] + ([f"memory:conc-{os.getpid()}"] if agent == "thread" else [])
    run = trackkit.init(project="conc", backend=backends, root=f"{tmp}/j", capture=False, agent=agent,
                        drain_timeout=60)
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for j in range(POINTS):
                run.log({f"thread{i}/loss": i + j / POINTS}, step=j)
                run.log({"shared": float(i)}, step=i * POINTS + j)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.finish()
    assert not errors
    assert not run.problems, run.problems
    assert run.records_written >= 2 * THREADS * POINTS

    expected = {(f"thread{i}/loss", j) for i in range(THREADS) for j in range(POINTS)}
    expected |= {("shared", s) for s in range(THREADS * POINTS)}
    journaled = _journal_points(run.dir)
    assert set(journaled) == expected
    assert set(journaled.values()) == {1}  # each point once: no torn or interleaved record

    for backend in backends:
        rec = read_run(backend, run.id)
        assert rec.info.status is Status.COMPLETED, backend
        metrics = rec.metrics()
        for i in range(THREADS):
            assert sorted(s for s, _ in metrics[f"thread{i}/loss"]) == list(range(POINTS)), (backend, i)
        shared = metrics["shared"]
        assert sorted(s for s, _ in shared) == list(range(THREADS * POINTS)), backend
        assert all(v == pytest.approx(s // POINTS) for s, v in shared), backend  # each value at its own step


PROCS = 6
STEPS = 100


@pytest.mark.slow
def test_processes_starting_same_named_runs_in_the_same_second(tmp_path: object) -> None:
    """6 processes start a run of one project and one name in one root at the same instant:
    each gets its own journal directory and its own TensorBoard directory, every point counted."""
    tmp = str(tmp_path)
    backend = f"tensorboard:{tmp}/tb"
    # a start gate: each child says READY once it has imported trackkit, and all of them call
    # init() the moment the go file appears (a start time fixed in advance, e.g. "now + 4 s",
    # is missed by children that need longer to start on a loaded machine)
    go = os.path.join(tmp, "go")
    procs = [
        start_child(backend, f"{tmp}/j", "--hz", "1000", "--steps", str(STEPS), "--project", "same",
                    "--name", "same-name", "--go-file", go)
        for _ in range(PROCS)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until READY, or '' if the child died
        assert line.strip() == "READY", line + (proc.stderr.read() if proc.stderr else "")
    with open(go, "w"):
        pass
    runs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        runs.append(run_line(out))
    ids = [rid for rid, _ in runs]
    dirs = [d for _, d in runs]
    assert len(set(ids)) == PROCS and len(set(dirs)) == PROCS
    # they did start within one second (the id begins with the init time in ms)
    started = [int(rid[:8], 16) for rid in ids]
    assert max(started) - min(started) < 1000, started

    tb_dirs = set()
    for rid, rdir in runs:
        header = next(iter(open(os.path.join(rdir, "journal.jsonl"))))
        assert f'"run_id":"{rid}"' in header
        assert journal_steps(rdir) == list(range(STEPS))
        wait_agent_done(rdir, timeout=90)
        rec = read_run(backend, rid)
        assert rec.info.status is Status.COMPLETED and rec.info.name == "same-name"
        # exactly this run's points: a shared directory would show another run's too
        assert sorted(s for s, _ in rec.metrics()["loss"]) == list(range(STEPS)), rid
        tb_dirs.add(rec.info.location)
    assert len(tb_dirs) == PROCS, tb_dirs
    # no event file holds two runs
    event_files = [os.path.join(d, f) for d in tb_dirs for f in os.listdir(d) if "tfevents" in f]
    assert len(event_files) == len(set(event_files)) >= PROCS


def test_run_id_collision_gets_its_own_directory(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs that draw the same id (same millisecond, same random suffix) never share a
    journal directory: the second claim fails atomically and a new id is drawn."""
    from trackkit import run as run_mod

    ids = iter(["dupdupdup000", "dupdupdup000", "fresh0000001"])
    monkeypatch.setattr(run_mod, "_new_run_id", lambda: next(ids))
    root = f"{tmp_path}/j"
    a = trackkit.init(project="p", backend="memory:dup", root=root, capture=False)
    b = trackkit.init(project="p", backend="memory:dup", root=root, capture=False)  # finishes a
    b.finish()
    assert (a.id, b.id) == ("dupdupdup000", "fresh0000001")
    assert a.dir != b.dir
    for r in (a, b):
        first = next(read_journal(os.path.join(r.dir, "journal.jsonl")))
        assert first["run_id"] == r.id


def test_tensorboard_dir_claim_is_atomic(tmp_path: object) -> None:
    """Agents of 8 same-named runs open their TensorBoard directory in the same instant:
    each gets its own (a check-then-create let two of them write into one directory)."""
    from trackkit.backends.tensorboard import TensorBoardSink

    root = str(tmp_path)
    spec = BackendSpec(scheme="tensorboard", location=root, options={}, raw=f"tensorboard:{root}")
    n = 8
    for attempt in range(5):
        barrier = threading.Barrier(n)
        got: dict[int, str | None] = {}

        def open_run(i: int, attempt: int = attempt, barrier: threading.Barrier = barrier,
                     got: dict[int, str | None] = got) -> None:
            sink = TensorBoardSink(spec)
            barrier.wait()
            sink.emit([RunStarted(run_id=f"r{attempt}-{i}", project="p", name=f"same{attempt}",
                                  start_time=time.time())])
            got[i] = sink.dir
            sink.close()

        threads = [threading.Thread(target=open_run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == n and len(set(got.values())) == n, got
