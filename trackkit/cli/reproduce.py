"""``trackkit reproduce RUN [--out DIR] [--run]``: a script that rebuilds a run from its record."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

import click
from rich.console import Console
from rich.markup import escape

from ..errors import TrackkitError


@click.command()
@click.argument("run")
@click.option("--root", help="Journal root (default: settings `root`, ./.trackkit).")
@click.option("--backend", help="Read the run through this backend's Reader, e.g. 'tensorboard:./runs'.")
@click.option("--out", "out_dir", help="Where to write the script and its files (default ./reproduce-<run id>).")
@click.option("--run", "execute", is_flag=True, help="Run the script now, streaming its output; exits with its code.")
def reproduce(run: str, root: str | None, backend: str | None, out_dir: str | None, execute: bool) -> None:
    """Write reproduce.sh for RUN (id, id prefix or name): clone the recorded commit into a fresh
    worktree, apply the uncommitted changes, install the recorded packages in a fresh virtualenv (the
    local and editable ones from their recorded sources), and run the recorded command line with the
    recorded seed and config (config.json next to it), journaled and delivered where the original was.

    TRACKKIT_REPRODUCE_SKIP_INSTALL=1 skips the virtualenv and pip (uses the recorded interpreter);
    TRACKKIT_REPRODUCE_REUSE_PACKAGES=1 builds the virtualenv over that interpreter's packages
    (nothing from an index)."""
    from ..lookup import journal_root
    from ..reproduce import find_record, write_script

    console = Console(stderr=True, soft_wrap=True)
    try:
        rec = find_record(run, root=root, backend=backend)
        read_root = None if backend else journal_root(root)
        out = os.path.abspath(out_dir or f"reproduce-{rec.info.run_id.replace(os.sep, '_')}")
        path = write_script(rec, out, root=read_root)
    except TrackkitError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write the script: {exc}") from None
    console.print(f"wrote {escape(path)}")
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("# NOTE:"):
                console.print(f"[yellow]{escape(line[2:].strip())}[/]")
    if not execute:
        console.print(f"run it with:  bash {escape(path)}")
        return
    sys.stdout.flush()
    started = time.time()
    proc = subprocess.run(["bash", path], check=False)
    if proc.returncode == 0 and read_root is not None:
        _say_how_to_compare(console, rec.info.run_id, rec.info.project, read_root, started)
    sys.exit(proc.returncode)


def _say_how_to_compare(console: Console, original: str, project: str, read_root: str, started: float) -> None:
    """After a re-run: the ``trackkit compare`` line that shows the two runs side by side."""
    from ..journal import list_run_dirs, load_run

    rerun_root = os.path.abspath(os.environ.get("TRACKKIT_ROOT") or read_root)
    new: list[str] = []
    try:
        for d in list_run_dirs(rerun_root):
            if os.path.getmtime(d) >= started - 1.0:  # only the run directories written since the script started
                info = load_run(d).info
                if info.run_id != original and info.project == project:
                    new.append(info.run_id)
    except (OSError, TrackkitError):
        return
    if len(new) != 1:
        return
    if rerun_root == read_root:
        console.print(f"compare the two:  trackkit compare {original} {new[0]} --root {escape(shlex.quote(read_root))}")
    else:
        console.print(f"the re-run is {new[0]} under {escape(rerun_root)} (the original is under {escape(read_root)})")
