"""`trackkit recommend`: flags, --json, --write, and the interactive path (CliRunner on the command itself)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import trackkit.cli.recommend as cli_recommend
from trackkit.cli.recommend import recommend

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

FLAGS = ["--team-size", "3", "--budget", "paid", "--no-privacy", "--no-production"]


@pytest.fixture
def runner(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("COLUMNS", "120")
    return CliRunner()


def test_flags_print_the_recommendation_path_alternatives_and_snippet(runner: CliRunner) -> None:
    result = runner.invoke(recommend, [*FLAGS, "--project", "startup"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Recommended backend" in out and "wandb" in out
    assert "Decision path" in out
    for rule in ("Privacy", "Production", "Team features", "Budget", "Team size"):
        assert rule in out
    assert "decided" in out
    assert "Alternatives" in out and "mlflow" in out
    assert "[trackkit]" in out and 'backend = "wandb:startup"' in out
    assert "API does not change" in out
    assert not (Path.cwd() / "trackkit.toml").exists()


def test_conflict_is_shown_as_overridden(runner: CliRunner) -> None:
    result = runner.invoke(recommend, ["--team-size", "10", "--budget", "paid", "--privacy", "--no-production"])
    assert result.exit_code == 0, result.output
    assert "mlflow://mlflow.internal:5000" in result.output
    assert "overridden by privacy" in result.output
    assert "placeholder" in result.output


def test_cloud_and_all_three_notes(runner: CliRunner) -> None:
    result = runner.invoke(recommend, [*FLAGS, "--cloud", "gcp", "--all-three"])
    assert result.exit_code == 0, result.output
    assert "Vertex AI" in result.output
    assert "single source of truth" in result.output


def test_json_output(runner: CliRunner) -> None:
    result = runner.invoke(recommend, [*FLAGS, "--cloud", "azure", "--json", "--project", "p"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["backend"] == "wandb"
    assert data["backend_string"] == "wandb:p"
    assert data["decided_by"] == "budget"
    assert data["decision_path"] == ["privacy", "production", "team", "budget", "team-size", "cloud"]
    assert "Azure Machine Learning" in data["cloud_note"]
    assert data["written"] is None
    assert {a["backend"] for a in data["alternatives"]} == {"mlflow", "tensorboard"}


def test_write_creates_trackkit_toml_in_cwd_outside_a_repository(runner: CliRunner, in_tmp: Path) -> None:
    if _inside_git(in_tmp):
        pytest.skip("the temp dir is inside a git repository")
    result = runner.invoke(recommend, [*FLAGS, "--write", "--project", "vision"])
    assert result.exit_code == 0, result.output
    path = in_tmp / "trackkit.toml"
    assert f"Wrote {path}" in result.output.replace("\n", "")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["trackkit"] == {"backend": "wandb:vision", "project": "vision"}


def test_write_refuses_to_overwrite_without_force(runner: CliRunner, in_tmp: Path) -> None:
    path = in_tmp / "trackkit.toml"
    path.write_text('[trackkit]\nbackend = "tensorboard:./mine"\n', encoding="utf-8")
    result = runner.invoke(recommend, [*FLAGS, "--write"])
    assert result.exit_code == 1
    assert "already exists" in result.output and "--force" in result.output
    assert "mine" in path.read_text(encoding="utf-8")

    result = runner.invoke(recommend, [*FLAGS, "--write", "--force", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == str(path)
    assert tomllib.loads(path.read_text(encoding="utf-8"))["trackkit"]["backend"].startswith("wandb:")


def test_force_without_write_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(recommend, [*FLAGS, "--force"])
    assert result.exit_code == 2
    assert "--force only applies together with --write" in result.output


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_write_goes_to_the_repository_root_from_a_subdirectory(
    runner: CliRunner, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = in_tmp / "myrepo"
    sub = repo / "src" / "deep"
    sub.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(sub)
    result = runner.invoke(recommend, [*FLAGS, "--write"])
    assert result.exit_code == 0, result.output
    assert not (sub / "trackkit.toml").exists()
    data = tomllib.loads((repo / "trackkit.toml").read_text(encoding="utf-8"))
    # the project defaults to the repository's name
    assert data["trackkit"] == {"backend": "wandb:myrepo", "project": "myrepo"}


def test_missing_flags_without_a_terminal_name_the_missing_flags(runner: CliRunner) -> None:
    result = runner.invoke(recommend, ["--team-size", "3", "--budget", "free"])
    assert result.exit_code == 2
    assert "missing --privacy/--no-privacy, --production/--no-production" in result.output
    assert "--interactive" in result.output

    result = runner.invoke(recommend, [])
    assert result.exit_code == 2
    assert "missing --team-size, --budget" in result.output


def test_interactive_flag_asks_the_questions(runner: CliRunner) -> None:
    # team size, budget, privacy, production, cloud, all three
    result = runner.invoke(recommend, ["--interactive"], input="3\npaid\ny\nn\naws\nn\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "How many people" in out and "Can you pay" in out and "Must the data stay" in out
    assert "Already on a cloud" in out
    assert "mlflow" in out and "overridden by privacy" in out
    assert "SageMaker" in out


def test_interactive_reprompts_on_a_bad_answer(runner: CliRunner) -> None:
    result = runner.invoke(recommend, ["--interactive", "--json"], input="0\n2\ncheap\nfree\nn\nn\n\n\n")
    assert result.exit_code == 0, result.output
    # prompts go to stderr under --json, so stdout stays valid JSON
    data = json.loads(result.stdout)
    assert data["backend"] == "mlflow"
    assert data["answers"] == {
        "team_size": 2,
        "budget": "free",
        "privacy": False,
        "production": False,
        "cloud": None,
        "want_all": False,
        "project": data["answers"]["project"],
    }


def test_terminal_with_no_flags_asks_only_whats_missing(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_recommend, "_stdin_is_tty", lambda: True)
    result = runner.invoke(recommend, [])
    assert result.exit_code != 0  # no input: the first prompt hits end of input
    assert "How many people" in result.output

    result = runner.invoke(recommend, ["--team-size", "1", "--cloud", "none", "--json"], input="free\nn\nn\nn\n")
    assert result.exit_code == 0, result.output
    assert "Can you pay" in result.stderr  # under --json the prompts go to stderr
    assert "How many people" not in result.stderr
    assert "Already on a cloud" not in result.stderr
    assert json.loads(result.stdout)["backend"] == "tensorboard"


def test_no_interactive_overrides_a_terminal(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_recommend, "_stdin_is_tty", lambda: True)
    result = runner.invoke(recommend, ["--no-interactive"])
    assert result.exit_code == 2
    assert "missing --team-size" in result.output


def test_bad_flag_values_are_rejected_by_click(runner: CliRunner) -> None:
    result = runner.invoke(recommend, ["--team-size", "0", "--budget", "free", "--no-privacy", "--no-production"])
    assert result.exit_code == 2 and "--team-size" in result.output
    result = runner.invoke(recommend, ["--team-size", "2", "--budget", "cheap", "--no-privacy", "--no-production"])
    assert result.exit_code == 2 and "--budget" in result.output


def _inside_git(path: Path) -> bool:
    if shutil.which("git") is None:
        return False
    out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, check=False)
    return out.returncode == 0


@pytest.mark.parametrize(("flags", "most"), [
    (FLAGS, 24),  # a small team: one 80x24 terminal
    (["--team-size", "12", "--budget", "paid", "--privacy", "--production", "--cloud", "aws", "--all-three"], 40),
])
def test_the_recommendation_fits_on_one_screen(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                               flags: list[str], most: int) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(recommend, flags)
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").splitlines()
    assert len(lines) <= most, result.output
    assert max(len(ln) for ln in lines) <= 80, result.output
    assert "Recommended backend" in result.output and "--explain" in result.output
    full = runner.invoke(recommend, [*flags, "--explain"])
    assert full.exit_code == 0 and "question" in full.output and "points to" in full.output, full.output
