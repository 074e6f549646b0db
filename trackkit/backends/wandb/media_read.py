"""W&B media values back as canonical trackkit ``Media`` events (``Decoder.history`` calls it).

A W&B history value with a ``_type`` is media, never a metric. ``image-file``, ``audio-file``,
``table-file``, ``html-file`` point at a file of the run (``path``, relative to its ``files/``
directory offline; downloaded online); ``histogram`` holds its counts and edges inline; the
lists ``images/separated`` and ``audio`` hold several files (one ``Media`` each, ``meta["index"]``).
Types with no trackkit kind (``video-file``, ``object3D-file``, ``plotly-file``, ...) raise
``Unreadable``: the reader lists them as skipped. trackkit's own ``trackkit/media`` column adds
what the W&B types do not keep and the values kept as run files (``media.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import wave
from collections.abc import Callable, Mapping
from typing import Any

from ...backend import image_meta, payload_file
from ...events import Media
from .media import html_text

__all__ = ["Fetch", "Unreadable", "channels", "read_kept", "read_value", "row_note"]

#: a run file's local path from its path relative to the run's files (None: not there)
Fetch = Callable[[str], "str | None"]

_LIST_TYPES = {"images/separated": ("filenames", "image"), "audio": ("audio", "audio")}
_CANONICAL_CELL = (str, int, float, bool, type(None))


class Unreadable(ValueError):
    """A W&B media value trackkit cannot map; the message says why (listed as skipped)."""


def row_note(value: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``trackkit/media`` column of a row: (extras by stored key, run-file descriptors)."""
    try:
        note = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return {}, []
    if not isinstance(note, dict):
        return {}, []
    ex, files = note.get("extras"), note.get("files")
    return (ex if isinstance(ex, dict) else {}), [d for d in (files if isinstance(files, list) else [])
                                                  if isinstance(d, dict)]


def channels(data: bytes, fmt: str) -> int | None:
    """Channels of PNG/GIF/JPEG bytes as PIL counts its bands (palette and GIF: 1)."""
    n = image_meta(data).get("channels")
    return int(n) if n is not None else None


def _file(rel: Any, fetch: Fetch) -> tuple[str, bytes]:
    if not isinstance(rel, str) or not rel:
        raise Unreadable("the value names no file")
    local = fetch(rel)
    if local is None:
        raise Unreadable(f"its file {rel} is not in the run's files")
    try:
        with open(local, "rb") as fh:
            return local, fh.read()
    except OSError as exc:
        raise Unreadable(f"its file {rel} cannot be read ({exc.strerror or exc})") from None


def _meta(derived: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    meta = {k: v for k, v in derived.items() if v is not None}
    if extra and isinstance(extra.get("meta"), dict):
        meta.update(extra["meta"])
    return meta


def _caption(value: Mapping[str, Any], extra: Mapping[str, Any] | None) -> str:
    cap = value.get("caption")
    if (cap is None or cap == "") and extra:
        cap = extra.get("caption")
    return "" if cap is None else str(cap)


def _image(key: str, step: int, when: float, value: Mapping[str, Any], fetch: Fetch,
           extra: Mapping[str, Any] | None) -> Media:
    path, data = _file(value.get("path"), fetch)
    info = image_meta(data)
    if not info:
        raise Unreadable(f"its file {value.get('path')} is not a PNG, JPEG or GIF image")
    fmt = str(info["format"])
    derived = {"width": info["width"], "height": info["height"], "channels": channels(data, fmt)}
    return Media(key=key, step=step, kind="image", path=path, sha256=hashlib.sha256(data).hexdigest(),
                 size=len(data), format=fmt, time=when, caption=_caption(value, extra), meta=_meta(derived, extra))


def _audio(key: str, step: int, when: float, value: Mapping[str, Any], fetch: Fetch,
           extra: Mapping[str, Any] | None) -> Media:
    path, data = _file(value.get("path"), fetch)
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise Unreadable(f"its file {value.get('path')} is not a WAV file (trackkit reads WAV audio only)")
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate = w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise Unreadable(f"its WAV file {value.get('path')} cannot be read ({exc})") from None
    return Media(key=key, step=step, kind="audio", path=path, sha256=hashlib.sha256(data).hexdigest(),
                 size=len(data), format="wav", time=when, caption=_caption(value, extra),
                 meta=_meta({"sample_rate": rate}, extra))


def _payload(key: str, step: int, when: float, kind: str, data: bytes, ext: str, caption: str,
             meta: dict[str, Any]) -> Media:
    path, sha = payload_file(data, ext)
    return Media(key=key, step=step, kind=kind, path=path, sha256=sha, size=len(data), format=ext, time=when,
                 caption=caption, meta=meta)


def _histogram(key: str, step: int, when: float, value: Mapping[str, Any], extra: Mapping[str, Any] | None) -> Media:
    counts = value.get("values")
    edges = value.get("bins")
    packed = value.get("packedBins")
    if edges is None and isinstance(packed, dict):  # a W&B server's compact form
        try:
            lo, width, n = float(packed["min"]), float(packed["size"]), int(packed["count"])
        except (KeyError, TypeError, ValueError):
            raise Unreadable("its packedBins are not min/size/count numbers") from None
        edges = [lo + i * width for i in range(n + 1)]
    if not isinstance(counts, list) or not isinstance(edges, list) or len(edges) != len(counts) + 1:
        raise Unreadable("its values/bins are not n counts and n + 1 edges")
    if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in counts + edges):
        raise Unreadable("its values/bins are not all numbers")
    body: dict[str, Any] = {"counts": counts, "edges": [float(e) for e in edges]}
    stats = extra.get("stats") if extra else None
    if isinstance(stats, dict):
        body.update(stats)
    data = json.dumps(body).encode()
    return _payload(key, step, when, "histogram", data, "json", _caption(value, extra), _meta({}, extra))


def _cell(cell: Any) -> tuple[Any, bool]:
    if isinstance(cell, _CANONICAL_CELL):
        return cell, False
    return json.dumps(cell, sort_keys=True, default=str), True


def _table(key: str, step: int, when: float, value: Mapping[str, Any], fetch: Fetch,
           extra: Mapping[str, Any] | None) -> Media:
    if "columns" in value and "data" in value:  # an inline table (older W&B)
        body: Any = value
    else:
        _, raw = _file(value.get("path"), fetch)
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise Unreadable(f"its file {value.get('path')} is not table JSON ({exc})") from None
    if not isinstance(body, dict):
        raise Unreadable("its JSON is not a table object")
    columns, data = body.get("columns"), body.get("data")
    if not isinstance(columns, list) or not isinstance(data, list) or not all(isinstance(r, list) for r in data):
        raise Unreadable("its JSON holds no columns/data lists")
    rows, stringified = [], 0
    for row in data:
        cells = []
        for c in row:
            cell, changed = _cell(c)
            stringified += changed
            cells.append(cell)
        rows.append(cells)
    derived: dict[str, Any] = {"columns": len(columns), "rows": len(rows)}
    if stringified:
        derived["stringified"] = stringified
    out = json.dumps({"columns": [str(c) for c in columns], "rows": rows}, allow_nan=True).encode()
    return _payload(key, step, when, "table", out, "json", _caption(value, extra), _meta(derived, extra))


def _text(key: str, step: int, when: float, value: Mapping[str, Any], fetch: Fetch,
          extra: Mapping[str, Any] | None) -> Media:
    _, raw = _file(value.get("path"), fetch)
    source = raw.decode("utf-8", "replace")
    text = html_text(source)
    derived: dict[str, Any] = {}
    if text is None:  # HTML that trackkit did not write: the source, as text
        text, derived = source, {"html": True}
    return _payload(key, step, when, "text", text.encode("utf-8"), "txt", _caption(value, extra),
                    _meta(derived, extra))


def read_value(key: str, step: int, when: float, value: Mapping[str, Any], fetch: Fetch,
               extra: Mapping[str, Any] | None = None) -> list[Media]:
    """The ``Media`` events of one W&B media value (a dict with ``_type``); ``Unreadable`` when
    it has no trackkit kind or its file is missing."""
    kind = value.get("_type")
    if kind == "image-file":
        return [_image(key, step, when, value, fetch, extra)]
    if kind == "histogram":
        return [_histogram(key, step, when, value, extra)]
    if kind in ("table-file", "table"):
        return [_table(key, step, when, value, fetch, extra)]
    if kind == "html-file":
        return [_text(key, step, when, value, fetch, extra)]
    if kind == "audio-file":
        return [_audio(key, step, when, value, fetch, extra)]
    if kind in _LIST_TYPES:
        return _listed(key, step, when, value, fetch, str(kind))
    raise Unreadable(f"W&B type {kind!r} has no trackkit media kind (image, histogram, text, table, audio)")


def _listed(key: str, step: int, when: float, value: Mapping[str, Any], fetch: Fetch, kind: str) -> list[Media]:
    field, what = _LIST_TYPES[kind]
    items = value.get(field)
    if not isinstance(items, list):
        raise Unreadable(f"its {field} list is missing")
    given = value.get("captions")
    captions: list[Any] = given if isinstance(given, list) else []
    out = []
    for i, item in enumerate(items):
        one = dict(item) if isinstance(item, dict) else {"path": item}
        if i < len(captions) and not one.get("caption"):
            one["caption"] = captions[i]
        index = {"meta": {"index": i, "count": len(items)}}
        ev = _image(key, step, when, one, fetch, index) if what == "image" else _audio(key, step, when, one, fetch,
                                                                                        index)
        out.append(ev)
    return out


def read_kept(desc: Mapping[str, Any], fetch: Fetch, when: float) -> Media:
    """A value the sink kept as a run file (its descriptor in the ``trackkit/media`` column)."""
    path, data = _file(desc.get("file"), fetch)
    meta = desc.get("meta")
    step = desc.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        raise Unreadable("its descriptor has no step")
    return Media(key=str(desc.get("key", "")), step=step, kind=str(desc.get("kind", "")), path=path,
                 sha256=hashlib.sha256(data).hexdigest(), size=len(data), format=str(desc.get("format", "")),
                 time=float(desc.get("time") or when), caption=str(desc.get("caption") or ""),
                 meta=dict(meta) if isinstance(meta, dict) else {})
