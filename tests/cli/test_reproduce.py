"""`trackkit reproduce`: the script it writes, and the proof — a run with an uncommitted change, rebuilt
from its record in a fresh worktree, gives bit-identical metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import trackkit
from trackkit.cli.reproduce import reproduce
from trackkit.journal import list_run_dirs, load_run
from trackkit.provenance import clear_seed_record
from trackkit.reproduce import find_record, write_script

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reproducible.py"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKKIT_")}
    # the backends are read right after the process exits: finish() must not give up on a slow agent
    # (the default drain_timeout, 10 s, can pass on a loaded machine before TensorBoard has the run)
    env["TRACKKIT_DRAIN_TIMEOUT"] = "120"
    env.update(extra)
    return env


@pytest.fixture
def repo(in_tmp: Path) -> Path:
    r = in_tmp / "repo"
    (r / "train").mkdir(parents=True)
    (r / "train" / "train.py").write_text("print('v1')\n")
    _git(r, "init", "-q")
    _git(r, "add", "-A")
    _git(r, "commit", "-q", "-m", "init")
    clear_seed_record()
    return r


def _journal_run(repo: Path, **kw: object) -> str:
    cwd = os.getcwd()
    os.chdir(repo / "train")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with trackkit.init(project="rep", backend="memory", **kw) as run:  # type: ignore[arg-type]
                run.log({"loss": 1.0})
    finally:
        os.chdir(cwd)
        clear_seed_record()
    return run.id


def test_write_script_records_every_step(repo: Path, in_tmp: Path) -> None:
    (repo / "train" / "train.py").write_text("print('v2')\n")  # an uncommitted change
    rid = _journal_run(repo, config={"lr": 0.5, "nested": {"k": 1}}, seed=11)
    rec = find_record(rid)
    path = write_script(rec, str(in_tmp / "out"))
    script = Path(path).read_text()
    commit = _git(repo, "rev-parse", "HEAD").strip()
    assert f"COMMIT={commit}" in script
    assert f"SRC_REPO={repo}" in script
    assert 'apply --whitespace=nowarn "$HERE/uncommitted_changes.patch"' in script
    assert "TRACKKIT_REPRODUCE_SKIP_INSTALL" in script
    assert "export TRACKKIT_REPRODUCE_SEED=11" in script
    assert 'cd "$WORKTREE"/train' in script
    assert os.access(path, os.X_OK)
    out = in_tmp / "out"
    assert json.loads((out / "config.json").read_text()) == {"lr": 0.5, "nested": {"k": 1}}
    assert "print('v2')" in (out / "uncommitted_changes.patch").read_text()
    req = (out / "requirements.txt").read_text()
    install = (out / "requirements-install.txt").read_text()
    assert "trackkit==" in req
    assert not [line for line in install.splitlines() if line.startswith("trackkit==")]  # editable: not from an index
    subprocess.run(["bash", "-n", path], check=True)  # valid bash


def test_argv_paths_inside_the_repository_point_into_the_worktree(repo: Path, in_tmp: Path) -> None:
    from trackkit.events import RunInfo, RunRecord, RunStarted

    meta = {
        "git": {"available": True, "root": str(repo), "commit": "a" * 40, "branch": "main"},
        "invocation": {"orig_argv": ["python", str(repo / "train" / "train.py"), f"--cfg={repo}/c.yaml", "/etc/x"],
                       "cwd": "/somewhere/else"},
    }
    rec = RunRecord(RunInfo("r1", "p", "n", "journal"), [RunStarted("r1", "p", "n", 0.0, meta=meta)])
    script = Path(write_script(rec, str(in_tmp / "o"))).read_text()
    assert '"$PY" "$WORKTREE"/train/train.py --cfg="$WORKTREE"/c.yaml /etc/x' in script
    assert "started outside the repository" in script


def test_a_run_without_code_or_command_cannot_be_reproduced(repo: Path, in_tmp: Path) -> None:
    rid = _journal_run(repo, config={"lr": 0.1}, capture=False)
    result = CliRunner().invoke(reproduce, [rid, "--out", str(in_tmp / "x")])
    assert result.exit_code == 1
    assert "its code was not recorded" in result.output and "Fix:" in result.output


def test_cli_writes_the_script_without_running_it(repo: Path, in_tmp: Path) -> None:
    rid = _journal_run(repo, config={"lr": 0.1}, seed=2)
    result = CliRunner().invoke(reproduce, [rid])
    assert result.exit_code == 0, result.output
    assert (in_tmp / f"reproduce-{rid}" / "reproduce.sh").is_file()
    assert not (in_tmp / f"reproduce-{rid}" / "worktree").exists()


# ---------------------------------------------------------------- the proof


def _tensorboard_metrics(location: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, object]]:
    from trackkit.registry import load_reader, parse_backend

    reader = load_reader(parse_backend(f"tensorboard:{location}"))
    (info,) = reader.list_runs("reproducible")
    rec = reader.read_run(info.run_id)
    return rec.metrics(), rec.info.config


@pytest.mark.slow
def test_reproduce_gives_bit_identical_metrics(in_tmp: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    t0 = time.monotonic()
    repo = in_tmp / "project"
    (repo / "train").mkdir(parents=True)
    shutil.copy(EXAMPLE, repo / "train" / "reproducible.py")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "the example")
    commit = _git(repo, "rev-parse", "HEAD").strip()
    # an uncommitted, behaviour-changing edit of a tracked file, and an untracked helper file
    src = (repo / "train" / "reproducible.py").read_text()
    edited = src.replace('"lr": 0.05,', '"lr": 0.03,')
    edited = edited.replace("DEFAULTS = {", "# lr tuned, not committed\nDEFAULTS = {")
    assert edited != src
    (repo / "train" / "reproducible.py").write_text(edited)
    (repo / "train" / "NOTES.txt").write_text("lr 0.03 looks better\n")

    journal = in_tmp / "journal"
    proc = subprocess.run(
        [sys.executable, "reproducible.py", "--seed", "7", "--steps", "40"], cwd=repo / "train",
        env=_env(TRACKKIT_ROOT=str(journal), TRACKKIT_BACKEND=f"tensorboard:{in_tmp / 'tb-original'}"),
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r"^run (\w+) completed", proc.stdout, re.M)
    assert match, proc.stdout
    rid = match.group(1)

    out = in_tmp / "reproduction"
    proc = subprocess.run(
        [sys.executable, "-m", "trackkit", "reproduce", rid, "--root", str(journal), "--out", str(out), "--run"],
        cwd=in_tmp,
        env=_env(TRACKKIT_REPRODUCE_SKIP_INSTALL="1", TRACKKIT_ROOT=str(in_tmp / "journal-2"),
                 TRACKKIT_BACKEND=f"tensorboard:{in_tmp / 'tb-reproduced'}"),
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "applying uncommitted_changes.patch" in proc.stdout
    worktree = out / "worktree"
    assert _git(worktree, "rev-parse", "HEAD").strip() == commit
    assert (worktree / "train" / "reproducible.py").read_text() == edited
    assert (worktree / "train" / "NOTES.txt").is_file()

    original, cfg1 = _tensorboard_metrics(in_tmp / "tb-original")
    reproduced, cfg2 = _tensorboard_metrics(in_tmp / "tb-reproduced")
    assert cfg1 == cfg2 and cfg1["lr"] == 0.03  # the uncommitted default was restored by the patch
    assert list(original) == ["train/loss"] and len(original["train/loss"]) == 40
    assert original == reproduced  # same steps, same float values, exactly

    # the journals hold the float64 values (TensorBoard stores float32): identical too
    (d1,) = list_run_dirs(str(journal))
    (d2,) = list_run_dirs(str(in_tmp / "journal-2"))
    j1, j2 = load_run(d1).metrics(), load_run(d2).metrics()
    assert j1 == j2 and [s for s, _ in j1["train/loss"]] == list(range(40))
    assert all(a[1].hex() == b[1].hex() for a, b in zip(j1["train/loss"], j2["train/loss"], strict=True))
    print(f"reproduce round trip: {time.monotonic() - t0:.1f} s")
