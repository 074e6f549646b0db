"""The CLI tests' one way to run a command: in process, warnings kept out of the output."""

from __future__ import annotations

import warnings

from click.testing import CliRunner

from trackkit.cli import main


def invoke(*args: str, columns: int | None = None) -> tuple[int, str]:
    """Run ``trackkit ARGS``; its exit code and output (``columns``: the terminal width it sees)."""
    env = {"COLUMNS": str(columns)} if columns else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return res.exit_code, res.output
