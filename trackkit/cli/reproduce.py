"""``trackkit reproduce RUN [--out DIR] [--run]``: a script that rebuilds a run from its record."""

from __future__ import annotations

import os
import subprocess
import sys

import click
from rich.console import Console

from ..errors import TrackkitError


@click.command()
@click.argument("run")
@click.option("--root", help="Journal root (default: settings `root`, ./.trackkit).")
@click.option("--backend", help="Read the run through this backend's Reader, e.g. 'tensorboard:./runs'.")
@click.option("--out", "out_dir", help="Where to write the script and its files (default ./reproduce-<run id>).")
@click.option("--run", "execute", is_flag=True, help="Run the script now, streaming its output; exits with its code.")
def reproduce(run: str, root: str | None, backend: str | None, out_dir: str | None, execute: bool) -> None:
    """Write reproduce.sh for RUN (id, id prefix or name): clone the recorded commit into a fresh
    worktree, apply the uncommitted changes, install the recorded packages in a fresh virtualenv,
    and run the recorded command line with the recorded seed and config (config.json next to it).

    TRACKKIT_REPRODUCE_SKIP_INSTALL=1 skips the virtualenv and pip (uses the recorded interpreter)."""
    from ..reproduce import find_record, write_script

    console = Console(stderr=True)
    try:
        rec = find_record(run, root=root, backend=backend)
        out = os.path.abspath(out_dir or f"reproduce-{rec.info.run_id.replace(os.sep, '_')}")
        path = write_script(rec, out)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write the script: {exc}") from None
    console.print(f"wrote {path}")
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("# NOTE:"):
                console.print(f"[yellow]{line[2:].strip()}[/]")
    if not execute:
        console.print(f"run it with:  bash {path}")
        return
    sys.stdout.flush()
    proc = subprocess.run(["bash", path], check=False)
    sys.exit(proc.returncode)
