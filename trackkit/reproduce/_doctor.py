"""``trackkit doctor RUN``: the five pillars of a run and the invocation, one check each; a run against
the team standard."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..events import RunRecord, flatten_config
from ._record import provenance_files, run_meta

__all__ = ["ALL_PILLARS", "PillarCheck", "check_pillars", "check_run_against_standard"]

#: what ``doctor`` checks: the five pillars (hyperparameters, seed, code = ``git``, environment = ``env``,
#: data) and the invocation that ``reproduce`` re-runs, in the order it prints them
ALL_PILLARS: tuple[str, ...] = ("hyperparameters", "git", "env", "invocation", "data", "seed")

_FIXES = {
    "hyperparameters": "pass the hyperparameters: trackkit.init(config={...}) or config=vars(args)",
    "git": "run from inside a git repository and keep capture on (capture={'git': true})",
    "env": "keep environment capture on (capture={'environment': true})",
    "invocation": "keep invocation capture on (capture={'invocation': true})",
    "data": "record the data version: trackkit.init(data={'name': ..., 'version': ..., 'path': ...})",
    "seed": "seed the run: trackkit.init(seed=42) or trackkit.seed_everything(42) before init",
}


@dataclass(frozen=True)
class PillarCheck:
    """One pillar of one run: ``status`` is ``ok``, ``missing``, ``disabled``, ``error`` or ``unavailable``."""

    pillar: str
    status: str
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _short(v: Any, n: int = 80) -> str:
    s = str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def _detail(name: str, rec: Any, config: Mapping[str, Any], files: Mapping[str, str]) -> str:
    if name == "hyperparameters":
        flat = flatten_config(config)
        keys = ", ".join(list(flat)[:6]) + (", …" if len(flat) > 6 else "")
        return f"{len(flat)} key(s): {keys}" if flat else "no config recorded"
    if not isinstance(rec, Mapping):
        return "not recorded"
    if rec.get("disabled"):
        return "turned off when the run started"
    if "error" in rec and len(rec) == 1:
        return f"capture failed: {_short(rec['error'])}"
    if rec.get("available") is False:
        return str(rec.get("reason", "not available"))
    if name == "git":
        commit = str(rec.get("commit") or "?")[:12]
        parts = [f"commit {commit}", f"on {rec.get('branch') or 'detached HEAD'}"]
        if rec.get("remote_url"):
            parts.append(f"remote {rec['remote_url']}")
        if rec.get("dirty"):
            saved = "patch saved" if "uncommitted_changes.patch" in files else "patch NOT found"
            parts.append(f"dirty ({rec.get('changed_files')} file(s), {saved})")
        else:
            parts.append("clean")
        return ", ".join(parts)
    if name == "env":
        py = rec.get("python", {}).get("version", "?") if isinstance(rec.get("python"), Mapping) else "?"
        parts = [f"Python {py}"]
        torch = rec.get("torch")
        if isinstance(torch, Mapping) and torch.get("version"):
            parts.append(f"torch {torch['version']}")
            if torch.get("cuda"):
                parts.append(f"CUDA {torch['cuda']}")
        if rec.get("gpu_count"):
            parts.append(f"{rec['gpu_count']} GPU(s)")
        req = rec.get("requirements")
        if isinstance(req, Mapping):
            found = "requirements.txt" in files
            parts.append(f"{req.get('count')} packages" + ("" if found else " (requirements.txt NOT found)"))
        else:
            parts.append("no package list")
        return ", ".join(parts)
    if name == "invocation":
        return _short(rec.get("command") or shlex.join(rec.get("argv") or []))
    if name == "seed":
        det = " (deterministic algorithms)" if rec.get("deterministic") else ""
        return f"seed {rec.get('seed')}{det}; seeded {', '.join(rec.get('seeded') or [])}"
    if name == "data":
        entries = [rec] if "name" in rec or "fingerprint" in rec or "version" in rec else list(rec.values())
        out = []
        for e in entries:
            if isinstance(e, Mapping):
                fp = e.get("fingerprint")
                out.append(
                    f"{e.get('name', '?')} {e.get('version', '')}".strip()
                    + (f" {str(fp)[:19]}…" if fp else "")
                )
        return _short("; ".join(out)) or "recorded"
    return "recorded"


def check_pillars(record: RunRecord) -> list[PillarCheck]:
    """The five pillars of a run (hyperparameters, git, env, invocation, data, seed), one check each."""
    from ..provenance import pillar_status

    meta = run_meta(record)
    files = provenance_files(record)
    config = record.info.config or {}
    status = pillar_status(meta)
    out = [
        PillarCheck(
            "hyperparameters",
            "ok" if config else "missing",
            _detail("hyperparameters", None, config, files),
            "" if config else _FIXES["hyperparameters"],
        )
    ]
    for name, st in status.items():
        rec = meta.get(name)
        out.append(PillarCheck(name, st, _detail(name, rec, config, files), "" if st == "ok" else _FIXES[name]))
    return out


def check_run_against_standard(record: RunRecord, standard: Any) -> list[str]:
    """What a run misses of the team standard (``settings.Standard``): tags, config keys, provenance parts."""
    problems: list[str] = []
    tags = record.info.tags or {}
    problems += [f"tag {t!r} missing" for t in getattr(standard, "required_tags", []) if t not in tags]
    config = record.info.config or {}
    flat = flatten_config(config)
    required_config = list(getattr(standard, "required_config", []))
    problems += [f"config key {k!r} missing" for k in required_config if k not in flat and k not in config]
    required = list(getattr(standard, "required_provenance", []))
    if required:
        from ..provenance import pillar_status

        status = pillar_status(run_meta(record))
        problems += [f"provenance {p!r} is {status.get(p, 'missing')}" for p in required if status.get(p) != "ok"]
    return problems
