"""Run resumption on the in-memory backend: init(id=..., resume=...), the journal's resume
record, segments in load_run and the agent, every error path (docs/resume.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from typing import Any

import pytest
from click.testing import CliRunner

import trackkit
from trackkit import ConfigError, Status, TrackkitWarning
from trackkit.events import RunFinished, RunResumed, event_from_record
from trackkit.journal import JOURNAL_NAME, load_run, read_journal
from trackkit.testing import capture

# resuming a completed run warns (as W&B allows it); many cases here do that on purpose
pytestmark = pytest.mark.filterwarnings("ignore:trackkit. run .* had completed:UserWarning")


def _records(run: trackkit.Run) -> list[dict[str, Any]]:
    return list(read_journal(os.path.join(run.dir, JOURNAL_NAME)))


def _warnings_of(fn: Any) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if issubclass(w.category, TrackkitWarning)]


def test_allow_continues_the_same_run() -> None:
    with capture() as cap:
        first = trackkit.init(config={"lr": 0.1, "opt": {"m": 0.9, "b": 1}}, project="p", id="job-1", resume="allow")
        assert first.id == "job-1" and first.resumed == 0 and os.path.basename(first.dir) == "job-1"
        for i in range(5):
            first.log({"loss": 1.0 / (i + 1)})
        first.finish(Status.KILLED, "SIGTERM")

        second, warned = _warnings_of(
            lambda: trackkit.init(config={"lr": 0.2, "opt": {"m": 0.9}, "new": 1}, project="p", id="job-1",
                                  resume="allow")
        )
        assert second.dir == first.dir and second.name == first.name and second.resumed == 1
        assert second.step == 4 and second.status is Status.RUNNING
        # one warning about the changed value, naming the key; the new key is not "changed"
        changed = [w for w in warned if "differ from the recorded" in w]
        assert len(changed) == 1 and ": lr." in changed[0], warned
        assert second.config == {"lr": 0.2, "opt": {"m": 0.9, "b": 1}, "new": 1}  # merged, nothing lost
        start = (second.step or -1) + 1
        for i in range(start, start + 5):
            second.log({"loss": 1.0 / (i + 1)})
        second.finish()
        info = cap.run.info
        assert len(cap.runs) == 1  # the same run, not a second one
        assert info.status is Status.COMPLETED and info.resumed == 1 and info.last_step == 9
        assert info.config == {"lr": 0.2, "opt": {"m": 0.9, "b": 1}, "new": 1}
        assert [s for s, _ in cap.metrics("loss")] == list(range(10))
        kinds = [r["k"] for r in _records(second)]
        assert kinds.count("start") == 1 and kinds.count("resume") == 1 and kinds.count("finish") == 2
        resume = next(r for r in _records(second) if r["k"] == "resume")
        assert resume["segment"] == 1 and resume["previous_status"] == "killed" and resume["step"] == 4
        assert "backends" in resume["meta"]


def test_allow_creates_a_run_that_does_not_exist() -> None:
    with capture() as cap:
        with trackkit.init(project="p", id="fresh_1.a", resume="allow") as run:
            run.log({"x": 1.0})
            assert run.resumed == 0 and run.step == 0
    assert cap.run.info.run_id == "fresh_1.a" and cap.run.info.resumed == 0


def test_never_refuses_an_existing_id() -> None:
    with capture():
        trackkit.init(project="p", id="taken").finish()
        with pytest.raises(ConfigError) as err:
            trackkit.init(project="p", id="taken")  # resume defaults to "never"
    msg = str(err.value)
    assert "id: a run with id 'taken' already exists" in msg
    assert "resume='allow'" in msg and "resume='must'" in msg and "another id" in msg


def test_never_with_a_new_id_creates_it() -> None:
    with capture() as cap:
        trackkit.init(project="p", id="brand-new", resume="never").finish()
    assert cap.run.info.run_id == "brand-new"


def test_must_refuses_a_missing_id_and_creates_nothing() -> None:
    with capture() as cap:
        with pytest.raises(ConfigError) as err:
            trackkit.init(project="p", id="nope", resume="must")
        root = cap.root
        assert not os.path.exists(os.path.join(root, "p", "nope"))
    assert "resume='must' but there is no run with id 'nope'" in str(err.value)
    assert "resume='allow'" in str(err.value)
    assert cap.runs == []


def test_must_without_an_id() -> None:
    with capture(), pytest.raises(ConfigError, match="resume='must' needs the id"):
        trackkit.init(project="p", resume="must")


def test_must_continues_an_existing_run() -> None:
    with capture() as cap:
        with trackkit.init(project="p", id="m1") as run:
            run.log({"x": 1.0}, step=3)
        with trackkit.init(project="p", id="m1", resume="must") as run2:
            assert run2.step == 3
            run2.log({"x": 2.0})
    assert cap.metrics("x") == [(3, 1.0), (4, 2.0)]


def test_resuming_a_run_whose_trainer_is_alive_is_refused() -> None:
    with capture():
        live = trackkit.init(project="p", id="alive")
        try:
            with pytest.raises(ConfigError) as err:
                trackkit.init(project="p", id="alive", resume="allow", reinit="create_new")
            assert "is still running" in str(err.value) and "lock" in str(err.value)
            assert "resume only after that process has ended" in str(err.value)
            assert not live.finished  # the live run is untouched
            live.log({"x": 1.0})
        finally:
            live.finish()


def test_resuming_a_completed_run_warns() -> None:
    with capture() as cap:
        trackkit.init(project="p", id="done").finish()
        run, warned = _warnings_of(lambda: trackkit.init(project="p", id="done", resume="allow"))
        assert any("had completed; it is resumed" in w for w in warned), warned
        run.finish(Status.CRASHED, "boom")
    assert cap.run.info.status is Status.CRASHED  # the last segment decides


@pytest.mark.parametrize("bad", ["", "a/b", "../x", ".hidden", "-x", "a b", "x" * 65, "é", "a:b", "a\nb"])
def test_invalid_ids_are_refused(bad: str) -> None:
    with capture(), pytest.raises(ConfigError) as err:
        trackkit.init(project="p", id=bad, resume="allow")
    msg = str(err.value)
    assert msg.startswith("id: ") and "not a valid run id" in msg
    assert "letters, digits, '_', '-' and '.'" in msg and "at most 64" in msg and "Fix:" in msg


def test_invalid_resume_mode() -> None:
    with capture(), pytest.raises(ConfigError) as err:
        trackkit.init(project="p", id="x", resume="yes")
    assert err.value.args[0].startswith("resume: 'yes' is not a resume mode")
    assert "'never'" in str(err.value) and "'allow'" in str(err.value) and "'must'" in str(err.value)


def test_environment_gives_id_and_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKKIT_RUN_ID", "123456_7")
    monkeypatch.setenv("TRACKKIT_RESUME", "allow")
    with capture() as cap:
        with trackkit.init(project="p") as run:
            assert run.id == "123456_7"
            run.log({"x": 1.0})
        with trackkit.init(project="p") as run2:  # the requeued job: same environment
            assert run2.id == "123456_7" and run2.resumed == 1 and run2.step == 0
            run2.log({"x": 2.0})
    assert len(cap.runs) == 1 and cap.metrics("x") == [(0, 1.0), (1, 2.0)]


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKKIT_RUN_ID", "from-env")
    monkeypatch.setenv("TRACKKIT_RESUME", "must")  # would refuse a new id
    with capture() as cap:
        with trackkit.init(project="p", id="from-kwarg", resume="allow") as run:
            assert run.id == "from-kwarg"
    assert [r.info.run_id for r in cap.runs] == ["from-kwarg"]
    monkeypatch.setenv("TRACKKIT_RESUME", "never")
    with capture():
        trackkit.init(project="p", id="twice").finish()
        trackkit.init(project="p", id="twice", resume="must").finish()  # the kwarg beats "never"


def test_environment_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKKIT_RUN_ID", "bad/id")
    with capture(), pytest.raises(ConfigError, match="^environment variable TRACKKIT_RUN_ID: 'bad/id'"):
        trackkit.init(project="p")
    monkeypatch.delenv("TRACKKIT_RUN_ID")
    monkeypatch.setenv("TRACKKIT_RESUME", "sometimes")
    with capture(), pytest.raises(ConfigError, match="^environment variable TRACKKIT_RESUME: 'sometimes'"):
        trackkit.init(project="p")


def test_artifact_versions_continue_across_segments(tmp_path: Any) -> None:
    ckpt = tmp_path / "model.pt"
    with capture() as cap:
        ckpt.write_bytes(b"one")
        with trackkit.init(project="p", id="art") as run:
            run.log_artifact(ckpt, "model", kind="checkpoint")
        ckpt.write_bytes(b"two")
        with trackkit.init(project="p", id="art", resume="allow") as run2:
            path = run2.log_artifact(ckpt, "model", kind="checkpoint")
        assert path is not None and "/v1/" in path
        versions = [e.version for e in cap.run.events if getattr(e, "name", None) == "model"]
    assert versions == [0, 1]


def test_replayed_steps_are_kept() -> None:
    """A checkpoint older than the last logged step: steps are logged again, and both are kept."""
    with capture() as cap:
        with trackkit.init(project="p", id="replay") as run:
            for i in range(6):
                run.log({"loss": float(i)}, step=i)
        with trackkit.init(project="p", id="replay", resume="allow") as run2:
            assert run2.step == 5
            for i in range(4, 8):  # the checkpoint was taken at step 3
                run2.log({"loss": 10.0 + i}, step=i)
            assert run2.step == 7
    pts = cap.metrics("loss")
    assert [s for s, _ in pts] == [0, 1, 2, 3, 4, 4, 5, 5, 6, 7]
    assert (4, 4.0) in pts and (4, 14.0) in pts


DIE = textwrap.dedent(
    """
    import os, signal, sys, trackkit
    run = trackkit.init(project="p", id="killed-1", backend="memory:x", root=sys.argv[1], capture=False)
    for i in range(7):
        run.log({"loss": float(i)})
    os.kill(os.getpid(), signal.SIGKILL)  # its thread agent dies with it: nobody marks the run
    """
)


def test_a_segment_whose_trainer_and_agent_died_is_closed_at_resume(tmp_path: Any) -> None:
    root = str(tmp_path / "root")
    proc = subprocess.run([sys.executable, "-c", DIE, root], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    d = os.path.join(root, "p", "killed-1")
    assert load_run(d).info.status is Status.RUNNING  # no finish record
    with capture(root=root) as cap:
        run = trackkit.init(project="p", id="killed-1", resume="must")
        assert run.step == 6
        run.log({"loss": 7.0})
        run.finish()
    recs = list(read_journal(os.path.join(d, JOURNAL_NAME)))
    kinds = [r["k"] for r in recs]
    i = kinds.index("resume")
    assert kinds[i - 2: i] == ["status", "finish"] and recs[i - 1]["status"] == "killed"
    assert "seen at resume" in recs[i - 1]["reason"] and recs[i]["previous_status"] == "killed"
    info = load_run(d).info
    assert info.status is Status.COMPLETED and info.resumed == 1 and info.last_step == 7
    assert [s for s, _ in cap.metrics("loss")] == list(range(8))


def test_load_run_understands_segments() -> None:
    with capture():
        with trackkit.init(project="p", id="seg") as run:
            run.log({"x": 1.0})
        for n in (1, 2):
            r = trackkit.init(project="p", id="seg", resume="allow")
            assert r.resumed == n
            r.log({"x": float(n)})
            mid = load_run(r.dir).info
            assert mid.status is Status.RUNNING and mid.end_time is None and mid.resumed == n
            if n == 1:
                r.finish(Status.KILLED, "SIGTERM")
        r.finish(Status.CRASHED, "OOM")
        rec = load_run(r.dir)
    assert rec.info.status is Status.CRASHED and rec.info.reason == "OOM" and rec.info.resumed == 2
    assert rec.info.end_time is not None
    assert [e.segment for e in rec.events if isinstance(e, RunResumed)] == [1, 2]
    assert [e.status for e in rec.events if isinstance(e, RunFinished)] == [
        Status.COMPLETED, Status.KILLED, Status.CRASHED]


def test_resume_record_round_trips_and_old_kinds_are_unchanged() -> None:
    rec = {"k": "resume", "time": 1.5, "segment": 2, "previous_status": "killed", "step": 41, "meta": {"a": 1}}
    ev = event_from_record(rec)
    assert ev == RunResumed(time=1.5, segment=2, previous_status=Status.KILLED, step=41, meta={"a": 1})
    from trackkit.events import event_to_record

    assert event_to_record(ev) == rec


def test_sync_delivers_both_segments_even_when_a_read_slice_ends_at_the_finish(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Delivery (agent and ``trackkit sync``) must not stop at the first segment's finish record."""
    from trackkit import agent
    from trackkit.backends.memory import store
    from trackkit.registry import parse_backend

    root = str(tmp_path / "root")
    for n in range(2):
        with trackkit.init(project="p", id="slices", resume="allow", root=root, backend="memory:src",
                           capture=False) as run:
            for i in range(20):
                run.log({"x": float(i)})
            if n == 0:
                run.finish(Status.KILLED, "SIGTERM")
    monkeypatch.setattr(agent, "READ_SLICE", 64)  # a slice ends after every record or two
    delivery = agent.Delivery(run.dir, [parse_backend("memory:copy")], drain_timeout=30)
    assert delivery.run(lambda: False)
    copied = store("copy")["slices"]
    assert copied.info.status is Status.COMPLETED and copied.info.resumed == 1
    assert [s for s, _ in copied.metrics()["x"]] == list(range(40))


def test_runs_and_show_list_a_resumed_run_once(tmp_path: Any) -> None:
    from trackkit.cli import main

    root = str(tmp_path / "root")
    for n in range(3):
        with trackkit.init(project="p", id="cli-run", resume="allow", root=root, backend="memory:cli",
                           capture=False) as run:
            run.log({"x": float(n)})
    res = CliRunner().invoke(main, ["runs", "--root", root])
    assert res.exit_code == 0, res.output
    assert res.output.count("cli-run") == 1 and "completed (resumed 2×)" in res.output
    res = CliRunner().invoke(main, ["runs", "--root", root, "--json"])
    (row,) = json.loads(res.output)
    assert row["run_id"] == "cli-run" and row["resumed"] == 2 and row["status"] == "completed"
    res = CliRunner().invoke(main, ["show", "cli-run", "--root", root])
    assert res.exit_code == 0, res.output
    assert "resumed 2×" in res.output and "segment 3" in res.output and "after step 1" in res.output


# ---------------------------------------------------------------- races and leftovers (review findings)


def _die(run: trackkit.Run) -> None:
    """The trainer 'dies' without a finish record: its lock drops, its console capture goes with it
    (a dead process holds no fds; left engaged, it kept later runs of this test process from capturing)."""
    run._agent.end_console(0.5)
    run._release_lock()
    run._finished = True  # keep atexit away
    run._hooks.uninstall()


def test_a_deliverer_never_marks_a_live_resumed_segment_ended(tmp_path: Any) -> None:
    """The agent of a dead trainer decides to mark the run ended; a requeued trainer resumes in
    that instant. The marking needs the trainer lock, which the new trainer holds: no killed /
    finish pair lands in the live segment, and delivery goes on to the real end."""
    import threading

    from trackkit.agent import Delivery

    root, tb = str(tmp_path / "j"), f"tensorboard:{tmp_path}/tb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = trackkit.init(project="p", root=root, id="job1", backend=tb, agent="thread")
        for s in range(5):
            first.log({"loss": 1.0 / (s + 1)}, step=s)
        run_dir = first.dir
        _die(first)
        new: dict[str, trackkit.Run] = {}
        calls = [0]

        def writer_alive() -> bool:
            calls[0] += 1
            if calls[0] == 1:  # "dead" — and before the marking, the requeued trainer resumes
                new["run"] = trackkit.init(project="p", root=root, id="job1", resume="allow", backend=tb,
                                           agent="thread")
                new["run"].log({"loss": 0.1}, step=5)
                return False
            return True

        d = Delivery(run_dir, [], poll_interval=0.01, drain_timeout=1, linger=1)
        t = threading.Thread(target=d.run, args=(writer_alive,), daemon=True)
        t.start()
        deadline = time.monotonic() + 10
        while "run" not in new and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the deliverer polls a live run meanwhile
        assert load_run(run_dir).info.status is Status.RUNNING
        new["run"].log({"loss": 0.05}, step=6)
        new["run"].finish()
        t.join(30)
        assert not t.is_alive()
    kinds = [(r.get("k"), r.get("status")) for r in read_journal(os.path.join(run_dir, JOURNAL_NAME))]
    after_resume = kinds[[k for k, _ in kinds].index("resume"):]
    # the first segment was closed as killed at resume; the live segment got no killed/finish of its own
    assert ("status", "killed") not in after_resume and after_resume[-1] == ("finish", "completed"), kinds
    assert load_run(run_dir).info.status is Status.COMPLETED


def test_an_earlier_segments_finish_note_does_not_decide_a_later_one(tmp_path: Any) -> None:
    from trackkit.agent import Delivery
    from trackkit.rundir import FINISH_NOTE

    root, tb = str(tmp_path / "j"), f"tensorboard:{tmp_path}/tb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = trackkit.init(project="p", root=root, id="job3", backend=tb, agent="thread")
        first.log({"loss": 1.0}, step=0)
        first.finish()
        # segment 1's finish record did not fit (disk full): it left finish.json, the agent marked from it
        with open(os.path.join(first.dir, FINISH_NOTE), "w") as fh:
            json.dump({"status": "completed", "reason": "", "exit_code": None, "step": 0, "journal_lost": 1}, fh)
        second = trackkit.init(project="p", root=root, id="job3", resume="allow", backend=tb, agent="thread")
        second.log({"loss": 0.5}, step=1)
        assert not os.path.exists(os.path.join(first.dir, FINISH_NOTE))
        _die(second)  # segment 2 is SIGKILLed
        Delivery(first.dir, [], drain_timeout=1).run(lambda: False)
    info = load_run(first.dir).info
    assert info.status is Status.KILLED, (info.status, info.reason)


def test_a_refused_resume_lets_go_of_the_trainer_lock(tmp_path: Any) -> None:
    """A journal from a newer trackkit: a ConfigError naming ``id``, and the lock is not kept, so
    the same process can retry once the journal is dealt with."""
    root, tb = str(tmp_path / "j"), f"tensorboard:{tmp_path}/tb"
    d = os.path.join(root, "p", "job4")
    os.makedirs(d)
    with open(os.path.join(d, JOURNAL_NAME), "w") as fh:
        fh.write(json.dumps({"trackkit_journal": 99, "run_id": "job4", "created": 0}) + "\n")
    with pytest.raises(ConfigError, match="^id: "):
        trackkit.init(project="p", root=root, id="job4", resume="allow", backend=tb, agent="thread")
    os.unlink(os.path.join(d, JOURNAL_NAME))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = trackkit.init(project="p", root=root, id="job4", resume="allow", backend=tb, agent="thread")
        run.finish()
    assert load_run(d).info.status is Status.COMPLETED
