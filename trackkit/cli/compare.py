"""``trackkit compare RUN RUN ...`` and the backend query behind ``trackkit runs --backend ...``."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..errors import TrackkitError
from ..events import RunInfo, RunRecord

_STATUS_STYLE = {"completed": "green", "running": "cyan", "diverged": "yellow", "crashed": "red", "killed": "magenta"}


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 200)


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.6g}"


def _val(v: Any) -> str:
    from ..query import MISSING

    if v is MISSING:
        return "[dim]—[/]"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, str):
        return v
    return json.dumps(v, default=str, ensure_ascii=False)


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _json_default(v: Any) -> Any:
    return str(v)


def _clean(v: Any) -> Any:
    """NaN/inf as strings: ``--json`` output is strict JSON."""
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def dump_json(obj: Any) -> None:
    click.echo(json.dumps(_clean(obj), indent=2, default=_json_default, ensure_ascii=False, allow_nan=False))


def info_dict(i: RunInfo) -> dict[str, Any]:
    return {
        "run_id": i.run_id, "project": i.project, "name": i.name, "backend": i.backend, "status": i.status.value,
        "reason": i.reason, "group": i.group, "start_time": i.start_time, "end_time": i.end_time,
        "tags": dict(i.tags), "config": dict(i.config), "last_metrics": dict(i.last_metrics),
        "last_step": i.last_step, "location": i.location, "resumed": i.resumed,
    }


def resumed_note(i: RunInfo) -> str:
    """`` (resumed 2×)`` for a run continued after preemption (docs/resume.md), else ``""``."""
    return f" (resumed {i.resumed}×)" if i.resumed else ""


def show_rows(rows: Sequence[RunInfo], title: str, as_json: bool) -> None:
    """Print run summaries as a rich table (or JSON)."""
    if as_json:
        dump_json([info_dict(i) for i in rows])
        return
    console = _console()
    if not rows:
        console.print(f"no runs in {title}")
        return
    backends = {i.backend for i in rows}
    table = Table(title=f"runs in {title}")
    cols = ["backend"] if len(backends) > 1 else []
    cols += ["id", "project", "name", "status", "start", "step", "last metrics"]
    for col in cols:
        table.add_column(col)
    for i in rows:
        metrics = ", ".join(f"{k}={_num(v)}" for k, v in list(i.last_metrics.items())[:4])
        st = i.status.value
        cells = [i.backend] if len(backends) > 1 else []
        cells += [i.run_id, i.project, i.name, f"[{_STATUS_STYLE.get(st, 'white')}]{st}[/]{resumed_note(i)}",
                  _when(i.start_time),
                  "-" if i.last_step is None else str(i.last_step), metrics]
        table.add_row(*cells)
    console.print(table)


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


def _journal_records(refs: Sequence[str], root: str | None) -> list[RunRecord]:
    from .runs import _find, _root

    r = _root(root)
    return [_find(r, ref) for ref in refs]


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--backend", "-b", "backends", multiple=True,
              help="Backend string to read from (repeatable); default: the local journal.")
@click.option("--project", "-p", help="Only runs of this project (for name / id-prefix lookups).")
@click.option("--root", help="Journal root, when no --backend is given.")
@click.option("--all-config", is_flag=True, help="Also list the config keys every run shares.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(runs: tuple[str, ...], backends: tuple[str, ...], project: str | None, root: str | None,
            all_config: bool, as_json: bool) -> None:
    """Compare runs side by side: config keys that differ, and each metric's last / min / max.

    A RUN is a run id, a unique id prefix or a unique name. With several --backend, each run is
    taken from the first backend that holds it."""
    from ..query import compare as compare_runs
    from ..query import load_runs

    try:
        recs = load_runs(list(runs), list(backends), project) if backends else _journal_records(runs, root)
        result = compare_runs(recs)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0]) if exc.args else str(exc)) from None
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        dump_json(result.to_dict())
        return
    console = _console()
    labels = result.labels
    head = Table(title="runs", show_header=True)
    head.add_column("")
    for label in labels:
        head.add_column(label)
    head.add_row("run id", *[r.run_id for r in result.runs])
    head.add_row("backend", *[r.backend for r in result.runs])
    head.add_row("status", *[f"[{_STATUS_STYLE.get(r.status.value, 'white')}]{r.status.value}[/]"
                             + (f": {r.reason}" if r.reason else "") for r in result.runs])
    head.add_row("last step", *["-" if r.last_step is None else str(r.last_step) for r in result.runs])
    console.print(head)

    cfg = Table(title="config: keys that differ")
    cfg.add_column("key")
    for label in labels:
        cfg.add_column(label)
    for k, vals in result.config_differs.items():
        cfg.add_row(k, *[_val(v) for v in vals])
    if all_config:
        for k, v in result.config_same.items():
            cfg.add_row(f"[dim]{k}[/]", *[f"[dim]{_val(v)}[/]"] * len(labels))
    if result.config_differs or all_config:
        console.print(cfg)
    else:
        console.print("config: no differences")
    if result.config_same and not all_config:
        console.print(f"[dim]{len(result.config_same)} config keys are the same in every run (--all-config lists "
                      "them)[/]")

    mt = Table(title="metrics: last (min … max)")
    mt.add_column("metric")
    for label in labels:
        mt.add_column(label, justify="right")
    for k, sums in result.metrics.items():
        cells = []
        for s in sums:
            if s is None:
                cells.append("[dim]—[/]")
            elif s.min is None:
                cells.append(_num(s.last))
            else:
                cells.append(f"{_num(s.last)} [dim]({_num(s.min)} … {_num(s.max)})[/]")
        mt.add_row(k, *cells)
    if result.metrics:
        console.print(mt)
