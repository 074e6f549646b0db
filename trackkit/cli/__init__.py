"""The ``trackkit`` command. Each command group lives in its own small module and
is imported only when that command runs, so ``trackkit --help`` stays fast and
never imports an SDK."""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import click

#: command name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "runs": ("trackkit.cli.runs", "runs", "List runs in the local journal, or query backends (--backend, --where)."),
    "show": ("trackkit.cli.runs", "show", "Show one run: status, delivery, config, metrics, artifacts, provenance."),
    "logs": ("trackkit.cli.logs", "logs", "Print (or -f follow) the console output a run kept."),
    "sync": ("trackkit.cli.runs", "sync", "Deliver what the journal holds to the backends (after a crash or outage)."),
    "doctor": ("trackkit.cli.doctor", "doctor", "Check a run's five reproducibility pillars, or the team standard."),
    "reproduce": ("trackkit.cli.reproduce", "reproduce", "Write (and --run) a script that rebuilds a run."),
    "recommend": ("trackkit.cli.recommend", "recommend", "Recommend one backend and write the team's trackkit.toml."),
    "compare": ("trackkit.cli.compare", "compare", "Compare runs: config differences, last/min/max of each metric."),
    "report": ("trackkit.cli.report", "report", "One HTML report of runs: table, curves, config diff, images, sweeps."),
    "migrate": ("trackkit.cli.migrate", "migrate", "Copy runs between backends and verify every point of the copy."),
    "checkpoints": ("trackkit.cli.checkpoints", "checkpoints",
                    "List a run's checkpoints, or print the best one's path (--best val/loss:min --path)."),
    "gc": ("trackkit.cli.gc", "gc", "Compact the journals of finished, fully delivered runs (--dry-run first)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@contextmanager
def plain_warnings() -> Iterator[None]:
    """While a command runs, a warning that passes the filters is one line on stderr,
    ``warning: <message>``: no ``file:line: Category:`` prefix, no echo of trackkit's source line.
    The filters (``-W``, ``PYTHONWARNINGS``) still decide what shows; the previous
    ``warnings.showwarning`` comes back after the command. Library callers keep Python's own
    ``RuntimeWarning``/``TrackkitWarning`` (``pytest.warns``, ``catch_warnings`` see them as before)."""
    before = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        _say(file if file is not None else sys.stderr, "warning", str(message))

    warnings.showwarning = show
    logs = _PlainLog() if not logging.getLogger().handlers else None  # a configured root logger decides itself
    tk_log = logging.getLogger("trackkit")
    if logs is not None:
        tk_log.addHandler(logs)
    try:
        yield
    finally:
        warnings.showwarning = before
        if logs is not None:
            tk_log.removeHandler(logs)


class _PlainLog(logging.Handler):
    """What trackkit's modules log at WARNING and above during a command, as the warnings are:
    ``warning: <message>`` (``error: <message>`` from ERROR), one line on stderr. Without it Python's
    last-resort handler printed the bare message, with no word saying what kind of line it was."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format in a log call: the line is lost, never the command
            return
        _say(sys.stderr, "error" if record.levelno >= logging.ERROR else "warning", text)


def _say(out: TextIO, word: str, text: str) -> None:
    """One ``word: text`` line on ``out``; a closed or broken stream loses the line, never the command."""
    try:
        out.write(f"{word}: {text.strip()}\n")
    except (OSError, ValueError):
        pass


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trackkit")
@click.pass_context
def main(ctx: click.Context) -> None:
    """trackkit: experiment tracking nobody skips.

    Runs are journaled locally (default ./.trackkit) and delivered to TensorBoard,
    Weights & Biases and/or MLflow by a background agent."""
    ctx.with_resource(plain_warnings())


