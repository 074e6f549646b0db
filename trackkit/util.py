"""Generic helpers shared by the core: values as JSON, a repr that never raises, a hashed copy,
the one value comparison, warnings that point at the user's line, and ``tomllib`` (``tomli`` on
3.10). Standard library only; adapters do not import this module
(their shared helpers live in ``backend.py``). See docs/architecture.md."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dependency there, see pyproject.toml)
    import tomli as tomllib

__all__ = [
    "close",
    "copy_hashed",
    "dumps",
    "jsonable",
    "norm_tags",
    "safe_repr",
    "same_value",
    "sha256_of",
    "tomllib",
    "user_stacklevel",
    "warn",
    "write_json_atomic",
]

#: compact JSON, as every journal record and side file is written
dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


# ---------------------------------------------------------------- warnings

#: trackkit's own source directory: a warning points at the first frame outside it
_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued here point at the user's line: the first
    frame outside trackkit's package (``warnings.warn(..., skip_file_prefixes=...)`` before 3.12)."""
    level = 1
    skip: tuple[str, ...] = (_PKG_DIR,)
    torch_file = getattr(sys.modules.get("torch"), "__file__", None)  # run.watch()'s hooks run inside backward()
    if isinstance(torch_file, str):
        skip += (os.path.dirname(os.path.abspath(torch_file)) + os.sep,)
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(skip):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` pointing at the user's line, wherever inside trackkit it is called from."""
    warnings.warn(message, category, stacklevel=user_stacklevel())


# ---------------------------------------------------------------- values as JSON


def jsonable(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> Any:
    """Config values as JSON: non-serializable objects become their repr, cycles are cut,
    non-finite floats become ``"nan"``/``"inf"``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):  # JSON cannot write an int of more than 4300 digits
        return int(obj) if obj.bit_length() <= 10_000 else f"<int of {obj.bit_length()} bits>"
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    seen = _seen if _seen is not None else set()
    if id(obj) in seen or _depth > 64:
        return "<cycle>"
    if isinstance(obj, Mapping):
        seen.add(id(obj))
        out = {str(k): jsonable(v, seen, _depth + 1) for k, v in obj.items()}
        seen.discard(id(obj))
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        seen.add(id(obj))
        items = sorted(obj, key=safe_repr) if isinstance(obj, (set, frozenset)) else obj
        out_l = [jsonable(v, seen, _depth + 1) for v in items]
        seen.discard(id(obj))
        return out_l
    if isinstance(obj, (bytes, bytearray)):
        return f"<{len(obj)} bytes>"
    try:
        return _jsonable_object(obj, seen, _depth)
    except Exception:  # a user object whose attribute access raises
        return safe_repr(obj)


def _jsonable_object(obj: Any, seen: set[int], _depth: int) -> Any:
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(obj, "ndim", 1) == 0:
        try:
            return jsonable(item(), seen, _depth + 1)
        except Exception:
            pass
    for attr in ("model_dump", "to_dict", "_asdict"):  # pydantic, omegaconf-likes, namedtuples
        fn = getattr(obj, attr, None)
        if callable(fn):
            try:
                return jsonable(fn(), seen, _depth + 1)
            except Exception:
                pass
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        try:
            return jsonable(dataclasses.asdict(obj), seen, _depth + 1)
        except Exception:
            pass
    if hasattr(obj, "__fspath__"):
        return os.fspath(obj)
    try:
        return repr(obj)
    except Exception:
        return f"<unrepresentable {type(obj).__name__}>"


def safe_repr(obj: Any, limit: int = 120) -> str:
    """A short repr for warning messages that never raises (a user's ``__repr__`` may, and so does
    ``repr`` of an int with more than 4300 digits) and never builds a huge string first."""
    try:
        import reprlib

        r = reprlib.Repr()
        r.maxstring = r.maxother = r.maxlong = limit
        text = r.repr(obj)
    except Exception:
        text = f"<{type(obj).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def norm_tags(tags: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    """Tags as ``{key: value}``; a plain label is a key with the value ``""``."""
    if tags is None:
        return {}
    if isinstance(tags, str):
        return {tags: ""}
    if isinstance(tags, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in tags.items()}
    return {str(t): "" for t in tags}


def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as compact JSON to ``path`` through a temporary file and a rename: a reader
    sees the old file or the new one, never half of one. The temporary name is this process's and
    thread's own (two writers of one file, the agent and a reader rebuilding an index, never share
    it) and is removed when the write fails. Raises ``OSError``."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "w") as fh:
            fh.write(dumps(obj))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------- hashing


def copy_hashed(src: str, dest: str | None) -> tuple[str, int]:
    """Copy a file or a directory tree to ``dest`` (``None``: only read it), hashing the bytes as
    they pass. Returns ``(sha256, size)``. A tree hashes as a sorted walk: each file's relative
    path, a NUL byte, then its bytes; so a tree's hash does not depend on the order of the disk."""
    h = hashlib.sha256()
    size = 0
    if os.path.isdir(src):
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for f in sorted(files):
                s = os.path.join(root, f)
                rel = os.path.relpath(s, src)
                h.update(rel.encode("utf-8", "surrogatepass") + b"\0")
                size += _copy_file(s, None if dest is None else os.path.join(dest, rel), h)
        return h.hexdigest(), size
    size = _copy_file(src, dest, h)
    return h.hexdigest(), size


def sha256_of(path: str) -> str:
    """The sha256 of a file or a tree, as :func:`copy_hashed` computes it."""
    return copy_hashed(path, None)[0]


def _copy_file(src: str, dest: str | None, h: Any) -> int:
    size = 0
    if dest is not None:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(src, "rb") as fi, (open(dest, "wb") if dest is not None else _Null()) as fo:
        while chunk := fi.read(1 << 20):
            h.update(chunk)
            fo.write(chunk)
            size += len(chunk)
    if dest is not None:
        shutil.copystat(src, dest)
    return size


class _Null:
    def write(self, data: bytes) -> None:
        pass

    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


# ---------------------------------------------------------------- value comparison


def _f32(v: float) -> float:
    try:
        return float(struct.unpack("f", struct.pack("f", v))[0])
    except OverflowError:
        return math.copysign(math.inf, v)


def close(a: float, b: float, *, rel: float = 0.0, abs_tol: float = 0.0, float32: bool = False) -> bool:
    """Two floats are the same value: NaN equals NaN, an infinity only itself, otherwise within
    ``rel``/``abs_tol`` (both 0: exactly equal); ``float32``: also equal once both are stored as
    float32 (TensorBoard's ``simple_value``)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    if float32 and _f32(a) == _f32(b):
        return True
    return (rel > 0 or abs_tol > 0) and math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def same_value(a: Any, b: Any, *, rel: float = 0.0, abs_tol: float = 0.0, float32: bool = False) -> bool:
    """The one value comparison (config, summaries, read-back checks): mappings and sequences
    element by element (a list equals a tuple), numbers by :func:`close` (a whole float equals the
    int it reads back as), a bool only a bool, anything else by ``==``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return close(float(a), float(b), rel=rel, abs_tol=abs_tol, float32=float32)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(
            same_value(x, y, rel=rel, abs_tol=abs_tol, float32=float32) for x, y in zip(a, b)
        )
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(
            same_value(a[k], b[k], rel=rel, abs_tol=abs_tol, float32=float32) for k in a
        )
    return bool(a == b)
