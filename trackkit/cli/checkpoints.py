"""``trackkit checkpoints RUN``: a run's kept checkpoints (path, epoch, step, metrics, sha256, aliases),
from the journal or a backend; ``--best KEY:min|max --path`` prints one path for scripts."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from ..errors import TrackkitError
from .common import console, dump_json, journal_root, num, quiet_sdk_logs, when


def _parse_best(text: str) -> tuple[str, str]:
    key, sep, mode = text.rpartition(":")
    if not sep or mode not in ("min", "max") or not key:
        raise click.BadParameter(f"{text!r} is not KEY:min or KEY:max. Fix: --best val/loss:min", param_hint="--best")
    return key, mode


@click.command()
@click.argument("run")
@click.option("--backend", "-b", "backends", multiple=True,
              help="Backend string to read from (repeatable); default: the local journal.")
@click.option("--project", "-p", help="Only runs of this project (for name / id-prefix lookups).")
@click.option("--root", help="Journal root, when no --backend is given.")
@click.option("--name", help="Only the checkpoints of this manager (run.checkpoints(name=...)).")
@click.option("--best", "best_spec", metavar="KEY:min|max", help="Only the best checkpoint by KEY.")
@click.option("--latest", is_flag=True, help="Only the newest checkpoint.")
@click.option("--path", "path_only", is_flag=True, help="Print only the path(s), one per line (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def checkpoints(run: str, backends: tuple[str, ...], project: str | None, root: str | None, name: str | None,
                best_spec: str | None, latest: bool, path_only: bool, as_json: bool) -> None:
    """List a run's kept checkpoints: path, epoch, step, metrics, sha256, aliases, time.

    A RUN is a run id, a unique id prefix or a unique name."""
    from ..checkpoints.record import list_checkpoints
    from ..checkpoints.retention import ranked

    best = _parse_best(best_spec) if best_spec else None
    try:
        with quiet_sdk_logs():
            entries = list_checkpoints(run, name=name, backend=list(backends) or None,
                                       root=None if backends else journal_root(root), project=project)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0]) if exc.args else str(exc)) from None
    if best is not None:
        entries = ranked(entries, best[0], best[1])[:1]
        if not entries:
            raise click.ClickException(f"run {run}: no kept checkpoint holds the metric {best[0]!r}. Fix: "
                                       "`trackkit checkpoints RUN` lists the metrics each one has")
    elif latest:
        entries = sorted(entries, key=lambda e: (e.time, e.version))[-1:]
    if path_only:
        if not entries:
            raise click.ClickException(f"run {run} has no kept checkpoint")
        for e in entries:
            click.echo(e.path)
        return
    if as_json:
        dump_json([e.to_dict() for e in entries])
        return
    out = console()
    if not entries:
        out.print(f"run {escape(run)}: no checkpoints")
        return
    t = Table(title=f"checkpoints of {escape(run)}")
    for col in ("name", "v", "epoch", "step", "metrics", "aliases", "sha256", "size", "time", "path"):
        t.add_column(col, overflow="fold", justify="right" if col in ("v", "epoch", "step", "size") else "left")
    for e in entries:
        metrics = ", ".join(f"{escape(k)}={num(v)}" for k, v in sorted(e.metrics.items()))
        t.add_row(escape(e.name), str(e.version), "-" if e.epoch is None else str(e.epoch), str(e.step), metrics,
                  ",".join(e.aliases), e.sha256[:12] or "[dim](hashing)[/]", f"{e.size / 2**20:.1f} MiB",
                  when(e.time), escape(e.path))
    out.print(t)
