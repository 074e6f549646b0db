"""Which backend should we use? One answer, with the reasons; and trackkit.toml to adopt it.

* :func:`recommend` walks the decision tree (``_rules``): pure functions, standard library only.
* :func:`write_team_config` / :func:`render_team_config` (``_team_config``) write trackkit.toml,
  validated by the settings model that reads it. They load on first use, so ``import trackkit``
  does not import pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._rules import (
    BACKENDS,
    CLOUDS,
    DEFAULT_PROJECT,
    PRIORITY_ORDER,
    RULES,
    Alternative,
    Answers,
    Budget,
    Cloud,
    Recommendation,
    Rule,
    Step,
    recommend,
)

if TYPE_CHECKING:
    from ._team_config import STANDARD_TEMPLATE, TeamConfigExists, render_team_config, write_team_config

__all__ = [
    "BACKENDS",
    "CLOUDS",
    "DEFAULT_PROJECT",
    "PRIORITY_ORDER",
    "RULES",
    "STANDARD_TEMPLATE",
    "Alternative",
    "Answers",
    "Budget",
    "Cloud",
    "Recommendation",
    "Rule",
    "Step",
    "TeamConfigExists",
    "recommend",
    "render_team_config",
    "write_team_config",
]

_TEAM_CONFIG = ("STANDARD_TEMPLATE", "TeamConfigExists", "render_team_config", "write_team_config")


def __getattr__(name: str) -> Any:
    if name in _TEAM_CONFIG:
        from . import _team_config

        return getattr(_team_config, name)
    raise AttributeError(f"module 'trackkit.recommend' has no attribute {name!r}")
