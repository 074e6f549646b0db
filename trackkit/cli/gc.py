"""``trackkit gc [RUN] [--dry-run]``: compact finished, fully delivered journals."""

from __future__ import annotations

import click
from rich.markup import escape

from ..errors import TrackkitError
from .common import console, dump_json


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 10_000 else f"{n} B"


@click.command()
@click.argument("run", required=False)
@click.option("--root", help="Journal root (default: settings `root`, ./.trackkit).")
@click.option("--dry-run", "-n", is_flag=True, help="Say what would be compacted and what it saves; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def gc(run: str | None, root: str | None, dry_run: bool, as_json: bool) -> None:
    """Compact the journals of finished runs that every backend holds whole: metric records become
    blocks (lossless; the reader, `trackkit sync` and `show` read them; format 2). A run that is running,
    being delivered, or not delivered to every backend is skipped, with the reason. Media payloads and
    artifacts are kept."""
    from ..gc import GcResult
    from ..gc import gc as run_gc

    out = console()

    def progress(r: GcResult) -> None:
        if as_json:
            return
        if r.state == "skipped":
            out.print(f"[dim]{escape(r.run_id)}: skipped: {escape(r.reason)}[/]", soft_wrap=True)
        else:
            saved = 100 * (1 - r.after / r.before) if r.before else 0.0
            out.print(f"{escape(r.run_id)}: {r.state} {_mb(r.before)} -> {_mb(r.after)} (-{saved:.0f} %)"
                      + (f"; {r.dropped} unreadable line(s) dropped" if r.dropped else ""), soft_wrap=True)

    try:
        results = run_gc(root, run, dry_run=dry_run, progress=progress)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    done = [r for r in results if r.state != "skipped"]
    if as_json:
        dump_json([vars(r) for r in results])
        return
    before, after = sum(r.before for r in done), sum(r.after for r in done)
    verb = "would compact" if dry_run else "compacted"
    out.print(f"{verb} {len(done)} of {len(results)} run(s): {_mb(before)} -> {_mb(after)}"
              + (" (dry run: nothing changed)" if dry_run else ""))
