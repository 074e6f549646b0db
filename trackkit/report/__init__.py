"""``trackkit report``: runs side by side from any mix of backends, as one self-contained HTML file.

::

    from trackkit.report import write_report

    write_report("report.html", backends=["tensorboard:./runs", "mlflow:./mlflow.db"],
                 where=["config.dataset=cifar10"], sort="-metrics.val/acc", limit=20)

``select`` picks the runs (the ``trackkit runs`` grammar, or names), ``model`` computes what is
shown (curves downsampled by ``downsample``), ``render`` writes the HTML, ``png`` the static
matplotlib plots (``compare --plot``, ``report --plot``). See docs/report.md."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..events import RunRecord
from .model import Options, ReportData, build
from .render import render_html
from .select import select_runs

__all__ = ["Options", "ReportData", "build", "render_html", "select_runs", "write_report"]


def write_report(
    out: str,
    runs: Sequence[RunRecord] | None = None,
    *,
    backends: Sequence[str] = (),
    refs: Sequence[str] = (),
    root: str | None = None,
    project: str | None = None,
    where: Sequence[str] = (),
    sort: str | None = None,
    limit: int | None = None,
    options: Options | None = None,
) -> ReportData:
    """Write the report of ``runs`` (or of the runs ``select_runs`` picks with the other arguments)
    to ``out`` (atomically) and return what it shows."""
    recs = list(runs) if runs is not None else select_runs(backends, refs, root=root, project=project,
                                                            where=where, sort=sort, limit=limit)
    data = build(recs, options)
    page = render_html(data)
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(page)
    os.replace(tmp, out)
    return data
