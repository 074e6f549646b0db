"""``trackkit logs RUN [-f]``: the console output a run kept (docs/console-and-system.md)."""

from __future__ import annotations

import os
import sys
import time

import click

from ..events import Console
from ..lookup import journal_root
from .common import find_run

#: how often ``--follow`` looks for new output
FOLLOW_POLL_S = 0.25


@click.command()
@click.argument("run")
@click.option("--root", help="Journal root (default: settings `root`, ./.trackkit).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output until the run ends (Ctrl-C stops).")
@click.option("--lines", "-n", type=int, default=None, help="Only the last N lines.")
def logs(run: str, root: str | None, follow: bool, lines: int | None) -> None:
    """Print the console output (stdout and stderr, redacted) that RUN kept, or follow it live."""
    from ..journal import load_run
    from ..rundir import RunDir

    rec = find_run(journal_root(root), run)
    rd = RunDir(rec.run_dir)
    path = rd.console_log
    if not os.path.exists(path):
        # a journal copied without its console.log: its console records hold the same lines
        text = "".join(ev.text for ev in load_run(rec.run_dir).events if isinstance(ev, Console))
        if not text and not follow:
            raise click.ClickException(
                f"run {rec.info.name} kept no console output (console capture was off, or nothing was printed). "
                "Fix: trackkit.init(console=True), the default")
        _print(_last(text, lines))
        if not follow:
            return
    offset = 0
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        offset = len(text.encode("utf-8", "replace"))
        _print(_last(text, lines))
    if not follow:
        return
    quiet_since: float | None = None
    try:
        while True:
            grown = _read_from(path, offset)
            if grown:
                offset += len(grown)
                _print(grown.decode("utf-8", "replace"))
                quiet_since = None
                continue
            over = os.path.exists(rd.console_state) or not (rd.trainer_alive() or rd.delivering())
            if over:  # the agent said the console ended (or nobody is left to write it): a last look
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.0:
                    return
            time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        return


def _read_from(path: str, offset: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return b""
    cut = data.rfind(b"\n") + 1  # whole lines only
    return data[:cut]


def _last(text: str, n: int | None) -> str:
    if n is None:
        return text
    kept = text.splitlines(keepends=True)
    return "".join(kept[-n:]) if n > 0 else ""


def _print(text: str) -> None:
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()
