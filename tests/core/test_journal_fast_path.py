"""The reader's fast path for metric records (``JournalReader.read_events``) must decode exactly
what ``read`` + ``event_from_record`` decode: the same events (NaN, ±inf, -0.0 included), the same
end offsets, the same skipped count, for canonical lines and for every near miss."""

from __future__ import annotations

import json
import math
import os
import random
from typing import Any

from trackkit.events import Metrics, event_from_record
from trackkit.journal import JournalReader, JournalWriter


def _slow(path: str, max_bytes: int | None = None) -> tuple[list[tuple[str, int]], JournalReader]:
    reader = JournalReader(path)
    out: list[tuple[str, int]] = []
    while True:
        got = reader.read(max_bytes)
        if not got:
            return out, reader
        for rec, end in got:
            try:
                out.append((repr(event_from_record(rec)), end))
            except Exception as exc:  # what the agent skips
                out.append((f"error {type(exc).__name__}", end))


def _fast(path: str, max_bytes: int | None = None) -> tuple[list[tuple[str, int]], JournalReader, int]:
    reader = JournalReader(path)
    out: list[tuple[str, int]] = []
    decoded = 0
    while True:
        got = reader.read_events(max_bytes)
        if not got:
            return out, reader, decoded
        for item, end in got:
            if isinstance(item, Metrics):
                decoded += 1
                out.append((repr(item), end))
                continue
            try:
                out.append((repr(event_from_record(item)), end))
            except Exception as exc:
                out.append((f"error {type(exc).__name__}", end))


def _same(path: str, max_bytes: int | None = None) -> int:
    slow, rs = _slow(path, max_bytes)
    fast, rf, decoded = _fast(path, max_bytes)
    assert fast == slow
    assert (rf.offset, rf.skipped, rf.header) == (rs.offset, rs.skipped, rs.header)
    return decoded


def _journal(tmp_path: Any, lines: list[bytes]) -> str:
    path = os.path.join(str(tmp_path), "journal.jsonl")
    JournalWriter(path, "r1", 1.0).close()
    with open(path, "ab") as fh:
        fh.write(b"".join(lines))
    return path


CANONICAL = [
    b'{"k":"m","s":1,"t":1700000000.123456,"v":{"loss":0.5}}',
    b'{"k":"m","s":2,"t":1700000000.5,"v":{"loss":0.25,"acc":1,"lr":1e-05,"x":-3}}',
    b'{"k":"m","s":3,"t":1.0,"v":{"a":NaN,"b":Infinity,"c":-Infinity,"d":-0.0,"e":0}}',
    b'{"k":"m","s":-4,"t":2,"v":{"train/loss top-1:x,{y}":1.5E+300,"":2.5e-320}}',
    b'{"k":"m","s":5,"t":3.0,"v":{"dup":1.0,"other":2.0,"dup":3.0}}',
    b'{"k":"m","s":0,"t":4.0,"v":{"big":12345678901234567890123456789,"neg":-12345678901234567890}}',
    b'{"k":"m","s":6,"t":5.0,"v":{"over":1e400,"under":-1e400,"tiny":1e-400}}',
]

NEAR_MISSES = [
    b'{"k":"m","s":7,"t":6.0,"v":{"neg zero int":-0}}',  # JSON reads 0, float() would read -0.0
    b'{"k":"m","s":8,"t":-0,"v":{"a":1.0}}',
    b'{"k":"m","s":9,"t":6.0,"v":{"huge":' + b"9" * 400 + b"}}",  # float(int) overflows: skipped
    b'{"k":"m","s":' + b"9" * 5000 + b',"t":6.0,"v":{"a":1.0}}',  # beyond int's digit limit
    b'{"k":"m","s":10,"t":6.0,"v":{"esc\\"aped":1.0}}',
    b'{"k":"m","s":11,"t":6.0,"v":{"\\u00e9t\\u00e9":1.0}}',
    '{"k":"m","s":12,"t":6.0,"v":{"été":1.0}}'.encode(),  # raw UTF-8 (not what the writer writes)
    b'{"k":"m","s":13,"t":6.0,"v":{"a":01}}',
    b'{"k":"m","s":14,"t":6.0,"v":{"a":+1}}',
    b'{"k":"m","s":15,"t":6.0,"v":{"a":.5}}',
    b'{"k":"m","s":16,"t":6.0,"v":{"a":1.}}',
    b'{"k":"m","s":17,"t":6.0,"v":{"a":1e}}',
    b'{"k":"m","s":18,"t":6.0,"v":{"a":nan}}',
    b'{"k":"m","s":19,"t":6.0,"v":{"a":inf}}',
    b'{"k":"m","s":20,"t":6.0,"v":{"a":1_0}}',
    b'{"k":"m","s":21,"t":6.0,"v":{}}',
    b'{"k":"m","s":22.5,"t":6.0,"v":{"a":1.0}}',
    b'{"k":"m","s":"23","t":6.0,"v":{"a":1.0}}',
    b'{"k":"m","s":24,"t":"6","v":{"a":1.0}}',
    b'{"k":"m","s":25,"t":6.0,"v":{"a":"1.0"}}',
    b'{"k":"m","s":26,"t":6.0,"v":{"a":1.0},"x":1}',
    b'{"k":"m","t":6.0,"s":27,"v":{"a":1.0}}',
    b'{"k":"m","s":28,"t":6.0,"v":{"a":1.0}} ',
    b' {"k":"m","s":29,"t":6.0,"v":{"a":1.0}}',
    b'{"k":"m", "s":30,"t":6.0,"v":{"a":1.0}}',
    b'{"k":"m","s":31,"t":6.0,"v":{"a":1.0}}\r',  # CRLF
    b'{"k":"m","s":32,"t":6.0,"v":{"a":1.0}}\r{"k":"m","s":33,"t":6.0,"v":{"a":2.0}}',  # a bare CR splits
    b'{"k":"m","s":34,"t":6.0,"v":{"a":1.0}',  # cut short
    b'{"k":"m","s":35,"t":6.0,"v":{"a":1.0}}}',
    b'{"k":"m","s":36,"t":6.0,"v":{"a":1.0}}{"k":"m","s":37,"t":6.0,"v":{"a":1.0}}',
    b'{"k":"m","s":38,"t":6.0\x00',  # a torn record sealed by the writer
    b"\x00",
    b"",
    b"   ",
    b"[1, 2]",
    b"null",
    b'{"k":"m","s":39,"t":6.0,"v":{"a\tb":1.0}}',  # a raw control character: JSON rejects it
    b'{"k":"m","s":40,"t":6.0,"v":{"a\x7fb":1.0}}',
    b'{"k":"mm","s":41,"t":6.0,"v":{"a":1.0}}',
    b'{"k":"m","s":42,"t":6.0,"v":{"a":1.0,}}',
    b'{"k":"m","s":43,"t":6.0,"v":{"a":1.0,"b"}}',
    b'{"k":"tags","tags":{"a":"b"},"time":1.0}',
    b'{"k":"finish","status":"completed","time":2.0,"reason":"","exit_code":0}',
    b'{"k":"nope"}',
    b'{"trackkit_journal":1,"run_id":"again","created":3.0}',
]


def test_every_canonical_line_is_decoded_like_json(tmp_path: Any) -> None:
    path = _journal(tmp_path, [line + b"\n" for line in CANONICAL])
    assert _same(path) == len(CANONICAL)


def test_near_misses_take_the_general_path_with_the_same_result(tmp_path: Any) -> None:
    lines = [x for miss in NEAR_MISSES for x in (miss + b"\n", CANONICAL[0] + b"\n")]
    path = _journal(tmp_path, [*lines, b'{"k":"m","s":99,"t":1.0,"v":{"torn":1.0}}'])  # torn tail: unread
    assert _same(path) == len(NEAR_MISSES)
    for max_bytes in (1, 7, 64, 200, 4096):
        _same(path, max_bytes)


def test_random_metric_records(tmp_path: Any) -> None:
    rng = random.Random(7)
    specials = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 1e16, 1e-7]
    lines = []
    for step in range(2000):
        values: dict[str, Any] = {}
        for _ in range(rng.randint(1, 5)):
            key = "".join(rng.choice("abc/_. :-,{}[]@#") for _ in range(rng.randint(0, 8)))
            if rng.random() < 0.1:  # escaped in JSON: the general path
                key += rng.choice(["é", "λ", '"', "\\", "\t"])
            kind = rng.random()
            if kind < 0.2:
                values[key] = rng.choice(specials)
            elif kind < 0.4:
                values[key] = rng.randint(-(2**63), 2**63 - 1)
            else:
                values[key] = rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-300, 300)
        lines.append(json.dumps({"k": "m", "s": step, "t": 1.7e9 + step / 7, "v": values}, separators=(",", ":")))
    path = _journal(tmp_path, [line.encode() + b"\n" for line in lines])
    decoded = _same(path)
    assert 500 <= decoded < 2000  # the records without escaped keys go the fast way
    _same(path, 1000)


def test_a_real_run_journal_is_read_the_same(tmp_path: Any) -> None:
    import trackkit

    run = trackkit.init(project="p", backend="memory:", root=str(tmp_path), capture=False)
    for i in range(300):
        run.log({"loss": 1.0 / (i + 1), "acc": i, "weird key@1": math.nan if i % 7 == 0 else -0.0}, step=i)
    run.log({"inf": math.inf})
    run.finish()
    path = os.path.join(run.dir, "journal.jsonl")
    assert _same(path) == 301


def test_metric_lines_encode_is_format_encoded_for_every_kind_of_value() -> None:
    """``log()``'s bytes (``MetricLines.encode``, whose usual case is a short loop of its own) are
    exactly :meth:`MetricLines.format`'s line, newline included, with the same first non-finite value,
    the same coerced and skipped values, and the same keys announced, whatever the mix."""
    import numpy as np

    from trackkit.journal import MetricLines

    def coerce(key: Any, v: Any) -> Any:
        if isinstance(v, str):
            return None  # skipped
        return float(v)

    announced: list[list[str]] = [[], []]
    fast, ref = MetricLines(coerce, announced[0].append), MetricLines(coerce, announced[1].append)
    rng = random.Random(11)
    specials: list[Any] = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 2**63 - 1,
                           -(2**63), 2**63, True, np.float32(0.1), np.float64(2.5), np.int64(3), "text", {"in": 1.0}]
    keys = ["loss", "acc", "a/b", "é", "\ud800x", 7, "lr"]
    fast_path = 0
    for step in range(3000):
        values: dict[Any, Any] = {}
        for _ in range(rng.randint(0, 4)):
            k = rng.choice(keys)
            r = rng.random()
            values[k] = rng.choice(specials) if r < 0.15 else rng.randint(-5, 5) if r < 0.3 else rng.gauss(0, 1e3)
        now = 1.7e9 + step / 3
        line, bad = ref.format(values, step, now)
        got, got_bad = fast.encode(values, step, now)
        assert got == (None if line is None else (line + "\n").encode("utf-8", "surrogatepass"))
        assert repr(got_bad) == repr(bad)
        fast_path += all(type(v) in (float, int) and v - v == 0 for v in values.values()) and bool(values)
    assert announced[0] == announced[1]
    assert fast_path > 1000  # the short loop was exercised, not only the general path
