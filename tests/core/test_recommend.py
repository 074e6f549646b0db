"""The backend decision helper: total, deterministic, one documented priority order."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trackkit.errors import ConfigError
from trackkit.recommend import (
    BACKENDS,
    PRIORITY_ORDER,
    RULES,
    STANDARD_TEMPLATE,
    Recommendation,
    TeamConfigExists,
    recommend,
    render_team_config,
    write_team_config,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]

TEAM_SIZES = (1, 2, 5, 6, 50)
BUDGETS = ("free", "paid")
BOOLS = (False, True)
CLOUDS = (None, "aws", "gcp", "azure")

ALL_INPUTS = list(itertools.product(TEAM_SIZES, BUDGETS, BOOLS, BOOLS, CLOUDS, BOOLS))


def expected_backend(team_size: int, budget: str, privacy: bool, production: bool) -> str:
    """The documented table (docs/choosing-a-backend.md), written independently of the implementation."""
    if privacy or production:
        return "mlflow"
    if team_size == 1:
        return "tensorboard"
    return "wandb" if budget == "paid" else "mlflow"


# --------------------------------------------------------------------------- totality


@pytest.mark.parametrize("answers", ALL_INPUTS, ids=lambda a: "-".join(str(x) for x in a))
def test_every_combination_gets_exactly_one_deterministic_recommendation(answers: tuple[Any, ...]) -> None:
    team_size, budget, privacy, production, cloud, want_all = answers
    rec = recommend(team_size, budget, privacy, production, cloud, want_all)
    again = recommend(team_size, budget, privacy, production, cloud, want_all)

    assert rec == again
    assert rec.backend in BACKENDS
    assert rec.backend == expected_backend(team_size, budget, privacy, production)
    assert rec.backend_string.startswith(rec.backend)
    assert rec.reasons and all(r.strip() for r in rec.reasons)
    assert rec.decision_path[: len(PRIORITY_ORDER)] == PRIORITY_ORDER
    assert rec.decided_by in PRIORITY_ORDER
    assert sum(s.verdict == "decided" for s in rec.steps) == 1
    assert any(r.startswith(_rule_name(rec.decided_by)) and " decided" in r for r in rec.reasons)
    for rule in rec.overridden:
        assert any(_rule_name(rule) in r and "overridden by" in r for r in rec.reasons)
    # the runner-ups are the other backends, each with a one-line why-not
    assert sorted(a.backend for a in rec.alternatives) == sorted(set(BACKENDS) - {rec.backend})
    assert all(a.why_not and "\n" not in a.why_not for a in rec.alternatives)
    assert "API does not change" in rec.switch_note
    assert (rec.cloud_note is None) == (cloud is None)
    assert ("cloud" in rec.decision_path) == (cloud is not None)
    assert ("one-backend" in rec.decision_path) == want_all
    # the snippet adopts exactly this backend
    parsed = tomllib.loads(rec.toml_snippet)
    assert parsed == {"trackkit": {"backend": rec.backend_string, "project": "my-project"}}


def test_cloud_and_want_all_never_change_the_backend() -> None:
    for team_size, budget, privacy, production in itertools.product(TEAM_SIZES, BUDGETS, BOOLS, BOOLS):
        picks = {
            recommend(team_size, budget, privacy, production, cloud, want_all).backend_string
            for cloud in CLOUDS
            for want_all in BOOLS
        }
        assert len(picks) == 1


def test_priority_order_is_the_documented_one() -> None:
    assert PRIORITY_ORDER == ("privacy", "production", "team", "budget", "team-size")
    assert [r.id for r in sorted(RULES, key=lambda r: r.priority)] == list(PRIORITY_ORDER)
    doc = (REPO / "docs" / "choosing-a-backend.md").read_text(encoding="utf-8")
    assert "privacy > production > team features > budget > team size" in doc


def _rule_name(rule_id: str) -> str:
    return next(r.name for r in RULES if r.id == rule_id)


# --------------------------------------------------------------------------- one named case per rule


def test_solo_student_gets_tensorboard() -> None:
    rec = recommend(team_size=1, budget="free", privacy=False, production=False)
    assert rec.backend == "tensorboard"
    assert rec.backend_string == "tensorboard:./runs"
    assert rec.decided_by == "team"
    assert rec.placeholders == ()
    assert "simplest" in rec.reasons[0]


def test_three_person_startup_that_can_pay_gets_wandb() -> None:
    rec = recommend(team_size=3, budget="paid", privacy=False, production=False, project="startup")
    assert rec.backend == "wandb"
    assert rec.backend_string == "wandb:startup"
    assert rec.decided_by == "budget"
    assert rec.overridden == ()
    assert rec.alternatives[0].backend == "mlflow"


def test_ten_person_team_with_private_data_gets_a_self_hosted_mlflow_server() -> None:
    rec = recommend(team_size=10, budget="free", privacy=True, production=False)
    assert rec.backend == "mlflow"
    assert rec.backend_string == "mlflow://mlflow.internal:5000"
    assert rec.placeholders == ("mlflow.internal:5000",)
    assert "placeholder" in rec.toml_snippet
    assert rec.decided_by == "privacy"
    assert "self-hosted" in rec.reasons[0]
    wandb = next(a for a in rec.alternatives if a.backend == "wandb")
    assert "W&B's servers" in wandb.why_not


def test_production_team_gets_mlflow() -> None:
    rec = recommend(team_size=4, budget="free", privacy=False, production=True)
    assert rec.backend == "mlflow"
    assert rec.decided_by == "production"
    assert "registry" in rec.reasons[0]
    assert rec.alternatives[0].backend == "wandb"  # has a registry: the closest call


def test_free_three_person_team_self_hosts_mlflow() -> None:
    rec = recommend(team_size=3, budget="free", privacy=False, production=False)
    assert rec.backend == "mlflow"
    assert rec.decided_by == "budget"
    # the small-team rule (W&B) lost to the budget rule, and the reasons say so
    assert rec.overridden == ("team-size",)
    assert any("Team size" in r and "overridden by Budget" in r for r in rec.reasons)


def test_large_free_team_shares_one_mlflow_server() -> None:
    rec = recommend(team_size=50, budget="free", privacy=False, production=False)
    assert rec.backend_string == "mlflow://mlflow.internal:5000"
    step = next(s for s in rec.steps if s.rule == "team-size")
    assert step.verdict == "agreed" and step.points_to == ("mlflow",)


def test_solo_project_that_needs_production_or_privacy_gets_a_local_mlflow_store() -> None:
    for privacy, production in ((True, False), (False, True)):
        rec = recommend(team_size=1, budget="free", privacy=privacy, production=production)
        assert rec.backend_string == "mlflow:./mlflow.db"
        assert rec.placeholders == ()
        assert "team" in rec.overridden


@pytest.mark.parametrize(
    ("cloud", "names"),
    [
        ("aws", ("SageMaker Experiments", "MLflow")),
        ("gcp", ("Vertex AI Experiments", "TensorBoard")),
        ("azure", ("Azure Machine Learning", "MLflow")),
    ],
)
def test_cloud_note_names_the_providers_tracking_and_how_trackkit_pairs(cloud: str, names: tuple[str, ...]) -> None:
    rec = recommend(team_size=3, budget="paid", privacy=False, production=False, cloud=cloud)
    assert rec.cloud_note is not None
    for name in names:
        assert name in rec.cloud_note
    assert "trackkit pairs with it" in rec.cloud_note
    assert rec.backend == "wandb"


def test_all_three_gets_one_backend_and_the_reason_why_not_several() -> None:
    rec = recommend(team_size=3, budget="paid", privacy=False, production=False, want_all=True)
    assert rec.backend == "wandb"
    note = rec.reasons[-1]
    assert "three times the logging code" in note
    assert "single source of truth" in note
    assert "overlap" in note


# --------------------------------------------------------------------------- priority conflicts


def test_privacy_overrides_paid_budget() -> None:
    rec = recommend(team_size=3, budget="paid", privacy=True, production=False)
    assert rec.backend == "mlflow"
    assert rec.decided_by == "privacy"
    assert "budget" in rec.overridden and "team-size" in rec.overridden
    assert any(r.startswith("Budget") and "overridden by Privacy" in r for r in rec.reasons)


def test_production_overrides_solo_simplicity_and_paid_budget() -> None:
    rec = recommend(team_size=1, budget="paid", privacy=False, production=True)
    assert rec.backend == "mlflow"
    assert rec.decided_by == "production"
    assert rec.overridden == ("team", "budget")


def test_privacy_outranks_production_when_both_apply() -> None:
    rec = recommend(team_size=6, budget="paid", privacy=True, production=True)
    assert rec.decided_by == "privacy"
    assert next(s for s in rec.steps if s.rule == "production").verdict == "agreed"


def test_solo_user_who_can_pay_still_gets_tensorboard() -> None:
    rec = recommend(team_size=1, budget="paid", privacy=False, production=False)
    assert rec.backend == "tensorboard"
    assert rec.overridden == ("budget",)
    assert any("overridden by Team features" in r for r in rec.reasons)


def test_large_team_that_can_pay_gets_wandb_over_the_team_size_rule() -> None:
    rec = recommend(team_size=50, budget="paid", privacy=False, production=False)
    assert rec.backend == "wandb"
    assert rec.overridden == ("team-size",)
    assert rec.alternatives[0].backend == "mlflow"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("team_size", [0, -3, 2.5, "3", True, None])
def test_bad_team_size_names_the_field_and_the_fix(team_size: Any) -> None:
    with pytest.raises(ConfigError, match=r"team_size: .*Fix:"):
        recommend(team_size, "free", False, False)


@pytest.mark.parametrize("budget", ["cheap", "", None, True, 0])
def test_bad_budget_names_the_field_and_the_fix(budget: Any) -> None:
    with pytest.raises(ConfigError, match=r"budget: expected 'free' or 'paid'.*Fix:"):
        recommend(2, budget, False, False)


def test_budget_accepts_the_issues_own_words() -> None:
    assert recommend(2, "can pay", False, False).answers.budget == "paid"
    assert recommend(2, " Free only ", False, False).answers.budget == "free"
    assert recommend(2, "PAID", False, False) == recommend(2, "paid", False, False)


@pytest.mark.parametrize("field", ["privacy", "production", "want_all"])
def test_yes_no_answers_must_be_booleans(field: str) -> None:
    kwargs: dict[str, Any] = {"team_size": 2, "budget": "free", "privacy": False, "production": False}
    kwargs[field] = "no"  # a truthy string would silently mean "yes"
    with pytest.raises(ConfigError, match=rf"{field}: expected True or False"):
        recommend(**kwargs)


def test_bad_cloud_and_project() -> None:
    with pytest.raises(ConfigError, match=r"cloud: expected one of aws, gcp, azure"):
        recommend(2, "free", False, False, cloud="ibm")
    assert recommend(2, "free", False, False, cloud="AWS").answers.cloud == "aws"
    with pytest.raises(ConfigError, match=r"project: "):
        recommend(2, "free", False, False, project=" ")


def test_recommendation_is_frozen_and_json_ready() -> None:
    import dataclasses
    import json

    rec = recommend(2, "paid", False, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.backend = "mlflow"  # type: ignore[misc]
    data = json.loads(json.dumps(rec.to_dict()))
    assert data["backend"] == "wandb"
    assert data["answers"]["team_size"] == 2


# --------------------------------------------------------------------------- trackkit.toml


def test_write_team_config_writes_a_parseable_team_standard(tmp_path: Path) -> None:
    rec = recommend(3, "paid", False, False)
    path = write_team_config(rec, tmp_path, project="vision")
    assert path == tmp_path / "trackkit.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data == {"trackkit": {"backend": "wandb:vision", "project": "vision"}}
    text = path.read_text(encoding="utf-8")
    assert "# [trackkit.standard]" in text
    for key in STANDARD_TEMPLATE:
        assert f"# {key} = " in text


def test_written_file_is_what_trackkit_settings_reads(tmp_path: Path) -> None:
    from trackkit.settings import load_settings

    (tmp_path / ".git").mkdir()  # the repository root: settings look no further up
    rec = recommend(10, "free", True, False)
    standard = {"required_tags": ["owner"], "required_provenance": ["git", "seed"], "name_template": "{project}-{id}"}
    write_team_config(rec, tmp_path, project="vision", extra={"strict": True}, standard=standard)
    settings = load_settings(environ={}, cwd=str(tmp_path))
    assert settings.backend == ["mlflow://mlflow.internal:5000"]
    assert settings.project == "vision"
    assert settings.strict is True
    assert settings.standard.required_tags == ["owner"]
    assert settings.standard.required_provenance == ["git", "seed"]
    assert settings.standard.name_template == "{project}-{id}"

    # the commented template, uncommented as is, is a valid standard too
    text = render_team_config(rec, "vision")
    uncommented = "\n".join(
        line[2:] if (line.startswith("# ") and "=" in line) or line == "# [trackkit.standard]" else line
        for line in text.splitlines()
    )
    (tmp_path / "trackkit.toml").write_text(uncommented, encoding="utf-8")
    settings = load_settings(environ={}, cwd=str(tmp_path))
    assert settings.standard.required_tags == ["owner"] and settings.standard.name_template


def test_write_team_config_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "trackkit.toml"
    target.write_text("[trackkit]\nbackend = 'mine'\n", encoding="utf-8")
    rec = recommend(1, "free", False, False)
    with pytest.raises(TeamConfigExists, match="force=True"):
        write_team_config(rec, target)
    assert "mine" in target.read_text(encoding="utf-8")
    with pytest.raises(FileExistsError):
        write_team_config(rec, tmp_path)
    write_team_config(rec, target, force=True)
    assert tomllib.loads(target.read_text(encoding="utf-8"))["trackkit"]["backend"] == "tensorboard:./runs"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_extra_and_standard_are_written_uncommented_and_escaped(tmp_path: Path) -> None:
    rec = recommend(6, "free", True, False, project='a "quoted" name')
    extra = {
        "strict": True,
        "drain_timeout": 2.5,
        "max_runs": 3,
        "weird key": "tab\there\\",
        "capture": {"git": True, "packages": False},
    }
    standard = {"required_tags": ("owner", "purpose")}
    path = write_team_config(rec, tmp_path / "sub" / "trackkit.toml", extra=extra, standard=standard)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    table = data["trackkit"]
    assert table["project"] == 'a "quoted" name'
    assert table["backend"] == "mlflow://mlflow.internal:5000"
    assert table["strict"] is True and table["drain_timeout"] == 2.5 and table["max_runs"] == 3
    assert table["weird key"] == "tab\there\\"
    assert table["capture"] == {"git": True, "packages": False}
    assert table["standard"] == {"required_tags": ["owner", "purpose"]}
    text = path.read_text(encoding="utf-8")
    assert "\n[trackkit.standard]\n" in text
    assert "# required_tags" not in text and "# required_config" in text


def test_bad_extra_or_standard_names_the_field_and_the_fix() -> None:
    rec = recommend(2, "free", False, False)
    with pytest.raises(ConfigError, match=r"extra.backend: .*Fix:"):
        render_team_config(rec, extra={"backend": "wandb:x"})
    with pytest.raises(ConfigError, match=r"extra.standard: .*Fix: pass standard="):
        render_team_config(rec, extra={"standard": {}})
    with pytest.raises(ConfigError, match=r"extra.when: cannot write object.*Fix:"):
        render_team_config(rec, extra={"when": object()})
    with pytest.raises(ConfigError, match=r"standard.naming: not a team-standard key. Fix: use name_template"):
        render_team_config(rec, standard={"naming": "x"})
    with pytest.raises(ConfigError, match=r"standard.required_provenance: unknown part\(s\) \['seeds'\]"):
        render_team_config(rec, standard={"required_provenance": ["seeds"]})
    with pytest.raises(ConfigError, match=r"standard.required_tags: expected a list of strings"):
        render_team_config(rec, standard={"required_tags": "owner"})


def test_snippet_of_every_recommendation_parses_in_the_full_file() -> None:
    seen: set[str] = set()
    for team_size, budget, privacy, production in itertools.product(TEAM_SIZES, BUDGETS, BOOLS, BOOLS):
        rec: Recommendation = recommend(team_size, budget, privacy, production)
        data = tomllib.loads(render_team_config(rec))
        assert data["trackkit"]["backend"] == rec.backend_string
        seen.add(rec.backend_string)
    assert seen == {"tensorboard:./runs", "wandb:my-project", "mlflow:./mlflow.db", "mlflow://mlflow.internal:5000"}


# --------------------------------------------------------------------------- import hygiene and the example


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_import_pulls_in_no_backend_sdk() -> None:
    code = (
        "import sys, trackkit.recommend\n"
        "heavy = [m for m in ('torch', 'wandb', 'mlflow', 'tensorboard') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    assert out.stdout.strip() == "[]"


def test_example_script_runs_the_four_worked_examples() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "recommend_backend.py")],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=60,
        check=True,
    )
    lines = out.stdout.splitlines()
    assert "== solo student: tensorboard (tensorboard:./runs), decided by the team rule" in lines
    assert "== 3-person startup: wandb (wandb:my-project), decided by the budget rule" in lines
    assert (
        "== 10-person team with private data: mlflow (mlflow://mlflow.internal:5000), decided by the privacy rule"
        in lines
    )
    assert "== production team: mlflow (mlflow://mlflow.internal:5000), decided by the production rule" in lines
    assert "API does not change" in out.stdout


def test_the_docs_table_matches_every_answer() -> None:
    doc = (REPO / "docs" / "choosing-a-backend.md").read_text(encoding="utf-8")
    table = doc.split("<!-- recommend-table")[1].split("<!-- /recommend-table -->")[0]
    rows = [
        [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| privacy")
    ]
    assert len(rows) == 7

    def matches(cell: str, value: object) -> bool:
        if cell == "any":
            return True
        if cell == "2+":
            return isinstance(value, int) and value >= 2
        if cell in ("yes", "no"):
            return value is (cell == "yes")
        return cell == str(value)

    for team_size, budget, privacy, production in itertools.product(TEAM_SIZES, BUDGETS, BOOLS, BOOLS):
        hits = [
            r
            for r in rows
            if matches(r[0], privacy)
            and matches(r[1], production)
            and matches(r[2], team_size)
            and matches(r[3], budget)
        ]
        assert len(hits) == 1, (team_size, budget, privacy, production, hits)
        backend, string, decided_by = hits[0][4:7]
        rec = recommend(team_size, budget, privacy, production, project="PROJECT")
        assert (rec.backend, rec.backend_string, rec.decided_by) == (backend, string, decided_by)
