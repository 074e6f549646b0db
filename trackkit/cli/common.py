"""What the command modules share: the journal's runs, finding one, and how values, times and
statuses are printed. Command modules import this one and never each other."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from typing import Any

import click
from rich.console import Console

from ..events import RunInfo, RunRecord, Status
from ..lookup import find_in_journal, journal_root, journal_runs

__all__ = [
    "STATUS_STYLE", "console", "dump_json", "find_run", "journal_records", "journal_root", "num", "resumed_note",
    "when",
]

#: the rich style of each status
STATUS_STYLE = {"completed": "green", "running": "cyan", "diverged": "yellow", "crashed": "red", "killed": "magenta"}


def console() -> Console:
    """The console tables are printed to (200 columns when not a terminal, so no cell wraps)."""
    return Console(width=None if sys.stdout.isatty() else 200)


def journal_records(root: str, project: str | None = None) -> list[RunRecord]:
    """The runs under a journal root, oldest first; a ``running`` run whose trainer is gone says so."""
    from ..rundir import RunDir

    out = journal_runs(root, project)
    for rec in out:
        if rec.info.status is Status.RUNNING and not RunDir(rec.info.location).trainer_alive():
            rec.info.reason = rec.info.reason or "unfinished: the process is gone (run `trackkit sync` to mark it)"
    return out


def find_run(root: str, ref: str) -> RunRecord:
    """The journal run ``ref`` (id, id prefix or name) names; a click error naming the fix otherwise."""
    from ..lookup import RunLookupError

    try:
        return find_in_journal(ref, root, journal_records(root))
    except RunLookupError as exc:
        raise click.ClickException(str(exc)) from None


def when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def num(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def resumed_note(i: RunInfo) -> str:
    """`` (resumed 2×)`` for a run continued after preemption (docs/resume.md), else ``""``."""
    return f" (resumed {i.resumed}×)" if i.resumed else ""


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
    """Print ``obj`` as indented, strict JSON (what every ``--json`` prints)."""
    click.echo(json.dumps(_clean(obj), indent=2, default=str, ensure_ascii=False, allow_nan=False))
