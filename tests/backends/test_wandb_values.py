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
