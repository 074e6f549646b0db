"""Static plots with matplotlib: ``trackkit compare --plot FILE.png`` (the shared metrics, one panel
each) and ``trackkit report --plot DIR`` (one PNG per metric). One line per run, a legend by run
name, the x axis named. matplotlib is imported here only (``pip install 'trackkit[report]'``)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Any

from ..errors import MissingDependency
from ..events import RunRecord
from .model import labels_of
from .render import PALETTE

__all__ = ["plot_each", "plot_shared", "shared_metrics"]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependency("--plot needs matplotlib. Fix: pip install 'trackkit[report]'") from None
    return plt


def _plain(text: str) -> str:
    """A label matplotlib shows as written: ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def shared_metrics(recs: Sequence[RunRecord]) -> list[str]:
    """The metric keys every run logged, sorted."""
    keys = [set(r.metrics()) for r in recs]
    return sorted(set.intersection(*keys)) if keys else []


def _draw(ax: Any, series: Sequence[dict[str, list[tuple[int, float]]]], key: str, labels: Sequence[str]) -> None:
    for n, (metrics, label) in enumerate(zip(series, labels)):
        pts = metrics.get(key) or []
        if not pts:
            continue
        xs = [s for s, _ in pts]
        ys = [v if math.isfinite(v) else math.nan for _, v in pts]
        style = "o-" if len(pts) == 1 else "-"
        ax.plot(xs, ys, style, color=PALETTE[n % len(PALETTE)], linewidth=1.4, markersize=4, label=_plain(label))
    ax.set_title(_plain(key))
    ax.set_xlabel("step")
    ax.set_ylabel(_plain(key))
    ax.grid(True, alpha=0.3)


def plot_shared(recs: Sequence[RunRecord], path: str, keys: Sequence[str] | None = None) -> list[str]:
    """One PNG at ``path``: a panel per metric every run logged (or ``keys``); returns the keys drawn.
    ``ValueError`` when the runs share no metric."""
    keys = list(keys) if keys else shared_metrics(recs)
    if not keys:
        raise ValueError("the runs share no metric: nothing to plot")
    plt = _pyplot()
    labels = labels_of([r.info for r in recs])
    series = [r.metrics() for r in recs]
    cols = min(len(keys), 2)
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        _draw(ax, series, key, labels)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return keys


def _file_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_.") or "metric"


def plot_each(recs: Sequence[RunRecord], out_dir: str, keys: Sequence[str] | None = None) -> list[str]:
    """One PNG per metric key (any run logged it) in ``out_dir``; returns the files written."""
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    labels = labels_of([r.info for r in recs])
    series = [r.metrics() for r in recs]
    if not keys:
        found: set[str] = set()
        for m in series:
            found.update(m)
        keys = sorted(found)
    written, used = [], set()
    for key in keys:
        name = _file_name(key)
        while name in used:
            name += "_"
        used.add(name)
        fig, ax = plt.subplots(figsize=(7.2, 4.4))
        _draw(ax, series, key, labels)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        path = os.path.join(out_dir, f"{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
