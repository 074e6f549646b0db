"""A warning in a CLI command is one plain line on stderr, shown once (found by the smoke test:
``trackkit migrate --from tensorboard:... --to wandb:...`` printed each W&B sink warning twice, as a
``sink.py:475: RuntimeWarning:`` with the source line echoed, then again as a log record). Library
callers still get the ``RuntimeWarning`` itself, and no log record beside it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from trackkit.cli import main
from trackkit.migrate import migrate

pytest.importorskip("wandb")
pytest.importorskip("torch")

#: the worktree whose trackkit the subprocess imports
REPO = str(Path(__file__).resolve().parents[2])

#: what the W&B sink says of an image SummaryWriter wrote at a step below a later scalar's
LATE = "wandb: run run-a: image 'pic' at step 5: W&B already holds step 9"


def _late_image_source(root: Path) -> str:
    """SummaryWriter writes scalars at steps 0-9, then an image at step 5 (a real TensorBoard run)."""
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(root / "tb" / "run-a"))
    for s in range(10):
        w.add_scalar("loss", 1.0 / (s + 1), s)
    w.add_image("pic", np.full((6, 8, 3), 120, dtype=np.uint8), 5, dataformats="HWC")
    w.close()
    return f"tensorboard:{root}/tb"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m trackkit ...`` in a fresh process: Python's own warning filters and display,
    and no logging handler but ``logging.lastResort``, as in a terminal."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", "trackkit", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_migrate_cli_shows_each_sink_warning_once_as_one_plain_line(in_tmp: Path) -> None:
    source = _late_image_source(in_tmp)
    res = _cli("migrate", "--from", source, "--to", f"wandb:late?dir={in_tmp}/wb", "--all", cwd=in_tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [ln for ln in res.stderr.splitlines() if LATE in ln]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"warning: {LATE}") and "kept as the run file trackkit-media/pic/" in lines[0], lines
    assert "RuntimeWarning" not in res.stderr and "sink.py" not in res.stderr, res.stderr
    assert "_keep_file(" not in res.stderr, res.stderr  # no echo of trackkit's source line


def test_the_cli_puts_python_s_warning_display_back_after_a_command(in_tmp: Path) -> None:
    before = warnings.showwarning
    res = CliRunner().invoke(main, ["runs", "--root", str(in_tmp / ".trackkit")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert warnings.showwarning is before


def test_a_library_caller_gets_the_runtime_warning_and_no_log_record_beside_it(
    in_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = _late_image_source(in_tmp)
    with caplog.at_level(logging.WARNING, logger="trackkit"), pytest.warns(RuntimeWarning) as caught:
        report = migrate("run-a", source, f"wandb:late?dir={in_tmp}/wb")
    assert report.ok, report.summary()
    assert [str(w.message) for w in caught if LATE in str(w.message)], [str(w.message) for w in caught]
    assert not [r for r in caplog.records if LATE in r.getMessage()], caplog.text


def test_a_sink_s_logged_warning_is_a_warning_line_too(in_tmp: Path) -> None:
    """What a sink logs (not warns) is the same kind of line: ``warning: ...``, once, not the bare
    message Python's last-resort handler printed. The case: a nested run mlflow wrote, migrated
    without its parent, so the target's MLflow sink cannot set ``mlflow.parentRunId`` yet."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{in_tmp}/src.db")
    try:
        mlflow.set_experiment("nest")
        with mlflow.start_run(run_name="parent"), mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("x", 1.0)
    finally:
        mlflow.set_tracking_uri("")
    res = _cli("migrate", child.info.run_id, "--from", f"mlflow:{in_tmp}/src.db", "--to", f"mlflow:{in_tmp}/dst.db",
               cwd=in_tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "is not in experiment 'nest' yet" in ln]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("warning: mlflow: the parent run "), lines
    assert lines[0].endswith("(delivered, or migrated: migrate it as well)"), lines
