"""SIGKILL at a seeded random moment while logging at 5, 100 and 1000 Hz to TensorBoard, W&B and MLflow at once.

What a ``log()`` call acknowledged (the child printed ``ACK n`` after it returned) is in the
journal the instant the trainer dies, and in every backend once the agent -- which outlives
the trainer -- has drained; each backend reads the run back as ``killed``.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from trackkit.events import Status

from .helpers import (
    acked_steps,
    journal_steps,
    read_run,
    read_until_ack,
    start_child,
    three_backends,
    wait_agent_done,
)

#: (rate in Hz, seed): the kill comes 0.3-2.5 s after step 5 was acknowledged
MATRIX = [(5, 5), (100, 100), (1000, 1000)]


@pytest.mark.slow
@pytest.mark.parametrize(("hz", "seed"), MATRIX, ids=[f"{hz}Hz" for hz, _ in MATRIX])
def test_sigkill_loses_nothing_acknowledged_in_any_backend(tmp_path: object, hz: int, seed: int) -> None:
    tmp = str(tmp_path)
    backends = three_backends(tmp)
    proc = start_child(",".join(backends), f"{tmp}/j", "--hz", str(hz))
    run_id, run_dir = read_until_ack(proc, 5)
    time.sleep(random.Random(seed).uniform(0.3, 2.5))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    acked = set(range(6)) | set(acked_steps(out))

    # the journal holds every acknowledged step the moment the trainer is gone
    journaled = journal_steps(run_dir)
    assert acked <= set(journaled), sorted(acked - set(journaled))[:10]
    assert len(journaled) == len(set(journaled))  # and each once

    # the agent outlived the trainer: it marked the run killed and delivered everything
    log = wait_agent_done(run_dir, timeout=120)
    assert "marked the run killed" in log and "everything delivered" in log, log
    for backend in backends:
        rec = read_run(backend, run_id)
        assert rec.info.status is Status.KILLED, (backend, rec.info.status, rec.info.reason)
        stored = [s for s, _ in rec.metrics()["loss"]]
        assert acked <= set(stored), (backend, sorted(acked - set(stored))[:10])
        # nothing invented, nothing doubled: the backend holds exactly what the journal holds
        assert sorted(stored) == sorted(journaled), backend
