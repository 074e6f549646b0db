from __future__ import annotations

import json
import os

import pytest

from trackkit.events import (
    Artifact,
    Metrics,
    RunFinished,
    RunStarted,
    Status,
    StatusChange,
    event_from_record,
    event_to_record,
)
from trackkit.journal import JournalReader, JournalWriter, read_journal


def test_round_trip_every_event_kind() -> None:
    events = [
        RunStarted("r1", "p", "n", 1.0, group="g", tags={"a": ""}, config={"x": {"y": 1}}, meta={"m": 1}),
        Metrics(3, 2.0, {"loss": 0.5, "n": 3}),
        Artifact("/p", "model", "model", "ab" * 32, 10, version=1, aliases=("best",), metadata={"k": 1}),
        StatusChange(Status.DIVERGED, "nan", 3, 4.0, {"a": 1}),
        RunFinished(Status.COMPLETED, 5.0, "", 0),
    ]
    for ev in events:
        rec = json.loads(json.dumps(event_to_record(ev)))
        assert event_from_record(rec) == ev


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError):
        event_from_record({"k": "nope"})


def test_writer_reader_and_torn_tail(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "journal.jsonl")
    w = JournalWriter(path, "r1", 1.0)
    for i in range(10):
        w.write({"k": "m", "s": i, "t": 1.0, "v": {"x": float(i)}})
    w.close()
    with open(path, "ab") as fh:  # a record torn by SIGKILL mid-write
        fh.write(b'{"k":"m","s":10,"t":1.0,"v":{"x"')
    r = JournalReader(path)
    recs = r.read()
    assert [rec["s"] for rec, _ in recs] == list(range(10))
    assert r.header is not None and r.header["trackkit_journal"] == 1
    # a resumed writer starts on a fresh line; the torn piece is skipped, not merged
    w2 = JournalWriter(path, "r1", 1.0)
    w2.write({"k": "m", "s": 11, "t": 1.0, "v": {"x": 11.0}})
    w2.close()
    more = r.read()
    assert [rec["s"] for rec, _ in more] == [11]
    assert r.skipped == 1
    assert [rec["s"] for rec in read_journal(path)] == [*range(10), 11]


def test_nonfinite_values_survive(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "j.jsonl")
    w = JournalWriter(path, "r", 0.0)
    w.write({"k": "m", "s": 0, "t": 0.0, "v": {"a": float("nan"), "b": float("inf"), "c": float("-inf")}})
    w.close()
    ev = event_from_record(next(read_journal(path)))
    assert isinstance(ev, Metrics)
    assert ev.values["a"] != ev.values["a"] and ev.values["b"] == float("inf") and ev.values["c"] == float("-inf")


def test_newer_format_is_refused(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "j.jsonl")
    with open(path, "w") as fh:
        fh.write('{"trackkit_journal": 99, "run_id": "r", "created": 0}\n')
    with pytest.raises(ValueError, match="upgrade trackkit"):
        JournalReader(path).read()


def test_a_torn_record_missing_only_its_newline_never_reappears(tmp_path: object) -> None:
    """Its writer reported it NOT saved (short write): a later writer must not make it parse."""
    path = os.path.join(str(tmp_path), "journal.jsonl")
    w = JournalWriter(path, "r1", 1.0)
    w.write({"k": "m", "s": 0, "t": 1.0, "v": {"x": 0.0}})
    w.close()
    with open(path, "ab") as fh:  # the whole record but its newline (a write cut at the very end)
        fh.write(b'{"k":"m","s":1,"t":1.0,"v":{"x":1.0}}')
    w2 = JournalWriter(path, "r1", 1.0)
    w2.write({"k": "m", "s": 2, "t": 1.0, "v": {"x": 2.0}})
    w2.close()
    assert [rec["s"] for rec in read_journal(path)] == [0, 2]
