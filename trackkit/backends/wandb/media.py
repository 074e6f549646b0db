"""Media into W&B: a canonical ``Media`` event as the W&B SDK's own media type.

image -> ``wandb.Image(path, caption=)``, histogram -> ``wandb.Histogram(np_histogram=(counts, edges))``,
table -> ``wandb.Table(columns=, data=rows, allow_mixed_types=True)``, text -> ``wandb.Html`` of the
text escaped in ``<pre class="trackkit-text">`` (``inject=False``: the file holds exactly that),
audio -> ``wandb.Audio(wav path, sample_rate=, caption=)``. What those types do not keep (a
histogram's min/max/sum, a text's caption, a figure's flag, the canonical file's sha256) goes
into the row's ``trackkit/media`` column (``extras``); a value W&B cannot take at its step (a
lower step, the same key twice at one step) or cannot build is kept as a plain run file under
``trackkit-media/`` with a descriptor in that column (``kept_file``). See docs/backends/wandb.md.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from typing import Any

from ...backend import safe_name
from ...events import Media
from .names import MEDIA_DIR

__all__ = ["DERIVED_META", "TEXT_CLOSE", "TEXT_OPEN", "extras", "html_text", "kept_file", "native", "text_html"]

#: the wrapper of a trackkit text inside a ``wandb.Html`` panel
TEXT_OPEN = '<pre class="trackkit-text" style="white-space: pre-wrap">'
TEXT_CLOSE = "</pre>"
#: meta keys the reader derives from the stored file itself (so ``extras`` leaves them out)
DERIVED_META: dict[str, frozenset[str]] = {
    "image": frozenset({"width", "height", "channels"}),
    "audio": frozenset({"sample_rate"}),
    "table": frozenset({"columns", "rows"}),
    "histogram": frozenset(),
    "text": frozenset(),
}
#: kinds whose W&B type holds a caption
_NATIVE_CAPTION = frozenset({"image", "audio"})


def text_html(text: str) -> str:
    """The ``wandb.Html`` source of a text: shown as preformatted text, read back exactly."""
    return TEXT_OPEN + html.escape(text, quote=False) + TEXT_CLOSE


def html_text(source: str) -> str | None:
    """The text of an ``html-file`` trackkit wrote (``text_html``), else None (some other HTML)."""
    if source.startswith(TEXT_OPEN) and source.endswith(TEXT_CLOSE):
        return html.unescape(source[len(TEXT_OPEN):len(source) - len(TEXT_CLOSE)])
    return None


def _json(ev: Media) -> Any:
    return json.loads(ev.read_bytes().decode("utf-8"))


def native(wandb: Any, ev: Media) -> Any:
    """The W&B SDK object of a canonical media event (raises when W&B cannot build it)."""
    caption = ev.caption or None
    if ev.kind == "image":
        return wandb.Image(ev.path, caption=caption)
    if ev.kind == "histogram":
        data = _json(ev)
        return wandb.Histogram(np_histogram=(list(data["counts"]), list(data["edges"])))
    if ev.kind == "table":
        data = _json(ev)
        limit = int(getattr(wandb.Table, "MAX_ROWS", 10000))
        if len(data["rows"]) > limit:  # wandb.Table would truncate it with only a log line
            raise ValueError(f"{len(data['rows'])} rows; W&B keeps at most {limit} per logged table (it truncates)")
        return wandb.Table(columns=list(data["columns"]), data=[list(r) for r in data["rows"]], allow_mixed_types=True)
    if ev.kind == "text":
        text = ev.read_bytes().decode("utf-8")  # strict: a lone surrogate is kept as a run file instead
        return wandb.Html(text_html(text), inject=False, data_is_not_path=True)
    if ev.kind == "audio":
        return wandb.Audio(ev.path, sample_rate=ev.meta.get("sample_rate"), caption=caption)
    raise ValueError(f"no W&B type for media kind {ev.kind!r}")


def extras(ev: Media) -> dict[str, Any]:
    """What the W&B type of ``ev`` does not keep, for the row's ``trackkit/media`` column."""
    out: dict[str, Any] = {"kind": ev.kind, "sha256": ev.sha256}
    if ev.caption and ev.kind not in _NATIVE_CAPTION:
        out["caption"] = ev.caption
    meta = {k: v for k, v in ev.meta.items() if k not in DERIVED_META.get(ev.kind, frozenset())}
    if meta:
        out["meta"] = meta
    if ev.kind == "histogram":
        stats = {k: v for k, v in _json(ev).items() if k not in ("counts", "edges")}
        if stats:
            out["stats"] = stats
    return out


def kept_file(ev: Media, run_dir: str, stored_key: str) -> tuple[str, dict[str, Any]]:
    """Copy the payload into the run's files (``trackkit-media/<key>/<step>-<sha>.<ext>``):
    ``(absolute path, descriptor)``; the descriptor (with the original step) goes into the
    row's ``trackkit/media`` column. Content-addressed: a re-sent value copies nothing twice."""
    ext = os.path.splitext(ev.path)[1] or f".{ev.format}"
    rel = f"{MEDIA_DIR}/{safe_name(stored_key, limit=80)}/{ev.step}-{ev.sha256[:12]}{ext}"
    dest = os.path.join(run_dir, *rel.split("/"))
    if not os.path.exists(dest):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = f"{dest}.tmp{os.getpid()}"
        shutil.copyfile(ev.path, tmp)
        os.replace(tmp, dest)
    desc: dict[str, Any] = {
        "key": ev.key, "step": ev.step, "time": ev.time, "kind": ev.kind, "format": ev.format, "file": rel,
        "sha256": ev.sha256, "caption": ev.caption, "meta": dict(ev.meta),
    }
    return dest, desc
