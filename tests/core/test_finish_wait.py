"""``finish()`` returns once the journal is safe (issue 14, item 5): ``finish_wait="journal"`` (the
default) leaves delivery to the process agent, which outlives the trainer; ``"delivery"`` (setting
or ``finish(wait=...)``) waits for it; ``run.wait_delivery()`` waits later. Read back from TensorBoard's
own event files through trackkit's TensorBoard reader."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

import trackkit
from trackkit.errors import ConfigError
from trackkit.journal import load_run
from trackkit.registry import load_reader, parse_backend


def _run(tmp_path: Path, backend: str, **kw: Any) -> trackkit.Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trackkit.init({"lr": 0.1}, project="p", name="fw", root=str(tmp_path / "j"), backend=backend,
                             capture=False, **kw)


def _points(backend: str, run_id: str) -> list[tuple[int, float]]:
    return load_reader(parse_backend(backend)).read_run(run_id).metrics()["loss"]


def test_the_default_returns_before_delivery_and_wait_delivery_waits(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKKIT_FINISH_WAIT")
    tb = f"tensorboard:{tmp_path / 'tb'}"
    run = _run(tmp_path, tb)
    assert run.settings.finish_wait == "journal"
    for s in range(30):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    run.finish()
    # the journal is safe: its finish record is there, fsynced ...
    assert load_run(run.dir).info.status.value == "completed"
    # ... and the agent, which can only exit after delivering that record and closing TensorBoard, is still at work
    assert run._agent.proc is not None and run._agent.proc.poll() is None
    assert run.wait_delivery(timeout=120)
    assert run._agent.proc.poll() == 0
    assert _points(tb, run.id) == [(s, pytest.approx(1.0 / (s + 1))) for s in range(30)]
    assert run.pending() == []


def test_delivery_waits_in_finish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKKIT_FINISH_WAIT")
    tb = f"tensorboard:{tmp_path / 'tb'}"
    run = _run(tmp_path, tb)
    run.log({"loss": 0.5}, step=0)
    run.finish(wait="delivery", timeout=120)
    assert run._agent.proc is not None and run._agent.proc.poll() == 0  # delivered, closed, exited
    assert _points(tb, run.id) == [(0, 0.5)]
    run2 = _run(tmp_path, tb, finish_wait="delivery", drain_timeout=120)
    run2.log({"loss": 0.25}, step=1)
    run2.finish()
    assert run2._agent.proc is not None and run2._agent.proc.poll() == 0
    assert _points(tb, run2.id) == [(1, 0.25)]


def test_the_thread_agent_always_delivers_before_finish_returns(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKKIT_FINISH_WAIT")
    tb = f"tensorboard:{tmp_path / 'tb'}"
    run = _run(tmp_path, tb, agent="thread", drain_timeout=120)
    run.log({"loss": 0.5}, step=0)
    run.finish()  # "journal", but a thread ends with the process: nobody else would deliver
    assert run._agent.thread is not None and not run._agent.thread.is_alive()
    assert _points(tb, run.id) == [(0, 0.5)]


def test_a_wrong_value_names_the_setting_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="finish_wait.*'journal'"):
        _run(tmp_path, "memory:fw-bad", finish_wait="later")
    run = _run(tmp_path, "memory:fw-bad")
    with pytest.raises(ConfigError, match="wait: 'later'.*Fix"):
        run.finish(wait="later")
    run.finish()


def test_a_reader_in_the_process_that_wrote_the_run_waits_for_its_delivery(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """finish() returned before delivery; a Reader made in this process for that backend's kind still
    reads the whole run (registry.BEFORE_READ, trackkit.delivering), with no wait_delivery() call."""
    monkeypatch.delenv("TRACKKIT_FINISH_WAIT")
    tb = f"tensorboard:{tmp_path / 'tb'}"
    run = _run(tmp_path, tb, drain_timeout=120)
    for s in range(50):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    run.finish()
    assert run._agent.proc is not None and run._agent.proc.poll() is None  # still delivering
    assert _points(tb, run.id) == [(s, pytest.approx(1.0 / (s + 1))) for s in range(50)]
    assert run._agent.proc.poll() == 0
