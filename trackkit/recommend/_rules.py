"""Which backend should we use? One answer, with the reasons. Pure functions, standard library only.

The decision is a short list of rules checked in ONE fixed priority order (:data:`PRIORITY_ORDER`):

1. ``privacy``     data may not leave our servers        -> a self-hosted MLflow server
2. ``production``  model registry / serving needed       -> MLflow
3. ``team``        does more than one person need it?    no -> TensorBoard; yes -> W&B or MLflow
4. ``budget``      free only -> TensorBoard or MLflow;   can pay -> W&B
5. ``team-size``   2-5 people -> W&B;                    more than 5 -> a shared MLflow server

Each rule names the backends it points to (or has no opinion). Starting from all three backends, each
rule in turn keeps only the backends it points to. A rule that would leave nothing is *overridden* by
the higher-priority rule that already decided; the first rule that leaves exactly one backend *decided*.
Rule 3 always has an opinion and rule 4 always splits W&B from MLflow, so every input ends with exactly
one backend. Two more checks never change the backend: ``cloud`` (names your provider's own tracking and
how trackkit pairs with it) and ``one-backend`` (why not all three at once).

``recommend`` is deterministic: the same answers give an equal :class:`Recommendation`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ._toml import toml_string

__all__ = [
    "BACKENDS",
    "CLOUDS",
    "DEFAULT_PROJECT",
    "PRIORITY_ORDER",
    "RULES",
    "Alternative",
    "Answers",
    "Budget",
    "Cloud",
    "Recommendation",
    "Rule",
    "Step",
    "recommend",
]

Backend = Literal["tensorboard", "wandb", "mlflow"]
Budget = Literal["free", "paid"]
Cloud = Literal["aws", "gcp", "azure"]
Verdict = Literal["decided", "narrowed", "agreed", "overridden", "no opinion", "note"]

#: every backend recommend() can return, in tie-break order
BACKENDS: tuple[Backend, ...] = ("tensorboard", "wandb", "mlflow")
CLOUDS: tuple[Cloud, ...] = ("aws", "gcp", "azure")
BUDGETS: tuple[Budget, ...] = ("free", "paid")
#: rule ids, highest priority first; the first rule that leaves one backend decides
PRIORITY_ORDER: tuple[str, ...] = ("privacy", "production", "team", "budget", "team-size")
#: largest team that still counts as "small" (W&B territory)
SMALL_TEAM_MAX = 5
DEFAULT_PROJECT = "my-project"
MLFLOW_SERVER_PLACEHOLDER = "mlflow://mlflow.internal:5000"

_LABEL: dict[str, str] = {"tensorboard": "TensorBoard", "wandb": "Weights & Biases", "mlflow": "MLflow"}
_BUDGET_ALIASES: dict[str, Budget] = {
    "free": "free",
    "free only": "free",
    "free-only": "free",
    "paid": "paid",
    "can pay": "paid",
    "can-pay": "paid",
}
_CLOUD_ALIASES: dict[str | None, Cloud | None] = {"": None, "none": None, **{c: c for c in CLOUDS}}


@dataclass(frozen=True)
class Rule:
    """One question of the decision tree."""

    id: str
    #: 1 = highest priority
    priority: int
    name: str
    question: str
    #: the product guidance, in one line
    guidance: str
    #: why the rule exists
    why: str


RULES: tuple[Rule, ...] = (
    Rule(
        "privacy",
        1,
        "Privacy",
        "Must the data stay on your own servers?",
        "yes -> a self-hosted MLflow server",
        "A hard constraint: W&B's hosted cloud stores runs on W&B's servers. MLflow is open source and runs "
        "on machines you control.",
    ),
    Rule(
        "production",
        2,
        "Production",
        "Will models go to production (model registry, serving)?",
        "yes -> MLflow",
        "MLflow has a model registry and model serving next to its tracking; TensorBoard has neither and "
        "W&B has a registry but no serving.",
    ),
    Rule(
        "team",
        3,
        "Team features",
        "Does more than one person need to see the runs?",
        "no -> TensorBoard (the simplest); yes -> W&B (hosted) or MLflow (self-hosted)",
        "TensorBoard is local files and a viewer: no account, no server, but also no users or sharing.",
    ),
    Rule(
        "budget",
        4,
        "Budget",
        "Can you pay for a hosted service?",
        "free only -> TensorBoard or MLflow; can pay -> W&B",
        "TensorBoard and MLflow are free and open source; W&B's team plans are paid but leave nothing to run.",
    ),
    Rule(
        "team-size",
        5,
        "Team size",
        "How many people?",
        f"2-{SMALL_TEAM_MAX} -> W&B; more than {SMALL_TEAM_MAX} -> a shared MLflow server",
        "A small team gets the most from a hosted service; a larger one shares one server with no per-seat cost.",
    ),
)
_RULE = {r.id: r for r in RULES}


@dataclass(frozen=True)
class Answers:
    """The validated, normalised inputs."""

    team_size: int
    budget: Budget
    privacy: bool
    production: bool
    cloud: Cloud | None = None
    want_all: bool = False
    project: str = DEFAULT_PROJECT


@dataclass(frozen=True)
class Step:
    """One rule checked on the decision path."""

    rule: str
    question: str
    #: the user's answer, in words
    answer: str
    #: backends this rule points to for that answer (empty: no opinion)
    points_to: tuple[str, ...]
    verdict: Verdict
    #: for "overridden": the rule that won
    overridden_by: str | None
    #: backends still in the running after this step
    remaining: tuple[str, ...]


@dataclass(frozen=True)
class Alternative:
    backend: str
    backend_string: str
    #: one line: why it is not the recommendation
    why_not: str


@dataclass(frozen=True)
class Recommendation:
    backend: str
    #: the string for ``trackkit.init(backend=...)``, ``TRACKKIT_BACKEND`` or trackkit.toml
    backend_string: str
    #: one line in words, e.g. "MLflow on a self-hosted tracking server shared by the team"
    summary: str
    #: runner-ups, closest first
    alternatives: tuple[Alternative, ...]
    #: plain words, one per question that had an opinion, saying which rule decided or was overridden
    reasons: tuple[str, ...]
    #: rule ids checked, in order
    decision_path: tuple[str, ...]
    steps: tuple[Step, ...]
    decided_by: str
    overridden: tuple[str, ...]
    cloud_note: str | None
    #: trackkit.toml text that adopts the recommendation
    toml_snippet: str
    #: parts of backend_string to replace before use (empty when it works as is)
    placeholders: tuple[str, ...]
    switch_note: str
    answers: Answers

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


# --------------------------------------------------------------------------- validation


def _validate(
    team_size: object,
    budget: object,
    privacy: object,
    production: object,
    cloud: object,
    want_all: object,
    project: object,
) -> Answers:
    if isinstance(team_size, bool) or not isinstance(team_size, int):
        raise ConfigError(
            f"team_size: expected a whole number of people, got {team_size!r}. "
            "Fix: pass e.g. team_size=1 for a solo project or team_size=4 for a small team."
        )
    if team_size < 1:
        raise ConfigError(
            f"team_size: must be 1 or more, got {team_size}. Fix: count the people who will look at runs, "
            "including you (team_size=1 for a solo project)."
        )
    if not isinstance(budget, str) or budget.strip().lower() not in _BUDGET_ALIASES:
        raise ConfigError(
            f"budget: expected 'free' or 'paid', got {budget!r}. "
            "Fix: budget='free' if only free tools are possible, budget='paid' if you can pay for a hosted service."
        )
    norm_budget = _BUDGET_ALIASES[budget.strip().lower()]
    for name, value in (("privacy", privacy), ("production", production), ("want_all", want_all)):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected True or False, got {value!r}. Fix: pass {name}=True or {name}=False.")
    # None means no cloud; any other value that is not a string is not a cloud at all
    key = cloud.strip().lower() if isinstance(cloud, str) else ("" if cloud is None else None)
    if key not in _CLOUD_ALIASES:
        raise ConfigError(
            f"cloud: expected one of {', '.join(CLOUDS)} or None, got {cloud!r}. "
            "Fix: pass the provider whose ML platform you already use, or cloud=None."
        )
    norm_cloud = _CLOUD_ALIASES[key]
    if not isinstance(project, str) or not project.strip() or any(c in project for c in "\r\n\t"):
        raise ConfigError(
            f"project: expected a non-empty one-line name, got {project!r}. Fix: pass e.g. project='my-project'."
        )
    assert isinstance(privacy, bool) and isinstance(production, bool) and isinstance(want_all, bool)
    return Answers(team_size, norm_budget, privacy, production, norm_cloud, want_all, project.strip())


# --------------------------------------------------------------------------- the rules


def _rule_view(rule: str, a: Answers) -> tuple[str, tuple[Backend, ...], str]:
    """(answer in words, backends the rule points to, why) for one rule; empty tuple = no opinion."""
    solo = a.team_size == 1
    people = "1 person" if solo else f"{a.team_size} people"
    if rule == "privacy":
        if a.privacy:
            return "yes", ("mlflow",), "data must stay on your own servers, which a self-hosted MLflow keeps it on"
        return "no", (), "data may leave your servers, so every backend is allowed"
    if rule == "production":
        if a.production:
            return "yes", ("mlflow",), "models go to production, and MLflow has the model registry and serving"
        return "no", (), "no model registry or serving needed, so this question rules nothing out"
    if rule == "team":
        if solo:
            return "no (1 person)", ("tensorboard",), "one person needs no team features: TensorBoard is the simplest"
        return (
            f"yes ({people})",
            ("wandb", "mlflow"),
            f"{people} need shared runs and comparison across people: W&B (hosted) or MLflow (self-hosted)",
        )
    if rule == "budget":
        if a.budget == "free":
            return "free only", ("tensorboard", "mlflow"), "free only: TensorBoard and MLflow are free and open source"
        return "can pay", ("wandb",), "you can pay, and W&B's hosted service leaves nothing to run"
    if rule == "team-size":
        if solo:
            return people, (), "a team size of 1 is settled by the team question"
        if a.team_size <= SMALL_TEAM_MAX:
            return people, ("wandb",), f"a small team (2-{SMALL_TEAM_MAX}) gets the most from W&B"
        return people, ("mlflow",), f"a team of more than {SMALL_TEAM_MAX} shares one MLflow server"
    raise AssertionError(rule)


def _walk(a: Answers) -> tuple[Backend, tuple[Step, ...], dict[Backend, str]]:
    """Apply the rules in priority order. Returns the pick, the steps, and which rule excluded each loser."""
    remaining: tuple[Backend, ...] = BACKENDS
    decided_by: str | None = None
    last_narrowed: str | None = None
    excluded_by: dict[Backend, str] = {}
    steps: list[Step] = []
    for rule_id in PRIORITY_ORDER:
        answer, points_to, _ = _rule_view(rule_id, a)
        overridden_by: str | None = None
        if not points_to:
            verdict: Verdict = "no opinion"
        else:
            kept = tuple(b for b in remaining if b in points_to)
            if not kept:
                verdict = "overridden"
                overridden_by = decided_by or last_narrowed
            elif kept == remaining:
                verdict = "agreed"
            else:
                for b in remaining:
                    if b not in kept:
                        excluded_by[b] = rule_id
                remaining = kept
                last_narrowed = rule_id
                if len(kept) == 1 and decided_by is None:
                    verdict = "decided"
                    decided_by = rule_id
                else:
                    verdict = "narrowed"
        steps.append(
            Step(rule_id, _RULE[rule_id].question, answer, tuple(points_to), verdict, overridden_by, tuple(remaining))
        )
    # Rule 3 always narrows, and for a team rule 4 always leaves one of W&B / MLflow.
    assert len(remaining) == 1 and decided_by is not None, (a, steps)
    return remaining[0], tuple(steps), excluded_by


# --------------------------------------------------------------------------- words


def _backend_string(backend: Backend, a: Answers) -> tuple[str, tuple[str, ...]]:
    if backend == "tensorboard":
        return "tensorboard:./runs", ()
    if backend == "wandb":
        return f"wandb:{a.project}", ()
    if a.team_size == 1:
        return "mlflow:./mlflow.db", ()
    return MLFLOW_SERVER_PLACEHOLDER, ("mlflow.internal:5000",)


def _summary(backend: Backend, a: Answers) -> str:
    if backend == "tensorboard":
        return "TensorBoard: local event files under ./runs, viewed with `tensorboard --logdir runs`"
    if backend == "wandb":
        return f"Weights & Biases: hosted dashboards shared by the team, project {a.project!r}"
    if a.team_size == 1:
        return "MLflow: a local store on your own machine (./mlflow.db), registry included"
    return "MLflow: one self-hosted tracking server shared by the team, registry included"


_WHY_NOT: dict[tuple[str, Backend], str] = {
    ("privacy", "wandb"): "its hosted cloud stores runs on W&B's servers, and your data must stay on yours",
    ("privacy", "tensorboard"): "keeps files local too, but it is a viewer, not a tracking server: no shared run "
    "store, search or registry",
    ("production", "tensorboard"): "no model registry and no serving for production models",
    ("production", "wandb"): "has a model registry but no model serving; MLflow covers both in one place",
    ("team", "wandb"): "an account and a hosted service that one person does not need yet (its free personal "
    "tier is the natural upgrade)",
    ("team", "mlflow"): "a database or server to look after, for features (registry, many users) one person "
    "does not need yet",
    ("team", "tensorboard"): "no users or sharing: each person's runs end up in a different directory",
    ("budget", "wandb"): "its team plans are paid, and the budget is free only",
    ("budget", "tensorboard"): "free, but you can pay for W&B's hosted team features",
    ("budget", "mlflow"): "free, but a server to run yourself; since you can pay, W&B's hosted service is less work",
    ("team-size", "mlflow"): f"a server to operate is overhead a team of 2-{SMALL_TEAM_MAX} can skip",
    ("team-size", "wandb"): f"per-seat cost grows with a team of more than {SMALL_TEAM_MAX}; one shared "
    "MLflow server serves everyone",
}

_CLOUD_NAME: dict[Cloud, str] = {
    "aws": "AWS (SageMaker AI)",
    "gcp": "Google Cloud (Vertex AI)",
    "azure": "Azure (Azure Machine Learning)",
}
_CLOUD_NOTES: dict[Cloud, str] = {
    "aws": (
        "AWS: SageMaker AI's own tracking is SageMaker Experiments, and current SageMaker AI also offers "
        "managed MLflow tracking servers. A managed MLflow server speaks MLflow's tracking API, so trackkit pairs "
        "with it through its MLflow backend; it authenticates with AWS credentials via the `sagemaker-mlflow` "
        "plugin (install it next to trackkit[mlflow]). trackkit has not been verified against it: if it does not "
        "work for you, a self-hosted MLflow server on EC2/ECS (`mlflow+https://...`) does. "
        "W&B and TensorBoard run on SageMaker like anywhere else."
    ),
    "gcp": (
        "Google Cloud: Vertex AI Experiments tracks runs and uses Vertex AI TensorBoard as its managed "
        "TensorBoard; it does not speak MLflow's API. trackkit pairs with it through TensorBoard logs: log with "
        "`tensorboard:./runs` and upload that directory to a Vertex AI TensorBoard instance (e.g. the "
        "`tb-gcp-uploader` tool from google-cloud-aiplatform). For MLflow, run your own server on GCE, GKE or "
        "Cloud Run (`mlflow+https://...`)."
    ),
    "azure": (
        "Azure: Azure Machine Learning workspaces expose an MLflow-compatible tracking URI (`azureml://...`); "
        "with the `azureml-mlflow` plugin installed, MLflow clients log straight into the workspace, so trackkit "
        "pairs with it through its MLflow backend. trackkit has not been verified against it: if it does not "
        "work for you, a self-hosted MLflow server (`mlflow+https://...`) does. W&B and TensorBoard run on "
        "Azure ML compute like anywhere else."
    ),
}

WHY_NOT_ALL_THREE = (
    "Use one backend, not all three: three backends mean three times the logging code paths and storage to "
    "look after, no single source of truth when two dashboards disagree, and near-total overlap (all three "
    "store metrics, config and artifacts). Logging to several at once is for a migration window, not the "
    "team standard."
)

SWITCH_NOTE = (
    "Switching later is cheap: the trackkit API does not change. Edit one line (`backend` in trackkit.toml, "
    "or TRACKKIT_BACKEND), and your trackkit.init / log calls stay as they are."
)


def _reason(step: Step, pick: Backend, a: Answers) -> str | None:
    rule = _RULE[step.rule]
    _, _, why = _rule_view(step.rule, a)
    where = f"{rule.name} (rule {rule.priority} of {len(PRIORITY_ORDER)})"
    if step.verdict == "no opinion":
        return None
    if step.verdict == "decided":
        return f"{where} decided: {why} -> {_LABEL[pick]}."
    if step.verdict == "narrowed":
        return f"{where} narrowed the choice: {why} -> {' or '.join(_LABEL[b] for b in step.remaining)}."
    if step.verdict == "agreed":
        return f"{where} agreed: {why}."
    assert step.overridden_by is not None
    winner = _RULE[step.overridden_by]
    return (
        f"{where} was overridden by {winner.name} (rule {winner.priority}, higher priority): on its own, {why} "
        f"-> {' or '.join(_LABEL[b] for b in step.points_to)}."
    )


def _snippet(backend: Backend, backend_string: str, placeholders: tuple[str, ...], a: Answers, by: str) -> str:
    comment = "  # placeholder: use your MLflow server's address" if placeholders else ""
    return (
        f"# Chosen by `trackkit recommend`: {_LABEL[backend]} (decided by the {_RULE[by].name.lower()} rule).\n"
        "# Switching later is a one-line change: edit `backend`; the trackkit API does not change.\n"
        "[trackkit]\n"
        f"backend = {toml_string(backend_string)}{comment}\n"
        f"project = {toml_string(a.project)}\n"
    )


# --------------------------------------------------------------------------- public API


def recommend(
    team_size: int,
    budget: Budget | str,
    privacy: bool,
    production: bool,
    cloud: Cloud | str | None = None,
    want_all: bool = False,
    *,
    project: str = DEFAULT_PROJECT,
) -> Recommendation:
    """Recommend exactly one backend for these answers.

    ``team_size``: people who will look at runs (1 or more). ``budget``: ``"free"`` (free only) or ``"paid"``
    (can pay for a hosted service). ``privacy``: data may not leave your servers. ``production``: models go to
    production (model registry, serving). ``cloud``: ``"aws"``, ``"gcp"`` or ``"azure"`` if you already use that
    provider's ML platform. ``want_all``: you were thinking of logging to all three. ``project``: the project
    name written into the snippet. Raises :class:`~trackkit.errors.ConfigError` naming the field and the fix.
    """
    a = _validate(team_size, budget, privacy, production, cloud, want_all, project)
    pick, steps, excluded_by = _walk(a)
    backend_string, placeholders = _backend_string(pick, a)
    decided_by = next(s.rule for s in steps if s.verdict == "decided")

    reasons = [r for s in steps if (r := _reason(s, pick, a)) is not None]
    path = list(PRIORITY_ORDER)
    cloud_note = _CLOUD_NOTES[a.cloud] if a.cloud else None
    extra_steps: list[Step] = []
    if a.cloud is not None:
        path.append("cloud")
        reasons.append(
            f"Cloud (a note, never changes the pick): you already use {_CLOUD_NAME[a.cloud]}; see the cloud note."
        )
        extra_steps.append(
            Step("cloud", "Already on a cloud provider's ML platform?", str(a.cloud), (), "note", None, (pick,))
        )
    if a.want_all:
        path.append("one-backend")
        reasons.append(f"One backend (a note, never changes the pick): {WHY_NOT_ALL_THREE}")
        extra_steps.append(
            Step("one-backend", "Use all three for maximum coverage?", "yes", (pick,), "note", None, (pick,))
        )

    # Runner-ups: the backend excluded by the lowest-priority rule is the closest call; among those excluded by
    # the same rule, one that suits the team's size (rule 3) comes first.
    team_fit = _rule_view("team", a)[1]
    losers = sorted(
        excluded_by,
        key=lambda b: (-PRIORITY_ORDER.index(excluded_by[b]), b not in team_fit, BACKENDS.index(b)),
    )
    alternatives = tuple(
        Alternative(
            b,
            _backend_string(b, a)[0],
            f"{_LABEL[b]}: {_WHY_NOT[(excluded_by[b], b)]} ({_RULE[excluded_by[b]].name.lower()} rule).",
        )
        for b in losers
    )
    overridden = tuple(s.rule for s in steps if s.verdict == "overridden")
    return Recommendation(
        backend=pick,
        backend_string=backend_string,
        summary=_summary(pick, a),
        alternatives=alternatives,
        reasons=tuple(reasons),
        decision_path=tuple(path),
        steps=steps + tuple(extra_steps),
        decided_by=decided_by,
        overridden=overridden,
        cloud_note=cloud_note,
        toml_snippet=_snippet(pick, backend_string, placeholders, a, decided_by),
        placeholders=placeholders,
        switch_note=SWITCH_NOTE,
        answers=a,
    )
