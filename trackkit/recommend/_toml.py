"""TOML text for the values trackkit.toml holds (the standard library reads TOML but cannot write it)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from ..errors import ConfigError

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def toml_string(value: str) -> str:
    """A basic (double-quoted) TOML string."""
    out = (
        _ESCAPES.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch) for ch in value
    )
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    """A bare key when TOML allows one, else a quoted one."""
    return key if _BARE_KEY.match(key) else toml_string(key)


def toml_value(value: object, where: str) -> str:
    """``value`` as TOML; ``where`` names it in the ``ConfigError`` for a value TOML cannot hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{toml_key(str(k))} = {toml_value(v, f'{where}.{k}')}" for k, v in value.items())
        return "{" + items + "}"
    raise ConfigError(
        f"{where}: cannot write {type(value).__name__} to TOML. Fix: use strings, numbers, booleans, lists or tables."
    )
