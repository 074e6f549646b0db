"""`trackkit doctor RUN` (the five pillars, journal and TensorBoard Reader) and `trackkit doctor` (team standard)."""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import trackkit
from trackkit.cli.doctor import doctor
from trackkit.provenance import clear_seed_record

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]


def _git(repo: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = a git repository with one commit; journal root inside tmp; wide output."""
    monkeypatch.setenv("COLUMNS", "200")
    _git(in_tmp, "init", "-q")
    (in_tmp / "train.py").write_text("print('hi')\n")
    (in_tmp / ".gitignore").write_text(".trackkit/\nruns/\n")
    _git(in_tmp, "add", "-A")
    _git(in_tmp, "commit", "-q", "-m", "init")
    clear_seed_record()
    return in_tmp


def _run(**kw: Any) -> str:
    kw.setdefault("backend", "memory")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with trackkit.init(project="doc", **kw) as run:
            run.log({"loss": 1.0})
    clear_seed_record()
    return run.id


def test_complete_run_exits_0(repo: Path) -> None:
    rid = _run(config={"lr": 0.1}, seed=3, data={"name": "blobs", "version": "v1"})
    result = CliRunner().invoke(doctor, [rid])
    assert result.exit_code == 0, result.output
    for pillar in ("hyperparameters", "git", "env", "invocation", "data", "seed"):
        assert pillar in result.output
    assert "complete" in result.output and "missing" not in result.output


def test_run_without_capture_exits_1_naming_the_missing_pillars(repo: Path) -> None:
    rid = _run(config={"lr": 0.1}, capture=False)
    result = CliRunner().invoke(doctor, [rid[:8]])  # an id prefix works too
    assert result.exit_code == 1, result.output
    incomplete = next(line for line in result.output.splitlines() if line.startswith("incomplete"))
    for pillar in ("git (disabled)", "env (disabled)", "invocation (disabled)", "data (missing)", "seed (missing)"):
        assert pillar in incomplete
    assert "hyperparameters" not in incomplete
    assert "Fix: seed the run" in result.output


def test_missing_config_and_no_git_repository(in_tmp: Path) -> None:
    clear_seed_record()
    rid = _run(seed=1, data={"name": "d", "version": "1"})
    result = CliRunner().invoke(doctor, [rid])
    assert result.exit_code == 1
    assert "hyperparameters (missing)" in result.output and "git (unavailable)" in result.output
    assert "not a git repository" in result.output


def test_reads_through_the_tensorboard_reader(repo: Path) -> None:
    pytest.importorskip("tensorboard")
    tb = repo / "runs"
    # drain_timeout: the doctor reads TensorBoard right after finish(), which must not give up on
    # a slow agent (the default 10 s) before the run is in TensorBoard
    rid = _run(config={"lr": 0.1}, seed=5, data={"name": "d", "version": "1"}, backend=f"tensorboard:{tb}",
               drain_timeout=120)
    result = CliRunner().invoke(doctor, [rid, "--backend", f"tensorboard:{tb}"])
    assert result.exit_code == 0, result.output
    assert "tensorboard" in result.output and "seed 5" in result.output
    result = CliRunner().invoke(doctor, ["nope", "--backend", f"tensorboard:{tb}"])
    assert result.exit_code == 1 and "no run 'nope'" in result.output


def test_unknown_run_names_the_fix(repo: Path) -> None:
    result = CliRunner().invoke(doctor, ["nope"])
    assert result.exit_code == 1 and "trackkit runs" in result.output


# ---------------------------------------------------------------- the repository's team standard

STANDARD = """\
[trackkit]
backend = "memory"
project = "doc"

[trackkit.standard]
required_tags = ["owner"]
required_config = ["optimizer.lr"]
required_provenance = ["git", "seed"]
"""


def test_repository_without_a_standard_exits_1(repo: Path) -> None:
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 1
    assert "no trackkit.toml" in result.output and "trackkit recommend --write" in result.output


def test_run_missing_a_required_tag_exits_1(repo: Path) -> None:
    (repo / "trackkit.toml").write_text(STANDARD)
    _run(config={"optimizer": {"lr": 0.1}}, seed=1, backend=None)
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 1, result.output
    assert "required tags: owner" in result.output
    assert "tag 'owner' missing" in result.output
    assert "break the standard" in result.output and "fix:" in result.output


def test_runs_that_follow_the_standard_exit_0(repo: Path) -> None:
    (repo / "trackkit.toml").write_text(STANDARD)
    _run(config={"optimizer": {"lr": 0.1}}, tags={"owner": "ana"}, seed=1, backend=None)
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 0, result.output
    assert "all good" in result.output


def test_missing_provenance_and_config_are_named(repo: Path) -> None:
    (repo / "trackkit.toml").write_text(STANDARD)
    _run(config={"lr": 0.1}, tags={"owner": "ana"}, backend=None)  # no seed, wrong config key
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 1
    assert "config key 'optimizer.lr' missing" in result.output
    assert "provenance 'seed' is missing" in result.output


def test_broken_settings_and_backend_exit_1(repo: Path) -> None:
    (repo / "trackkit.toml").write_text('[trackkit]\nbackend = "nosuch:x"\n')
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 1
    assert "unknown backend 'nosuch'" in result.output
    (repo / "trackkit.toml").write_text('[trackkit]\nagent = "fork"\n')
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 1 and "settings do not load" in result.output
    assert "fix: use 'process'" in result.output


def test_doctor_is_registered_on_the_main_command(repo: Path) -> None:
    from trackkit.cli import main

    result = CliRunner().invoke(main, ["doctor", "--help"])
    assert result.exit_code == 0 and "five pillars" in result.output
    assert os.path.isdir(repo)


def test_suggests_the_gitignore_lines_for_what_trackkit_writes_into_the_repository(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal root and the local backend locations inside the repository that git does not ignore
    (every run's patch would carry them): `trackkit doctor` prints the lines; a note, not a failure."""
    monkeypatch.setenv("COLUMNS", "200")
    _git(in_tmp, "init", "-q")  # TRACKKIT_ROOT (in_tmp) is <repo>/.trackkit
    (in_tmp / "trackkit.toml").write_text('[trackkit]\nbackend = "tensorboard:./runs,mlflow:./mlflow.db"\n')
    (in_tmp / "wandb").mkdir()  # left by an earlier W&B run
    (in_tmp / "sub").mkdir()
    monkeypatch.chdir(in_tmp / "sub")  # from a subdirectory: the paths are the repository's
    out = CliRunner().invoke(doctor, []).output
    assert f"add to {in_tmp / '.gitignore'}:" in out, out
    for line in ("/.trackkit/", "/sub/runs/", "/sub/mlflow.db", "/sub/mlartifacts/", "/wandb/"):
        assert f"\n       {line}\n" in out, out
    assert "\n       /runs/\n" not in out  # ./runs from sub/ is sub/runs
    monkeypatch.chdir(in_tmp)
    out = CliRunner().invoke(doctor, []).output
    for line in ("/.trackkit/", "/runs/", "/mlflow.db", "/mlartifacts/", "/wandb/"):
        assert f"\n       {line}\n" in out, out
    assert "fix:" not in out and "all good" in out  # a suggestion: doctor still passes

    (in_tmp / ".gitignore").write_text(".trackkit/\nruns/\nmlflow.db\nmlartifacts/\n")
    out = CliRunner().invoke(doctor, []).output
    assert "\n       /wandb/\n" in out and "\n       /mlflow.db" not in out and "\n       /runs/\n" not in out
    (in_tmp / ".gitignore").write_text(".trackkit/\nruns/\nmlflow.db\nmlartifacts/\nwandb/\n")
    result = CliRunner().invoke(doctor, [])
    assert "git does not ignore" not in result.output and ".gitignore:" not in result.output


def test_no_gitignore_note_outside_a_repository_or_for_paths_outside_it(in_tmp: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TRACKKIT_BACKEND", "memory")
    assert "git does not ignore" not in CliRunner().invoke(doctor, []).output  # not a git repository
    (in_tmp / "repo").mkdir()
    _git(in_tmp / "repo", "init", "-q")
    monkeypatch.chdir(in_tmp / "repo")  # the journal root (in_tmp/.trackkit) lies outside it
    assert "git does not ignore" not in CliRunner().invoke(doctor, []).output
