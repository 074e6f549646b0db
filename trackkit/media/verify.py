"""Is a copied media value the same as its source? (``migrate`` verifies with this.)

An image is the same when its decoded pixels are (a backend may re-encode the PNG), a histogram
when its counts are (edges to float32 precision when TensorBoard holds it), a text when its
characters are, a table when its columns and cells are, an audio clip when its samples are.
See docs/media.md."""

from __future__ import annotations

import json
import math
from typing import Any

from ..events import Media
from ..util import close
from .encode import pixels

__all__ = ["differences", "problem"]


def problem(ev: Media) -> str:
    """Why a media value cannot be copied, or ``""``."""
    import hashlib
    import os

    if not ev.path or "://" in ev.path:
        return f"its payload is not a local file ({ev.path or 'none recorded'})"
    if not os.path.exists(ev.path):
        return f"its payload {ev.path} no longer exists"
    try:
        data = ev.read_bytes()
    except OSError as exc:
        return f"its payload {ev.path} cannot be read ({exc})"
    if ev.sha256 and hashlib.sha256(data).hexdigest() != ev.sha256:
        return f"its payload {ev.path} does not match the recorded sha256"
    if not ev.canonical:
        return f"its payload is in the journal-only format {ev.format!r}"
    return ""


def _load(ev: Media) -> Any:
    if ev.kind == "image":
        return pixels(ev.path)
    data = ev.read_bytes()
    if ev.kind == "text":
        return data.decode("utf-8", "surrogatepass")
    if ev.kind in ("histogram", "table"):
        return json.loads(data)
    if ev.kind == "audio":
        import hashlib
        import io
        import wave

        with wave.open(io.BytesIO(data)) as w:
            return (w.getnchannels(), w.getframerate(), hashlib.sha256(w.readframes(w.getnframes())).hexdigest())
    return data


def _same_cell(a: Any, b: Any) -> bool:
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        fa, fb = float(a), float(b)
        return (math.isnan(fa) and math.isnan(fb)) or close(fa, fb, rel=1e-12, abs_tol=1e-300)
    return bool(type(a) is type(b) and a == b)


def differences(want: Media, got: Media, *, float32: bool = False) -> list[str]:
    """What differs between a media value and its copy (``[]``: the same)."""
    out: list[str] = []
    if want.kind != got.kind:
        return [f"kind {want.kind} != {got.kind}"]
    if (want.caption or "") != (got.caption or ""):
        out.append(f"caption {want.caption!r} != {got.caption!r}")
    try:
        a, b = _load(want), _load(got)
    except Exception as exc:
        return [*out, f"payload unreadable ({type(exc).__name__}: {exc})"]
    if want.kind == "image":
        if a[0][:2] != b[0][:2]:
            out.append(f"image size {a[0][1]}x{a[0][0]} != {b[0][1]}x{b[0][0]}")
        elif a[1] != b[1]:
            out.append("image pixels differ")
    elif want.kind == "histogram":
        ca, cb = a.get("counts", []), b.get("counts", [])
        if len(ca) != len(cb) or not all(close(float(x), float(y), rel=1e-9, abs_tol=1e-9) for x, y in zip(ca, cb)):
            out.append(f"histogram counts {ca[:8]}... != {cb[:8]}...")
        tol: dict[str, Any] = {"rel": 1e-6, "abs_tol": 1e-30, "float32": True} if float32 else {"rel": 1e-9}
        ea, eb = a.get("edges", []), b.get("edges", [])
        if len(ea) != len(eb) or not all(close(float(x), float(y), **tol) for x, y in zip(ea, eb)):
            out.append(f"histogram edges {ea[:4]}... != {eb[:4]}...")
    elif want.kind == "table":
        if a.get("columns") != b.get("columns"):
            out.append(f"table columns {a.get('columns')} != {b.get('columns')}")
        ra, rb = a.get("rows", []), b.get("rows", [])
        if len(ra) != len(rb):
            out.append(f"table rows {len(ra)} != {len(rb)}")
        else:
            for i, (x, y) in enumerate(zip(ra, rb)):
                if len(x) != len(y) or not all(_same_cell(p, q) for p, q in zip(x, y)):
                    out.append(f"table row {i} {x} != {y}")
                    break
    elif a != b:
        what = "text" if want.kind == "text" else f"{want.kind} payload"
        out.append(f"{what} differs" + (f" ({a[:40]!r} != {b[:40]!r})" if isinstance(a, str) else ""))
    return out
