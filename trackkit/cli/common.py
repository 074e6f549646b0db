"""What the command modules share: the journal's runs, finding one, and how values, times and
statuses are printed. Command modules import this one and never each other."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from ..events import RunInfo, RunRecord, Status
from ..index import IndexEntry
from ..lookup import find_entry, journal_entries, journal_root
from ..sync import run_backends

__all__ = [
    "STATUS_STYLE", "Column", "Delivery", "IndexEntry", "console", "delivery", "dump_json", "find_run", "fitted_table",
    "hidden_note", "journal_records", "journal_root", "num", "quiet_sdk_logs", "resumed_note", "run_backends",
    "status_text", "when",
]

#: the rich style of each status
STATUS_STYLE = {"completed": "green", "running": "cyan", "diverged": "yellow", "crashed": "red", "killed": "magenta"}


def console(stderr: bool = False) -> Console:
    """The console tables are printed to: the terminal's width; when not a terminal, ``$COLUMNS``
    if set, else 200 columns (so no cell wraps in a pipe)."""
    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return Console(stderr=stderr, width=None if tty or os.environ.get("COLUMNS", "").isdigit() else 200)


@contextmanager
def quiet_sdk_logs() -> Iterator[None]:
    """While a command runs, the SDKs' own ``INFO`` log lines (MLflow's "Creating initial MLflow
    database tables", "Updating database tables", alembic's migrations) stay out of its output.

    MLflow sets its loggers' levels when it is imported (from ``MLFLOW_LOGGING_LEVEL``), which
    happens inside the command, so a level set on the ``mlflow`` logger beforehand does not hold:
    the records at ``INFO`` and below are dropped for the command's duration instead, and the
    previous state comes back after it. Warnings and errors still show; ``MLFLOW_LOGGING_LEVEL=INFO``
    (or ``DEBUG``) set by the user keeps MLflow's lines."""
    if os.environ.get("MLFLOW_LOGGING_LEVEL", "").upper() in ("INFO", "DEBUG"):
        yield
        return
    before = logging.root.manager.disable
    logging.disable(max(before, logging.INFO))
    try:
        yield
    finally:
        logging.disable(before)


# ---------------------------------------------------------------- tables that fit the terminal


@dataclass(frozen=True)
class Column:
    """One column of :func:`fitted_table`."""

    header: str
    #: 0: always shown (kept whole); otherwise hidden when the terminal is too narrow, the
    #: lowest number first
    drop: int = 0
    #: the cells may wrap at spaces; a kept (``drop=0``) column that does not wrap is never narrower
    #: than its widest cell
    wrap: bool = False
    justify: JustifyMethod = "left"
    #: a wrapping column is at least this wide (or as wide as its widest cell, when narrower); a
    #: longer word folds
    min_width: int = 12


def _lines_width(t: Text) -> int:
    return max((Text(line).cell_len for line in t.plain.split("\n")), default=0)


def fitted_table(
    title: str, columns: Sequence[Column], rows: Sequence[Sequence[Text]], width: int
) -> tuple[Table, list[str]]:
    """A table ``width`` columns wide at most, and the headers of the columns it had to hide.

    The columns with ``drop=0`` (an id, a name, a status) are kept whole: never cut with an
    ellipsis, never wrapped. When the table does not fit, the columns that may wrap get narrower
    first (down to their ``min_width``), then the droppable columns are hidden,
    lowest ``drop`` first. Only when the kept columns alone are wider than ``width`` does any cell
    fold (every character stays, over several lines)."""
    def natural(i: int) -> int:
        return max([Text(columns[i].header).cell_len] + [_lines_width(r[i]) for r in rows])

    def least(i: int) -> int:
        return min(natural(i), columns[i].min_width) if columns[i].wrap else natural(i)

    def room(shown: list[int]) -> int:  # the content width left once borders and padding are paid
        return width - (3 * len(shown) + 1)

    shown = list(range(len(columns)))
    droppable = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: columns[i].drop)
    while droppable and sum(least(i) for i in shown) > room(shown):
        shown.remove(droppable.pop(0))
    widths: dict[int, int] = {}
    if sum(natural(i) for i in shown) > room(shown):
        fixed = sum(natural(i) for i in shown if not columns[i].wrap)
        flexible = [i for i in shown if columns[i].wrap]
        spare = room(shown) - fixed - sum(least(i) for i in flexible)
        if spare >= 0:  # the wrapping columns share the spare room by how much more they could use
            wants = {i: natural(i) - least(i) for i in flexible}
            total = sum(wants.values()) or 1
            for i in flexible:
                widths[i] = least(i) + spare * wants[i] // total
    squeezed = sum(natural(i) for i in shown if not columns[i].wrap) > room(shown)
    table = Table(title=title)
    for i in shown:
        c = columns[i]
        table.add_column(c.header, justify=c.justify, overflow="fold", width=widths.get(i),
                         no_wrap=not c.wrap and not squeezed)
    for r in rows:
        table.add_row(*[r[i] for i in shown])
    return table, [columns[i].header for i in range(len(columns)) if i not in shown]


def hidden_note(hidden: Sequence[str]) -> str:
    """The line under a table that hid columns to fit the terminal."""
    return f"[dim]not shown at this width: {', '.join(hidden)} (--json shows all)[/]"


# ---------------------------------------------------------------- delivery state


@dataclass(frozen=True)
class Delivery:
    """Which backends of a journaled run do not hold all of its journal yet, and why."""

    #: the backend strings still behind (as a user writes them: ``mlflow://HOST:PORT``)
    pending: list[str]
    #: a deliverer (the run's agent, a ``trackkit sync``) is at work on the run right now
    delivering: bool = False
    #: backend string -> the deliverer's last word on why it is behind (``cannot resolve host 'nohost'``)
    causes: dict[str, str] = field(default_factory=dict)

    def note(self) -> str:
        """``"not delivered to X (cause), Y"`` / ``"delivering to X"``, or ``""`` when every backend
        has it all."""
        if not self.pending:
            return ""
        each = [f"{b} ({self.causes[b]})" if self.causes.get(b) else b for b in self.pending]
        return ("delivering to " if self.delivering else "not delivered to ") + ", ".join(each)


def delivery(rec: RunRecord | IndexEntry) -> Delivery:
    """The delivery state of a journaled run (its record or its index entry): the backends whose
    cursor is behind its journal, with the deliverer's last error for each (``agent.delivery_state``)."""
    from ..agent import delivery_state
    from ..errors import TrackkitError
    from ..registry import parse_backend
    from ..rundir import RunDir

    if not rec.info.location or not os.path.isdir(rec.info.location):
        return Delivery([])
    specs, unknown = [], []
    for b in rec.backends if isinstance(rec, IndexEntry) else run_backends(rec):
        try:
            specs.append(parse_backend(b))
        except TrackkitError:  # a plug-in backend not installed here: nothing here can have delivered it
            unknown.append(b)
    behind = delivery_state(rec.info.location, specs) + [(b, "unknown backend here") for b in unknown]
    pending = [b for b, _ in behind]
    return Delivery(pending, bool(pending) and RunDir(rec.info.location).delivering(),
                    {b: why for b, why in behind if why})


def status_text(i: RunInfo, note: str = "") -> Text:
    """A run's status as printed in a table: the status in its colour, ``(resumed N×)``, and a
    delivery note (``completed, not delivered to mlflow://nohost:1 (cannot resolve host 'nohost')``)."""
    st = i.status.value
    t = Text(st, style=STATUS_STYLE.get(st, "white"))
    t.append(resumed_note(i))
    if note:
        t.append(", ")
        t.append(note, style="red" if note.startswith("not") else "yellow")
    return t


def journal_records(root: str, project: str | None = None) -> list[IndexEntry]:
    """The run index under a journal root, oldest first (no journal is read whole); a ``running`` run
    whose trainer is gone says so."""
    from ..rundir import RunDir

    out = journal_entries(root, project)
    for e in out:
        if e.status == Status.RUNNING.value and not RunDir(e.run_dir).trainer_alive():
            e.info.reason = e.info.reason or "unfinished: the process is gone (run `trackkit sync` to mark it)"
    return out


def find_run(root: str, ref: str, entries: Sequence[IndexEntry] | None = None) -> IndexEntry:
    """The index entry of the journal run ``ref`` (id, id prefix or name) names (``entries``: the
    index, when already read); a click error naming the fix otherwise."""
    from ..lookup import RunLookupError

    try:
        return find_entry(ref, root, journal_records(root) if entries is None else entries)
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
