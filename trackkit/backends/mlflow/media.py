"""Media in MLflow: where each kind goes in a run's artifacts (the layout), the writer the sink uses
and the finder the reader uses. The table of ``docs/backends/mlflow.md`` ("Media") is the truth.

Every path is a function of the event (key, step, time, sha256), so a batch sent again overwrites
what it wrote instead of adding to it. Images take the form ``MlflowClient.log_image(key=, step=)``
writes (``images/<key>+step+<step>+timestamp+<ms>+<uuid>.png`` and a ``+compressed.webp``
thumbnail, the per-step gallery of MLflow's UI), with a uuid derived from the event instead of a
random one; the other kinds are one artifact per step under ``<kind dir>/<key>/``. An index per
batch, ``trackkit/media/<ms>-<hash>.json``, keeps what the files cannot: the original key, the
caption, the time, the meta.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...backend import image_meta, map_key, payload_file, short_hash
from ...events import Media
from .names import MAX_KEY_LENGTH, MAX_TAG_LENGTH

#: the key alphabet of ``log_image(key=)`` (``^[a-zA-Z0-9_\-./ ]+$``), used for every kind's paths
MEDIA_KEY_CHARS = r"a-zA-Z0-9_\-./ "
A_MEDIA_INDEX = "trackkit/media"
A_ORIGINALS = "trackkit/media/originals"
#: the directory of each kind (images: MLflow's own)
KIND_DIRS = {"image": "images", "histogram": "histograms", "text": "text", "table": "tables", "audio": "audio"}
EXTS = {"histogram": "json", "text": "txt", "table": "json", "audio": "wav"}
#: MLflow's tags: the run has logged images; the list of tables (``log_table``)
T_LOGGED_IMAGES = "mlflow.loggedImages"
T_LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"

_SERIES = re.compile(
    r"^images/(?P<key>[^+%]+)(?P<sep>[+%])step(?P=sep)(?P<step>-?\d+)(?P=sep)timestamp(?P=sep)(?P<ts>\d+)"
    r"(?P=sep)(?P<id>[^+%/]+)\.png$"
)
_LAYOUT = re.compile(
    r"^(?P<dir>histograms|text|tables|audio)/(?P<key>.+)/step_(?P<step>-?\d+)(?:-(?P<id>[0-9a-f]+))?\.(?P<ext>\w+)$"
)
_IMAGE_EXTS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif"}
_DIR_KINDS = {v: k for k, v in KIND_DIRS.items()}


def media_key(key: str) -> str:
    """The key a media value's paths carry: the adapter's key rule (``backend.map_key``, collision-free,
    the original kept in the index) with the alphabet ``log_image(key=)`` accepts."""
    return map_key(key, allowed=MEDIA_KEY_CHARS, max_length=MAX_KEY_LENGTH)


def media_id(ev: Media) -> str:
    """8 hex digits naming one media value: the same event always gets the same name."""
    return short_hash(f"{ev.kind}\0{ev.key}\0{ev.step}\0{int(ev.time * 1000)}\0{ev.sha256}")


def series_path(key: str, step: int, timestamp_ms: int, uid: str) -> str:
    """The file ``log_image(key=, step=)`` writes (MLflow 3: ``/`` in the key becomes ``~``)."""
    return f"images/{key.replace('/', '~')}+step+{step}+timestamp+{timestamp_ms}+{uid}.png"


def artifact_file(ev: Media) -> str:
    """Where ``ev``'s payload goes in the run."""
    mk = media_key(ev.key)
    if ev.kind == "image":
        h = short_hash(f"{media_id(ev)}\0{ev.sha256}", 32)
        uid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        return series_path(mk, int(ev.step), int(ev.time * 1000), uid)
    return f"{KIND_DIRS[ev.kind]}/{mk}/step_{int(ev.step)}-{media_id(ev)}.{EXTS[ev.kind]}"


def table_json(data: bytes) -> bytes:
    """trackkit's table JSON (``columns``/``rows``) as ``log_table`` writes it (pandas ``orient="split"``:
    ``columns``/``data``, ASCII-escaped as pandas writes it), cells as they are."""
    t = json.loads(data)
    return json.dumps({"columns": t["columns"], "data": t["rows"]}, allow_nan=True).encode()


class MediaWriter:
    """Writes one sink's media values into its MLflow run; ``index`` / ``tags`` after a batch."""

    def __init__(self, client: Any) -> None:
        self.client = client
        #: index records of this batch
        self.pending: list[dict[str, Any]] = []

    def write(self, run_id: str, ev: Media) -> None:
        data = ev.read_bytes()
        path = artifact_file(ev)
        rec: dict[str, Any] = {
            "key": ev.key, "step": int(ev.step), "kind": ev.kind, "time": ev.time, "caption": ev.caption,
            "format": ev.format, "sha256": ev.sha256, "size": len(data), "meta": dict(ev.meta), "artifact": path,
        }  # fmt: skip
        if ev.kind == "image":
            png = data if ev.format == "png" else _to_png(data)
            if png is not data:  # the series holds PNG (what the UI shows); the original bytes stay too
                rec["original"] = f"{A_ORIGINALS}/{media_id(ev)}.{ev.format}"
                self.upload(run_id, data, rec["original"])
            self.upload(run_id, png, path)
            self.upload(run_id, _thumbnail(png), path[: -len(".png")] + "+compressed.webp")
        elif ev.kind == "table":
            self.upload(run_id, table_json(data), path)
        else:
            self.upload(run_id, data, path)
        self.pending.append(rec)

    def upload(self, run_id: str, data: bytes, path: str) -> None:
        """``data`` as the artifact ``path`` of the run (replacing a file already there)."""
        folder, name = posixpath.split(path)
        with tempfile.TemporaryDirectory(prefix="trackkit-mlflow-") as tmp:
            local = os.path.join(tmp, name)
            with open(local, "wb") as fh:
                fh.write(data)
            self.client.log_artifact(run_id, local, folder or None)

    def finish_batch(self, run_id: str, tags: Mapping[str, str]) -> dict[str, str]:
        """Write this batch's index; the MLflow tags to set (``tags``: what the run holds now)."""
        if not self.pending:
            return {}
        recs, self.pending = self.pending, []
        body = json.dumps({"media": recs}, default=str, allow_nan=True, indent=1)  # ASCII: any key encodes
        first = min(int(r["time"] * 1000) for r in recs)
        name = f"{A_MEDIA_INDEX}/{first:015d}-{short_hash(''.join(r['artifact'] for r in recs))}.json"
        self.upload(run_id, body.encode(), name)
        out: dict[str, str] = {}
        if any(r["kind"] == "image" for r in recs) and tags.get(T_LOGGED_IMAGES) != "True":
            out[T_LOGGED_IMAGES] = "True"
        tables = [r["artifact"] for r in recs if r["kind"] == "table"]
        if tables:
            try:
                listed = json.loads(tags.get(T_LOGGED_ARTIFACTS, "[]"))
            except ValueError:
                listed = []
            listed = listed if isinstance(listed, list) else []
            for p in tables:
                entry = {"path": p, "type": "table"}
                if entry not in listed:
                    listed.append(entry)
            text = json.dumps(listed)
            if len(text) <= MAX_TAG_LENGTH:  # beyond it, the index and the layout still find the tables
                out[T_LOGGED_ARTIFACTS] = text
        return out

    def drop(self) -> None:
        self.pending = []


def _to_png(data: bytes) -> bytes:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as img:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
    return buf.getvalue()


def _thumbnail(png: bytes) -> bytes:
    """The ``+compressed.webp`` MLflow's gallery shows (``mlflow.tracking.multimedia.compress_image_size``)."""
    from mlflow.tracking.multimedia import compress_image_size
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(png)) as img:
        small = compress_image_size(img if img.mode in ("RGB", "RGBA") else img.convert("RGBA"))
        buf = io.BytesIO()
        small.save(buf, format="WEBP")
    return buf.getvalue()


# ---------------------------------------------------------------- reading


@dataclass
class _Found:
    path: str
    kind: str
    key: str
    step: int
    time: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    rec: Mapping[str, Any] | None = None


def walk(client: Any, mid: str, skip: Iterable[str]) -> set[str]:
    """Every artifact file of the run a media value may be in: not under ``skip`` (trackkit's artifact
    directories), trackkit's bookkeeping (but its media index), ``table_images/`` or a logged model."""
    skipped = tuple(s.rstrip("/") + "/" for s in skip if s)
    out: set[str] = set()
    todo: list[str | None] = [None]
    while todo:
        path = todo.pop()
        infos = list(client.list_artifacts(mid, path))
        if path is not None and any(posixpath.basename(f.path) == "MLmodel" for f in infos):
            continue  # a model directory
        for f in infos:
            p = f.path
            if f.is_dir:
                if (p + "/").startswith(skipped) or p == "table_images":
                    continue
                if p == "trackkit" or p.startswith("trackkit/"):
                    if not (p == A_MEDIA_INDEX or A_MEDIA_INDEX.startswith(p + "/") or p.startswith(A_ORIGINALS)):
                        continue
                todo.append(p)
            elif not p.startswith(skipped):
                out.add(p)
    return out


def candidates(files: Iterable[str], skip: Iterable[str], models: Iterable[str]) -> set[str]:
    """The files of a run (from one walk of all of them) a media value may be in: what :func:`walk` finds."""
    skipped = tuple(s.rstrip("/") + "/" for s in skip if s) + tuple(m.rstrip("/") + "/" for m in models if m)
    out = set()
    for p in files:
        if p.startswith(skipped) or p.startswith("table_images/"):
            continue
        if p.startswith("trackkit/") and not p.startswith(A_MEDIA_INDEX + "/"):
            continue
        out.add(p)
    return out


def consumed(files: Iterable[str], tags: Mapping[str, str]) -> set[str]:
    """The files the media finder reads or owns (series and thumbnails, trackkit's layout, its indexes and
    originals, ``log_table`` files): the reader returns the others as artifacts."""
    listed = set(files)
    out = {p for p in listed if p.startswith(A_MEDIA_INDEX + "/") or _classify(p, 0.0) is not None
           or (p.startswith("images/") and p.endswith("+compressed.webp"))}  # fmt: skip
    out.update(e for e in _logged_tables(tags) if e in listed)
    return out


def read_media(
    client: Any, mid: str, files: set[str], tags: Mapping[str, str], start_time: float, remote: bool
) -> list[Media]:
    """The media values of run ``mid`` (``files``: from :func:`walk`), trackkit's and MLflow's own."""
    records: dict[str, Mapping[str, Any]] = {}
    for path in sorted(p for p in files if p.startswith(A_MEDIA_INDEX + "/") and p.endswith(".json")):
        if path.startswith(A_ORIGINALS + "/"):
            continue
        try:
            body = json.loads(_download(client, mid, path))
        except (ValueError, UnicodeDecodeError):
            continue
        for rec in body.get("media", []) if isinstance(body, dict) else []:
            if isinstance(rec, dict) and isinstance(rec.get("artifact"), str):
                records[rec["artifact"]] = rec
    found: dict[str, _Found] = {}
    for path in sorted(files):
        item = _classify(path, start_time)
        if item is not None:
            found[path] = item
    for entry in _logged_tables(tags):
        if entry in files and entry not in found:
            found[entry] = _Found(entry, "table", entry, 0, meta={"mlflow_artifact_file": entry, "no_step": True})
    for path, item in found.items():
        rec = records.get(path)
        if rec is not None and rec.get("kind") == item.kind:
            item.rec = rec
            item.key = str(rec.get("key", item.key))
            item.step = int(rec.get("step", item.step))
    items = list(found.values())

    def load(item: _Found) -> Media | None:
        return _media(client, mid, item, files, start_time)

    if remote and len(items) > 4:  # one request per file: overlap the round trips
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="trackkit-mlflow-media") as pool:
            got = list(pool.map(load, items))
    else:
        got = [load(i) for i in items]
    return [m for m in got if m is not None]


def _classify(path: str, start_time: float) -> _Found | None:
    m = _SERIES.match(path)
    if m is not None:
        key = m["key"].replace("~", "/").replace("#", "/")
        return _Found(path, "image", key, int(m["step"]), int(m["ts"]) / 1000, {"mlflow_path": path})
    if path.startswith(("images/", "trackkit/", "table_images/")):
        return None  # thumbnails, MLflow's and trackkit's own files
    m = _LAYOUT.match(path)
    if m is not None:
        kind = _DIR_KINDS[m["dir"]]
        if m["ext"] == EXTS[kind]:
            return _Found(path, kind, m["key"], int(m["step"]), meta={"mlflow_path": path})
    ext = path.rsplit(".", 1)[-1].lower() if "." in posixpath.basename(path) else ""
    if ext in _IMAGE_EXTS:  # log_image(artifact_file=), log_figure: an image without a step
        return _Found(path, "image", path, 0, start_time, {"mlflow_artifact_file": path, "no_step": True})
    return None


def _logged_tables(tags: Mapping[str, str]) -> list[str]:
    try:
        listed = json.loads(tags.get(T_LOGGED_ARTIFACTS, "[]"))
    except ValueError:
        return []
    if not isinstance(listed, list):
        return []
    return [str(e["path"]) for e in listed if isinstance(e, dict) and e.get("type") == "table" and "path" in e]


def _download(client: Any, mid: str, path: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="trackkit-mlflow-") as tmp:
        local = client.download_artifacts(mid, path, tmp)
        with open(local, "rb") as fh:
            return fh.read()


def _media(client: Any, mid: str, item: _Found, files: set[str], start_time: float) -> Media | None:
    rec = item.rec or {}
    original = rec.get("original")
    source = original if isinstance(original, str) and original in files else item.path
    data = _download(client, mid, source)
    meta: dict[str, Any] = dict(rec["meta"]) if isinstance(rec.get("meta"), dict) else dict(item.meta)
    if item.kind == "image":
        head = image_meta(data)
        if not head:
            return None
        fmt = str(head["format"])
        if not rec:
            meta.update(width=head["width"], height=head["height"], channels=_channels(data))
    elif item.kind == "table":
        fmt = "json"
        table = _canonical_table(data)
        if table is None:
            return None
        data = table
    elif item.kind == "histogram":
        fmt = "json"
        try:
            h = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        if not (isinstance(h, dict) and isinstance(h.get("counts"), list) and isinstance(h.get("edges"), list)):
            return None
    elif item.kind == "audio":
        fmt = "wav"
        if "sample_rate" not in meta:
            rate = _sample_rate(data)
            if rate is None:
                return None
            meta["sample_rate"] = rate
    else:
        fmt = "txt"
    path, sha = payload_file(data, {"jpeg": "jpg"}.get(fmt, fmt))
    when = rec.get("time")
    time = float(when) if isinstance(when, (int, float)) else (item.time if item.time is not None else start_time)
    return Media(
        key=item.key, step=item.step, kind=item.kind, path=path, sha256=sha, size=len(data), format=fmt,
        time=time, caption=str(rec.get("caption", "")), meta=meta,
    )  # fmt: skip


def _canonical_table(data: bytes) -> bytes | None:
    """A ``log_table`` JSON (``orient="split"``: columns, data[, index]) as trackkit's table JSON; cells
    that are not str/int/float/bool/None (an image cell's dict) become their JSON text."""
    try:
        t = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(t, dict) or not isinstance(t.get("columns"), list):
        return None
    rows = t.get("data", t.get("rows"))
    if not isinstance(rows, list):
        return None
    scalar = (str, int, float, bool, type(None))
    out = [[c if isinstance(c, scalar) else json.dumps(c, default=str) for c in r] for r in rows if isinstance(r, list)]
    return json.dumps({"columns": [str(c) for c in t["columns"]], "rows": out}, allow_nan=True).encode()


def _channels(data: bytes) -> int:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as img:
        return len(img.getbands())


def _sample_rate(data: bytes) -> int | None:
    import wave

    try:
        with wave.open(io.BytesIO(data)) as w:
            return int(w.getframerate())
    except (wave.Error, EOFError):
        return None
