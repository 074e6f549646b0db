"""A preempted training job resumes THE SAME run (docs/resume.md), on real backends.

A child trainer logs to TensorBoard + W&B (offline) + MLflow (sqlite) with a chosen id and
``resume="allow"``; it is SIGKILLed mid-run. A second process with the same id continues from
``run.step + 1`` and completes. Read back through each backend's own Reader: exactly one run,
every acknowledged step of both segments, status completed, one resume, config intact.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from trackkit.events import RunResumed, Status
from trackkit.registry import load_reader, parse_backend

from .helpers import (
    acked_steps,
    journal_steps,
    read_run,
    read_until_ack,
    start_child,
    three_backends,
    wait_agent_done,
)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["at-once", "after-drain"])
def test_sigkilled_run_resumes_in_every_backend(tmp_path: object, when: str) -> None:
    tmp = str(tmp_path)
    backends = three_backends(tmp)
    joined = ",".join(backends)
    run_id = "job-4242_1"
    first = start_child(joined, f"{tmp}/j", "--hz", "100", "--id", run_id, "--resume", "allow")
    rid, run_dir = read_until_ack(first, 30)
    assert rid == run_id and os.path.basename(run_dir) == run_id
    time.sleep(0.4)
    first.send_signal(signal.SIGKILL)  # preempted
    out1, _ = first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    acked1 = set(range(31)) | set(acked_steps(out1))
    last1 = max(journal_steps(run_dir))
    assert last1 >= max(acked1)
    if when == "after-drain":  # the first agent marked the run killed, delivered it and left
        log = wait_agent_done(run_dir, timeout=180, count=1)
        assert "marked the run killed" in log and "everything delivered" in log, log
    # at-once: the requeued job starts while the first agent may still be delivering; the new
    # agent waits for it (one deliverer per run) and nothing is sent twice or lost

    steps = last1 + 40
    second = start_child(joined, f"{tmp}/j", "--hz", "100", "--id", run_id, "--resume", "allow", "--continue",
                         "--steps", str(steps))
    out2, err2 = second.communicate(timeout=180)
    assert second.returncode == 0, err2[-3000:]
    start_line = next(line for line in out2.splitlines() if line.startswith("START "))
    assert start_line == f"START 1 {last1}"  # resumed once; run.step = the last step logged before
    acked2 = set(acked_steps(out2))
    assert acked2 == set(range(last1 + 1, steps))

    journaled = journal_steps(run_dir)
    assert len(journaled) == len(set(journaled))  # continued at run.step + 1: no step twice
    assert acked1 | acked2 <= set(journaled)
    log = wait_agent_done(run_dir, timeout=180, count=2)
    done = [line for line in log.splitlines() if "agent done" in line]
    assert all("everything delivered" in line for line in done), log

    for backend in backends:
        spec = parse_backend(backend)
        same = [i for i in load_reader(spec).list_runs() if i.run_id == run_id]
        assert len(same) == 1, (backend, same)  # one run, not one per segment
        rec = read_run(backend, run_id)
        info = rec.info
        assert info.status is Status.COMPLETED, (backend, info.status, info.reason)
        assert info.resumed == 1, (backend, info.resumed)
        assert [e.previous_status for e in rec.events if isinstance(e, RunResumed)] == [Status.KILLED], backend
        stored = [s for s, _ in rec.metrics()["loss"]]
        assert (acked1 | acked2) <= set(stored), (backend, sorted((acked1 | acked2) - set(stored))[:10])
        assert sorted(stored) == sorted(journaled), backend  # nothing doubled, nothing invented
        assert set(info.config) == {"hz"} and float(info.config["hz"]) == 100.0, (backend, info.config)


@pytest.mark.slow
def test_replayed_steps_are_kept_in_every_backend(tmp_path: object) -> None:
    """Resumed from a checkpoint older than the last logged step: steps 4-5 are logged again with new
    values. No backend drops either value (W&B: the ``trackkit/late`` column; TensorBoard and MLflow keep
    both points); the reader returns both, the config update made at resume, and the tags of both segments."""
    import warnings

    import trackkit

    tmp = str(tmp_path)
    backends = three_backends(tmp)
    with trackkit.init(project="rel", id="replay-1", backend=backends, root=f"{tmp}/j", capture=False,
                       config={"lr": 0.1, "opt": {"m": 0.9}}) as run:
        for i in range(6):
            run.log({"loss": float(i)}, step=i)
        run.set_tags({"phase": "warmup"})
        run.finish(Status.KILLED, "SIGTERM")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run2 = trackkit.init(project="rel", id="replay-1", backend=backends, root=f"{tmp}/j", capture=False,
                             config={"lr": 0.05}, tags={"requeued": "yes"}, resume="must")
    assert any("differ from the recorded ones: lr" in str(w.message) for w in caught)
    with run2:
        assert run2.step == 5
        for i in range(4, 8):  # the checkpoint was taken after step 3
            run2.log({"loss": 100.0 + i}, step=i)
    assert not run2.pending()
    want = sorted([(i, float(i)) for i in range(6)] + [(i, 100.0 + i) for i in range(4, 8)])
    for backend in backends:
        rec = read_run(backend, "replay-1")
        got = sorted((s, round(v, 3)) for s, v in rec.metrics()["loss"])
        assert got == want, (backend, got)
        assert rec.info.status is Status.COMPLETED and rec.info.resumed == 1, (backend, rec.info)
        user_tags = {k: v for k, v in rec.info.tags.items() if k != "trackkit.status"}  # W&B: status as a tag too
        assert user_tags == {"phase": "warmup", "requeued": "yes"}, (backend, rec.info.tags)
        assert rec.info.tags.get("trackkit.status", "completed") == "completed", backend
        assert float(rec.info.config["lr"]) == 0.05 and float(rec.info.config["opt"]["m"]) == 0.9, (
            backend, rec.info.config)
