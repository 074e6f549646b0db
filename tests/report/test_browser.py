"""The report as a person sees it: rendered in headless Chromium (Debian's ``chromium``;
``scripts/setup-test-env.sh`` installs it), screenshot checked, the console free of errors, and no
script from a run's strings ever runs. ``TRACKKIT_SKIP_BROWSER=1`` skips these (never in CI)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trackkit.report import Options, write_report
from trackkit.report.browser import Browser, find_chromium
from trackkit.report.render import PALETTE

from .helpers import XSS, write_runs

pytest.importorskip("plotly")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if os.environ.get("TRACKKIT_SKIP_BROWSER") == "1":
        pytest.skip("TRACKKIT_SKIP_BROWSER=1")
    if find_chromium() is None:
        pytest.fail("no Chromium for the browser tests. Fix: scripts/setup-test-env.sh (apt-get install chromium)")
    with Browser(timeout=120) as b:
        yield b


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("page")
    write_runs(str(tmp / ".trackkit"))
    out = str(tmp / "report.html")
    write_report(out, root=str(tmp / ".trackkit"), options=Options(title="browser test"))
    return out


def _not_blank(png: bytes, colours: list[str]) -> None:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.width == 1280
    px = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
    assert px.std() > 20, "blank screenshot"
    assert len(np.unique(px // 16, axis=0)) > 50  # text, lines, images: not one flat colour
    for hexa in colours:  # every run's curve is on screen in its colour
        want = np.array([int(hexa[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(px - want).sum(axis=1) < 40).sum() > 100, hexa


def test_report_renders_without_console_errors(browser: Browser, page: str, tmp_path: Path) -> None:
    res = browser.open(page, screenshot=True, full_page=True)
    assert res.rendered_s is not None, f"the page never finished drawing; errors: {res.errors}"
    assert res.errors == [] and res.dialogs == []
    # self-contained: the page itself is the one request (its images are data: URIs)
    assert [u for u in res.requests if not u.startswith("data:")] == ["file://" + os.path.abspath(page)]
    (tmp_path / "shot.png").write_bytes(res.png)
    _not_blank(res.png, PALETTE[:3])
    plots = browser.evaluate("document.querySelectorAll('#tk-curves .js-plotly-plot').length")
    assert plots == 3  # train/loss, val/acc and the weird key
    # parallel coordinates are WebGL: drawn (Chromium's CPU WebGL), never plotly's "not supported" notice
    assert browser.evaluate("document.querySelectorAll('#tk-parcoords.js-plotly-plot canvas').length") >= 1
    assert "WebGL" not in browser.evaluate("document.body.innerText")
    assert browser.evaluate("document.querySelectorAll('#tk-scatter .js-plotly-plot').length") == 3
    assert browser.evaluate("Array.from(document.images).filter(i => i.complete && i.naturalWidth === 24).length") == 3
    # the controls redraw without errors: log scale, the wall-clock axis, smoothing
    browser.evaluate("""(() => { const c = document.getElementById('tk-log'); c.checked = true;
        c.dispatchEvent(new Event('change'));
        const x = document.getElementById('tk-x'); x.value = 'wall'; x.dispatchEvent(new Event('change'));
        const s = document.getElementById('tk-smooth'); s.value = '0.9'; s.dispatchEvent(new Event('change')); })()""")
    assert browser.wait("document.body.dataset.rendered === 'yes'") is not None
    div = "document.querySelector('#tk-curves .js-plotly-plot')"
    assert browser.evaluate(f"{div}.layout.yaxis.type") == "log"
    assert browser.evaluate(f"{div}.layout.xaxis.type") == "date"
    assert browser.problems().errors == []


def test_untrusted_text_stays_text_in_the_browser(browser: Browser, page: str) -> None:
    res = browser.open(page)
    assert res.rendered_s is not None
    assert res.dialogs == [], "alert() ran: a run's name was read as HTML"
    assert res.errors == []
    assert browser.evaluate("document.title") == "browser test"  # the payloads would set it to 'pwned'
    # no element came from a payload: every <img> is one of the report's data: images
    assert browser.evaluate("Array.from(document.images).filter(i => !i.src.startsWith('data:')).length") == 0
    assert browser.evaluate("document.querySelectorAll('[onerror]').length") == 0
    # ... and the name is shown as the text it is: in the table, in the legend, in the sweep's hover text
    cells = browser.evaluate("Array.from(document.querySelectorAll('#runs-table .name')).map(e => e.textContent)")
    assert XSS in cells
    legend = browser.evaluate("Array.from(document.querySelectorAll('.legendtext')).map(e => e.textContent)")
    assert XSS in legend
    keys = browser.evaluate("Array.from(document.querySelectorAll('.gtitle')).map(e => e.textContent)")
    assert any("</script><script>" in k for k in keys)  # a metric key with script in it, as its title


def test_the_check_catches_markup_that_runs(browser: Browser, tmp_path: Path) -> None:
    """The detector itself: the same payload, NOT escaped, on a page without the report's CSP runs,
    and the checks above would have seen it (a dialog, the title)."""
    bad = tmp_path / "bad.html"
    bad.write_text(f"<html><head><title>t</title></head><body>{XSS}"
                   "<img src=x onerror=\"document.title='pwned'\"></body></html>")
    res = browser.open(str(bad), wait_for="document.title === 'pwned'")
    assert res.rendered_s is not None and res.dialogs == ["1"]
