"""The MLflow sink's metric hot path: cached key mapping and request packing must behave exactly
as the plain per-point code did (sqlite store; the real client is called, only observed)."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import pytest

pytest.importorskip("mlflow")

from trackkit.backend import BackendSpec
from trackkit.backends.mlflow import (
    BATCH_BYTES,
    BATCH_ENTITIES,
    BATCH_METRICS,
    T_KEY,
    MlflowReader,
    MlflowSink,
    mlflow_key,
)
from trackkit.backends.mlflow import (
    tag_digest as _sha,
)
from trackkit.errors import BackendError
from trackkit.events import Metrics, RunStarted
from trackkit.registry import parse_backend

T0 = 1_700_000_000.0


@pytest.fixture
def spec(tmp_path: Any) -> BackendSpec:
    return parse_backend(f"mlflow:{tmp_path}/mlflow.db")


def start() -> RunStarted:
    return RunStarted(run_id=uuid.uuid4().hex, project="delivery-path", name="n", start_time=time.time())


def _observe(sink: MlflowSink, fail: int = 0) -> list[tuple[list[Any], list[Any], list[Any]]]:
    """Record every log_batch request (and fail the first ``fail`` of them)."""
    calls: list[tuple[list[Any], list[Any], list[Any]]] = []
    real = sink.client.log_batch

    def log_batch(run_id: str, metrics: Any = (), params: Any = (), tags: Any = (), synchronous: bool = True) -> Any:
        calls.append((list(metrics), list(params), list(tags)))
        if len(calls) <= fail:
            raise RuntimeError("store unavailable")
        return real(run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous)

    sink.client.log_batch = log_batch
    return calls


def _greedy(key_lengths: list[int]) -> list[int]:
    """Request sizes of metrics-only requests as the per-point packing loop makes them."""
    sizes, i = [], 0
    while i < len(key_lengths):
        size = n = 0
        while i < len(key_lengths) and n < min(BATCH_METRICS, BATCH_ENTITIES):
            cost = key_lengths[i] * 3 + 96
            if size + cost > BATCH_BYTES:
                break
            size += cost
            n += 1
            i += 1
        sizes.append(n)
    return sizes


@pytest.mark.parametrize("key_len", [4, 200, 250])
def test_requests_are_packed_as_before(spec: BackendSpec, key_len: int) -> None:
    ev = start()
    sink = MlflowSink(spec)
    sink.emit([ev])
    calls = _observe(sink)
    key = "k" * key_len
    batch = [Metrics(i, T0 + i, {key: float(i), "s": 1.0}) for i in range(1600)]
    sink.emit(batch)
    sizes = [len(m) for m, _, _ in calls]
    lengths = [len(mlflow_key(k)) for ev_ in batch for k in ev_.values]
    assert sizes == _greedy(lengths)
    assert all(not p and not t for _, p, t in calls)
    for metrics, _, _ in calls:
        assert sum(len(m.key) * 3 + 96 for m in metrics) <= BATCH_BYTES
    pts = MlflowReader(spec).read_run(ev.run_id).metrics()
    assert pts[key] == [(i, float(i)) for i in range(1600)]


def test_mapped_key_tag_is_sent_again_after_a_failed_batch(spec: BackendSpec) -> None:
    ev = start()
    sink = MlflowSink(spec)
    sink.emit([ev])
    calls = _observe(sink, fail=1)
    batch = [Metrics(i, T0 + i, {"loss@top-1": float(i), "inf": math.inf if i == 3 else 0.0}) for i in range(10)]
    with pytest.raises(BackendError):
        sink.emit(batch)
    sink.emit(batch)  # the agent's retry
    assert len(calls) == 2
    tags = {t.key: t.value for t in calls[1][2]}
    mapped = mlflow_key("loss@top-1")
    assert tags[T_KEY + _sha("loss@top-1")] == "loss@top-1"
    assert [m.key for m in calls[1][0]].count(mapped) == 10
    sink.emit([Metrics(10, T0 + 10, {"loss@top-1": 10.0})])  # the tag is stored now: not sent again
    assert not calls[-1][2]
    rec = MlflowReader(spec).read_run(ev.run_id)
    assert rec.metrics()["loss@top-1"] == [(i, float(i)) for i in range(11)]
    assert rec.metrics()["inf"][3] == (3, math.inf)


def test_non_string_and_numpy_like_values(spec: BackendSpec) -> None:
    class F(float):
        pass

    ev = start()
    sink = MlflowSink(spec)
    sink.emit([ev, Metrics(0, T0, {"a": 1, "b": F(2.5), "c": True})])  # type: ignore[dict-item]
    pts = MlflowReader(spec).read_run(ev.run_id).metrics()
    assert pts == {"a": [(0, 1.0)], "b": [(0, 2.5)], "c": [(0, 1.0)]}
