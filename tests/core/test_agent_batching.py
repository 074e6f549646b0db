"""The live agent reads the journal in batches: once per flush interval while the trainer logs, at once
while a backlog is larger than one read slice. Real journals and a real ``Delivery`` loop; memory sink."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import trackkit
from trackkit import agent
from trackkit.journal import JournalReader, JournalWriter
from trackkit.registry import parse_backend


def test_a_read_says_whether_it_stopped_at_its_slice(tmp_path: Any) -> None:
    path = os.path.join(str(tmp_path), "journal.jsonl")
    w = JournalWriter(path, "r1", 1.0)
    for i in range(100):
        w.write({"k": "m", "s": i, "t": 1.0, "v": {"x": float(i)}})
    w.close()
    r = JournalReader(path)
    first = r.read_events(max_bytes=1000)
    assert r.capped and 0 < len(first) < 100
    rest = r.read_events()
    assert not r.capped and len(first) + len(rest) == 100  # the header is not an event
    assert r.read_events(max_bytes=1000) == [] and not r.capped
    r2 = JournalReader(path)
    r2.read_events(max_bytes=1 << 20)  # all of it fits: not a backlog
    assert not r2.capped


def _live_run(tmp_path: Any, name: str) -> trackkit.Run:
    # the run's own agent delivers to one memory store; the Delivery under test to another
    return trackkit.init(project="p", root=str(tmp_path / "j"), backend=f"memory:{name}-own", capture=False,
                         console=False, system_metrics=False)


def _tail(run_dir: str, name: str, flush: float) -> tuple[agent.Delivery, list[int], threading.Event,
                                                           threading.Thread]:
    d = agent.Delivery(run_dir, [parse_backend(f"memory:{name}")], poll_interval=0.01, flush_interval=flush,
                       drain_timeout=5, linger=0.1)
    reads: list[int] = []
    read_new = d.read_new

    def counted() -> int:
        n = read_new()
        if n:
            reads.append(n)
        return n

    d.read_new = counted  # type: ignore[method-assign]
    stop = threading.Event()
    t = threading.Thread(target=d.run, args=(lambda: True, stop), daemon=True)
    t.start()
    return d, reads, stop, t


def test_a_live_run_is_read_once_per_flush_interval_not_chased(tmp_path: Any) -> None:
    """What the trainer adds during a read waits for the next interval: reading it at once (as the
    agent once did) doubled the reads, each with its send, its wake-up and its cold caches."""
    run = _live_run(tmp_path, "chase")
    _, reads, stop, t = _tail(run.dir, "chase-copy", flush=0.3)
    t0 = time.monotonic()
    step = 0
    while time.monotonic() - t0 < 2.4:  # bursts, as a fast loop logs: always more while the agent reads
        for _ in range(5):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
            step += 1
        time.sleep(0.0005)
    live_reads = len(reads)
    stop.set()
    t.join(30)
    run.finish()
    assert not t.is_alive()
    # 2.4 s at one read per 0.3 s: about 8 reads of ~2,000 records (~150 KB, under the 512 KiB slice:
    # none is a backlog). Chasing the trainer's appends read about twice as often: 2345, 10, 2315, 15, ...
    assert 4 <= live_reads <= 12, reads


def test_a_backlog_larger_than_a_slice_is_read_on_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from trackkit.backends.memory import store

    run = _live_run(tmp_path, "backlog")
    for i in range(3000):
        run.log({"loss": float(i)}, step=i)
    assert run.wait_delivery(timeout=60)
    # a read slice of 4 KiB: the start record (its environment: ~20 KB) alone, then ~90 records each
    monkeypatch.setattr(agent, "READ_SLICE", 4 * 4096)
    # the run is live and nobody hurries the agent: one slice per 30 s flush interval would take hours
    _, reads, stop, t = _tail(run.dir, "backlog-copy", flush=30.0)
    deadline = time.monotonic() + 20  # under the flush interval: no slice waited for it
    while sum(reads) < 3000:
        assert time.monotonic() < deadline, f"only {sum(reads)} records read in {len(reads)} slices"
        time.sleep(0.05)
    assert len(reads) > 20, reads  # it was read in slices
    stop.set()  # and sent: what the last slice left pending waits for a batch, or for this
    t.join(30)
    run.finish()
    assert [s for s, _ in store("backlog-copy")[run.id].metrics()["loss"]] == list(range(3000))


def test_checkpoints_and_artifacts_poke_the_agent_metrics_do_not(tmp_path: Any) -> None:
    """The live agent looks at the journal about once a second; a checkpoint or artifact record is not
    left to that look: the trainer pokes it, and the file is sent without waiting for a batch."""
    from trackkit.backends.memory import store

    run = trackkit.init(project="p", root=str(tmp_path / "j"), backend="memory:poked", capture=False,
                        console=False, system_metrics=False, flush_interval=30.0)
    pokes: list[bool] = []
    real = run._agent.poke

    def counted(last: bool = False) -> None:
        pokes.append(last)
        real(last)

    run._agent.poke = counted  # type: ignore[method-assign]
    for i in range(50):
        run.log({"loss": float(i)}, step=i)
    assert pokes == []
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    run.log_artifact(str(model), name="model")
    assert len(pokes) == 1
    run.checkpoints(keep_last=2, save_fn=lambda state, path: Path(path).write_bytes(state)).save(b"state", step=49)
    assert len(pokes) == 2
    deadline = time.monotonic() + 20  # under the 30 s flush interval: nobody waited for a batch
    while time.monotonic() < deadline:
        rec = store("poked").get(run.id)
        if rec is not None and any(type(ev).__name__ == "Checkpoint" for ev in rec.events):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the checkpoint was not delivered before the flush interval")
    kinds = [type(ev).__name__ for ev in store("poked")[run.id].events]
    assert "Artifact" in kinds and kinds.count("Metrics") == 50, kinds
    run.finish()
