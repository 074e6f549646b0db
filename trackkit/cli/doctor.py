"""``trackkit doctor [RUN]``: a run's five pillars, or the repository's team standard and its recent runs."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import TrackkitError

_STYLE = {"ok": "green", "missing": "red", "disabled": "yellow", "error": "red", "unavailable": "yellow"}


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 160)


@click.command()
@click.argument("run", required=False)
@click.option("--root", help="Journal root (default: settings `root`, ./.trackkit).")
@click.option("--backend", help="Read the run through this backend's Reader, e.g. 'tensorboard:./runs'.")
@click.option("--limit", "-n", default=10, show_default=True, help="Without RUN: how many recent runs to check.")
def doctor(run: str | None, root: str | None, backend: str | None, limit: int) -> None:
    """Check reproducibility.

    With RUN (id, id prefix or name): which of the five pillars the run recorded (hyperparameters, git,
    env, invocation, data, seed); exit 1 when one is missing, turned off or unavailable.

    Without RUN: check the repository's team standard (trackkit.toml) and the recent runs against it;
    exit 1 when something is off, printing the fix."""
    console = _console()
    if run is None:
        sys.exit(_doctor_repository(console, root, backend, limit))
    sys.exit(_doctor_run(console, run, root, backend))


def _doctor_run(console: Console, run: str, root: str | None, backend: str | None) -> int:
    from ..reproduce import check_pillars, find_record

    try:
        rec = find_record(run, root=root, backend=backend)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    checks = check_pillars(rec)
    i = rec.info
    table = Table(title=f"run {i.name} ({i.run_id}) from {i.backend}")
    for col in ("pillar", "status", "detail"):
        table.add_column(col)
    for c in checks:
        table.add_row(c.pillar, f"[{_STYLE.get(c.status, 'white')}]{c.status}[/]", escape(c.detail))
    console.print(table)
    bad = [c for c in checks if not c.ok]
    if not bad:
        where = f" --backend {backend}" if backend else ""
        console.print("[green]complete[/]: all five pillars recorded. Rebuild it with "
                      f"`trackkit reproduce {i.run_id}{escape(where)}`")
        return 0
    console.print(f"[red]incomplete[/]: {', '.join(f'{c.pillar} ({c.status})' for c in bad)}")
    for c in bad:
        console.print(f"  {c.pillar}: {escape(c.detail)}. Fix: {escape(c.fix)}")
    return 1


def _doctor_repository(console: Console, root: str | None, backend: str | None, limit: int) -> int:
    from ..registry import check_available, parse_backends
    from ..settings import find_config_files, load_settings

    problems: list[tuple[str, str]] = []
    ok: list[str] = []
    tk_file, py_file = find_config_files()
    std_source = tk_file
    if tk_file is None and py_file is not None:
        try:
            from ..util import tomllib

            with open(py_file, "rb") as fh:
                if isinstance(tomllib.load(fh).get("tool", {}).get("trackkit"), dict):
                    std_source = f"[tool.trackkit] in {py_file}"
        except (OSError, ValueError):
            pass
    if std_source is None:
        problems.append((
            "no trackkit.toml: this repository has no team standard",
            "`trackkit recommend --write` writes one at the repository root",
        ))
    else:
        ok.append(f"team standard: {std_source}")
    try:
        settings = load_settings()
    except TrackkitError as exc:
        problems.append(("settings do not load: " + str(exc).split(". Fix:")[0], _fix_of(str(exc))))
        return _report(console, ok, problems, [])
    try:
        specs = parse_backends(settings.backend)
        ok.append(f"backend: {', '.join(s.raw for s in specs)}")
        for spec in specs:
            try:
                check_available(spec)
            except TrackkitError as exc:
                problems.append((f"backend {spec.raw!r} is not usable here: " + str(exc).split(". Fix:")[0],
                                 _fix_of(str(exc))))
    except TrackkitError as exc:
        problems.append(("backend: " + str(exc).split(". Fix:")[0], _fix_of(str(exc))))
    std = settings.standard
    if std.name_template:
        try:
            std.name_template.format(project="p", id="i", date="d", group="g")
            ok.append(f"name template: {std.name_template}")
        except (KeyError, IndexError, ValueError) as exc:
            problems.append((f"name_template {std.name_template!r} cannot be formatted ({exc})",
                             "use only {project}, {id}, {date}, {group}"))
    reqs: dict[str, list[str]] = {
        "required tags": list(std.required_tags),
        "required config": list(std.required_config),
        "required provenance": list(std.required_provenance),
    }
    for label, values in reqs.items():
        if values:
            ok.append(f"{label}: {', '.join(values)}")
    if std_source is not None and not any(reqs.values()) and not std.name_template:
        ok.append("the standard requires nothing yet (add [trackkit.standard] required_tags/config/provenance)")

    rows: list[tuple[str, str, list[str]]] = []
    recs: list[Any] = []
    try:
        if backend:
            from ..registry import load_reader, parse_backend

            reader = load_reader(parse_backend(backend))
            recs = [reader.read_run(i.run_id) for i in reader.list_runs()[-limit:]]
        else:
            from ..journal import list_run_dirs, load_run

            where = os.path.abspath(root or settings.root)
            recs = [load_run(d) for d in list_run_dirs(where)[-limit:]]
    except TrackkitError as exc:
        problems.append(("cannot read the runs: " + str(exc).split(". Fix:")[0], _fix_of(str(exc))))
    from ..reproduce import check_run_against_standard

    for rec in recs:
        missing = check_run_against_standard(rec, std)
        rows.append((rec.info.run_id, rec.info.name, missing))
    broken = [r for r in rows if r[2]]
    if broken:
        problems.append((
            f"{len(broken)} of the {len(rows)} most recent run(s) break the standard",
            "pass the missing tags/config in trackkit.init(tags=..., config=...), keep provenance capture on "
            "(and seed/data as `trackkit doctor RUN` says); strict=true in trackkit.toml makes it an error",
        ))
    return _report(console, ok, problems, rows)


def _fix_of(message: str) -> str:
    _, sep, fix = message.partition("Fix: ")
    return fix.strip() if sep else "see docs/team-standard.md"


def _report(console: Console, ok: list[str], problems: list[tuple[str, str]],
            rows: list[tuple[str, str, list[str]]]) -> int:
    for line in ok:
        console.print(f"[green]ok[/]   {escape(line)}")
    if rows:
        table = Table(title="recent runs against the standard")
        for col in ("id", "name", "verdict"):
            table.add_column(col)
        for rid, name, missing in rows:
            verdict = "[green]ok[/]" if not missing else "[red]" + escape("; ".join(missing)) + "[/]"
            table.add_row(rid, escape(name), verdict)
        console.print(table)
    elif not problems:
        console.print("no runs yet under the journal root")
    for what, fix in problems:
        console.print(f"[red]off[/]  {escape(what)}\n     fix: {escape(fix)}")
    if problems:
        return 1
    console.print("[green]all good[/]")
    return 0
