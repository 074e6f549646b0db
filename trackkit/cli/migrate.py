"""``trackkit migrate --from STR --to STR [RUN ...|--all]``: copy runs between backends and verify them."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ..errors import TrackkitError
from ..migrate import Report
from .common import Column, console, dump_json, fitted_table, hidden_note, quiet_sdk_logs


@click.command()
@click.argument("runs", nargs=-1)
@click.option("--from", "source", required=True, help="Source backend string, e.g. tensorboard:./runs")
@click.option("--to", "target", required=True, help="Target backend string, e.g. mlflow:./mlflow.db")
@click.option("--all", "all_runs", is_flag=True, help="Migrate every run of the source (of --project).")
@click.option("--project", "-p", help="With --all: only this project.")
@click.option("--no-verify", is_flag=True, help="Skip reading the copy back and comparing it.")
@click.option("--dry-run", is_flag=True, help="Read and plan only: show what would be copied and skipped.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON (every mismatch).")
def migrate(runs: tuple[str, ...], source: str, target: str, all_runs: bool, project: str | None,
            no_verify: bool, dry_run: bool, as_json: bool) -> None:
    """Copy runs from one backend to another, then read each copy back and compare every
    metric point, the config, tags, status, media (pixels, counts, cells) and artifact hashes.

    Exit status 1 when a run failed or a copy does not match its source. A run the target
    already holds is not copied again (it is verified). A source run whose files are cut is
    copied as far as it can be read, verified, and said so ("the readable part"; exit 0)."""
    from ..migrate import migrate_all, migrate_many

    if bool(runs) == all_runs:
        raise click.UsageError("give RUN ids or --all (not both)")
    out = console(stderr=as_json)
    verify = not no_verify and not dry_run
    with quiet_sdk_logs(), _bars(out) as (run_done, chunk_done):
        try:
            if all_runs:
                reports = migrate_all(source, target, project, verify=verify, dry_run=dry_run, progress=run_done,
                                      chunk_progress=chunk_done)
            else:
                reports = migrate_many(list(runs), source, target, verify=verify, dry_run=dry_run,
                                       progress=run_done, chunk_progress=chunk_done)
        except TrackkitError as exc:
            raise click.ClickException(str(exc)) from None

    if as_json:
        dump_json([r.to_dict() for r in reports])
    else:
        _print(out, reports, source, target, verify=verify, dry_run=dry_run)
    sys.exit(0 if reports and all(r.ok for r in reports) else 1)  # nothing to migrate: nothing could be done


@contextmanager
def _bars(out: Console) -> Iterator[tuple[Callable[[Report], None], Callable[[Report, float | None], None]]]:
    """A progress bar per run (points copied, rate, ETA where the reader knows how far it is) on a
    terminal; nothing when the output is piped."""
    if not out.is_terminal:
        yield (lambda r: None), (lambda r, f: None)
        return
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bars = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[points]} points"),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=out,
                    transient=False)
    tasks: dict[str, tuple[TaskID, float]] = {}

    def chunk(r: Report, done: float | None) -> None:
        now = time.monotonic()
        if r.run_id not in tasks:
            tasks[r.run_id] = (bars.add_task(escape(f"{r.run_id} {r.name}"[:40]), total=None if done is None
                                             else 1.0, points=0, rate=""), now)
        task, t0 = tasks[r.run_id]
        rate = f"{r.points / (now - t0):,.0f}/s" if now > t0 else ""
        bars.update(task, completed=done if done is not None else None, points=f"{r.points:,}", rate=rate)

    def run(r: Report) -> None:
        if r.run_id in tasks:
            bars.update(tasks[r.run_id][0], total=1.0, completed=1.0, points=f"{r.points:,}")

    with bars:
        yield run, chunk


def _print(console: Console, reports: list[Report], source: str, target: str, *, verify: bool,
           dry_run: bool = False) -> None:
    if not reports:
        from ..query import why_empty

        lines = why_empty([source]) or [f"no runs to migrate in {source}"]
        for line in lines:
            console.print(escape(line), soft_wrap=True)
        return
    columns = [Column("run"), Column("name"), Column("copy"), Column("points", drop=3, justify="right"),
               Column("media", drop=3, justify="right"), Column("artifacts", drop=2, justify="right"),
               Column("skipped", drop=1, justify="right"),
               Column("verification"), Column("seconds", drop=4, justify="right")]
    rows = []
    for r in reports:
        if r.error:
            copy, check = Text("failed", style="red"), Text("-")
        else:
            copy = Text("copied" if r.copied else "already there")
            if r.copied and r.source_damaged:
                copy = Text("copied in part", style="yellow")
            if dry_run:
                copy = Text("would copy" + (" in part" if r.source_damaged else "") if not r.already_present
                            else "already there", style="cyan")
                check = Text("dry run", style="dim")
            elif not verify:
                check = Text("not verified", style="dim")
            elif r.mismatches:
                check = Text(f"{len(r.mismatches)} mismatches", style="red")
            else:
                check = Text("OK", style="green")
        rows.append([Text(r.run_id), Text(r.name), copy, Text(str(r.points)), Text(str(sum(r.media.values()))),
                     Text(str(len(r.artifacts))), Text(str(len(r.skipped) + len(r.skipped_media))), check,
                     Text(f"{r.seconds:.1f}")])
    table, hidden = fitted_table(f"migrate {escape(source)} -> {escape(target)}", columns, rows, console.width)
    console.print(table)
    if hidden:
        console.print(hidden_note(hidden))
    for r in reports:
        rid = escape(r.run_id)
        if r.error:
            console.print(f"[red]{rid}[/]: {escape(r.error)}")
        for s in r.skipped:
            console.print(f"[yellow]{rid}[/]: artifact {escape(str(s))} (skipped)")
        for sm in r.skipped_media:
            console.print(f"[yellow]{rid}[/]: media {escape(sm)} (skipped)")
        for m in r.mismatches[:20]:
            console.print(f"[red]{rid}[/]: {escape(str(m))}")
        if len(r.mismatches) > 20:
            console.print(f"[red]{rid}[/]: ... and {len(r.mismatches) - 20} more (--json lists every one)")
    _notes(console, reports)
    for r in reports:
        if r.ok and r.source_damaged:
            console.print(escape(damage_line(r, verify=verify, dry_run=dry_run)), soft_wrap=True)
    bad = sum(1 for r in reports if not r.ok)
    part = sum(1 for r in reports if r.ok and r.source_damaged)
    some = f" ({part} of them only in part: the source is damaged)" if part else ""
    if dry_run:
        console.print(f"dry run: {len(reports) - bad} of {len(reports)} runs would be migrated{some}; nothing was "
                      "written")
        return
    console.print(f"{len(reports) - bad} of {len(reports)} runs migrated and verified{some}" if verify
                  else f"{len(reports) - bad} of {len(reports)} runs migrated (not verified){some}")


def damage_line(r: Report, *, verify: bool, dry_run: bool = False) -> str:
    """``run X: migrated and verified the readable part; the source is damaged: FILE cut at byte N of M``."""
    if dry_run:
        done = "would migrate the readable part" if not r.already_present else "already in the target"
    elif r.already_present:
        done = "already in the target" + (", verified against the readable part" if verify else "")
    else:
        done = "migrated and verified the readable part" if verify else "migrated the readable part (not verified)"
    return f"run {r.run_id}: {done}; the source is damaged: {'; '.join(r.damage)}"


def _notes(console: Console, reports: list[Report]) -> None:
    """The runs' notes, a note several runs share once (``3 runs: ... already holds the run ...``):
    the table above already names each run."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for r in reports:
        for n in r.notes:
            text = str(n)
            generic = text.replace(f"run {r.run_id}", "the run").replace(r.run_id, "the run")
            groups.setdefault(generic, []).append((r.run_id, text))
    for generic, hits in groups.items():
        if len(hits) == 1:
            rid, text = hits[0]
            console.print(f"{escape(rid)}: {escape(text)}")
        else:
            console.print(f"{len(hits)} runs: {escape(generic)}")
