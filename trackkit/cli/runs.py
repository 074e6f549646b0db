"""``trackkit runs``, ``trackkit show RUN``, ``trackkit sync [RUN]`` over the local journal root."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..errors import TrackkitError
from ..events import RunInfo, RunRecord, RunResumed
from .common import STATUS_STYLE, console, dump_json, find_run, journal_records, journal_root, num, resumed_note, when


def _dur(rec: RunRecord) -> str:
    d = rec.info.duration
    if d is None:
        return "-"
    m, s = divmod(int(d), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def info_dict(i: RunInfo) -> dict[str, Any]:
    return {
        "run_id": i.run_id, "project": i.project, "name": i.name, "backend": i.backend, "status": i.status.value,
        "reason": i.reason, "group": i.group, "start_time": i.start_time, "end_time": i.end_time,
        "tags": dict(i.tags), "config": dict(i.config), "last_metrics": dict(i.last_metrics),
        "last_step": i.last_step, "location": i.location, "resumed": i.resumed,
    }


def show_rows(rows: Sequence[RunInfo], title: str, as_json: bool) -> None:
    """Print run summaries as a rich table (or JSON)."""
    if as_json:
        dump_json([info_dict(i) for i in rows])
        return
    out = console()
    if not rows:
        out.print(f"no runs in {title}")
        return
    backends = {i.backend for i in rows}
    table = Table(title=f"runs in {title}")
    cols = ["backend"] if len(backends) > 1 else []
    cols += ["id", "project", "name", "status", "start", "step", "last metrics"]
    for col in cols:
        table.add_column(col)
    for i in rows:
        metrics = ", ".join(f"{k}={num(v)}" for k, v in list(i.last_metrics.items())[:4])
        st = i.status.value
        cells = [i.backend] if len(backends) > 1 else []
        cells += [i.run_id, i.project, i.name, f"[{STATUS_STYLE.get(st, 'white')}]{st}[/]{resumed_note(i)}",
                  when(i.start_time),
                  "-" if i.last_step is None else str(i.last_step), metrics]
        table.add_row(*cells)
    out.print(table)


def query_rows(
    backends: Sequence[str], project: str | None, where: Sequence[str], sort: str | None, limit: int,
    as_json: bool,
) -> None:
    """``trackkit runs --backend ...``: query the backends' Readers."""
    from ..query import find_runs

    try:
        rows = find_runs(list(backends), project=project, where=list(where), sort_by=sort, limit=limit)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    show_rows(rows, ", ".join(backends), as_json)


def filter_rows(rows: Sequence[RunInfo], where: Sequence[str], sort: str | None, limit: int) -> list[RunInfo]:
    from ..query import filter_runs

    try:
        return filter_runs(rows, list(where), sort, limit)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--root", help="Journal root (default: settings `root`, ./.trackkit).")
@click.option("--project", "-p", help="Only this project.")
@click.option("--limit", "-n", default=50, show_default=True, help="Newest N runs.")
@click.option("--backend", "-b", "backends", multiple=True,
              help="Query this backend's stored runs instead of the journal (repeatable), e.g. mlflow:./mlflow.db")
@click.option("--where", "-w", multiple=True,
              help="Filter, repeatable (all must hold): status=completed, config.optimizer.lr<0.1, "
                   "metrics.eval/acc>=0.9, tag.team=vision, name~resnet*")
@click.option("--sort", help="Sort by a field, '-' for descending, e.g. -metrics.eval/acc (default: newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def runs(root: str | None, project: str | None, limit: int, backends: tuple[str, ...], where: tuple[str, ...],
         sort: str | None, as_json: bool) -> None:
    """List runs under the local journal root (or, with --backend, in any backends):
    name, status, start, duration, last metrics."""
    if backends:
        query_rows(backends, project, where, sort, limit, as_json)
        return
    r = journal_root(root)
    if where or sort or as_json:
        show_rows(filter_rows([rec.info for rec in journal_records(r, project)], where, sort, limit), r, as_json)
        return
    recs = journal_records(r, project)[-limit:]
    out = console()
    if not recs:
        out.print(f"no runs under {r}")
        return
    table = Table(title=f"runs in {r}")
    for col in ("id", "project", "name", "status", "start", "duration", "step", "last metrics"):
        table.add_column(col)
    for rec in recs:
        i = rec.info
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in list(i.last_metrics.items())[:4])
        st = i.status.value
        table.add_row(
            i.run_id, i.project, i.name, f"[{STATUS_STYLE.get(st, 'white')}]{st}[/]{resumed_note(i)}",
            when(i.start_time),
            _dur(rec), "-" if i.last_step is None else str(i.last_step), metrics,
        )
    out.print(table)


@click.command()
@click.argument("run")
@click.option("--root", help="Journal root.")
def show(run: str, root: str | None) -> None:
    """Show one run (by id, id prefix or name): config, tags, status, last metrics."""
    rec = find_run(journal_root(root), run)
    i = rec.info
    console = Console()
    st = i.status.value
    group = f" group {i.group}" if i.group else ""
    console.print(f"[bold]{i.name}[/] ({i.run_id}) project [bold]{i.project}[/]{group}")
    console.print(f"status [{STATUS_STYLE.get(st, 'white')}]{st}[/]" + (f": {i.reason}" if i.reason else ""))
    if i.resumed:
        console.print(f"resumed {i.resumed}× (segments: {i.resumed + 1})")
        for ev in rec.events:
            if isinstance(ev, RunResumed):
                prev = ev.previous_status.value if ev.previous_status else "?"
                step = "-" if ev.step is None else ev.step
                console.print(f"  segment {ev.segment + 1} from {when(ev.time)} after step {step} (was {prev})")
    console.print(f"started {when(i.start_time)}  duration {_dur(rec)}  journal {i.location}")
    from ..events import flatten_config

    for title, data in (("config", flatten_config(i.config)), ("tags", i.tags),
                        ("last metrics", {k: _fmt(v) for k, v in i.last_metrics.items()})):
        table = Table(title=title, show_header=False)
        table.add_column("key")
        table.add_column("value")
        for k, v in data.items():
            table.add_row(str(k), str(v))
        console.print(table)


@click.command()
@click.argument("run", required=False)
@click.option("--root", help="Journal root.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to keep trying per run.")
def sync(run: str | None, root: str | None, timeout: float) -> None:
    """Deliver journaled data the agent could not (server down, process killed).

    Without RUN, every run under the root with undelivered data is synced.
    A run whose process is gone without finishing is marked killed first."""
    from ..sync import RunSync
    from ..sync import sync as sync_runs

    console = Console()

    def progress(r: RunSync) -> None:
        if r.state == "running":
            console.print(f"{r.run_id}: still running (its agent delivers); skipped")
        elif r.state == "busy":
            console.print(f"{r.run_id}: its agent is still delivering; skipped (run sync again later)")
        elif r.state == "delivered":
            console.print(f"[green]{r.run_id}[/]: delivered to {', '.join(r.backends)}")
        elif r.state == "pending":
            console.print(f"[red]{r.run_id}[/]: still pending for {', '.join(r.pending)}")

    try:
        report = sync_runs(root, run, timeout=timeout, log=lambda m: console.print(f"  {m}"), progress=progress)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(0 if report.ok else 1)
