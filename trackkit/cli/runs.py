"""``trackkit runs``, ``trackkit show RUN``, ``trackkit sync [RUN]`` over the local journal root."""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading

import click
from rich.console import Console
from rich.table import Table

from ..events import RunRecord, RunResumed, RunStarted, Status


def _root(root: str | None) -> str:
    if root:
        return os.path.abspath(root)
    from ..settings import load_settings

    return os.path.abspath(load_settings().root)


def _records(root: str, project: str | None = None) -> list[RunRecord]:
    from ..agent import lock_is_held
    from ..journal import list_run_dirs, load_run

    out = []
    for d in list_run_dirs(root):
        rec: RunRecord = load_run(d)
        if project and rec.info.project != project:
            continue
        if rec.info.status is Status.RUNNING and not lock_is_held(d):
            rec.info.reason = rec.info.reason or "unfinished: the process is gone (run `trackkit sync` to mark it)"
        out.append(rec)
    return out


def _find(root: str, run: str) -> RunRecord:
    matches = [r for r in _records(root) if run in (r.info.run_id, r.info.name) or r.info.run_id.startswith(run)]
    if not matches:
        raise click.ClickException(f"no run {run!r} under {root}. Fix: `trackkit runs` lists the runs")
    if len(matches) > 1:
        ids = ", ".join(r.info.run_id for r in matches[:10])
        raise click.ClickException(f"{run!r} matches several runs ({ids}). Fix: give the full run id")
    return matches[0]


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _dur(rec: RunRecord) -> str:
    d = rec.info.duration
    if d is None:
        return "-"
    m, s = divmod(int(d), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


_STATUS_STYLE = {"completed": "green", "running": "cyan", "diverged": "yellow", "crashed": "red", "killed": "magenta"}


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
        from .compare import query_rows

        query_rows(backends, project, where, sort, limit, as_json)
        return
    r = _root(root)
    if where or sort or as_json:
        from .compare import filter_rows, show_rows

        show_rows(filter_rows([rec.info for rec in _records(r, project)], where, sort, limit), r, as_json)
        return
    recs = _records(r, project)[-limit:]
    console = Console(width=None if sys.stdout.isatty() else 200)
    if not recs:
        console.print(f"no runs under {r}")
        return
    from .compare import resumed_note

    table = Table(title=f"runs in {r}")
    for col in ("id", "project", "name", "status", "start", "duration", "step", "last metrics"):
        table.add_column(col)
    for rec in recs:
        i = rec.info
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in list(i.last_metrics.items())[:4])
        st = i.status.value
        table.add_row(
            i.run_id, i.project, i.name, f"[{_STATUS_STYLE.get(st, 'white')}]{st}[/]{resumed_note(i)}",
            _when(i.start_time),
            _dur(rec), "-" if i.last_step is None else str(i.last_step), metrics,
        )
    console.print(table)


@click.command()
@click.argument("run")
@click.option("--root", help="Journal root.")
def show(run: str, root: str | None) -> None:
    """Show one run (by id, id prefix or name): config, tags, status, last metrics."""
    rec = _find(_root(root), run)
    i = rec.info
    console = Console()
    st = i.status.value
    group = f" group {i.group}" if i.group else ""
    console.print(f"[bold]{i.name}[/] ({i.run_id}) project [bold]{i.project}[/]{group}")
    console.print(f"status [{_STATUS_STYLE.get(st, 'white')}]{st}[/]" + (f": {i.reason}" if i.reason else ""))
    if i.resumed:
        console.print(f"resumed {i.resumed}× (segments: {i.resumed + 1})")
        for ev in rec.events:
            if isinstance(ev, RunResumed):
                prev = ev.previous_status.value if ev.previous_status else "?"
                step = "-" if ev.step is None else ev.step
                console.print(f"  segment {ev.segment + 1} from {_when(ev.time)} after step {step} (was {prev})")
    console.print(f"started {_when(i.start_time)}  duration {_dur(rec)}  journal {i.location}")
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
    from ..agent import Delivery, hold_agent_lock, lock_is_held, pending_sinks
    from ..registry import parse_backend

    r = _root(root)
    recs = [_find(r, run)] if run else _records(r)
    console = Console()
    failed = 0
    for rec in recs:
        d = rec.info.location
        backends: list[str] = []
        for ev in rec.events:  # the start record's backends, plus any a resumed segment added
            if isinstance(ev, (RunStarted, RunResumed)):
                backends += [b for b in ev.meta.get("backends", []) if b not in backends]
        specs = [parse_backend(b) for b in backends]
        if lock_is_held(d):
            console.print(f"{rec.info.run_id}: still running (its agent delivers); skipped")
            continue
        if not pending_sinks(d, specs) and rec.info.status is not Status.RUNNING:
            continue
        lock = hold_agent_lock(d)
        if lock is None:
            console.print(f"{rec.info.run_id}: its agent is still delivering; skipped (run sync again later)")
            failed += 1
            continue
        try:
            delivery = Delivery(d, specs, drain_timeout=timeout, log=lambda m: console.print(f"  {m}"))
            trainer_back = threading.Event()

            def trainer_alive(d: str = d, back: threading.Event = trainer_back) -> bool:
                # a requeued trainer resumed this run while we deliver it: leave it to its agent
                # (which waits for our delivery lock) instead of marking a live run ended
                if lock_is_held(d):
                    back.set()
                    return True
                return False

            ok = delivery.run(trainer_alive, trainer_back)
        finally:
            os.close(lock)
        left = pending_sinks(d, specs)
        if ok and not left:
            console.print(f"[green]{rec.info.run_id}[/]: delivered to {', '.join(backends)}")
        else:
            failed += 1
            console.print(f"[red]{rec.info.run_id}[/]: still pending for {', '.join(left)}")
    sys.exit(1 if failed else 0)
