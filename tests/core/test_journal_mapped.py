"""The trainer's mapped journal (docs/journal.md, "How the trainer writes"): records stored into a shared
mapping survive SIGKILL, readers stop at the filler, a killed writer's filler is cut off by the next
writer, and the writer falls back to ``pwrite(2)`` where a window cannot be had."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from trackkit.journal import (
    JournalReader,
    JournalWriter,
    MappedJournalWriter,
    data_end,
    load_run,
    path_end,
    read_journal,
)


def _line(i: int, pad: int = 0) -> str:
    extra = "".join(f',"k{j}":1.0' for j in range(pad))
    return f'{{"k":"m","s":{i},"t":1.5,"v":{{"loss":{1.0 / (i + 1)!r}{extra}}}}}'


def test_records_cross_windows_and_read_back_whole(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "journal.jsonl")
    w = MappedJournalWriter(path, "r1", 1.0, window=4096)
    for i in range(500):
        w.write_line(_line(i, pad=i % 7))
    w.write_line(_line(500, pad=2000))  # one record longer than a window: a window of its own size
    assert w.mapped
    # while the writer lives the file ends in filler, which no reader takes for data
    assert os.path.getsize(path) > path_end(path)
    recs = [r for r in read_journal(path) if r.get("k") == "m"]
    assert [r["s"] for r in recs] == list(range(501))
    assert len(recs[-1]["v"]) == 2001
    # a tailing reader, in small slices, sees the same records and stops at the filler
    r = JournalReader(path)
    got = []
    while True:
        part = r.read(max_bytes=1000)
        if not part:
            break
        got += [rec["s"] for rec, _ in part if rec.get("k") == "m"]
    assert got == list(range(501)) and r.offset == path_end(path) and r.skipped == 0
    w.close()
    assert os.path.getsize(path) == path_end(path)  # closed: the filler is cut off
    with open(path, "rb") as fh:
        assert b"\0" not in fh.read()


def test_data_end_finds_the_filler_after_a_seal(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "j")
    body = b'{"a":1}\n{"torn\x00\n{"b":2}\n'  # a sealed torn record holds one NUL, never two
    with open(path, "wb") as fh:
        fh.write(body + b"\0" * 70_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert data_end(fd) == len(body)
    finally:
        os.close(fd)
    assert [r for r in read_journal(path)] == [{"a": 1}, {"b": 2}]


def test_data_end_from_a_hint_agrees_with_the_whole_search(tmp_path: object) -> None:
    """A tailing reader passes the end it found last (``hint``): as the journal grows by records over
    the filler, by more than one hint read at a time, or ends in a sealed torn record's NUL, the end
    found from the hint is the one a search of the whole file finds."""
    import random

    from trackkit.journal import HINT_READ

    rng = random.Random(7)
    path = os.path.join(str(tmp_path), "j")
    size = 4 * HINT_READ
    with open(path, "wb") as fh:
        fh.write(b"\0" * size)
    fd = os.open(path, os.O_RDWR)
    try:
        end = hint = 0
        seen = []
        while end < size - 3 * HINT_READ // 2:
            grow = rng.choice([0, 1, 40, 900, HINT_READ - 1, HINT_READ, HINT_READ + 5])
            line = (b"x" * max(grow - 1, 0) + b"\n") if grow else b""
            if grow and rng.random() < 0.2:
                line = line[:-2] + b"\0\n" if len(line) > 2 else line  # a sealed torn record: one NUL
            os.pwrite(fd, line, end)
            end += len(line)
            assert data_end(fd) == end
            got = data_end(fd, hint)
            assert got == end, (hint, end, got)
            seen.append(got)
            hint = got
        # a hint inside the data is a lower bound; one past it (in the filler) is not used: the same answer
        for bad in (end - 5, end + 1, end + 1000, size - 1, size, size + 10, 0, 1):
            assert data_end(fd, bad) == end
        os.ftruncate(fd, end)  # the filler cut off (a closed writer): the size is the end
        assert data_end(fd, hint) == end
        assert seen == sorted(seen)
    finally:
        os.close(fd)


CHILD = r"""
import os, sys
from trackkit.journal import MappedJournalWriter
w = MappedJournalWriter(sys.argv[1], "r1", 1.0, window=8192)
i = 0
while True:
    w.write_line('{"k":"m","s":%d,"t":1.0,"v":{"x":%d.5}}' % (i, i))
    if i % 50 == 0:
        print(i, flush=True)  # every record up to i was returned by write_line
    i += 1
"""


def test_every_returned_record_survives_sigkill_and_the_next_writer_cuts_the_filler(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "journal.jsonl")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = -1
    for line in proc.stdout:
        acked = int(line)
        if acked >= 5000:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps = [r["s"] for r in read_journal(path) if r.get("k") == "m"]
    assert steps[: acked + 1] == list(range(acked + 1))  # nothing returned is lost, and in order
    assert steps == list(range(len(steps)))
    # the agent closing the killed segment (or a resume) appends after the records, not after the filler
    w = JournalWriter(path, "r1", 2.0)
    w.write_line('{"k":"finish","status":"killed","time":3.0,"reason":"SIGKILL","exit_code":null}')
    w.close()
    recs = list(read_journal(path))
    assert recs[-1]["k"] == "finish" and [r["s"] for r in recs if r.get("k") == "m"] == steps
    assert os.path.getsize(path) == path_end(path)


def test_a_killed_mid_record_tail_is_sealed_never_parsed(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "journal.jsonl")
    w = MappedJournalWriter(path, "r1", 1.0, window=4096)
    w.write_line(_line(0))
    end = path_end(path)
    os.close(w._fd)  # the process "dies" here: no close, the filler stays
    w._fd = None
    with open(path, "r+b") as fh:  # ... in the middle of a store: half a record before the filler
        fh.seek(end)
        fh.write(b'{"k":"m","s":1,"t":1.5,"v":{"lo')
    assert [r["s"] for r in read_journal(path) if r.get("k") == "m"] == [0]
    w2 = JournalWriter(path, "r1", 2.0)
    w2.write_line(_line(2))
    w2.close()
    r = JournalReader(path)
    assert [rec["s"] for rec, _ in r.read() if rec.get("k") == "m"] == [0, 2]
    assert r.skipped == 1  # the sealed torn piece: skipped and counted, never read as a record


def test_threads_share_one_mapped_writer(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "journal.jsonl")
    w = MappedJournalWriter(path, "r1", 1.0, window=4096)

    def work(t: int) -> None:
        for i in range(2000):
            w.write_line(f'{{"k":"m","s":{i},"t":1.0,"v":{{"t{t}":1.0}}}}')

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    r = JournalReader(path)
    recs = [rec for rec, _ in r.read() if rec.get("k") == "m"]
    assert r.skipped == 0 and len(recs) == 8000
    for t in range(4):
        assert [rec["s"] for rec in recs if f"t{t}" in rec["v"]] == list(range(2000))


def test_a_window_that_cannot_be_allocated_falls_back_to_pwrite(tmp_path: object,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = os.path.join(str(tmp_path), "journal.jsonl")
    w = MappedJournalWriter(path, "r1", 1.0, window=4096)
    for i in range(10):
        w.write_line(_line(i))

    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    for i in range(10, 200):  # past the first window: the next one cannot be allocated
        w.write_line(_line(i))
    assert not w.mapped
    assert os.path.getsize(path) == path_end(path)  # the filler was cut off before the first pwrite
    w.close()
    assert [r["s"] for r in read_journal(path) if r.get("k") == "m"] == list(range(200))


def test_a_forked_child_never_stores_into_the_parents_journal(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "journal.jsonl")
    w = MappedJournalWriter(path, "r1", 1.0)
    w.write_line(_line(0))
    pid = os.fork()
    if pid == 0:  # the child: its copy of the position is stale; a store would overwrite the parent's records
        try:
            w.write_line(_line(99))
            code = 1
        except OSError as exc:
            code = 3 if "forked child" in str(exc) else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 3
    w.write_line(_line(1))
    w.close()
    assert [r["s"] for r in read_journal(path) if r.get("k") == "m"] == [0, 1]


def test_a_run_journal_is_mapped_by_default_and_plain_when_asked(tmp_path: object,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import trackkit

    for mapped in (True, False):
        if not mapped:  # the setting, from the environment (or trackkit.toml)
            monkeypatch.setenv("TRACKKIT_JOURNAL_MAPPED", "0")
        run = trackkit.init(project="p", backend="memory:", root=str(tmp_path),
                            console=False, system_metrics=False, capture=False, reinit="create_new")
        for i in range(100):
            run.log({"loss": float(i)}, step=i)
        size = os.path.getsize(os.path.join(run.dir, "journal.jsonl"))
        assert (size > path_end(os.path.join(run.dir, "journal.jsonl"))) is mapped  # the filler while live
        run.finish()
        rec = load_run(run.dir)
        assert [s for s, _ in rec.metrics()["loss"]] == list(range(100))


def test_unlocked_stores_racing_window_changes_and_close_keep_every_returned_record(tmp_path: object) -> None:
    """Stores into the open window take no lock. Records of mixed sizes from four threads, with a thread
    switch forced every microsecond, across many small windows, and a close() racing them: every store
    that returned is in the file once and whole (a small record fitting the old window while another
    thread opens the next must not land where that window begins), none is torn."""
    path = os.path.join(str(tmp_path), "journal.jsonl")
    w = MappedJournalWriter(path, "r1", 1.0, window=4096)
    assert w._unlocked  # this CPython has a GIL: the path under test is taken
    saved: dict[int, list[int]] = {t: [] for t in range(4)}
    start = threading.Barrier(5)

    def work(t: int) -> None:
        start.wait()
        for i in range(3000):
            extra = "".join(f',"k{j}":1.0' for j in range((i * 7 + t) % 90))  # 50 bytes to ~1 KB a record
            try:
                w.write_line(f'{{"k":"m","s":{i},"t":1.5,"v":{{"t{t}":1.0{extra}}}}}')
            except OSError:  # the journal was closed under it: not saved, and not claimed
                return
            saved[t].append(i)

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        start.wait()
        while sum(len(v) for v in saved.values()) < 6000:
            pass
        w.close()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(before)
    r = JournalReader(path)
    recs = [rec for rec, _ in r.read() if rec.get("k") == "m"]
    assert r.skipped == 0 and os.path.getsize(path) == path_end(path)
    for t in range(4):
        assert [rec["s"] for rec in recs if f"t{t}" in rec["v"]] == saved[t]
    assert len(recs) == sum(len(v) for v in saved.values()) >= 6000
