"""``values.loads`` (the C scanner first) reads every ``value_json`` as ``json.loads`` does, and falls back
to the text itself where ``json.loads`` fails, as before; ``row_of`` nests W&B's items as before."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

pytest.importorskip("wandb")

from trackkit.backends.wandb.values import loads, row_of

TEXTS = ["1", "-0", "1.5", "-0.25", "1e5", "1.0e+09", "1.79623467595e+09", "NaN", "Infinity", "-Infinity",
         '"s"', '"a\\u00e9"', "true", "false", "null", "[1, 2.5, null]", '{"a": {"b": [1]}}', " 1", "1 ", "\t2\n",
         "01", "1 2", "abc", '"x', "[1,", "{}", "[]", "", "nan", "inf", "12345678901234567890", "-1e400"]


def _reference(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.parametrize("text", TEXTS)
def test_loads_is_json_loads_or_the_text(text: str) -> None:
    got, want = loads(text), _reference(text)
    assert type(got) is type(want)
    assert repr(got) == repr(want) or (isinstance(got, float) and math.isnan(got) and math.isnan(want))


def test_row_of_nests_items_as_before() -> None:
    from wandb.proto import wandb_internal_pb2 as pb

    rec = pb.HistoryRecord()
    for key, nested, value in [("", ["loss"], "0.5"), ("lr", [], "0.1"), ("", ["img", "_type"], '"image-file"'),
                               ("", ["img", "width"], "28"), ("", ["a", "b", "c"], "1"), ("", [], "9")]:
        item = rec.item.add()
        item.key = key
        item.nested_key.extend(nested)
        item.value_json = value
    assert row_of(rec.item) == {"loss": 0.5, "lr": 0.1, "img": {"_type": "image-file", "width": 28},
                                "a": {"b": {"c": 1}}}


def _split_reference(items: Any, keep: frozenset[str]) -> tuple[dict[str, float], dict[str, Any]]:
    """What the decoder did before ``numbers_and_row``: ``row_of``, then a top-level number column (not
    in ``keep``) is a metric, the rest stays in the row."""
    row = row_of(items)
    numbers = {k: float(v) for k, v in row.items() if type(v) in (float, int) and k not in keep}
    return numbers, {k: v for k, v in row.items() if k not in numbers}


def test_numbers_and_row_is_row_of_then_the_split() -> None:
    from wandb.proto import wandb_internal_pb2 as pb

    from trackkit.backends.wandb.names import HISTORY_INTERNAL
    from trackkit.backends.wandb.values import numbers_and_row

    rec = pb.HistoryRecord()
    columns: list[tuple[str, list[str], str]] = [
        ("", ["img", "_type"], '"image-file"'), ("", ["img", "width"], "28"), ("", ["a", "b", "c"], "1"),
        ("", [], "9"), ("lr", [], "0.1"), ("flag", [], "true"), ("name", [], '"x"'), ("bad", [], "01")]
    columns += [("", [f"k{i}"], text) for i, text in enumerate(TEXTS)]
    columns += [("", [k], "3") for k in sorted(HISTORY_INTERNAL)] + [("", ["_timestamp"], "1.7e9")]
    for key, nested, value in columns:
        item = rec.item.add()
        item.key = key
        item.nested_key.extend(nested)
        item.value_json = value
    numbers, row = numbers_and_row(rec.item, HISTORY_INTERNAL)
    want_numbers, want_row = _split_reference(rec.item, HISTORY_INTERNAL)
    assert list(numbers) == list(want_numbers) and "k0" in numbers and "lr" in numbers and "flag" not in numbers
    assert all(repr(numbers[k]) == repr(want_numbers[k]) for k in numbers)  # NaN included
    assert all(type(v) is float for v in numbers.values())
    assert json.dumps(row, sort_keys=True) == json.dumps(want_row, sort_keys=True)
    assert row["_step"] == 3 and type(row["_step"]) is int and row["img"] == {"_type": "image-file", "width": 28}
