"""The report's data and HTML (no browser): downsampling keeps extremes, the page is self-contained,
every user string is escaped, the CLI selects runs as ``trackkit runs`` does; ``compare --plot`` and
``report --plot`` write PNGs that are checked as images."""

from __future__ import annotations

import io
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from trackkit.cli import main
from trackkit.report import Options, build, render_html, select_runs, write_report
from trackkit.report.downsample import minmax_indices
from trackkit.report.render import PALETTE

from .helpers import SCRIPT_XSS, TITLE_XSS, XSS, write_runs

pytest.importorskip("plotly")


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("rep") / ".trackkit")
    write_runs(root)
    return root


def test_minmax_keeps_every_extreme_and_the_ends() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=10_000)
    v[1234], v[8765], v[4000:4100] = 40.0, -30.0, np.nan
    idx = minmax_indices(v, 500)
    assert len(idx) <= 500 and idx[0] == 0 and idx[-1] == len(v) - 1
    assert {1234, 8765} <= set(idx.tolist())
    assert list(idx) == sorted(set(idx.tolist()))
    # every bucket's min and max survive: the drawn envelope equals the data's per bucket
    assert np.nanmax(v[idx]) == np.nanmax(v) and np.nanmin(v[idx]) == np.nanmin(v)
    assert list(minmax_indices(v[:300], 500)) == list(range(300))  # short curves are untouched
    assert len(minmax_indices(np.full(1000, np.nan), 100)) <= 100


def test_the_data_is_untouched_and_the_curve_is_downsampled(journal: str) -> None:
    recs = select_runs(root=journal)
    before = [len(r.events) for r in recs]
    d = build(recs, Options(points=100))
    assert [len(r.events) for r in recs] == before
    for curves in d.curves.values():
        for c in curves:
            assert len(c["s"]) <= 100 and c["n"] == 300 and c["s"] == sorted(c["s"])
    run0 = next(c for c in d.curves["train/loss"] if recs[c["run"]].info.name == XSS)
    pts = recs[run0["run"]].metrics()["train/loss"]
    assert max(run0["v"]) == pytest.approx(max(v for _, v in pts), rel=1e-6)
    assert min(run0["v"]) == pytest.approx(min(v for _, v in pts), rel=1e-6)


def test_page_is_self_contained_and_escaped(journal: str, tmp_path: Path) -> None:
    out = str(tmp_path / "r.html")
    d = write_report(out, root=journal, options=Options(title=f"t {XSS}"))
    html = Path(out).read_text(encoding="utf-8")
    # nothing is fetched: no external script, style, image or font (outside plotly's bundle, whose
    # strings name plotly.com); a CSP that forbids fetching (the browser test sees it hold)
    ours = re.sub(r"<script nonce=[^>]*>/\*\*\n\* plotly\.js.*?</script>", "", html, count=1, flags=re.S)
    assert len(ours) < len(html) - 4_000_000
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", ours, re.I)
    assert "<link" not in html.lower()
    import html as htmllib

    csp = htmllib.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)[1])
    assert "connect-src 'none'" in csp and "default-src 'none'" in csp and "script-src 'nonce-" in csp
    # every user string appears escaped, never as markup
    for raw in (XSS, TITLE_XSS, SCRIPT_XSS, "onerror=alert(1)>"):
        assert raw not in html, raw
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 3  # title, table, config diff header ...
    assert "&lt;img src=x onerror=&quot;document.title=&#x27;pwned&#x27;&quot;&gt;" in html  # config + caption
    # two <script> elements of ours (plotly, page.js) plus the JSON block, all closed where they should be
    assert html.count("</script>") == 3
    data = json.loads(re.search(r'<script type="application/json" id="tk-data">(.*?)</script>', html, re.S)[1])
    assert data["runs"][0]["name"] in (XSS, "run-1", "run-2")
    assert f"weird/{SCRIPT_XSS}" in data["curves"]
    # the sections a person reads
    assert d.sweep is not None and d.sweep["objective"] == "val/acc"
    assert {p["key"] for p in d.sweep["params"]} == {"lr", "layers", "opt"}
    assert len(d.checkpoints) == 3 and d.checkpoints[0][0]["aliases"] == ["best"]
    assert all(c is not None and c.src.startswith("data:image/png;base64,") for c in d.images["samples"])
    assert "RuntimeError: &lt;img" in html  # the crash reason beside the status
    for text in ("Runs (3)", "Curves", "Sweep: parameters vs val/acc (max)", "Config diff", "Images (latest per run)",
                 "Checkpoints", "crashed"):
        assert text in html, text


def test_cli_report_selects_like_runs(journal: str, tmp_path: Path) -> None:
    out = str(tmp_path / "sel.html")
    res = CliRunner().invoke(main, ["report", "--root", journal, "--where", "config.layers>=3", "--sort",
                                    "-config.layers", "-n", "1", "-o", out])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "1 runs" in res.output
    html = Path(out).read_text(encoding="utf-8")
    assert "run-2" in html and "run-1" not in html
    res = CliRunner().invoke(main, ["report", "--root", journal, "run-1", XSS, "-o", out, "-m", "val/acc"])
    assert res.exit_code == 0, res.output
    data = json.loads(re.search(r'id="tk-data">(.*?)</script>', Path(out).read_text(encoding="utf-8"), re.S)[1])
    assert [r["name"] for r in data["runs"]] == ["run-1", XSS] and list(data["curves"]) == ["val/acc"]
    res = CliRunner().invoke(main, ["report", "--root", journal, "--where", "config.layers>99", "-o", out])
    assert res.exit_code == 1 and "no runs match" in res.output
    res = CliRunner().invoke(main, ["report", "--root", journal, "--where", "config.lr<x", "-o", out])
    assert res.exit_code == 1 and "Fix:" in res.output and "Traceback" not in res.output


def test_cli_says_how_to_install_plotly(journal: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "plotly" else real(name, *a))
    res = CliRunner().invoke(main, ["report", "--root", journal])
    assert res.exit_code == 1
    (line,) = [ln for ln in res.output.splitlines() if ln.strip()]
    assert "pip install 'trackkit[report]'" in line


def _image_checks(path: str, colours: list[str]) -> Image.Image:
    img = Image.open(path)
    img.load()
    assert img.format == "PNG" and img.width >= 400 and img.height >= 300
    px = np.asarray(img.convert("RGB")).reshape(-1, 3)
    assert px.std() > 20  # not blank
    for hexa in colours:  # each run's line is drawn, in its colour
        want = np.array([int(hexa[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(px.astype(int) - want).sum(axis=1) < 30).sum() > 50, hexa
    return img


def test_compare_plot_png(journal: str, tmp_path: Path) -> None:
    out = str(tmp_path / "curves.png")
    res = CliRunner().invoke(main, ["compare", "--root", journal, XSS, "run-1", "--plot", out])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "train/loss" in res.output and "val/acc" in res.output
    _image_checks(out, PALETTE[:2])
    res = CliRunner().invoke(main, ["compare", "--root", journal, XSS, "run-1", "--plot", str(tmp_path / "x.jpg")])
    assert res.exit_code == 1 and "Fix: --plot curves.png" in res.output


def test_report_plot_dir(journal: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["report", "--root", journal, "-o", str(tmp_path / "r.html"),
                                    "--plot", str(tmp_path / "png")])
    assert res.exit_code == 0, res.output
    files = sorted(os.listdir(tmp_path / "png"))
    assert "train_loss.png" in files and "val_acc.png" in files and len(files) == 3
    _image_checks(str(tmp_path / "png" / "val_acc.png"), PALETTE[:3])


def test_render_without_runs_and_nan_values() -> None:
    from trackkit.events import Metrics, RunInfo, RunRecord, RunStarted

    rec = RunRecord(RunInfo("r1", "p", "nan-run", "memory:"), [
        RunStarted("r1", "p", "nan-run", 1.0), Metrics(0, 1.0, {"x": 1.0}), Metrics(1, 2.0, {"x": math.nan}),
        Metrics(2, 3.0, {"x": math.inf})])
    for ev in rec.events:
        rec.info.apply(ev)
    html = render_html(build([rec]), bundle="/* plotly */")
    data = json.loads(re.search(r'id="tk-data">(.*?)</script>', html, re.S)[1])
    assert data["curves"]["x"][0]["v"] == [1.0, None, None]
    assert "Runs (0)" in render_html(build([]), bundle="")
    assert io.StringIO(html).read().startswith("<!DOCTYPE html>")


def _synthetic(runs: int, steps: int, metrics: int) -> list:  # type: ignore[type-arg]
    from trackkit.events import Metrics, RunInfo, RunRecord, RunStarted

    out = []
    for r in range(runs):
        events: list = [RunStarted(f"r{r}", "p", f"run-{r}", 1.0, config={"lr": r})]  # type: ignore[type-arg]
        events += [Metrics(s, 1.0 + s, {f"m{k}": math.sin(s / 50 + r) + k for k in range(metrics)})
                   for s in range(steps)]
        info = RunInfo(f"r{r}", "p", f"run-{r}", "memory:")
        for ev in events:
            info.apply(ev)
        out.append(RunRecord(info, events))
    return out


def test_html_size_is_bounded_by_the_point_budget() -> None:
    """docs/report.md#size: the report's own data is at most ~25 bytes per drawn point, and the drawn
    points at most ``total_points`` however many runs and metrics there are."""
    from trackkit.report.render import plotly_bundle

    bundle = len(plotly_bundle().encode())
    recs = _synthetic(40, 3000, 3)
    d = build(recs, Options(total_points=30_000))
    assert d.points_read == 40 * 3000 * 3
    assert d.points_drawn <= 30_000 + 2 * 120  # per curve: the budget, plus its first and last point
    assert any("at most 250 points drawn per curve" in n for n in d.notes)
    size = len(render_html(d).encode())
    assert (size - bundle) / d.points_drawn < 25, (size - bundle) / d.points_drawn
