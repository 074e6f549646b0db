"""``trackkit report``: one self-contained HTML file of runs from any mix of backends (docs/report.md)."""

from __future__ import annotations

import importlib.util
import os

import click
from rich.markup import escape

from ..errors import TrackkitError
from .common import console, quiet_sdk_logs


@click.command()
@click.argument("runs", nargs=-1)
@click.option("--backend", "-b", "backends", multiple=True,
              help="Read runs from this backend (repeatable), e.g. tensorboard:./runs; default: the local journal.")
@click.option("--root", help="Journal root, when no --backend is given.")
@click.option("--project", "-p", help="Only runs of this project.")
@click.option("--where", "-w", multiple=True,
              help="Filter, repeatable (as `trackkit runs`): config.dataset=cifar10, status=completed, parent=ID")
@click.option("--sort", help="Sort by a field, '-' for descending, e.g. -metrics.val/acc (default: newest first).")
@click.option("--limit", "-n", default=50, show_default=True, help="At most N runs (after --where and --sort).")
@click.option("--out", "-o", default="report.html", show_default=True, help="The HTML file to write.")
@click.option("--metric", "-m", "metrics", multiple=True, help="Only these metrics (repeatable; default: all).")
@click.option("--objective", help="The sweep's objective metric (default: the runs' sweep.objective tag).")
@click.option("--title", default="trackkit report", show_default=True, help="The page's title.")
@click.option("--points", default=600, show_default=True,
              help="Points drawn per curve at most (min/max per bucket: extremes kept; the data is untouched).")
@click.option("--plot", "plot_dir", help="Also write a static PNG per metric (matplotlib) into this directory.")
def report(runs: tuple[str, ...], backends: tuple[str, ...], root: str | None, project: str | None,
           where: tuple[str, ...], sort: str | None, limit: int, out: str, metrics: tuple[str, ...],
           objective: str | None, title: str, points: int, plot_dir: str | None) -> None:
    """Write an HTML report of runs side by side: the runs table, interactive curves of every metric
    (step / time axes, log scale, smoothing), the config diff, the latest images, checkpoints and, for
    a sweep, parameters against the objective. It opens with no network access.

    RUNS (ids, id prefixes or names) pick runs by name; otherwise --where/--sort/-n select them."""
    if importlib.util.find_spec("plotly") is None:
        raise click.ClickException("trackkit report needs plotly (its offline bundle draws the curves). "
                                   "Fix: pip install 'trackkit[report]'")
    from ..report import Options, select_runs, write_report

    if points < 4:
        raise click.ClickException(f"--points {points}: too few to draw a curve. Fix: --points 600 (4 or more)")
    try:
        with quiet_sdk_logs():
            recs = select_runs(list(backends), list(runs), root=root, project=project, where=list(where),
                               sort=sort, limit=limit)
        if not recs:
            raise click.ClickException("no runs match: nothing to report. Fix: check with `trackkit runs` "
                                       "(the same --backend/--where)")
        data = write_report(out, recs, options=Options(title=title, metrics=metrics, points=points,
                                                       objective=objective))
        pngs: list[str] = []
        if plot_dir:
            from ..report.png import plot_each

            pngs = plot_each(recs, plot_dir, list(metrics) or None)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyError as exc:  # a Reader that lost a run it had just listed
        raise click.ClickException(str(exc.args[0]) if exc.args else str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename or out}: {exc.strerror or exc}. "
                                   "Fix: --out / --plot a writable path") from None
    size = os.path.getsize(out) / 1e6
    c = console()
    c.print(f"wrote {escape(out)}: {len(data.runs)} runs, {len(data.curves)} metrics, "
            f"{data.points_drawn:,} of {data.points_read:,} points drawn, {size:.1f} MB", soft_wrap=True)
    for note in data.notes:
        c.print(f"[yellow]note[/]: {escape(note)}", soft_wrap=True)
    if pngs:
        c.print(f"wrote {len(pngs)} PNG(s) to {escape(plot_dir or '')}", soft_wrap=True)
