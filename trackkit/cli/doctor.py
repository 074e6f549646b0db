"""``trackkit doctor [RUN]``: a run's five pillars and its invocation, or the repository's team standard,
its recent runs and the ``.gitignore`` lines for what trackkit writes into the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import TrackkitError

if TYPE_CHECKING:
    from ..backend import BackendSpec

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

    With RUN (id, id prefix or name): which of the five pillars (hyperparameters, seed, code = git,
    environment = env, data) and the invocation the run recorded; exit 1 when one is missing, turned off
    or unavailable.

    Without RUN: check the repository's team standard (trackkit.toml) and the recent runs against it;
    exit 1 when something is off, printing the fix. It also prints the .gitignore lines for the journal
    root and the local backend locations inside the git repository that git does not ignore yet."""
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
        console.print("[green]complete[/]: the five pillars and the invocation are recorded. Rebuild it with "
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
    notes: list[str] = []
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
    specs: list[BackendSpec] = []
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
    notes += _gitignore_notes(os.path.abspath(root or settings.root), specs)
    std = settings.standard
    if std.name_template:
        from ..naming import check_template

        try:
            check_template(std.name_template)
            ok.append(f"name template: {std.name_template}")
        except TrackkitError as exc:
            problems.append((str(exc).split(". Fix: ")[0], _fix_of(str(exc))))
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
    return _report(console, ok, problems, rows, notes)


#: where trackkit and the local backends write by default, relative to the working directory
_DEFAULT_OUTPUTS = (".trackkit/", "runs/", "wandb/", "mlartifacts/", "mlflow.db")


def _output_paths(root: str, specs: Sequence[BackendSpec]) -> list[str]:
    """What trackkit writes to from here: the journal root and the local backends' locations (absolute;
    a directory with a trailing slash)."""
    from ..registry import entry_for

    paths = [root.rstrip(os.sep) + "/"]
    for spec in specs:
        loc = spec.location
        if spec.scheme == "wandb":
            base = spec.options.get("dir") or os.environ.get("WANDB_DIR") or os.getcwd()
            paths.append(os.path.join(os.path.abspath(os.path.expanduser(base)), "wandb") + "/")
        elif spec.scheme == "mlflow" and (loc.startswith("sqlite:///") or "://" not in loc):
            db = loc.removeprefix("sqlite:///") if loc.startswith("sqlite:") else loc
            paths += [os.path.abspath(db), os.path.join(os.path.dirname(os.path.abspath(db)), "mlartifacts") + "/"]
        elif loc and entry_for(spec.scheme).local_path:
            paths.append(loc if os.path.isfile(loc) else loc.rstrip(os.sep) + "/")
    return paths


def _git(args: Sequence[str], cwd: str, stdin: str | None = None) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def _gitignore_notes(root: str, specs: Sequence[BackendSpec]) -> list[str]:
    """The ``.gitignore`` lines for what trackkit writes inside the current git repository and git does
    not ignore (``git check-ignore``): without them every run's patch and ``git status`` carry it."""
    top_proc = _git(["rev-parse", "--show-toplevel"], os.getcwd())
    if top_proc is None or top_proc.returncode != 0 or not top_proc.stdout.strip():
        return []
    top = os.path.realpath(top_proc.stdout.strip())
    rel: list[str] = []
    # and the default locations an earlier run left here or at the top of the repository
    left = [os.path.join(d, p) for d in (os.getcwd(), top) for p in _DEFAULT_OUTPUTS
            if os.path.exists(os.path.join(d, p))]
    for p in [*_output_paths(root, specs), *left]:
        real = os.path.realpath(p.rstrip("/")) + ("/" if p.endswith("/") else "")
        if real.startswith(top + os.sep) and real.rstrip("/") != top:
            r = os.path.relpath(real.rstrip("/"), top) + ("/" if real.endswith("/") else "")
            if r not in rel:
                rel.append(r)
    if not rel:
        return []
    check = _git(["check-ignore", "--stdin", "-z"], top, "\0".join(rel) + "\0")
    if check is None or check.returncode not in (0, 1):
        return []
    ignored = set(check.stdout.split("\0"))
    missing = [r for r in rel if r not in ignored]
    if not missing:
        return []
    lines = "".join(f"\n       /{r}" for r in missing)
    return [f"git does not ignore what trackkit writes into this repository (every run's patch would carry it)"
            f"\n     add to {os.path.join(top, '.gitignore')}:{lines}"]


def _fix_of(message: str) -> str:
    _, sep, fix = message.partition("Fix: ")
    return fix.strip() if sep else "see docs/team-standard.md"


def _report(console: Console, ok: list[str], problems: list[tuple[str, str]],
            rows: list[tuple[str, str, list[str]]], notes: Sequence[str] = ()) -> int:
    for line in ok:
        console.print(f"[green]ok[/]   {escape(line)}")
    for line in notes:
        console.print(f"[yellow]note[/] {escape(line)}")
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
