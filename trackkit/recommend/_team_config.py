"""trackkit.toml: a recommendation made the team standard.

What the file holds is checked by the settings model that reads it: ``[trackkit.standard]`` is
validated by :func:`trackkit.settings.validate_standard` (:class:`~trackkit.settings.Standard`'s own
field names, types and allowed values, in one line naming the field, the cause and the fix), and the
commented examples are the ones :class:`~trackkit.settings.Standard` declares. The text written is
read back with ``tomllib`` before it is returned.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import Standard, validate_standard
from ..util import tomllib
from ._rules import Recommendation, recommend
from ._toml import toml_key, toml_value

__all__ = ["STANDARD_TEMPLATE", "TeamConfigExists", "render_team_config", "write_team_config"]


def _example(name: str) -> str:
    field = Standard.model_fields[name]
    assert field.examples, name  # every field of the standard declares its example
    return f"{f'{name} = {toml_value(field.examples[0], name)}':<42}# {field.description}"


#: the keys of ``[trackkit.standard]`` (trackkit.settings.Standard), with the commented example written for each
STANDARD_TEMPLATE: dict[str, str] = {name: _example(name) for name in Standard.model_fields}
#: the keys of ``[trackkit]`` written from the recommendation itself, and how to set each instead
_WRITTEN = {
    "backend": "pass project=... or choose the backend with recommend()",
    "project": "pass project=... or choose the backend with recommend()",
    "standard": "pass standard=...",
}


class TeamConfigExists(ConfigError, FileExistsError):
    """trackkit.toml already exists and ``force`` was not given."""


def render_team_config(
    rec: Recommendation,
    project: str | None = None,
    extra: Mapping[str, object] | None = None,
    *,
    standard: Mapping[str, object] | None = None,
) -> str:
    """The full trackkit.toml text for a team standard built on ``rec`` (checked to parse as TOML).

    ``standard`` fills ``[trackkit.standard]`` (name_template, required_tags, required_config,
    required_provenance); the keys not given are written as commented examples. ``extra`` adds other keys to
    ``[trackkit]`` (e.g. ``{"strict": True}``).
    """
    if project is not None and project != rec.answers.project:
        a = rec.answers
        rec = recommend(a.team_size, a.budget, a.privacy, a.production, a.cloud, a.want_all, project=project)
    extra = dict(extra or {})
    for key, how in _WRITTEN.items():
        if key in extra:
            raise ConfigError(f"extra.{key}: written by write_team_config itself. Fix: {how}.")
    given = dict(standard or {})
    # as Standard reads them; a key given as None (Standard's "not set") is written as its example
    checked: dict[str, Any] = validate_standard(given).model_dump(include=set(given), exclude_none=True)
    lines = [
        "# trackkit.toml: the team standard for every run started in this repository.",
        "# Written by `trackkit recommend --write`; edit freely.",
        "",
        rec.toml_snippet.rstrip("\n"),
    ]
    lines += [f"{toml_key(str(k))} = {toml_value(v, f'extra.{k}')}" for k, v in extra.items()]
    lines += [
        "",
        "# Team standard. A run that breaks it warns once at init, naming what is missing (an error in strict",
        "# mode); `trackkit doctor` checks the repository and recent runs against it. Uncomment and adapt.",
        f"{'' if checked else '# '}[trackkit.standard]",
    ]
    lines += [
        f"{key} = {toml_value(checked[key], f'standard.{key}')}" if key in checked else f"# {example}"
        for key, example in STANDARD_TEMPLATE.items()
    ]
    text = "\n".join(lines) + "\n"
    table = tomllib.loads(text)["trackkit"]
    if (table["backend"], table["project"], table.get("standard", {})) != (
        rec.backend_string, rec.answers.project, checked
    ):  # pragma: no cover - the writer's own check
        raise AssertionError(f"trackkit.toml writer produced {table!r}")
    return text


def write_team_config(
    rec: Recommendation,
    path: str | os.PathLike[str],
    project: str | None = None,
    extra: Mapping[str, object] | None = None,
    *,
    standard: Mapping[str, object] | None = None,
    force: bool = False,
) -> Path:
    """Write trackkit.toml adopting ``rec`` as the team standard; returns the file written.

    ``path`` is the file, or a directory to write ``trackkit.toml`` into. An existing file is kept unless
    ``force=True`` (raises :class:`TeamConfigExists`, a ``ConfigError`` and ``FileExistsError``).
    """
    target = Path(path)
    if target.is_dir():
        target = target / "trackkit.toml"
    if target.exists() and not force:
        raise TeamConfigExists(
            f"{target}: already exists, not overwritten. Fix: edit it by hand, or pass force=True "
            "(`trackkit recommend --write --force`) to replace it."
        )
    text = render_team_config(rec, project, extra, standard=standard)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target
