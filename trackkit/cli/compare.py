"""``trackkit compare RUN RUN ...``: runs side by side, from the journal or any backends."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from ..errors import TrackkitError
from ..events import RunInfo, RunRecord
from .common import (
    STATUS_STYLE,
    console,
    dump_json,
    find_run,
    journal_records,
    journal_root,
    num,
    quiet_sdk_logs,
)

if TYPE_CHECKING:
    from ..query import Comparison


def _val(v: Any) -> str:
    from ..query import MISSING

    if v is MISSING:
        return "[dim]—[/]"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, str):
        return escape(v)
    return escape(json.dumps(v, default=str, ensure_ascii=False))


def _journal_records(refs: Sequence[str], root: str | None, points: bool = False) -> list[RunInfo] | list[RunRecord]:
    """The runs' summaries from the run index: each metric's last/min/max/count is kept there
    (``points``: the whole records, read from the journals, for ``--plot``)."""
    from ..journal import load_run

    r = journal_root(root)
    entries = journal_records(r)
    found = [find_run(r, ref, entries) for ref in refs]
    if points:
        return [load_run(e.run_dir) for e in found]
    return [e.info for e in found]


def _keys(keys: Sequence[str], most: int = 6) -> str:
    shown = ", ".join(keys[:most]) + (f" and {len(keys) - most} more" if len(keys) > most else "")
    return shown or "no metric"


def _plot(recs: Sequence[RunRecord | RunInfo], path: str, labels: Sequence[str]) -> str:
    """Draw the shared metrics into ``path``; ``""``, or the line on why nothing was drawn when the runs
    share no metric (the comparison is still printed, then that line is the error)."""
    from ..report.png import plot_shared, shared_metrics

    if not all(isinstance(r, RunRecord) for r in recs):
        raise click.ClickException("--plot needs every point of the runs. Fix: compare runs a backend or the "
                                   "journal holds whole")

    if not path.lower().endswith(".png"):
        raise click.ClickException(f"--plot {path}: a PNG file is written. Fix: --plot curves.png")
    whole = [r for r in recs if isinstance(r, RunRecord)]
    if not shared_metrics(whole):
        each = "; ".join(f"{label}: {_keys(sorted(r.metrics()))}" for label, r in zip(labels, whole))
        return (f"--plot {path}: the runs share no metric, nothing was plotted (each run's metrics: {each}). "
                "Fix: compare runs that logged a common metric")
    try:
        keys = plot_shared(whole, path)
    except TrackkitError as exc:  # matplotlib missing: the install command
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(f"--plot: {exc}. Fix: compare runs that logged a common metric") from None
    except OSError as exc:
        raise click.ClickException(f"--plot: cannot write {path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {path}: {', '.join(keys)} ({len(recs)} runs)", err=True)
    return ""


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--backend", "-b", "backends", multiple=True,
              help="Backend string to read from (repeatable); default: the local journal.")
@click.option("--project", "-p", help="Only runs of this project (for name / id-prefix lookups).")
@click.option("--root", help="Journal root, when no --backend is given.")
@click.option("--all-config", is_flag=True, help="Also list the config keys every run shares.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--plot", "plot", metavar="FILE.png",
              help="Also draw the metrics every run logged into a PNG (matplotlib): one line per run. Runs that "
                   "share no metric: the comparison is printed, then that line (exit 1).")
def compare(runs: tuple[str, ...], backends: tuple[str, ...], project: str | None, root: str | None,
            all_config: bool, as_json: bool, plot: str | None) -> None:
    """Compare runs side by side: config keys that differ, and each metric's last / min / max.

    A RUN is a run id, a unique id prefix or a unique name. With several --backend, each run is
    taken from the first backend that holds it."""
    from ..query import compare as compare_runs
    from ..query import load_runs

    try:
        with quiet_sdk_logs():
            recs: Sequence[RunRecord | RunInfo] = (load_runs(list(runs), list(backends), project) if backends
                                                   else _journal_records(runs, root, points=bool(plot)))
        result = compare_runs(recs)
    except TrackkitError as exc:  # a missing or ambiguous RUN is a lookup.RunLookupError
        raise click.ClickException(str(exc)) from None
    except KeyError as exc:  # a Reader that lost a run it had just listed
        raise click.ClickException(str(exc.args[0]) if exc.args else str(exc)) from None
    unplotted = _plot(recs, plot, result.labels) if plot else ""
    if as_json:
        dump_json(result.to_dict())
    else:
        _print(result, all_config)
    if unplotted:  # the comparison above stands; the plot asked for was not written
        raise click.ClickException(unplotted)


def _print(result: Comparison, all_config: bool) -> None:
    out = console()
    # a narrow terminal folds a cell (every character stays) instead of cutting it with "…"
    labels = [escape(label) for label in result.labels]
    head = Table(title="runs", show_header=True)
    head.add_column("", no_wrap=True)
    for label in labels:
        head.add_column(label, overflow="fold")
    head.add_row("run id", *[escape(r.run_id) for r in result.runs])
    head.add_row("backend", *[escape(r.backend) for r in result.runs])
    head.add_row("status", *[f"[{STATUS_STYLE.get(r.status.value, 'white')}]{r.status.value}[/]"
                             + (f": {escape(r.reason)}" if r.reason else "") for r in result.runs])
    head.add_row("last step", *["-" if r.last_step is None else str(r.last_step) for r in result.runs])
    out.print(head)

    cfg = Table(title="config: keys that differ")
    cfg.add_column("key", overflow="fold")
    for label in labels:
        cfg.add_column(label, overflow="fold")
    for k, vals in result.config_differs.items():
        cfg.add_row(escape(k), *[_val(v) for v in vals])
    if all_config:
        for k, v in result.config_same.items():
            cfg.add_row(f"[dim]{escape(k)}[/]", *[f"[dim]{_val(v)}[/]"] * len(labels))
    if result.config_differs or all_config:
        out.print(cfg)
    else:
        out.print("config: no differences")
    if result.config_same and not all_config:
        out.print(f"[dim]{len(result.config_same)} config keys are the same in every run (--all-config lists "
                  "them)[/]")

    mt = Table(title="metrics: last (min … max)")
    mt.add_column("metric", overflow="fold")
    for label in labels:
        mt.add_column(label, justify="right", overflow="fold")
    for k, sums in result.metrics.items():
        cells = []
        for s in sums:
            if s is None:
                cells.append("[dim]—[/]")
            elif s.min is None:
                cells.append(num(s.last))
            else:
                cells.append(f"{num(s.last)} [dim]({num(s.min)} … {num(s.max)})[/]")
        mt.add_row(escape(k), *cells)
    if result.metrics:
        out.print(mt)
