"""``trackkit runs``, ``trackkit show RUN``, ``trackkit sync [RUN]`` over the local journal root."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import TrackkitError
from ..events import Artifact, RunInfo, RunRecord, RunResumed, Status, StatusChange
from .common import (
    Column,
    Delivery,
    console,
    delivery,
    dump_json,
    find_run,
    fitted_table,
    hidden_note,
    journal_records,
    journal_root,
    num,
    quiet_sdk_logs,
    resumed_note,
    status_text,
    when,
)


def _dur(i: RunInfo) -> str:
    d = i.duration
    if d is None:
        return "-"
    m, s = divmod(int(d), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def info_dict(i: RunInfo, state: Delivery | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": i.run_id, "project": i.project, "backend_project": i.backend_project, "name": i.name,
        "backend": i.backend, "status": i.status.value,
        "reason": i.reason, "group": i.group, "start_time": i.start_time, "end_time": i.end_time,
        "tags": dict(i.tags), "config": dict(i.config), "last_metrics": dict(i.last_metrics),
        "last_step": i.last_step, "location": i.location, "resumed": i.resumed, "media": dict(i.media),
        "parent": i.parent,
        "metrics": {k: {**st.to_dict(), "goal": i.goal(k), "declared": k in i.goals,
                        "best": st.best(i.goal(k))[0], "best_step": st.best(i.goal(k))[1]}
                    for k, st in i.metrics.items()},
        "summary": dict(i.summary),
        "damage": list(i.damage),
    }
    if state is not None:  # a journaled run: the backends that do not hold all of it yet
        out["not_delivered"] = list(state.pending)
        out["delivery_errors"] = dict(state.causes)
        out["delivering"] = state.delivering
    return out


def metric_cell(i: RunInfo, key: str, value: float) -> str:
    """``KEY=LAST``, with ``(best B@STEP)`` for a metric whose goal was declared (``define_metric``)."""
    best = i.best(key) if key in i.goals else None
    if best is None or best[1] is None:
        return f"{key}={num(value)}"
    return f"{key}={num(value)} (best {num(best[0])}@{best[1]})"


def _note(i: RunInfo, state: Delivery | None) -> str:
    """The delivery note of a run that is over (a running run's agent is still at work); ``damaged``
    when the backend's files of the run are (a cut event file: ``damage_lines`` says which)."""
    note = "" if state is None or i.status is Status.RUNNING else state.note()
    return ", ".join(n for n in (note, "damaged" if i.damage else "") if n)


def project_cell(i: RunInfo) -> str:
    """The run's project, and the one its backend files it under where that is another
    (``RunInfo.backend_project``: a W&B sink given ``wandb:q`` keeps the run's project ``e``):
    ``e (stored in project q)``."""
    return f"{i.project} (stored in project {i.backend_project})" if i.backend_project else i.project


def damage_lines(i: RunInfo) -> list[str]:
    """``run X: the stored run is damaged: FILE cut at byte N of M (only the part before it is read)``."""
    return [f"run {i.run_id}: the stored run is damaged: {d} (only the readable part is read)" for d in i.damage]


def show_rows(rows: Sequence[RunInfo], title: str, as_json: bool, states: Mapping[str, Delivery] | None = None) -> None:
    """Print run summaries, newest first as given, as a table that fits the terminal (or JSON).

    ``states``: the delivery state of journaled runs, by run directory. The id, name and status
    are kept whole; the other columns are hidden when the terminal is too narrow."""
    states = states or {}
    if as_json:
        dump_json([info_dict(i, states.get(i.location)) for i in rows])
        return
    out = console()
    if not rows:
        out.print(f"no runs in {escape(title)}")
        return
    several = len({i.backend for i in rows}) > 1
    notes = [_note(i, states.get(i.location)) for i in rows]
    heads = [len(i.status.value) + len(resumed_note(i)) + (1 if n else 0) for i, n in zip(rows, notes)]
    columns = [Column("backend", drop=6, wrap=True, min_width=24)] if several else []
    family = any(i.parent for i in rows)  # a sweep: the parent column (trackkit runs --where parent=ID)
    columns += [
        Column("id"), *([Column("parent", drop=7)] if family else []),
        Column("project", drop=1, wrap=True, min_width=max([7] + [len(i.project) for i in rows])), Column("name"),
        Column("status", wrap=True, min_width=max(heads)),
        Column("start", drop=3), Column("duration", drop=2, justify="right"), Column("step", drop=4, justify="right"),
        Column("last metrics", drop=5, wrap=True, min_width=20),
    ]
    cells = []
    for i, n in zip(rows, notes):
        keys = sorted(i.last_metrics, key=lambda k: k not in i.goals)[:4]  # declared goals first
        metrics = ", ".join(metric_cell(i, k, i.last_metrics[k]) for k in keys)
        cells.append(([Text(i.backend)] if several else []) + [
            Text(i.run_id), *([Text(i.parent or "-")] if family else []), Text(project_cell(i)), Text(i.name),
            status_text(i, n), Text(when(i.start_time)),
            Text(_dur(i)), Text("-" if i.last_step is None else str(i.last_step)), Text(metrics),
        ])
    table, hidden = fitted_table(f"runs in {escape(title)}", columns, cells, out.width)
    out.print(table)
    if hidden:
        out.print(hidden_note(hidden))
    for i in rows:
        for line in damage_lines(i):
            out.print(Text(line, style="yellow"), soft_wrap=True)


def query_rows(
    backends: Sequence[str], project: str | None, where: Sequence[str], sort: str | None, limit: int,
    as_json: bool,
) -> None:
    """``trackkit runs --backend ...``: query the backends' Readers."""
    from ..query import find_runs, why_empty

    try:
        rows = find_runs(list(backends), project=project, where=list(where), sort_by=sort, limit=limit)
        reasons = why_empty(list(backends)) if not rows and not where and not project else []
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    if reasons:  # a location that holds no runs of its backend at all: a wrong path, as a W&B one is
        raise click.ClickException("\n".join(reasons))
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
@click.option("--limit", "-n", default=50, show_default=True, help="Newest N runs (after --where and --sort).")
@click.option("--backend", "-b", "backends", multiple=True,
              help="Query this backend's stored runs instead of the journal (repeatable), e.g. mlflow:./mlflow.db")
@click.option("--where", "-w", multiple=True,
              help="Filter, repeatable (all must hold): status=completed, config.optimizer.lr<0.1, "
                   "metrics.eval/acc>=0.9 (the last value), metrics.eval/acc.max>=0.9 (also .min .last .best "
                   ".best_step), summary.test/acc>0.9, tag.team=vision, name~resnet*")
@click.option("--sort", help="Sort by a field, '-' for descending, e.g. -metrics.eval/acc; metrics.KEY.best: best "
                             "first by the metric's goal (default: newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def runs(root: str | None, project: str | None, limit: int, backends: tuple[str, ...], where: tuple[str, ...],
         sort: str | None, as_json: bool) -> None:
    """List runs, newest first, under the local journal root (or, with --backend, in any backends):
    id, name, status (and what is not delivered yet), start, duration, last step, last metrics (with
    the best value and its step where the metric's goal was declared: run.define_metric).

    In a narrow terminal the id, name and status stay whole; the other columns are hidden."""
    with quiet_sdk_logs():
        if backends:
            query_rows(backends, project, where, sort, limit, as_json)
            return
        from ..index import newest

        r = journal_root(root)
        entries = journal_records(r, project)
        if not where and not sort:  # the default order: only the rows shown are decoded
            entries = newest(entries, limit)
        recs = {e.run_dir: e for e in entries}
        rows = filter_rows([e.info for e in recs.values()], where, sort, limit)
        if not rows and not as_json and not where:
            console().print(f"no runs under {escape(r)}")
            return
        show_rows(rows, r, as_json, {i.location: delivery(recs[i.location]) for i in rows})


# ---------------------------------------------------------------- show


def _artifacts(rec: RunRecord) -> list[Artifact]:
    return [ev for ev in rec.events if isinstance(ev, Artifact)]


def _traceback(rec: RunRecord) -> str:
    """The traceback of the run's last crash (``""`` when it did not crash or none was kept)."""
    for ev in reversed(rec.events):
        if isinstance(ev, StatusChange) and ev.status is Status.CRASHED:
            tb = ev.details.get("traceback") if isinstance(ev.details, Mapping) else None
            return tb if isinstance(tb, str) else ""
    return ""


def _provenance(rec: RunRecord) -> list[dict[str, str]]:
    """One line per reproducibility pillar except the config (printed whole): git commit and
    dirty state, Python/torch, the invocation, the data version, the seed."""
    from ..reproduce import check_pillars

    return [{"pillar": c.pillar, "status": c.status, "detail": c.detail} for c in check_pillars(rec)
            if c.pillar != "hyperparameters"]


def _segments(rec: RunRecord) -> list[dict[str, Any]]:
    return [
        {"segment": ev.segment + 1, "time": ev.time, "after_step": ev.step,
         "previous_status": ev.previous_status.value if ev.previous_status else None}
        for ev in rec.events if isinstance(ev, RunResumed)
    ]


def show_dict(rec: RunRecord, state: Delivery | None) -> dict[str, Any]:
    """What ``trackkit show RUN --json`` prints."""
    out = info_dict(rec.info, state)
    out["segments"] = _segments(rec)
    out["artifacts"] = [
        {"name": a.name, "version": a.version, "kind": a.kind, "size": a.size, "sha256": a.sha256,
         "aliases": list(a.aliases), "path": a.location or a.path, "source": a.source}
        for a in _artifacts(rec)
    ]
    out["media_keys"] = {k: {"kind": ms[0].kind, "count": len(ms), "last_step": ms[-1].step}
                         for k, ms in sorted(rec.media().items())}
    out["provenance"] = _provenance(rec)
    out["traceback"] = _traceback(rec) or None
    return out


def _pairs(title: str, data: Mapping[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    for k, v in data.items():
        table.add_row(Text(str(k)), Text(str(v)))
    return table


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _where(a: Artifact, location: str) -> str:
    """Where an artifact is: a path relative to the run directory when it lies inside it; read from
    a backend, where the backend keeps it (``Artifact.location``: never a reader's temporary copy)."""
    import os

    if a.location:
        return a.location
    if location and a.path.startswith(location.rstrip(os.sep) + os.sep):
        return os.path.relpath(a.path, location)
    return a.path


@click.command()
@click.argument("run")
@click.option("--root", help="Journal root (when no --backend is given).")
@click.option("--backend", "-b", "backends", multiple=True,
              help="Read the run from this backend instead of the journal (repeatable: the first that holds it), "
                   "e.g. mlflow:./mlflow.db")
@click.option("--project", "-p", help="With --backend: only runs of this project (for name / id-prefix lookups).")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def show(run: str, root: str | None, backends: tuple[str, ...], project: str | None, as_json: bool) -> None:
    """Show one run (by id, id prefix or name): status (and what is not delivered yet), the crash
    traceback, config, tags, last metrics, artifacts and a provenance summary (git, environment,
    invocation, data, seed)."""
    with quiet_sdk_logs():
        rec, state = _load(run, root, backends, project)
    if as_json:
        dump_json(show_dict(rec, state))
        return
    _print_run(console(), rec, state)


def _load(
    run: str, root: str | None, backends: Sequence[str], project: str | None
) -> tuple[RunRecord, Delivery | None]:
    if not backends:  # the summary from the index; of the journal, every record but the metric points
        from ..index import light_record

        entry = find_run(journal_root(root), run)
        return light_record(entry), delivery(entry)
    from ..query import load_runs

    try:
        (rec,) = load_runs([run], list(backends), project, metrics=False)  # show prints the last values
    except TrackkitError as exc:  # a missing or ambiguous RUN is a lookup.RunLookupError
        raise click.ClickException(str(exc)) from None
    except KeyError as exc:  # a Reader that lost a run it had just listed
        raise click.ClickException(str(exc.args[0]) if exc.args else str(exc)) from None
    return rec, None


def _print_run(out: Console, rec: RunRecord, state: Delivery | None) -> None:
    from ..events import flatten_config

    i = rec.info
    group = f" group [bold]{escape(i.group)}[/]" if i.group else ""
    group += f" parent [bold]{escape(i.parent)}[/]" if i.parent else ""
    out.print(f"[bold]{escape(i.name)}[/] ({escape(i.run_id)}) project [bold]{escape(project_cell(i))}[/]{group}")
    status = status_text(i, _note(i, state))
    if i.reason:
        status.append(f": {i.reason}")
    out.print(Text("status ").append_text(status))
    for line in damage_lines(i):
        out.print(Text(line, style="yellow"), soft_wrap=True)
    if i.resumed:
        out.print(f"resumed {i.resumed}× (segments: {i.resumed + 1})")
        for seg in _segments(rec):
            step = "-" if seg["after_step"] is None else seg["after_step"]
            out.print(f"  segment {seg['segment']} from {when(seg['time'])} after step {step} "
                      f"(was {seg['previous_status'] or '?'})")
    out.print(f"started {when(i.start_time)}  duration {_dur(i)}  last step "
              f"{'-' if i.last_step is None else i.last_step}")
    if state is not None:
        out.print(f"journal {escape(i.location)}")
    elif i.backend:
        out.print(f"read from {escape(i.backend)}")
    tb = _traceback(rec)
    if tb:
        out.print("[red]traceback[/] (the crash, as recorded):")
        out.print(Text(tb.rstrip("\n"), style="dim"))
    for title, data in (("config", flatten_config(i.config)), ("tags", i.tags),
                        ("last metrics", {k: metric_cell(i, k, v).partition("=")[2]
                                          for k, v in i.last_metrics.items()}),
                        ("summary", {k: num(v) if isinstance(v, float) else v for k, v in i.summary.items()})):
        if data:  # an empty table says nothing
            out.print(_pairs(title, data))
    media = rec.media()
    if media:
        out.print(_pairs("media", {k: f"{len(ms)} {ms[0].kind}{'s' if len(ms) > 1 else ''}, steps {ms[0].step}-"
                                      f"{ms[-1].step}" for k, ms in sorted(media.items())}))
    arts = [a for a in _artifacts(rec) if a.kind != "provenance"]
    if arts:
        table = Table(title="artifacts", title_justify="left")
        for col in ("name", "version", "kind", "size"):
            table.add_column(col, no_wrap=True, justify="right" if col in ("version", "size") else "left")
        table.add_column("path" if state is None else "path (in the journal directory)", overflow="fold")
        for a in arts:
            table.add_row(Text(a.name), f"v{a.version}", Text(a.kind), _size(a.size), Text(_where(a, i.location)))
        out.print(table)
    pillars = _provenance(rec)
    if all(p["status"] == "missing" for p in pillars):
        out.print("provenance: not recorded" + (f" in {escape(i.backend)}" if state is None else ""))
        return
    table = Table(title="provenance (trackkit doctor RUN says how to fix a gap)", show_header=False,
                  title_justify="left")
    table.add_column("pillar", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for p in pillars:
        style = "green" if p["status"] == "ok" else "yellow"
        table.add_row(p["pillar"], Text(p["status"], style=style), Text(p["detail"]))
    out.print(table)
    files = [a.name for a in _artifacts(rec) if a.kind == "provenance"]
    if files:
        out.print(Text(f"provenance files: {', '.join(dict.fromkeys(files))} (paths: --json)"))


@click.command()
@click.argument("run", required=False)
@click.option("--root", help="Journal root.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to keep trying per run.")
def sync(run: str | None, root: str | None, timeout: float) -> None:
    """Deliver journaled data the agent could not (server down, process killed).

    Without RUN, every run under the root with undelivered data is synced.
    A run whose process is gone without finishing is marked killed first. A backend still behind
    is one line with the cause; the delivery's messages and tracebacks are in the run's agent.log.
    Exit status 1 when some data is still undelivered."""
    from rich.markup import escape

    from ..sync import RunSync
    from ..sync import sync as sync_runs

    console = Console(soft_wrap=True)  # one line per fact, however narrow the terminal

    def progress(r: RunSync) -> None:
        if r.state == "running":
            console.print(f"{r.run_id}: still running (its agent delivers); skipped")
        elif r.state == "busy":
            console.print(f"{r.run_id}: its agent is still delivering; skipped (run sync again later)")
        elif r.state == "delivered":
            console.print(f"[green]{r.run_id}[/]: delivered to {escape(', '.join(r.backends))}")
        elif r.state == "pending":
            for backend in r.pending:
                cause = r.causes.get(backend) or f"not done within {timeout:g} s"
                console.print(f"[red]{r.run_id}[/]: not delivered to {escape(backend)}: {escape(cause)} "
                              f"(see {escape(r.log_path)}); the journal keeps it")

    try:
        report = sync_runs(root, run, timeout=timeout, progress=progress)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(0 if report.ok else 1)
