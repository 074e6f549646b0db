"""``trackkit recommend``: which backend should we use, and make it the team standard.

Registered on the main group with ``main.add_command(recommend)``. rich is imported only when a
recommendation is printed, so ``trackkit --help`` stays cheap.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from trackkit.errors import ConfigError
from trackkit.recommend import CLOUDS, DEFAULT_PROJECT, RULES, Recommendation
from trackkit.recommend import recommend as _recommend

__all__ = ["recommend"]

#: the answers recommend() needs, with the flag that gives each
_REQUIRED: tuple[tuple[str, str], ...] = (
    ("team_size", "--team-size"),
    ("budget", "--budget"),
    ("privacy", "--privacy/--no-privacy"),
    ("production", "--production/--no-production"),
)
_EXAMPLE = "trackkit recommend --team-size 3 --budget paid --no-privacy --no-production"


def _stdin_is_tty() -> bool:
    """Whether to ask the questions when flags are missing (tests patch this)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _repo_root() -> Path:
    """The git repository root of the cwd, else the cwd."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return Path.cwd()
    top = out.stdout.strip()
    return Path(top) if out.returncode == 0 and top else Path.cwd()


def _default_project(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-.")
    return name or DEFAULT_PROJECT


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)


def _ask(ctx: click.Context, values: dict[str, Any], err: bool) -> None:
    """Ask, in priority order, every question whose flag was not given."""
    questions = {r.id: r.question for r in RULES}
    if values["team_size"] is None:
        values["team_size"] = click.prompt(
            "How many people will look at the runs (including you)?", type=click.IntRange(min=1), err=err
        )
    if values["budget"] is None:
        values["budget"] = click.prompt(
            f"{questions['budget']} (free = free only, paid = can pay)",
            type=click.Choice(["free", "paid"], case_sensitive=False),
            err=err,
        )
    if values["privacy"] is None:
        values["privacy"] = click.confirm(questions["privacy"], default=False, err=err)
    if values["production"] is None:
        values["production"] = click.confirm(questions["production"], default=False, err=err)
    if not _given(ctx, "cloud"):
        values["cloud"] = click.prompt(
            "Already on a cloud provider's ML platform?",
            type=click.Choice([*CLOUDS, "none"], case_sensitive=False),
            default="none",
            err=err,
        )
    if not _given(ctx, "want_all"):
        values["want_all"] = click.confirm(
            "Were you planning to log to all three backends for maximum coverage?", default=False, err=err
        )


@click.command("recommend")
@click.option("--team-size", type=click.IntRange(min=1), default=None, help="People who will look at the runs.")
@click.option(
    "--budget",
    type=click.Choice(["free", "paid"], case_sensitive=False),
    default=None,
    help="free = free tools only; paid = can pay for a hosted service.",
)
@click.option("--privacy/--no-privacy", default=None, help="Data may not leave your own servers.")
@click.option("--production/--no-production", default=None, help="Models go to production (registry, serving).")
@click.option(
    "--cloud",
    type=click.Choice([*CLOUDS, "none"], case_sensitive=False),
    default=None,
    help="The cloud ML platform you already use, if any.",
)
@click.option("--all-three", "want_all", is_flag=True, default=False, help="You were thinking of using all three.")
@click.option("--project", default=None, help="Project name for the snippet (default: the repository's name).")
@click.option("--write", is_flag=True, help="Write trackkit.toml at the repository root as the team standard.")
@click.option("--force", is_flag=True, help="With --write: replace an existing trackkit.toml.")
@click.option("--json", "as_json", is_flag=True, help="Print the recommendation as JSON.")
@click.option("--explain", is_flag=True, help="Also show every question, answer and verdict as a table.")
@click.option(
    "--interactive/--no-interactive",
    default=None,
    help="Ask for missing answers (default: ask only when stdin is a terminal).",
)
@click.pass_context
def recommend(
    ctx: click.Context,
    team_size: int | None,
    budget: str | None,
    privacy: bool | None,
    production: bool | None,
    cloud: str | None,
    want_all: bool,
    project: str | None,
    write: bool,
    force: bool,
    as_json: bool,
    explain: bool,
    interactive: bool | None,
) -> None:
    """Recommend ONE backend (TensorBoard, W&B or MLflow) from a few questions, and why.

    With no flags on a terminal it asks the questions. --write makes the answer the team standard
    (trackkit.toml at the repository root). Switching later is a one-line change.
    """
    if force and not write:
        raise click.UsageError("--force only applies together with --write.")
    values: dict[str, Any] = {
        "team_size": team_size,
        "budget": budget,
        "privacy": privacy,
        "production": production,
        "cloud": cloud,
        "want_all": want_all,
    }
    missing = [flag for name, flag in _REQUIRED if values[name] is None]
    ask = interactive if interactive is not None else (bool(missing) and _stdin_is_tty())
    if ask:
        _ask(ctx, values, err=as_json)
    elif missing:
        raise click.UsageError(
            f"missing {', '.join(missing)}. Fix: pass them (e.g. `{_EXAMPLE}`), "
            "or add --interactive to be asked the questions."
        )

    root = _repo_root()
    chosen_cloud = values["cloud"]
    try:
        rec = _recommend(
            values["team_size"],
            values["budget"],
            values["privacy"],
            values["production"],
            None if chosen_cloud in (None, "none") else chosen_cloud,
            values["want_all"],
            project=project if project is not None else _default_project(root),
        )
        written = None
        if write:
            from trackkit.recommend import write_team_config  # loads the settings model (pydantic)

            written = write_team_config(rec, root / "trackkit.toml", force=force)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc

    if as_json:
        data = rec.to_dict()
        data["written"] = str(written) if written else None
        click.echo(json.dumps(data, indent=2))
    else:
        _render(rec, written, explain)


def _render(rec: Recommendation, written: Path | None, explain: bool = False) -> None:
    """The recommendation on one screen: the answer, the decision path in one line, why, the
    alternatives, the trackkit.toml lines. ``explain`` adds every question and answer as a table."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    out = sys.stdout
    console = Console(file=out, width=None if out.isatty() else int(os.environ.get("COLUMNS", "110")))

    head = Text()
    head.append(f"{rec.backend}", style="bold green")
    head.append(f": {rec.summary}\n")
    head.append("backend = ")
    head.append(rec.backend_string, style="bold")
    if rec.placeholders:
        head.append(f"  (placeholder: replace {', '.join(rec.placeholders)} with your server)", style="yellow")
    console.print(Panel(head, title="Recommended backend", title_align="left", expand=False))

    names = {r.id: r.name for r in RULES}
    path = Text("Decision path: ", style="bold")
    for i, step in enumerate(rec.steps):
        verdict = step.verdict + (f" by {step.overridden_by}" if step.overridden_by else "")
        style = {"decided": "bold green", "overridden": "yellow"}.get(step.verdict, "")
        path.append((" · " if i else "") + f"{names.get(step.rule, step.rule)} ")
        path.append(verdict, style=style)
    console.print(path)
    if explain:
        console.print(_path_table(rec, names))
    for reason in rec.reasons if explain else _deciding_reasons(rec):
        console.print(Text(f"- {reason}"))
    if rec.alternatives:
        console.print(Text("Alternatives (closest first):", style="bold"))
        for alt in rec.alternatives:
            console.print(Text(f"- {alt.backend} ({alt.backend_string}): {alt.why_not}"))
    if rec.cloud_note:
        console.print(Text("Your cloud: ", style="bold") + Text(rec.cloud_note if explain else _first(rec.cloud_note)))
    lines = [ln.split("  #")[0] for ln in rec.toml_snippet.splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    console.print(Text("trackkit.toml: ", style="bold") + Text("  ".join(lines)))
    console.print(Text(rec.switch_note))
    if written is not None:
        console.print(Text(f"Wrote {written}: the team standard for this repository.", style="bold"))
    else:
        hint = "Run again with --write to make this the team standard (trackkit.toml)"
        console.print(Text(hint + ("." if explain else "; --explain shows every question and answer."), style="dim"))


def _deciding_reasons(rec: Recommendation) -> list[str]:
    """The reasons of the rules that decided, narrowed or were overridden, and the notes' first
    sentences; the rules that only agreed are in the decision path (``--explain`` shows them)."""
    opinions = [st for st in rec.steps if st.verdict != "no opinion"]
    if len(opinions) != len(rec.reasons):  # not one reason per opinion: show them all
        return list(rec.reasons)
    out = []
    for st, reason in zip(opinions, rec.reasons):
        if st.verdict in ("decided", "overridden", "narrowed"):
            out.append(reason)
        elif st.verdict.endswith("note"):
            out.append(_first(reason))
    return out


def _first(text: str) -> str:
    """The first sentence of a note (``--explain`` prints it whole)."""
    head, dot, rest = text.partition(". ")
    return head + "." if dot and rest else text


def _path_table(rec: Recommendation, names: dict[str, str]) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    path = Table(box=box.SIMPLE_HEAD)
    for col in ("#", "rule", "question", "answer", "points to", "verdict"):
        path.add_column(col, overflow="fold")
    for i, step in enumerate(rec.steps, 1):
        verdict = step.verdict + (f" by {step.overridden_by}" if step.overridden_by else "")
        path.add_row(str(i), Text(names.get(step.rule, step.rule)), Text(step.question), Text(step.answer),
                     Text(", ".join(step.points_to) or "-"), Text(verdict))
    return path
