"""Settings, in one precedence order:

    init() kwargs  >  TRACKKIT_* environment  >  trackkit.toml  >  [tool.trackkit] in pyproject.toml  >  defaults

``trackkit.toml`` and ``pyproject.toml`` are looked up from the working directory
upwards to the repository root (the first directory holding ``.git``) — the first
one found of each wins. In ``trackkit.toml`` the settings may sit at the top level
or in a ``[trackkit]`` table; the team standard lives in ``[trackkit.standard]``.

A validation error names the field, the source the value came from and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from .errors import ConfigError
from .util import tomllib

__all__ = ["ProvenancePart", "Settings", "Standard", "find_config_files", "load_settings", "validate_standard"]

ENV_PREFIX = "TRACKKIT_"


#: the provenance parts a team standard may require
ProvenancePart = Literal["git", "env", "invocation", "data", "seed"]


class Standard(BaseModel):
    """The team standard (``[trackkit.standard]`` in trackkit.toml).

    Each field's ``description`` and first ``examples`` entry are the commented example that
    ``trackkit recommend --write`` puts in a new trackkit.toml.
    """

    model_config = ConfigDict(extra="forbid")

    name_template: str | None = Field(
        default=None, description="fields: project, date, id, group, config.KEY", examples=["{project}-{date}-{id}"]
    )
    required_tags: list[str] = Field(
        default_factory=list, description="tags every run must carry", examples=[["owner"]]
    )
    required_config: list[str] = Field(
        default_factory=list, description='config keys (flattened with ".")', examples=[["seed"]]
    )
    required_provenance: list[ProvenancePart] = Field(
        default_factory=list, description=f"of {', '.join(get_args(ProvenancePart))}", examples=[["git", "seed"]]
    )


def validate_standard(data: Mapping[str, Any]) -> Standard:
    """``data`` (a ``[trackkit.standard]`` table) as a :class:`Standard`.

    Raises ``ConfigError`` in one line naming the field (``standard.KEY``), the cause and the fix.
    """
    try:
        return Standard.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_standard_problem(exc.errors(), data)) from None


def _standard_problem(errors: Sequence[ErrorDetails], data: Mapping[str, Any]) -> str:
    """The first of pydantic's ``errors`` in words, from the field's own type, allowed values and example."""
    keys = ", ".join(Standard.model_fields)
    loc = errors[0]["loc"]
    key = str(loc[0]) if loc else ""
    field = Standard.model_fields.get(key)
    if field is None:
        return f"standard.{key}: not a team-standard key. Fix: use {keys}."
    mine = [e for e in errors if e["loc"][:1] == (key,)]
    item = get_args(field.annotation)[0] if get_origin(field.annotation) is list else None
    allowed = get_args(item) if get_origin(item) is Literal else ()
    bad = [e["input"] for e in mine if e["type"] == "literal_error" and isinstance(e["input"], str)]
    if allowed and len(bad) == len(mine):
        return f"standard.{key}: unknown part(s) {bad!r}. Fix: use some of {', '.join(allowed)}."
    kind = "a string" if item is None else "a list of strings"
    example = field.examples[0] if field.examples else None
    return f"standard.{key}: expected {kind}, got {data[key]!r}. Fix: e.g. {example!r}."


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: one backend string or several
    backend: list[str] = Field(default_factory=lambda: ["tensorboard:./runs"])
    project: str = "default"
    #: where journals live
    root: str = "./.trackkit"
    #: "process" (default): a delivery agent that outlives the trainer; "thread": in-process
    agent: Literal["process", "thread"] = "process"
    #: what finish() waits for: "journal" (default): the finish record is in the journal (fsynced) and
    #: the process agent, which outlives the trainer, delivers the rest in the background;
    #: "delivery": every backend holds the whole run (at most drain_timeout). The thread agent
    #: always waits for delivery (it ends with the process). run.wait_delivery() waits later.
    finish_wait: Literal["journal", "delivery"] = "journal"
    #: seconds finish() waits for delivery before leaving the rest in the journal
    drain_timeout: float = Field(10.0, ge=0)
    #: seconds the background agent process goes on delivering after the trainer has finished or
    #: died (nobody waits for it: a slow SDK start-up or a backend coming back still gets everything)
    linger: float = Field(120.0, ge=0)
    #: what a NaN/inf logged value does: mark the run diverged, or also raise DivergedError
    on_nan: Literal["mark", "stop", "ignore"] = "mark"
    #: raise logging problems into the caller instead of counting and warning once
    strict: bool = False
    #: advisory warnings: a backend limit that applies to this run's data, a run without a seed,
    #: provenance notes (a dirty git tree ...). Problems that lose data are always warned about.
    advisories: bool = True
    #: record provenance at init: true/false, or per part {"git": false, "packages": false, ...}
    capture: bool | dict[Literal["git", "environment", "invocation", "packages"], bool] = True
    #: the trainer stores records into a shared mapping of the journal (no system call per log());
    #: false: one write(2) per record (docs/journal.md)
    journal_mapped: bool = True
    #: seconds between agent polls of the journal
    poll_interval: float = Field(0.05, gt=0)
    #: while the run is live, a backend gets a batch at most this often (seconds)
    flush_interval: float = Field(1.0, ge=0)
    #: an image logged larger than this on its long side (pixels) is reduced before it is written
    #: (log reduced images, not full resolution); 0: never reduce
    media_max_image_px: int = Field(1024, ge=0)
    #: a histogram's raw values above this many bytes are binned in the trainer instead of in the
    #: agent (the counts are exact either way; only where the work happens changes)
    media_max_bytes: int = Field(16 * 1024 * 1024, ge=0)
    #: keep the process's stdout and stderr (file-descriptor level) in the run, still shown on the terminal
    console: bool = True
    #: CPU, memory, disk, network and GPU figures sampled by the agent every system_metrics_interval seconds
    system_metrics: bool = True
    system_metrics_interval: float = Field(10.0, gt=0)
    standard: Standard = Field(default_factory=Standard)
    #: the name of a run started without ``name``: fields ``{project}``, ``{date}``, ``{id}``, ``{group}``
    #: and any config key ``{config.optimizer.lr}`` (None: the standard's, else built from the config)
    name_template: str | None = None
    #: in a distributed launch (``RANK``/``LOCAL_RANK``/``SLURM_PROCID``): ``"zero"`` records rank 0 only
    #: (other ranks get a run that records nothing), ``"all"`` one run per rank, grouped, tagged ``rank``
    ranks: Literal["zero", "all"] = "zero"
    #: extra secret formats (regular expressions) redacted from the config and provenance, on top of
    #: the built-in rules (docs/security.md); in TRACKKIT_REDACT_PATTERNS one pattern per line
    redact_patterns: list[str] = Field(default_factory=list)

    @field_validator("redact_patterns", mode="before")
    @classmethod
    def _split_patterns(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [p for p in v.splitlines() if p.strip()]
        if isinstance(v, list):
            import re

            for p in v:
                try:
                    re.compile(p)
                except (re.error, TypeError) as exc:
                    raise ValueError(f"{p!r} is not a regular expression ({exc})") from None
        return v

    @field_validator("backend", mode="before")
    @classmethod
    def _split_backend(cls, v: Any) -> Any:
        # a single string may hold several backends; the registry splits and parses them
        return [v] if isinstance(v, str) else v


_FIXES = {
    "backend": "use a backend string such as 'tensorboard:./runs', 'wandb:PROJECT', 'mlflow:./mlflow.db' or a list",
    "agent": "use 'process' (default) or 'thread'",
    "finish_wait": "use 'journal' (default: return once the journal is safe) or 'delivery' (wait for the backends)",
    "drain_timeout": "use a number of seconds >= 0, e.g. 10",
    "linger": "use a number of seconds >= 0, e.g. 120",
    "on_nan": "use 'mark', 'stop' or 'ignore'",
    "strict": "use true or false",
    "capture": "use true or false",
    "journal_mapped": "use true or false",
    "poll_interval": "use a number of seconds > 0, e.g. 0.05",
    "flush_interval": "use a number of seconds >= 0, e.g. 1",
    "project": "use a project name string",
    "media_max_image_px": "use a number of pixels >= 0, e.g. 1024 (0: never reduce)",
    "media_max_bytes": "use a number of bytes >= 0, e.g. 16777216",
    "root": "use a directory path",
    "name_template": "use a template such as '{config.model}-lr{config.optimizer.lr}-{date}'",
    "ranks": "use 'zero' (rank 0 records; default) or 'all' (one run per rank)",
    "console": "use true or false",
    "system_metrics": "use true or false",
    "system_metrics_interval": "use a number of seconds > 0, e.g. 10",
    "redact_patterns": "use a list of regular expressions, e.g. ['ACME-[0-9a-f]{32}']",
}


@dataclass
class _Layered:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def add(self, data: Mapping[str, Any], source: str) -> None:
        for k, v in data.items():
            self.values[k] = v
            self.sources[k] = source


def _find_upwards(start: str, name: str) -> str | None:
    d = os.path.abspath(start)
    while True:
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return p
        if os.path.exists(os.path.join(d, ".git")):
            return None
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def find_config_files(start: str | None = None) -> tuple[str | None, str | None]:
    """(trackkit.toml, pyproject.toml) that apply to ``start`` (default cwd)."""
    start = start or os.getcwd()
    return _find_upwards(start, "trackkit.toml"), _find_upwards(start, "pyproject.toml")


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc}). Fix: correct the TOML syntax or remove the file.") from exc


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        if name == "standard":
            continue
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            out[name] = raw
    return out


def load_settings(
    kwargs: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Settings:
    """Merge every source and validate. Raises ``ConfigError`` naming field, source and fix."""
    environ = os.environ if environ is None else environ
    layers = _Layered()
    tk_file, py_file = find_config_files(cwd)
    if py_file:
        tool = _read_toml(py_file).get("tool", {}).get("trackkit")
        if isinstance(tool, dict):
            layers.add(tool, f"[tool.trackkit] in {py_file}")
    if tk_file:
        data = _read_toml(tk_file)
        table = data.get("trackkit", data)
        if isinstance(table, dict):
            layers.add(table, tk_file)
    layers.add(_env_values(environ), "environment (TRACKKIT_*)")
    layers.add({k: v for k, v in (kwargs or {}).items() if v is not None}, "init() argument")
    for k, src in layers.sources.items():
        if src.startswith("environment"):
            layers.sources[k] = f"environment variable {ENV_PREFIX}{k.upper()}"
    unknown = [k for k in layers.values if k not in Settings.model_fields]
    if unknown:
        k = unknown[0]
        raise ConfigError(
            f"{k}: unknown setting (from {layers.sources[k]}). "
            f"Fix: remove it or use one of: {', '.join(sorted(Settings.model_fields))}"
        )
    try:
        return Settings.model_validate(layers.values)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        top = str(err["loc"][0]) if err["loc"] else ""
        src = layers.sources.get(top, "defaults")
        value = layers.values.get(top, "<missing>")
        fix = _FIXES.get(top, "see docs/configuration.md")
        raise ConfigError(f"{loc}: {err['msg']} (got {value!r} from {src}). Fix: {fix}") from None
