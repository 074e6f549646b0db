"""What ``trackkit.init`` does before a ``Run`` exists and right after: settings (with the
overrides a test harness forces), backends, the config made JSON and redacted, provenance,
and the team standard's check. ``run.init`` calls these; see docs/architecture.md."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, TrackkitWarning
from .events import Status, flatten_config
from .util import jsonable, warn

if TYPE_CHECKING:
    from .backend import BackendSpec
    from .run import Run
    from .settings import Settings

__all__ = ["Prepared", "check_standard", "forced_settings", "load", "prepare"]

#: settings forced on every init (``trackkit.testing.capture`` sets them through forced_settings)
_forced: dict[str, Any] = {}


@contextlib.contextmanager
def forced_settings(**settings: Any) -> Iterator[None]:
    """Force init settings (``backend``, ``root`` ...) on every ``trackkit.init`` inside the block,
    over what the call, the environment and trackkit.toml say. Blocks nest; the outer ones'
    settings come back at exit."""
    global _forced
    prev = _forced
    _forced = {**prev, **settings}
    try:
        yield
    finally:
        _forced = prev


@dataclass
class Prepared:
    """Everything ``Run`` is built from."""

    settings: Settings
    specs: list[BackendSpec]
    config: Mapping[str, Any]
    meta: dict[str, Any]
    #: provenance files snapshotted into the run as artifacts (requirements, git patch ...)
    files: dict[str, bytes | str]


def load(settings_kwargs: Mapping[str, Any]) -> Settings:
    """The settings of an ``init`` call: its arguments, the environment, trackkit.toml, and what a test
    harness forces."""
    from .settings import load_settings

    return load_settings({**settings_kwargs, **_forced})


def prepare(config: Any, data: Any, seed: int | None, settings_kwargs: Mapping[str, Any],
            settings: Settings | None = None) -> Prepared:
    """Load settings (unless given), check the backends, capture provenance, make the config JSON and
    redact it. Setup problems raise ``ConfigError`` naming the fix."""
    from .registry import check_available, parse_backends

    settings = settings or load(settings_kwargs)
    specs = parse_backends(settings.backend)
    for spec in specs:
        check_available(spec)
    if config is not None and not isinstance(config, Mapping):
        config = _config_from_object(config)
    meta: dict[str, Any] = {"trackkit_version": _version(), "backends": [_public_spec(s) for s in specs]}
    if seed is not None:
        from .provenance import seed_everything

        seed_everything(seed)
    meta_p, files = _capture(settings, specs, data)
    meta.update(meta_p)
    config = _redact(jsonable(dict(config or {})), settings.redact_patterns)
    return Prepared(settings, specs, config, meta, files)


def _config_from_object(obj: Any) -> Mapping[str, Any]:
    data = jsonable(obj)
    if isinstance(data, Mapping):
        return data
    raise ConfigError(
        f"config: expected a mapping (dict, dataclass, pydantic model, argparse.Namespace), got {type(obj).__name__}. "
        "Fix: pass config=vars(args) or a dict"
    )


def _public_spec(spec: BackendSpec) -> str:
    from .registry import strip_credentials

    return strip_credentials(spec)


def _version() -> str:
    from .version import __version__

    return __version__


def _redact(config: Mapping[str, Any], patterns: list[str] | None = None) -> Mapping[str, Any]:
    from .provenance import redact_config

    out = redact_config(config, patterns)
    return out if isinstance(out, Mapping) else config


_warned_no_seed = False


def _capture(settings: Settings, specs: list[BackendSpec], data: Any) -> tuple[dict[str, Any], dict[str, bytes | str]]:
    """The five pillars (minus the config, which the run holds): git, env, invocation, data, seed.
    trackkit's own output (the journal root, the local backends' stores) is not the user's changes."""
    global _warned_no_seed
    from .provenance import capture, output_paths, pillar_status

    parts = settings.capture

    def on(name: str) -> bool:
        return bool(parts.get(name, True)) if isinstance(parts, dict) else bool(parts)  # type: ignore[call-overload]

    try:
        prov = capture(
            git=on("git"), environment=on("environment"), invocation=on("invocation"),
            packages=on("packages") and on("environment"), data=data,
            extra_patterns=settings.redact_patterns or None, warn=settings.advisories,
            exclude_paths=output_paths(settings.root, specs),
        )
    except Exception as exc:  # capture never fails the run
        warn(f"trackkit: provenance capture failed ({exc!r})", TrackkitWarning)
        return {"provenance_error": repr(exc)}, {}
    if (settings.advisories and parts is not False and pillar_status(prov.meta).get("seed") == "missing"
            and not _warned_no_seed):
        _warned_no_seed = True
        warn("trackkit: this run records no seed, so it cannot be reproduced exactly. "
             "Fix: trackkit.init(seed=42) or trackkit.seed_everything(42) before init", TrackkitWarning)
    return dict(prov.meta), dict(prov.files)


def check_standard(run: Run) -> None:
    """The team standard (trackkit.toml ``[standard]``): warn about what the run lacks, or, in
    strict mode, end it crashed and raise."""
    std = run.settings.standard
    missing: list[str] = []
    missing += [f"tag {t!r}" for t in std.required_tags if t not in run.tags]
    flat = flatten_config(run.config)
    missing += [f"config key {k!r}" for k in std.required_config if k not in flat and k not in run.config]
    if std.required_provenance:
        from .provenance import pillar_status

        status = pillar_status(run.meta)
        missing += [f"provenance {p!r} ({status.get(p, 'missing')})" for p in std.required_provenance
                    if status.get(p) != "ok"]
    if not missing:
        return
    msg = f"run {run.name} breaks the team standard (trackkit.toml): missing {', '.join(missing)}"
    if run.settings.strict:
        run.finish(Status.CRASHED, msg)
        raise ConfigError(msg + ". Fix: add them to init(tags=..., config=...)")
    warn("trackkit: " + msg, TrackkitWarning)
