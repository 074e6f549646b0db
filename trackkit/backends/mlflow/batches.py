"""How pending params, tags and metrics are packed into ``log_batch`` requests within MLflow's limits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .names import BATCH_BYTES, BATCH_ENTITIES, BATCH_METRICS, BATCH_PARAMS, BATCH_TAGS

Pairs = list[tuple[str, str]]


def _cost(key: str, value: str) -> int:
    """An upper bound of the bytes a param or tag adds to a request (JSON-escaped UTF-8)."""
    return len(key) + 3 * len(value) + 64


def pack(
    params: Sequence[tuple[str, str]], tags: Sequence[tuple[str, str]], metrics: Sequence[Any], longest_key: int
) -> Iterator[tuple[Pairs, Pairs, list[Any]]]:
    """``(params, tags, metrics)`` of each request, in order: at most ``BATCH_PARAMS`` params,
    ``BATCH_TAGS`` tags, ``BATCH_METRICS`` metrics, ``BATCH_ENTITIES`` in all and ``BATCH_BYTES``.
    ``longest_key`` bounds the key of every metric (``metrics`` hold ``.key``)."""
    pi = ti = mi = 0
    while pi < len(params) or ti < len(tags) or mi < len(metrics):
        size = 0
        req_p: Pairs = []
        req_t: Pairs = []
        req_m: list[Any] = []
        while pi < len(params) and len(req_p) < BATCH_PARAMS:
            cost = _cost(*params[pi])
            if req_p and size + cost > BATCH_BYTES:
                break
            req_p.append(params[pi])
            size += cost
            pi += 1
        while ti < len(tags) and len(req_t) < BATCH_TAGS:
            cost = _cost(*tags[ti])
            if (req_p or req_t) and size + cost > BATCH_BYTES:
                break
            req_t.append(tags[ti])
            size += cost
            ti += 1
        room = min(BATCH_METRICS, BATCH_ENTITIES - len(req_p) - len(req_t))
        n = min(room, len(metrics) - mi)
        if size + n * (longest_key * 3 + 96) <= BATCH_BYTES:
            # every pending key is at most longest_key long: the loop below would take all n
            req_m = list(metrics[mi : mi + n])
            mi += n
        while mi < len(metrics) and len(req_m) < room:
            cost = len(metrics[mi].key) * 3 + 96
            if size + cost > BATCH_BYTES:
                break
            req_m.append(metrics[mi])
            size += cost
            mi += 1
        yield req_p, req_t, req_m
