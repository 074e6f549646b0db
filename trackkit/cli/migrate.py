"""``trackkit migrate --from STR --to STR [RUN ...|--all]``: copy runs between backends and verify them."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from ..errors import TrackkitError
from ..migrate import Report
from .common import dump_json


@click.command()
@click.argument("runs", nargs=-1)
@click.option("--from", "source", required=True, help="Source backend string, e.g. tensorboard:./runs")
@click.option("--to", "target", required=True, help="Target backend string, e.g. mlflow:./mlflow.db")
@click.option("--all", "all_runs", is_flag=True, help="Migrate every run of the source (of --project).")
@click.option("--project", "-p", help="With --all: only this project.")
@click.option("--no-verify", is_flag=True, help="Skip reading the copy back and comparing it.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON (every mismatch).")
def migrate(runs: tuple[str, ...], source: str, target: str, all_runs: bool, project: str | None,
            no_verify: bool, as_json: bool) -> None:
    """Copy runs from one backend to another, then read each copy back and compare every
    metric point, the config, tags, status and artifact hashes.

    Exit status 1 when a run failed or a copy does not match its source. A run the target
    already holds is not copied again (it is verified)."""
    from ..migrate import migrate_all, migrate_many

    if bool(runs) == all_runs:
        raise click.UsageError("give RUN ids or --all (not both)")
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 200)

    def progress(r: Report) -> None:
        state = "[red]FAILED[/]" if not r.ok else ("copied" if r.copied else "already there")
        console.print(f"  {r.run_id} ({r.name}): {state}")

    try:
        if all_runs:
            reports = migrate_all(source, target, project, verify=not no_verify, progress=progress)
        else:
            reports = migrate_many(list(runs), source, target, verify=not no_verify, progress=progress)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None

    if as_json:
        dump_json([r.to_dict() for r in reports])
    else:
        _print(console, reports, source, target, verify=not no_verify)
    sys.exit(0 if all(r.ok for r in reports) else 1)


def _print(console: Console, reports: list[Report], source: str, target: str, *, verify: bool) -> None:
    if not reports:
        console.print(f"no runs to migrate in {source}")
        return
    table = Table(title=f"migrate {source} -> {target}")
    for col in ("run", "name", "copy", "points", "artifacts", "skipped", "verification", "seconds"):
        table.add_column(col)
    for r in reports:
        if r.error:
            copy, check = "[red]failed[/]", "-"
        else:
            copy = "copied" if r.copied else "already there"
            if not verify:
                check = "[dim]not verified[/]"
            elif r.mismatches:
                check = f"[red]{len(r.mismatches)} mismatches[/]"
            else:
                check = "[green]OK[/]"
        table.add_row(r.run_id, r.name, copy, str(r.points), str(len(r.artifacts)), str(len(r.skipped)), check,
                      f"{r.seconds:.1f}")
    console.print(table)
    for r in reports:
        if r.error:
            console.print(f"[red]{r.run_id}[/]: {r.error}")
        for s in r.skipped:
            console.print(f"[yellow]{r.run_id}[/]: artifact {s} (skipped)")
        for n in r.notes:
            console.print(f"{r.run_id}: {n}")
        for m in r.mismatches[:20]:
            console.print(f"[red]{r.run_id}[/]: {m}")
        if len(r.mismatches) > 20:
            console.print(f"[red]{r.run_id}[/]: ... and {len(r.mismatches) - 20} more (--json lists every one)")
    bad = sum(1 for r in reports if not r.ok)
    console.print(f"{len(reports) - bad} of {len(reports)} runs migrated and verified" if verify
                  else f"{len(reports) - bad} of {len(reports)} runs migrated (not verified)")
