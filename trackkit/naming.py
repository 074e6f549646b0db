"""Run names that say what ran: the default name built from the config
(``{model}_{dataset}_lr{lr}_bs{batch_size}_{time}``), ``name_template`` with ``{config.KEY}``, and
keeping names unique in a project. See docs/configuration.md, "Run names"."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError, TrackkitWarning
from .events import flatten_config
from .util import warn

__all__ = ["NAME_PARTS", "check_template", "config_name", "default_name", "format_template"]

#: the parts of the default name, in order: (label, config keys that give it, first found wins). A key
#: matches at the top level or as the last part of a nested key (``optimizer.lr``), the top level first.
NAME_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("model", "arch", "architecture", "model_name", "network", "net")),
    ("", ("dataset", "data", "dataset_name")),
    ("lr", ("lr", "learning_rate")),
    ("bs", ("batch_size", "bs")),
)
#: the fields a template may name besides ``config.KEY``
FIELDS = ("project", "id", "date", "group", "config.KEY")
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, (Mapping, list, tuple)):
        return None
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        path = value.startswith(("/", "./", "../", "~")) or "://" in value
        text = (os.path.basename(value.rstrip("/")) or value) if path else value  # a path: its last part
    else:
        return None
    text = _UNSAFE.sub("-", text).strip("-")[:40]
    return text or None


def _find(flat: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        if n in flat:
            return flat[n]
    for n in names:
        nested = sorted((k for k in flat if k.endswith("." + n)), key=lambda k: (k.count("."), k))
        if nested:
            return flat[nested[0]]
    return None


def config_name(config: Mapping[str, Any]) -> str:
    """The config part of the default name (``resnet18_cifar10_lr0.01_bs128``); ``""`` when the config
    has none of the common keys (``NAME_PARTS``)."""
    flat = flatten_config(config)
    parts = []
    for label, names in NAME_PARTS:
        text = _scalar(_find(flat, names))
        if text is not None:
            parts.append(label + text)
    return "_".join(parts)


class _Config:
    """``{config.a.b}`` / ``{config[a.b]}`` in a template: the flattened config key ``a.b``."""

    def __init__(self, flat: Mapping[str, Any], missing: list[str], key: str = "") -> None:
        self._flat, self._missing, self._key = flat, missing, key

    def __getattr__(self, part: str) -> _Config:
        if part.startswith("__"):
            raise AttributeError(part)
        return _Config(self._flat, self._missing, f"{self._key}.{part}" if self._key else part)

    def __getitem__(self, part: str) -> _Config:
        return self.__getattr__(str(part))

    def __format__(self, spec: str) -> str:
        if self._key not in self._flat:
            self._missing.append(self._key)
            return "none"
        value = self._flat[self._key]
        if spec:
            return format(value, spec)
        return _scalar(value) or str(value)


def format_template(template: str, project: str, run_id: str, date: str, group: str | None,
                    config: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``template`` filled in, and the config keys it names that the config lacks (filled with ``none``).
    ``ConfigError`` for a template that cannot be formatted, naming the fields it may use."""
    missing: list[str] = []
    try:
        text = template.format(project=project, id=run_id, date=date, group=group or "",
                               config=_Config(flatten_config(config), missing))
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(
            f"name_template: {template!r} cannot be formatted ({exc}). "
            f"Fix: use only {{project}}, {{id}}, {{date}}, {{group}} and {{config.KEY}} (e.g. {{config.optimizer.lr}})"
        ) from None
    return text, missing


def check_template(template: str) -> None:
    """Raise ``ConfigError`` when ``template`` cannot be formatted (``trackkit doctor``)."""
    format_template(template, "p", "i", "d", "g", {})


def default_name(template: str | None, project: str, run_id: str, start_time: float, group: str | None,
                 config: Mapping[str, Any] | None = None, taken: Any = None, suffix: str = "") -> str:
    """A run's name when none is given: ``name_template`` filled in, else the config's name
    (``config_name``) and the start time, else the start time and the id's last four characters.

    ``taken(since)`` gives the names already used in the project by runs whose directory changed at or
    after ``since`` (``None``: all); a name already taken gets ``-`` and the id's last four characters."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(start_time))
    since: float | None = float(int(start_time)) - 1.0
    if template:
        name, missing = format_template(template, project, run_id, stamp, group, config or {})
        if missing:
            warn(f"trackkit: name_template {template!r}: the config has no {', '.join(map(repr, missing))}; "
                 "written as 'none'. Fix: add the key to the config or change the template", TrackkitWarning)
        if "{id" in template:
            return name + suffix
        if "{date" not in template:
            since = None
    else:
        base = config_name(config or {})
        if not base:
            return f"{stamp}-{run_id[-4:]}{suffix}"
        name = f"{base}_{stamp}"
    name += suffix
    if taken is not None and name in taken(since):
        name = f"{name}-{run_id[-4:]}"
    return name
