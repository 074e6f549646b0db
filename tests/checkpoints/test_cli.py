"""``trackkit checkpoints RUN``: the table, ``--best KEY:mode --path``, bad input."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from click.testing import CliRunner

import trackkit
from trackkit.cli import main

torch = pytest.importorskip("torch")


def test_cli_lists_and_prints_the_best_path(tmp_path: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = trackkit.init(project="p", backend="memory:cli", root=str(tmp_path), seed=0, capture=False)
    ck = run.checkpoints(monitor="val/acc", keep_best=1, keep_last=1)
    for i, (acc, loss) in enumerate([(0.2, 0.1), (0.9, 0.8), (0.3, 0.5)]):
        ck.save({"i": i}, step=i, epoch=i, metrics={"val/acc": acc, "val/loss": loss})
    run.finish()
    r = CliRunner().invoke(main, ["checkpoints", run.id, "--root", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "val/acc=0.9" in r.output and "best" in r.output and "latest" in r.output
    r = CliRunner().invoke(main, ["checkpoints", run.id, "--root", str(tmp_path), "--best", "val/loss:min", "--path"])
    assert r.exit_code == 0, r.output
    best = ck.best(metric="val/loss", mode="min")
    assert best is not None and r.output.strip() == best.path and best.epoch == 2
    r = CliRunner().invoke(main, ["checkpoints", run.id, "--root", str(tmp_path), "--best", "val/loss"])
    assert r.exit_code != 0 and "is not KEY:min or KEY:max" in r.output and "Fix" in r.output
    r = CliRunner().invoke(main, ["checkpoints", "nosuchrun", "--root", str(tmp_path)])
    assert r.exit_code == 1 and "nosuchrun" in r.output
