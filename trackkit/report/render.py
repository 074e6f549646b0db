"""A report as one self-contained HTML file: every script and style inlined (plotly's offline
bundle), no request to any network, every user string escaped (docs/report.md#untrusted-text).

The tables, the config diff, the images and the checkpoints are HTML built here with
``html.escape``; the curves and the sweep view are drawn by ``page.js`` from a JSON block whose
``<``, ``>`` and ``&`` are written as ``\\u003c`` ... (a string can never close the script element),
and which escapes every string it hands to plotly (plotly reads names as pseudo-HTML). A Content
Security Policy allows only the page's own scripts (by nonce): an inline event handler that got in
anyway would not run, and nothing is fetched."""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from html import escape
from importlib import resources
from typing import Any

from ..errors import MissingDependency
from ..query import MISSING
from .model import ReportData

__all__ = ["PALETTE", "plotly_bundle", "render_html"]

#: run colours (Tableau 10, then Plotly's): a run has the same colour in every plot and the table
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880"]
INSTALL = "pip install 'trackkit[report]'"


def plotly_bundle() -> str:
    """plotly.js (the offline bundle the ``plotly`` package ships); ``MissingDependency`` names the install."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise MissingDependency(f"trackkit report needs plotly (its offline bundle draws the curves). "
                                f"Fix: {INSTALL}") from None
    js: str = get_plotlyjs()
    return js.replace("</script", "<\\/script")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _json_script(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _e(v: Any) -> str:
    return escape(str(v), quote=True)


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    return str(v)


def _value(v: Any) -> str:
    if v is MISSING:
        return '<span class="dim">—</span>'
    if isinstance(v, str):
        return _e(v)
    if isinstance(v, (int, float)) or v is None:
        return f'<span class="num">{_e(_num(v) if v is not None else "null")}</span>'
    return _e(json.dumps(v, default=str, ensure_ascii=False))


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    n = round(s)
    return f"{n // 3600}:{n % 3600 // 60:02d}:{n % 60:02d}"


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    size, unit = float(n), "B"
    for u in ("KB", "MB", "GB"):
        if size < 1024:
            break
        size, unit = size / 1024, u
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"


def _swatch(i: int) -> str:
    return f'<span class="sw" style="background:{PALETTE[i % len(PALETTE)]}"></span>'


def _runs_table(d: ReportData) -> str:
    cfg = list(d.config_differs)[: d.table_config]
    mkeys = list(d.curves)[: d.table_metrics]
    head = ["run", "backend", "status", "start", "duration"]
    if any(i.parent for i in d.runs):
        head.append("parent")
    rows = ["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "".join(f'<th class="cfg">{_e(k)}</th>' for k in cfg)
            + "".join(f'<th class="met">{_e(k)}<br><span class="dim">last · best</span></th>' for k in mkeys) + "</tr>"]
    for n, (i, label) in enumerate(zip(d.runs, d.labels)):
        status = f'<span class="st st-{_e(i.status.value)}">{_e(i.status.value)}</span>'
        if i.reason:
            status += f' <span class="reason">{_e(i.reason)}</span>'
        cells = [f'{_swatch(n)}<span class="name">{_e(label)}</span><br><span class="dim id">{_e(i.run_id)}</span>',
                 _e(i.backend or "journal"), status, _e(_when(i.start_time)), _e(_duration(i.duration))]
        if "parent" in head:
            cells.append(f'<span class="id">{_e(i.parent or "-")}</span>')
        cells += [_value(d.config_differs[k][n]) for k in cfg]
        for k in mkeys:
            st = i.metrics.get(k)
            best = i.best(k)
            if st is None:
                cells.append('<span class="dim">—</span>')
            else:
                b = _num(best[0]) + (f" @{best[1]}" if best and best[1] is not None else "") if best else "-"
                cells.append(f"{_e(_num(st.last))} · <b>{_e(b)}</b>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    more = len(d.config_differs) - len(cfg)
    note = f'<p class="dim">{more} more config keys differ: see the config diff below.</p>' if more > 0 else ""
    return f'<table class="runs" id="runs-table">{"".join(rows)}</table>{note}'


def _config_diff(d: ReportData) -> str:
    if not d.config_differs:
        same = f" ({len(d.config_same)} keys, all equal)" if d.config_same else ""
        return f"<p>No config differences{_e(same)}.</p>"
    head = "<tr><th>key</th>" + "".join(f"<th>{_swatch(n)}{_e(lab)}</th>" for n, lab in enumerate(d.labels)) + "</tr>"
    rows = [f"<tr><td>{_e(k)}</td>" + "".join(f"<td>{_value(v)}</td>" for v in vals) + "</tr>"
            for k, vals in d.config_differs.items()]
    same = (f'<p class="dim">{len(d.config_same)} config keys are the same in every run.</p>'
            if d.config_same else "")
    return f'<div class="scroll"><table class="diff">{head}{"".join(rows)}</table></div>{same}'


def _images(d: ReportData) -> str:
    parts = []
    for key, cells in d.images.items():
        figs = []
        for n, cell in enumerate(cells):
            if cell is None:
                continue
            cap = f"{d.labels[n]} · step {cell.step}" + (f" · {cell.caption}" if cell.caption else "")
            body = (f'<img src="{_e(cell.src)}" alt="{_e(cell.caption or key)}">' if cell.src
                    else f'<div class="noimg">{_e(cell.note)}</div>')
            figs.append(f"<figure>{body}<figcaption>{_swatch(n)}{_e(cap)}</figcaption></figure>")
        parts.append(f'<h3>{_e(key)}</h3><div class="gallery">{"".join(figs)}</div>')
    return "".join(parts)


def _checkpoints(d: ReportData) -> str:
    rows = ["<tr><th>run</th><th>name</th><th>version</th><th>step</th><th>size</th><th>aliases</th><th>path</th></tr>"]
    for n, cps in d.checkpoints.items():
        for c in cps:
            version = "-" if c.get("version") is None else f"v{c['version']}"
            rows.append(f"<tr><td>{_swatch(n)}{_e(d.labels[n])}</td><td>{_e(c['name'])}</td><td>{_e(version)}</td>"
                        f"<td>{_e('-' if c.get('step') is None else c['step'])}</td><td>{_e(_size(c.get('size')))}</td>"
                        f"<td>{_e(', '.join(c.get('aliases') or []))}</td><td class=\"path\">{_e(c['path'])}</td></tr>")
    return f'<table class="ckpt">{"".join(rows)}</table>'


def render_html(d: ReportData, *, bundle: str | None = None) -> str:
    """The whole page. ``bundle``: plotly.js (default: the installed plotly's offline bundle)."""
    js = plotly_bundle() if bundle is None else bundle
    nonce = secrets.token_urlsafe(16)
    payload = d.payload()
    payload["colors"] = PALETTE
    # 'unsafe-eval': plotly's WebGL traces (parallel coordinates) compile their shaders' glue with
    # Function(); only the page's own (nonce) scripts can call it, an inline handler still never runs
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}' 'unsafe-eval'; style-src 'unsafe-inline'; "
           "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")
    sections = [f"<h2>Runs ({len(d.runs)})</h2>{_runs_table(d)}"]
    if d.curves:
        sections.append(
            '<h2>Curves</h2><div class="controls">'
            '<label>x axis <select id="tk-x"><option value="step">step</option>'
            '<option value="relative">time since start</option><option value="wall">wall clock</option>'
            '</select></label>'
            '<label><input type="checkbox" id="tk-log"> log scale</label>'
            '<label>smoothing <input type="range" id="tk-smooth" min="0" max="0.99" step="0.01" value="0">'
            ' <output id="tk-smooth-v">0</output></label>'
            f'<span class="dim">{d.points_drawn:,} of {d.points_read:,} points drawn (min/max per bucket: '
            'extremes kept)</span></div><div id="tk-curves"></div>')
    if d.sweep:
        sections.append(f'<h2>Sweep: parameters vs {_e(d.sweep["objective"])} ({_e(d.sweep["goal"])})</h2>'
                        '<div id="tk-parcoords" class="plot"></div><div id="tk-scatter" class="grid"></div>')
    sections.append(f"<h2>Config diff</h2>{_config_diff(d)}")
    if d.images:
        sections.append(f"<h2>Images (latest per run)</h2>{_images(d)}")
    if d.checkpoints:
        sections.append(f"<h2>Checkpoints</h2>{_checkpoints(d)}")
    notes = "".join(f"<li>{_e(n)}</li>" for n in d.notes)
    generated = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(d.title)}</title><style>{_asset('page.css')}</style>"
        f'<script nonce="{nonce}">{js}</script></head><body>'
        f'<header><h1>{_e(d.title)}</h1><p class="dim">{len(d.runs)} runs · generated {_e(generated)} by trackkit</p>'
        + (f'<ul class="notes">{notes}</ul>' if notes else "") + "</header><main>"
        + "".join(f"<section>{s}</section>" for s in sections)
        + f'</main><script type="application/json" id="tk-data">{_json_script(payload)}</script>'
        f'<script nonce="{nonce}">{_asset("page.js")}</script></body></html>\n'
    )
