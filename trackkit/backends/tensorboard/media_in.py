"""TensorBoard's image, histogram, text and audio summaries read back as canonical ``Media`` events.

Works for runs trackkit wrote (each value's ``trackkit/media`` record restores the caption,
the meta, the typed table and the histogram's exact edges) and for logdirs written by other
tools (torch's ``SummaryWriter``: ``add_image``/``add_images``/``add_figure`` -> images,
``add_histogram``, ``add_text`` (tag ``<key>/text_summary``), ``add_audio``). The payload bytes
are written out with ``backend.payload_file``. See docs/backends/tensorboard.md#media.
"""

from __future__ import annotations

import hashlib
import io
import json
import wave
from collections.abc import Callable
from typing import Any

from ...backend import image_meta, payload_file
from ...events import Media
from .layout import TRACKKIT_TEXTS
from .media_out import image_channels, linspace

__all__ = ["MEDIA_PLUGINS", "MediaRecords", "hash_only", "read_media"]

#: TensorBoard plugin -> trackkit media kind (a text tensor of rank 2 is a table)
MEDIA_PLUGINS = {"images": "image", "histograms": "histogram", "text": "text", "audio": "audio"}
_TORCH_TEXT_SUFFIX = "/text_summary"


def hash_only(data: bytes, ext: str) -> tuple[str, str]:
    """A ``store`` that writes nothing (listing runs counts media; no payload file is needed)."""
    return "", hashlib.sha256(data).hexdigest()


class MediaRecords:
    """The ``trackkit/media`` records of a run, by (key, step, wall time), and where payloads go
    (``store``: ``backend.payload_file``, or ``hash_only`` when only counting)."""

    def __init__(self, store: Callable[[bytes, str], tuple[str, str]] = payload_file) -> None:
        self.by_value: dict[tuple[str, int, float], list[dict[str, Any]]] = {}
        self.store = store

    def add(self, step: int, wall: float, text: str) -> None:
        try:
            rec = json.loads(text)
        except ValueError:
            return
        if isinstance(rec, dict) and isinstance(rec.get("key"), str) and "error" not in rec:
            self.by_value.setdefault((rec["key"], step, wall), []).append(rec)

    def take(self, key: str, step: int, wall: float, kind: str) -> dict[str, Any] | None:
        recs = self.by_value.get((key, step, wall))
        for rec in recs or ():
            if rec.get("kind") == kind:
                return rec
        return None


def read_media(tag: str, plugin: str, tensor_events: list[Any], records: MediaRecords,
               make_ndarray: Any) -> list[Media]:
    """The media events of one tag (``[]`` when the tag is not media)."""
    if plugin == "text" and tag in TRACKKIT_TEXTS:
        return []
    kind = MEDIA_PLUGINS.get(plugin)
    if kind is None:
        return []
    out: list[Media] = []
    seen: set[tuple[int, float, str]] = set()
    for te in tensor_events:
        arr = make_ndarray(te.tensor_proto)
        for m in _values(tag, kind, te.step, te.wall_time, arr, records):
            ident = (m.step, m.time, m.sha256)
            if ident not in seen:  # a value written twice (an agent restarted between write and cursor)
                seen.add(ident)
                out.append(m)
    return out


def _media(records: MediaRecords, key: str, step: int, wall: float, kind: str, data: bytes, fmt: str, caption: str,
           meta: dict[str, Any]) -> Media:
    ext = {"jpeg": "jpg"}.get(fmt, fmt)
    path, sha = records.store(data, ext)
    return Media(key=key, step=step, kind=kind, path=path, sha256=sha, size=len(data), format=fmt, time=wall,
                 caption=caption, meta=meta)


def _values(tag: str, kind: str, step: int, wall: float, arr: Any, records: MediaRecords) -> list[Media]:
    if kind == "image":
        return _images(records, tag, step, wall, arr, records.take(tag, step, wall, "image"))
    if kind == "histogram":
        rec = records.take(tag, step, wall, "histogram")
        return [_histogram(records, tag, step, wall, arr.tolist() if arr.size else [], rec)]
    if kind == "audio":
        return _audio(records, tag, step, wall, arr, records.take(tag, step, wall, "audio"))
    # text: rank 0 (trackkit) or one element (torch's add_text) is a text, rank 1 or 2 a table
    cells = [c if isinstance(c, bytes) else str(c).encode("utf-8") for c in arr.reshape(-1).tolist()]
    table_rec = records.take(tag, step, wall, "table")
    if table_rec is not None and isinstance(table_rec.get("table"), str):
        data = table_rec["table"].encode("utf-8", "surrogatepass")
        return [_media(records, tag, step, wall, "table", data, "json", str(table_rec.get("caption", "")),
                       dict(table_rec.get("meta") or {}))]
    rec = records.take(tag, step, wall, "text")
    key = tag
    if rec is None and tag.endswith(_TORCH_TEXT_SUFFIX) and len(tag) > len(_TORCH_TEXT_SUFFIX):
        key = tag[: -len(_TORCH_TEXT_SUFFIX)]  # torch's add_text("t", ...) writes the tag "t/text_summary"
    caption, meta = (str(rec.get("caption", "")), dict(rec.get("meta") or {})) if rec else ("", {})
    if arr.ndim == 0 or (arr.size == 1 and arr.ndim == 1):
        return [_media(records, key, step, wall, "text", cells[0] if cells else b"", "txt", caption, meta)]
    # a text tensor TensorBoard shows as a table: every cell a string, no header row
    ncols = 1 if arr.ndim == 1 else int(arr.shape[-1])
    text = [c.decode("utf-8", "replace") for c in cells]
    rows = [text[i:i + ncols] for i in range(0, len(text), ncols)] if ncols else []
    table = {"columns": [str(i) for i in range(ncols)], "rows": rows}
    data = json.dumps(table).encode()
    return [_media(records, key, step, wall, "table", data, "json", caption,
                   {"columns": ncols, "rows": len(rows), "shape": [int(n) for n in arr.shape]})]


def _images(records: MediaRecords, tag: str, step: int, wall: float, arr: Any,
            rec: dict[str, Any] | None) -> list[Media]:
    # the image plugin's tensor: [width, height, image, image, ...] (several images: one Media each)
    items = [c for c in arr.reshape(-1).tolist()[2:] if isinstance(c, bytes)]
    out = []
    for i, data in enumerate(items):
        head = image_meta(data)
        if not head:
            continue  # not PNG/JPEG/GIF: TensorBoard itself would not show it
        meta: dict[str, Any] = dict(rec.get("meta") or {}) if rec is not None and len(items) == 1 else {}
        meta.update(width=int(head["width"]), height=int(head["height"]))
        meta["channels"] = image_channels(data) or meta.get("channels", 3)
        if len(items) > 1:
            meta["index"] = i
        caption = str(rec.get("caption", "")) if rec is not None else ""
        out.append(_media(records, tag, step, wall, "image", data, str(head["format"]), caption, meta))
    return out


def _audio(records: MediaRecords, tag: str, step: int, wall: float, arr: Any,
           rec: dict[str, Any] | None) -> list[Media]:
    # the audio plugin's tensor: [[wav, label], ...] (or [wav, ...] without labels)
    rows = arr.tolist() if arr.ndim == 2 else [[c] for c in arr.reshape(-1).tolist()]
    out = []
    for i, row in enumerate(rows):
        data = row[0]
        if not isinstance(data, bytes):
            continue
        try:
            with wave.open(io.BytesIO(data)) as w:
                meta: dict[str, Any] = {"sample_rate": w.getframerate(), "channels": w.getnchannels(),
                                        "frames": w.getnframes()}
        except (wave.Error, EOFError):
            continue  # not WAV: TensorBoard's audio plugin plays WAV only
        label = row[1].decode("utf-8", "replace") if len(row) > 1 and isinstance(row[1], bytes) else ""
        if rec is not None and len(rows) == 1:
            meta = {**dict(rec.get("meta") or {}), **meta}
            label = str(rec.get("caption", "")) or label
        if len(rows) > 1:
            meta["index"] = i
        out.append(_media(records, tag, step, wall, "audio", data, "wav", label, meta))
    return out


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def _histogram(records: MediaRecords, tag: str, step: int, wall: float, rows: list[list[float]],
               rec: dict[str, Any] | None) -> Media:
    """TensorBoard's ``[left, right, count]`` rows as counts/edges; trackkit's record restores the
    empty end buckets TensorBoard dropped, the exact (float64) edges and the statistics."""
    counts: list[int | float] = [_number(r[2]) for r in rows]
    edges = [float(rows[0][0])] + [float(r[1]) for r in rows] if rows else [0.0]
    h: dict[str, Any]
    side = (rec or {}).get("histogram")
    if isinstance(side, dict) and isinstance(side.get("bins"), int):
        n, lead = side["bins"], int(side.get("lead", 0))
        counts = side["counts"] if "counts" in side else [0] * lead + counts + [0] * (n - lead - len(counts))
        if "linspace" in side:
            edges = linspace(float(side["linspace"][0]), float(side["linspace"][1]), n)
        else:
            edges = side["edges"]
        h = {"counts": counts, "edges": edges, **dict(side.get("stats") or {})}
        meta = dict((rec or {}).get("meta") or {})
        caption = str((rec or {}).get("caption", ""))
    else:
        h = {"counts": counts, "edges": edges, "num": _number(sum(counts))}
        if rows:
            h.update(min=edges[0], max=edges[-1])
        meta, caption = {"bins": len(counts)}, ""
    return _media(records, tag, step, wall, "histogram", json.dumps(h).encode(), "json", caption, meta)
