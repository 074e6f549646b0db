"""W&B's stored values: a record item's ``value_json`` (``loads``), its key (``item_key``), a record's items
as a dict (``items_of``) or as the nested row ``scan_history`` gives (``row_of``), a value as a metric
(``num``). Used by the decoder and by ``segments.scan``; the hot loop of reading a run file back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["item_key", "items_of", "loads", "nest", "num", "numbers_and_row", "row_of"]

#: the standard library's C scanner of one JSON value (``json.loads`` without its Python layers)
_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009


def loads(text: str) -> Any:
    """A W&B ``value_json`` (the text itself when it is not JSON; None when empty). A value the scanner
    reads whole is what ``json.loads`` returns; anything else (spaces around it, more after it, not JSON)
    goes through ``json.loads`` itself."""
    if not text:
        return None
    try:
        value, end = _SCAN(text, 0)
        if end == len(text):
            return value
    except (StopIteration, ValueError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def item_key(item: Any) -> str:
    """The key of a config/summary/history item (``key``, or ``nested_key`` joined by ``.``)."""
    key: str = item.key
    if key:
        return key
    nested = item.nested_key
    return str(nested[0]) if len(nested) == 1 else ".".join(nested)


def items_of(items: Iterable[Any]) -> dict[str, Any]:
    """Protobuf items (``key``/``nested_key`` + ``value_json``) as a plain dict."""
    return {item_key(it): loads(it.value_json) for it in items}


def row_of(items: Iterable[Any]) -> dict[str, Any]:
    """History items as the nested row ``wandb.Api().scan_history()`` returns: W&B stores a
    logged dict (a media value: ``_type``, ``path``, ...) as one item per leaf (``nested_key``)."""
    row: dict[str, Any] = {}
    for it in items:
        key = it.key
        if key:
            row[key] = loads(it.value_json)
            continue
        nested = it.nested_key
        if len(nested) == 1:  # what wandb-core writes for a plain key
            row[nested[0]] = loads(it.value_json)
            continue
        nest(row, nested, loads(it.value_json))
    return row


def nest(row: dict[str, Any], nested: Iterable[str], value: Any) -> None:
    """Put ``value`` at the path ``nested`` of ``row`` (a node that is not a dict is replaced by one)."""
    path = [str(k) for k in nested]
    if not path:
        return
    node = row
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[path[-1]] = value


def numbers_and_row(items: Iterable[Any], keep: frozenset[str]) -> tuple[dict[str, float], dict[str, Any]]:
    """A history record's items split in one pass: a top-level key whose value is a JSON number (not a
    key in ``keep``: ``_step``, ``_timestamp``, trackkit's own columns) as a float in the first dict,
    everything else as ``row_of`` nests it in the second. For a record that names each column once (what
    W&B writes) that is ``row_of`` followed by the decoder's split of the row, without building and
    walking a row of the plain numbers: the hot loop of reading a run back, one history record per step."""
    numbers: dict[str, float] = {}
    row: dict[str, Any] = {}
    scan, loads_ = _SCAN, loads
    for it in items:
        key = it.key
        if not key:
            nested = it.nested_key
            if len(nested) != 1:  # a logged dict: one item per leaf
                nest(row, nested, loads_(it.value_json))
                continue
            key = nested[0]  # what wandb-core writes for a plain key
        text = it.value_json
        try:
            value, end = scan(text, 0)
            if end != len(text):
                value = loads_(text)
        except (StopIteration, ValueError):
            value = loads_(text)
        kind = type(value)
        if (kind is float or kind is int) and key not in keep:
            numbers[key] = float(value)
        else:
            row[key] = value
    return numbers, row


def num(v: Any) -> float | None:
    """A stored value as a metric value, or None when it is not a number."""
    if isinstance(v, (bool, int, float)):
        return float(v)
    return None
