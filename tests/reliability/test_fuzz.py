"""Bad-input fuzzing: whatever a training loop hands to trackkit, nothing raises into it
(unless strict), what was accepted reads back, and the MLflow key rule is deterministic,
valid and collision-free.

The main property runs >= 10,000 examples on one long-lived run with the thread agent and
the in-memory backend (``trackkit.testing.capture``), so it costs seconds, not minutes.
"""

from __future__ import annotations

import decimal
import fractions
import itertools
import json
import math
import os
import re
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trackkit
from trackkit.backend import map_key
from trackkit.errors import TrackkitError
from trackkit.events import flatten_config
from trackkit.journal import join_surrogates, read_journal
from trackkit.testing import capture

np: Any
torch: Any
try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None
try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

MAIN_EXAMPLES = int(os.environ.get("TRACKKIT_FUZZ_EXAMPLES", "10000"))
_FAST = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

#: the tests below read the in-memory backend right after finish(), which waits at most drain_timeout
#: for the agent: 120 s instead of the default 10 s, for a loaded machine (finish() still returns as
#: soon as everything is delivered)
_DRAIN = 120.0

# ---------------------------------------------------------------- strategies

AWKWARD_KEYS = [
    "", " ", "/", "//", "a//b", "/a", "a/", ".", "..", "./a", "a/./b", "a/../b", "a/.", "x" * 1000, "y" * 251,
    "z" * 250, "loss@#%+=,()[]!'\"|~*", "train/loss", "val loss", "a:b", "a\\b", "tab\there", "new\nline",
    "trail\n", "\x00", "ключ/значение", "损失", "🚀/rocket", "\ud800", "a\udfffb", "e\u0301", "ﬁ", "-", "_",
    "a-h12345678", "...", "..a", "a/..b",
]
_KEY_CHARS = st.characters(exclude_categories=()) | st.sampled_from(list("/.@#%+=,()[]!'\"|~* :-_\\\n"))
KEYS = (
    st.sampled_from(AWKWARD_KEYS)
    | st.text(_KEY_CHARS, max_size=30)
    | st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "/", "@", ".", "a/", "\ud83d"]), st.integers(200, 1000))
)


class BadFloat:
    def __float__(self) -> float:
        raise RuntimeError("no float for you")

    def __repr__(self) -> str:
        return "BadFloat()"


class BadItem:
    """Looks like a 1-element tensor whose .item() raises."""

    size = 1

    def item(self) -> float:
        raise ValueError("broken item()")


class BadEverything:
    def __float__(self) -> float:
        raise ZeroDivisionError

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no attribute {name}")


class FloatLike:
    def __init__(self, x: float) -> None:
        self.x = x

    def __float__(self) -> float:
        return self.x


_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_scalars: list[st.SearchStrategy[Any]] = [
    st.none(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.booleans(),
    st.floats(),  # NaN, ±inf, subnormals, -0.0
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=2**63 - 2, max_value=2**70) | st.integers(max_value=-(2**63) + 2, min_value=-(2**70)),
    # beyond any float: rejected, never fatal
    st.builds(lambda e, sign: sign * 10**e, st.sampled_from([309, 400, 5000]), st.sampled_from([1, -1])),
    st.builds(BadFloat),
    st.builds(BadItem),
    st.builds(BadEverything),
    st.builds(FloatLike, st.floats()),
    st.builds(complex, _finite, _finite),
    st.builds(decimal.Decimal, st.sampled_from(["1.5", "NaN", "sNaN", "-Infinity", "1e999999"])),
    st.builds(fractions.Fraction, st.integers(-100, 100), st.integers(1, 100)),
    st.builds(object),
    st.lists(_finite, max_size=3),
    st.dictionaries(st.text(max_size=3), _finite, max_size=2),
]
if np is not None:
    _scalars += [
        st.builds(np.float64, st.floats()),
        st.builds(np.float32, st.floats(width=32)),
        st.builds(np.float16, st.floats(width=16)),
        st.builds(np.int64, st.integers(-(2**63), 2**63 - 1)),
        st.builds(np.uint64, st.integers(0, 2**64 - 1)),
        st.builds(np.int8, st.integers(-128, 127)),
        st.builds(np.bool_, st.booleans()),
        st.builds(np.array, st.floats()),  # 0-d array
        st.builds(lambda x: np.array([x]), st.floats()),  # 1 element
        st.builds(lambda x: np.array([[x]]), _finite),  # 1 element, 2-d
        st.builds(lambda n: np.zeros(n), st.integers(0, 4).filter(lambda n: n != 1)),  # 0 or several
        st.builds(np.str_, st.text(max_size=3)),
        st.just(np.datetime64("2024-01-01")),
    ]
if torch is not None:
    _scalars += [
        st.builds(lambda x: torch.tensor(x), st.floats(width=32)),
        st.builds(lambda x: torch.tensor(x, dtype=torch.float64), st.floats()),
        st.builds(lambda x: torch.tensor(x, dtype=torch.bfloat16), _finite),
        st.builds(lambda x: torch.tensor(x, dtype=torch.float16), st.floats(width=16)),
        st.builds(lambda x: torch.tensor(x, dtype=torch.int64), st.integers(-(2**63), 2**63 - 1)),
        st.builds(lambda b: torch.tensor(b), st.booleans()),
        st.builds(lambda x: torch.tensor([x], requires_grad=True), _finite),
        st.builds(lambda n: torch.zeros(n), st.integers(0, 4).filter(lambda n: n != 1)),
        st.builds(lambda x: torch.full((2, 2), x), st.floats(width=32, allow_nan=False, allow_infinity=False)),
        st.just(torch.empty((), device="meta")),  # .item() raises
    ]
VALUES = st.one_of(*_scalars)


# ---------------------------------------------------------------- the oracle

REJECT = object()


def expected_value(v: Any) -> Any:
    """What trackkit must store for ``v`` (a mapping is flattened first): a float, or REJECT
    (skipped, counted, warned once)."""
    if v is None or isinstance(v, (str, bytes, list, dict)):
        return REJECT
    if isinstance(v, (BadFloat, BadItem, BadEverything)):
        return REJECT
    if np is not None and isinstance(v, (np.ndarray, np.generic)):
        if v.size != 1:
            return REJECT
        v = v.item()
    elif torch is not None and isinstance(v, torch.Tensor):
        if v.numel() != 1 or v.device.type == "meta":
            return REJECT
        v = v.item()
    try:
        return float(v)
    except Exception:
        return REJECT


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# ---------------------------------------------------------------- properties


@pytest.fixture
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.slow
def test_log_never_raises_and_accepted_values_read_back(quiet: None) -> None:
    """>= 10,000 random log() calls on one run: none raises, every call is journaled as one record
    (one bad value never costs the call its good ones), every accepted value reads back exactly."""
    expected: dict[str, dict[int, float]] = {}
    rejected = 0
    steps = itertools.count()
    with capture(agent="thread", drain_timeout=120.0, flush_interval=0.2) as cap:
        run = trackkit.init(project="fuzz")

        @settings(_FAST, max_examples=MAIN_EXAMPLES)
        @given(st.dictionaries(KEYS, VALUES, max_size=6))
        def prop(values: dict[str, Any]) -> None:
            nonlocal rejected
            step = next(steps)
            run.log(values, step=step)  # must not raise
            if any(isinstance(v, dict) and v for v in values.values()):
                # a nested mapping is flattened by the one config rule: {"a": {"b": x}} is "a.b"
                values = flatten_config(values)
            for k, v in values.items():
                exp = expected_value(v)
                if exp is REJECT:
                    rejected += 1
                else:  # a surrogate pair in a key is journaled as the character JSON reads it back as
                    expected.setdefault(join_surrogates(k), {})[step] = exp

        prop()
        assert run.problems["log"] == 0, run.problems  # never a whole call lost
        assert run.problems["journal"] == 0
        assert run.problems["value"] > 0 and rejected > 0  # the generator did reach the reject paths
        run.finish()
        assert not run._agent.pending(), "the agent did not deliver everything"
        got = cap.run.metrics()
    assert next(steps) >= MAIN_EXAMPLES
    assert set(got) == set(expected)
    for key, points in expected.items():
        stored = dict(got[key])
        assert stored.keys() == points.keys(), key
        bad = [(s, points[s], stored[s]) for s in points if not same(points[s], float(stored[s]))]
        assert not bad, (key, bad[:5])


@pytest.mark.slow
def test_strict_mode_raises_trackkit_error_exactly_for_rejected_values(quiet: None) -> None:
    with capture(agent="thread", strict=True) as _cap:
        run = trackkit.init(project="fuzz-strict")
        steps = itertools.count()

        @settings(_FAST, max_examples=1000)
        @given(st.dictionaries(KEYS, VALUES, max_size=4))
        def prop(values: dict[str, Any]) -> None:
            flat = flatten_config(values) if any(isinstance(v, dict) and v for v in values.values()) else values
            should_fail = any(expected_value(v) is REJECT for v in flat.values())
            try:
                run.log(values, step=next(steps))
            except TrackkitError:
                assert should_fail, values
            else:
                assert not should_fail, values

        prop()
        run.finish()
    assert _cap.run is not None


# ---------------------------------------------------------------- the MLflow key rule

_MLFLOW_KEY = re.compile(r"^[/\w.\- :]*$")


def _mlflow_key(k: str) -> str:
    return map_key(k, allowed=r"/\w.\- :", max_length=250)


def _valid_for_mlflow(k: str) -> bool:
    return (
        bool(k)
        and _MLFLOW_KEY.fullmatch(k) is not None
        and len(k) <= 250
        and "//" not in k
        and not k.startswith("/")
        and not k.endswith("/")
        and not k.startswith("..")  # MLflow's path_not_unique: normpath(k).startswith("..")
        and all(seg not in (".", "..") for seg in k.split("/"))
    )


@pytest.mark.slow
def test_key_mapping_is_deterministic_valid_and_collision_free() -> None:
    """``mlflow_key`` (= ``backend.map_key`` with MLflow's rules): same key, same result; always a key
    MLflow accepts (checked with MLflow's own validator too); valid keys unchanged; no two generated
    keys share a mapped key."""
    from trackkit.backends.mlflow import mlflow_key

    try:
        from mlflow.utils.validation import _validate_metric_name
    except ImportError:  # pragma: no cover - the rule is still checked by _valid_for_mlflow
        _validate_metric_name = None
    seen: dict[str, str] = {}

    @settings(_FAST, max_examples=MAIN_EXAMPLES)
    @given(KEYS)
    def prop(key: str) -> None:
        mapped = mlflow_key(key)
        assert mapped == mlflow_key(key) == _mlflow_key(key)
        assert _valid_for_mlflow(mapped), (key, mapped)
        if _valid_for_mlflow(key):
            assert mapped == key
        if _validate_metric_name is not None:
            _validate_metric_name(mapped)  # raises MlflowException when MLflow would reject it
        first = seen.setdefault(mapped, key)
        assert first == key, f"collision: {first!r} and {key!r} both map to {mapped!r}"

    prop()
    for key in AWKWARD_KEYS:
        prop.hypothesis.inner_test(key)  # type: ignore[attr-defined]
    assert len(seen) > MAIN_EXAMPLES // 4


# ---------------------------------------------------------------- configs


def _cyclic(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    d["self"] = d
    lst: list[Any] = [1, 2]
    lst.append(lst)
    d["loop"] = lst
    return d


_CONFIG_LEAVES = st.one_of(
    st.none(), st.booleans(), st.floats(), st.integers(), st.builds(lambda e: 10**e, st.sampled_from([60, 5000])),
    st.text(_KEY_CHARS, max_size=20), st.binary(max_size=20), st.builds(object), st.builds(BadFloat),
    st.builds(BadEverything), st.builds(uuid.uuid4), st.just(print), st.just(lambda x: x), st.just(int),
    st.frozensets(st.integers(), max_size=3), st.sets(st.builds(BadEverything), max_size=2),
    *([st.builds(lambda x: np.array([x, x]), _finite), st.builds(np.float32, st.floats(width=32))] if np else []),
    *([st.builds(lambda x: torch.tensor([x]), _finite)] if torch else []),
)
_CONFIG_KEYS = KEYS | st.integers() | st.none() | st.tuples(st.integers(), st.text(max_size=2)) | st.binary(max_size=3)
CONFIGS = st.recursive(
    _CONFIG_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(_CONFIG_KEYS, children, max_size=4),
    max_leaves=20,
)
TOP_CONFIGS = st.dictionaries(_CONFIG_KEYS, CONFIGS, max_size=5) | st.dictionaries(st.text(max_size=5), CONFIGS).map(
    _cyclic
)


def _journal(run: Any) -> list[dict[str, Any]]:
    return list(read_journal(os.path.join(run.dir, "journal.jsonl")))


@pytest.mark.slow
def test_init_configs_never_raise_and_are_journaled_as_json(quiet: None) -> None:
    """init(config=...) with nested, cyclic, non-serializable, bytes configs: no exception, the start
    record is plain JSON with the config as an object, and the backend receives the run."""
    with capture(agent="thread", flush_interval=0.0, drain_timeout=_DRAIN) as cap:

        @settings(_FAST, max_examples=100)
        @given(TOP_CONFIGS)
        def prop(config: dict[Any, Any]) -> None:
            run = trackkit.init(config, project="fuzz-config")
            recs = _journal(run)
            run.finish()
            assert run.problems["start"] == 0, run.problems
            assert recs[0]["k"] == "start" and isinstance(recs[0]["config"], dict)
            json.dumps(recs[0], allow_nan=False)  # plain JSON all the way down
            assert cap.run.info.run_id == run.id and cap.run.info.config == recs[0]["config"]

        prop()


@pytest.mark.slow
def test_log_config_never_raises_and_is_journaled_as_json(quiet: None) -> None:
    """log_config(...) with the same awkward configs on one run: no exception, every update is a
    journal record of plain JSON, and each reaches the backend."""
    n = 0
    with capture(agent="thread", drain_timeout=_DRAIN) as cap:
        run = trackkit.init(project="fuzz-config-updates")

        @settings(_FAST, max_examples=500)
        @given(TOP_CONFIGS)
        def prop(config: dict[Any, Any]) -> None:
            nonlocal n
            run.log_config(config)
            n += 1

        prop()
        assert run.problems["config"] == 0, run.problems
        updates = [r for r in _journal(run) if r["k"] == "config"]
        run.finish()
    assert len(updates) == n
    for r in updates:
        json.dumps(r, allow_nan=False)
    from trackkit.events import ConfigUpdate

    assert sum(isinstance(ev, ConfigUpdate) for ev in cap.run.events) == n


@pytest.mark.slow
def test_ten_megabyte_config_string(quiet: None) -> None:
    blob = "0123456789abcdef" * (10 * 2**20 // 16)
    with capture(agent="thread", drain_timeout=_DRAIN) as cap:
        run = trackkit.init({"blob": blob, "nested": {"blob": blob}}, project="fuzz-big")
        run.log_config({"later": blob})
        run.log({"loss": 0.5}, step=0)
        run.finish()
    rec = cap.run
    assert rec.info.config["blob"] == blob and rec.info.config["nested"]["blob"] == blob
    assert rec.info.config["later"] == blob
    assert rec.metrics()["loss"] == [(0, 0.5)]


def test_agent_survives_a_record_it_cannot_decode(tmp_path: Any) -> None:
    """A journal record the agent cannot turn into an event (here an integer no float can hold,
    written by hand) is skipped with a log line; the records after it are still delivered."""
    from trackkit.agent import Delivery
    from trackkit.backends.memory import clear, store
    from trackkit.journal import JournalWriter
    from trackkit.registry import parse_backend

    d = tmp_path / "run"
    d.mkdir()
    w = JournalWriter(str(d / "journal.jsonl"), "r1", 0.0)
    w.write({"k": "start", "run_id": "r1", "project": "p", "name": "n", "start_time": 0.0, "tags": {}, "config": {},
             "meta": {}})
    w.write_line(json.dumps({"k": "m", "s": 0, "t": 0.0, "v": {"a": 1.0}}))
    w.write_line('{"k":"m","s":1,"t":0.0,"v":{"a":1' + "0" * 400 + "}}")
    w.write_line(json.dumps({"k": "m", "s": 2, "t": 0.0, "v": {"a": 3.0}}))
    w.write({"k": "finish", "status": "completed", "time": 1.0, "reason": "", "exit_code": 0})
    w.close()
    logged: list[str] = []
    try:
        ok = Delivery(str(d), [parse_backend("memory:damaged")], log=logged.append).run(lambda: False)
        assert ok
        assert store("damaged")["r1"].metrics()["a"] == [(0, 1.0), (2, 3.0)]
        assert any("damaged record" in m for m in logged)
    finally:
        clear("damaged")


# ---------------------------------------------------------------- MLflow restores the original keys


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("mlflow")
    from trackkit.backends.mlflow import MlflowReader, MlflowSink
    from trackkit.registry import parse_backend

    spec = parse_backend(f"mlflow:{tmp_path_factory.mktemp('fuzz-mlflow') / 'mlflow.db'}")
    return spec, MlflowSink, MlflowReader


@pytest.mark.slow
def test_mlflow_reader_restores_awkward_keys_after_a_real_write(mlflow_store: Any, quiet: None) -> None:
    """A real write through MlflowSink to a sqlite store and a read through MlflowReader: every metric
    and tag key comes back as logged (mapped keys restored), values exact, nothing else appears."""
    import time

    from trackkit.events import Metrics, RunFinished, RunStarted, Status, Tags

    spec, sink_cls, reader_cls = mlflow_store
    counter = itertools.count()

    @settings(_FAST, max_examples=int(os.environ.get("TRACKKIT_FUZZ_MLFLOW_EXAMPLES", "100")))
    @given(
        st.dictionaries(KEYS, st.floats(allow_infinity=False), min_size=1, max_size=5),
        st.dictionaries(KEYS, st.text(_KEY_CHARS, max_size=10), max_size=3),
    )
    def prop(metrics: dict[str, float], tags: dict[str, str]) -> None:
        run_id = f"fuzz{next(counter)}"
        now = time.time()
        sink = sink_cls(spec)
        sink.emit([
            RunStarted(run_id=run_id, project="fuzz-keys", name=run_id, start_time=now),
            Metrics(step=0, time=now, values=metrics),
            Metrics(step=1, time=now + 0.001, values=metrics),
            Tags(tags, time=now),
            RunFinished(status=Status.COMPLETED, time=now + 0.01),
        ])
        sink.close()
        rec = reader_cls(spec).read_run(run_id)  # a reader opens an existing store only (issue 16.6)
        got = rec.metrics()
        assert set(got) == set(metrics)
        for k, v in metrics.items():
            assert [s for s, _ in got[k]] == [0, 1], k
            assert all(same(float(x), v) for _, x in got[k]), (k, got[k], v)
        assert set(rec.info.tags) == set(tags)

    prop()
