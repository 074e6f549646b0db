"""Read a run's five pillars back, check them, and rebuild the run from its record.

* :func:`find_record` loads one run (id, id prefix or name) from the local journal or any backend's Reader.
* :func:`check_pillars` says which of the five pillars a run has (what ``trackkit doctor RUN`` prints).
* :func:`check_run_against_standard` lists how a run breaks the team standard (``trackkit doctor``).
* :func:`write_script` writes ``reproduce.sh`` (+ ``config.json``, the patch, the requirements) that
  checks out the recorded commit into a fresh worktree, applies the uncommitted changes, installs the
  recorded packages into a fresh virtualenv and runs the recorded command line (``trackkit reproduce``).

Standard library only (the Readers are loaded by registry string when a backend is named).
"""

from __future__ import annotations

import json
import os
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .events import Artifact, RunRecord, RunStarted, flatten_config

__all__ = [
    "ALL_PILLARS",
    "PillarCheck",
    "check_pillars",
    "check_run_against_standard",
    "find_record",
    "provenance_files",
    "run_meta",
    "write_script",
]

#: the five pillars as ``doctor`` reports them: hyperparameters (the config) + what provenance captures
ALL_PILLARS: tuple[str, ...] = ("hyperparameters", "git", "env", "invocation", "data", "seed")

#: environment variables that change numerics; exported by the script exactly as recorded
_DETERMINISM_ENV = ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_FIXES = {
    "hyperparameters": "pass the hyperparameters: trackkit.init(config={...}) or config=vars(args)",
    "git": "run from inside a git repository and keep capture on (capture={'git': true})",
    "env": "keep environment capture on (capture={'environment': true})",
    "invocation": "keep invocation capture on (capture={'invocation': true})",
    "data": "record the data version: trackkit.init(data={'name': ..., 'version': ..., 'path': ...})",
    "seed": "seed the run: trackkit.init(seed=42) or trackkit.seed_everything(42) before init",
}


# ---------------------------------------------------------------------- finding a run


def find_record(run: str, *, root: str | None = None, backend: str | None = None) -> RunRecord:
    """Load one run by id, id prefix or name (the rule of :mod:`trackkit.lookup`).

    From the local journal under ``root`` (default: the settings' ``root``), or, with ``backend``
    (a backend string such as ``"tensorboard:./runs"``), through that backend's Reader.
    Raises :class:`~trackkit.lookup.RunLookupError` (a :class:`~trackkit.errors.ConfigError`)
    naming the fix when no run, or several, answer to ``run``.
    """
    from .lookup import find_in_journal, find_in_readers, journal_root

    if backend:
        from .query import backend_label
        from .registry import load_reader, parse_backend

        spec = parse_backend(backend)
        return find_in_readers(run, [(backend_label(spec), load_reader(spec))])[1]
    return find_in_journal(run, journal_root(root))


def _start(record: RunRecord) -> RunStarted | None:
    return next((e for e in record.events if isinstance(e, RunStarted)), None)


def run_meta(record: RunRecord) -> dict[str, Any]:
    """The run's ``meta`` (provenance, trackkit version, backends) from its start event; ``{}`` if none."""
    start = _start(record)
    return dict(start.meta) if start is not None else {}


def provenance_files(record: RunRecord) -> dict[str, str]:
    """``{file name: readable path}`` of the run's provenance artifacts (latest version of each)."""
    latest: dict[str, Artifact] = {}
    for ev in record.events:
        if isinstance(ev, Artifact) and ev.kind == "provenance":
            if ev.name not in latest or ev.version >= latest[ev.name].version:
                latest[ev.name] = ev
    out: dict[str, str] = {}
    for name, art in latest.items():
        candidates = [art.path]
        if record.info.location and os.path.isdir(record.info.location):  # the run directory moved
            base = os.path.basename(art.path.rstrip(os.sep)) or name
            candidates.append(os.path.join(record.info.location, "artifacts", name, f"v{art.version}", base))
        for p in candidates:
            if p and os.path.isfile(p):
                out[name] = p
                break
    return out


# ---------------------------------------------------------------------- doctor


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
    from .provenance import pillar_status

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
        from .provenance import pillar_status

        status = pillar_status(run_meta(record))
        problems += [f"provenance {p!r} is {status.get(p, 'missing')}" for p in required if status.get(p) != "ok"]
    return problems


# ---------------------------------------------------------------------- reproduce


def _q(s: str) -> str:
    return shlex.quote(s)


def _in_repo(path: str, git_root: str) -> str | None:
    """``path`` relative to ``git_root`` when it lies inside it, else ``None``."""
    if not git_root or not os.path.isabs(path):
        return None
    root = os.path.normpath(git_root)
    p = os.path.normpath(path)
    if p == root:
        return "."
    if p.startswith(root + os.sep):
        return os.path.relpath(p, root)
    return None


def _shell_arg(arg: str, git_root: str) -> str:
    """A recorded argument for the script: absolute paths inside the old checkout point into the worktree."""
    rel = _in_repo(arg, git_root)
    if rel is not None:
        return '"$WORKTREE"' if rel == "." else f'"$WORKTREE"/{_q(rel)}'
    if arg.startswith("-") and "=" in arg:
        flag, _, value = arg.partition("=")
        rel = _in_repo(value, git_root)
        if rel is not None:
            return f'{_q(flag + "=")}"$WORKTREE"/{_q(rel)}'
    return _q(arg)


def _install_lines(requirements: str, git_root: str) -> tuple[str, list[str], bool]:
    """Filter requirements.txt for ``pip install -r``: local/editable installs cannot come from an index.

    Returns (installable text, the lines left out, whether the recorded repository itself was installed
    editable — the script then installs the worktree with ``pip install -e``)."""
    keep: list[str] = []
    left: list[str] = []
    self_editable = False
    for line in requirements.splitlines():
        _, _, comment = line.partition("  # ")
        comment = comment.strip()
        if comment.startswith(("editable ", "file:")):
            url = comment.removeprefix("editable ").strip()
            path = url.removeprefix("file://")
            if git_root and os.path.normpath(path) == os.path.normpath(git_root):
                self_editable = True
            else:
                left.append(line)
            keep.append(f"# left out (local install, not on an index): {line}")
        else:
            keep.append(line)
    return "\n".join(keep) + "\n", left, self_editable


def _data_entries(data: Any) -> list[Mapping[str, Any]]:
    if not isinstance(data, Mapping) or data.get("disabled") or ("error" in data and len(data) == 1):
        return []
    if any(k in data for k in ("name", "version", "fingerprint", "path")):
        return [data]
    return [v for v in data.values() if isinstance(v, Mapping)]


def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


@dataclass
class _Script:
    """What the script is written from: the record's provenance, read once."""

    record: RunRecord
    meta: Mapping[str, Any]
    git: Mapping[str, Any]
    inv: Mapping[str, Any]
    env: Mapping[str, Any]
    seed_rec: Mapping[str, Any]
    commit: str
    argv: list[str]
    git_root: str
    #: what the script cannot restore, in the order it says so
    notes: list[str] = field(default_factory=list)
    has_patch: bool = False
    has_req: bool = False
    self_editable: bool = False
    rel_cwd: str = "."

    @property
    def run_id(self) -> str:
        return self.record.info.run_id

    @property
    def python(self) -> Mapping[str, Any]:
        return _mapping(self.env, "python")

    @property
    def recorded_python(self) -> str:
        return str(self.python.get("executable") or self.inv.get("executable") or "python3")

    @property
    def py_version(self) -> str:
        return str(self.python.get("version") or "")

    @property
    def command_text(self) -> str:
        return str(self.inv.get("command") or shlex.join(self.argv))


def _script_of(record: RunRecord) -> _Script:
    """The record's provenance for the script; ``ConfigError`` when it lacks the commit or the command."""
    meta = run_meta(record)
    git, inv = _mapping(meta, "git"), _mapping(meta, "invocation")
    run_id = record.info.run_id
    commit = git.get("commit")
    if not commit:
        why = git.get("reason") or ("git capture was turned off" if git.get("disabled") else "no commit recorded")
        raise ConfigError(
            f"run {run_id} cannot be reproduced: its code was not recorded ({why}). "
            "Fix: run from inside a git repository with at least one commit"
        )
    argv = list(inv.get("orig_argv") or [])
    if not argv and inv.get("argv"):
        argv = [str(inv.get("executable") or "python"), *inv["argv"]]
    if not argv:
        raise ConfigError(
            f"run {run_id} cannot be reproduced: no command line was recorded (invocation capture was "
            "off or the run started from an interactive session). Fix: start runs from a script"
        )
    return _Script(record, meta, git, inv, _mapping(meta, "env"), _mapping(meta, "seed"), str(commit), argv,
                   str(git.get("root") or ""))


def _write_run_files(sc: _Script, out_dir: str) -> None:
    """``config.json`` (the recorded config) and ``run.json`` (the record's identity and meta)."""
    info = sc.record.info
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as fh:
        json.dump(info.config, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    with open(os.path.join(out_dir, "run.json"), "w", encoding="utf-8") as fh:
        json.dump({"run_id": sc.run_id, "name": info.name, "project": info.project,
                   "backend": info.backend, "meta": sc.meta}, fh, indent=2, default=str)
        fh.write("\n")


def _write_patch(sc: _Script, files: Mapping[str, str], out_dir: str) -> None:
    """Copy ``uncommitted_changes.patch``; note what it lacks."""
    patch_name = "uncommitted_changes.patch"
    sc.has_patch = patch_name in files
    if sc.has_patch:
        with open(files[patch_name], "rb") as src, open(os.path.join(out_dir, patch_name), "wb") as dst:
            dst.write(src.read())
        pinfo = _mapping(sc.git, "patch")
        if pinfo.get("truncated"):
            sc.notes.append("the recorded patch was truncated (too large): the worktree will NOT match")
        if pinfo.get("binary_files_not_saved"):
            sc.notes.append(f"binary changes were not saved: {', '.join(pinfo['binary_files_not_saved'])}")
        if pinfo.get("redacted_lines"):
            sc.notes.append(f"{pinfo['redacted_lines']} patch line(s) had secrets redacted: put the real values back")
    elif sc.git.get("dirty"):
        sc.notes.append("the tree was dirty but no uncommitted_changes.patch artifact was found: changes are lost")


def _write_requirements(sc: _Script, files: Mapping[str, str], out_dir: str) -> None:
    """Copy ``requirements.txt`` and write ``requirements-install.txt`` (without local installs)."""
    sc.has_req = "requirements.txt" in files
    if not sc.has_req:
        sc.notes.append("no requirements.txt was recorded: packages are not installed")
        return
    with open(files["requirements.txt"], encoding="utf-8", errors="replace") as fh:
        req = fh.read()
    with open(os.path.join(out_dir, "requirements.txt"), "w", encoding="utf-8") as fh:
        fh.write(req)
    installable, left, sc.self_editable = _install_lines(req, sc.git_root)
    with open(os.path.join(out_dir, "requirements-install.txt"), "w", encoding="utf-8") as fh:
        fh.write(installable)
    if left:
        sc.notes.append(f"{len(left)} local/editable package(s) cannot be installed from an index: "
                        + "; ".join(x.split("  #")[0] for x in left[:5]))


def _note_untracked_and_cwd(sc: _Script) -> None:
    untracked = [u for u in (sc.git.get("untracked") or []) if u not in (sc.git.get("untracked_included") or [])]
    if untracked:
        sc.notes.append(f"{len(untracked)} untracked file(s) were not saved (too large, binary or secret-looking)")
    cwd = str(sc.inv.get("cwd") or "")
    rel_cwd = _in_repo(cwd, sc.git_root) if cwd else "."
    if rel_cwd is None:
        sc.notes.append(f"the run started outside the repository (cwd {cwd}); it is re-run from the worktree root")
        rel_cwd = "."
    sc.rel_cwd = rel_cwd


def _header(sc: _Script) -> list[str]:
    """The script's opening comment (what it rebuilds, what it cannot) and its variables."""
    info, git, env, seed_rec = sc.record.info, sc.git, sc.env, sc.seed_rec
    seed = seed_rec.get("seed")
    torch = _mapping(env, "torch")
    summary = [
        f"run        {sc.run_id} ({info.name}) project {info.project}, from {info.backend}",
        f"commit     {sc.commit} on {git.get('branch') or 'detached HEAD'}"
        + (" + uncommitted changes" if sc.has_patch else ""),
        f"repository {sc.git_root or '-'}   remote {git.get('remote_url') or '-'}",
        f"cwd        <repo>/{sc.rel_cwd}",
        f"command    {sc.command_text}",
        f"seed       {seed if seed is not None else 'not recorded'}"
        + (" (deterministic algorithms)" if seed_rec.get("deterministic") else ""),
        f"python     {sc.py_version or '?'} ({sc.recorded_python})",
        f"torch      {torch.get('version', '-')}  cuda {torch.get('cuda') or '-'}  gpus {env.get('gpu_count', 0)}",
    ]
    return [
        "#!/usr/bin/env bash",
        f"# Reproduce trackkit run {sc.run_id}; written by `trackkit reproduce`.",
        *[f"#   {s}" for s in summary],
        *[f"# NOTE: {n}" for n in sc.notes],
        "#",
        "# Environment: TRACKKIT_REPRODUCE_WORKTREE (default ./worktree next to this script),",
        "# TRACKKIT_REPRODUCE_PYTHON (default: the recorded interpreter if present, else python3),",
        "# TRACKKIT_REPRODUCE_SKIP_INSTALL=1 (no virtualenv/pip: use that interpreter as it is),",
        "# TRACKKIT_REPRODUCE_SOURCE (clone from here instead of the recorded repository or remote).",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        f"COMMIT={_q(sc.commit)}",
        f"SRC_REPO={_q(sc.git_root)}",
        f"SRC_REMOTE={_q(str(git.get('remote_url') or ''))}",
        'WORKTREE="${TRACKKIT_REPRODUCE_WORKTREE:-$HERE/worktree}"',
        "say() { echo \"[reproduce] $*\"; }",
        "die() { echo \"[reproduce] error: $*\" >&2; exit 2; }",
        *[f"say {_q('note: ' + n)}" for n in sc.notes],
    ]


def _code_section() -> list[str]:
    """1. a fresh clone at the recorded commit."""
    return [
        "",
        "# 1. the code: a fresh clone at the recorded commit",
        'if [ -e "$WORKTREE" ] && [ -n "$(ls -A "$WORKTREE" 2>/dev/null)" ]; then',
        '  die "$WORKTREE exists and is not empty; remove it or set TRACKKIT_REPRODUCE_WORKTREE"',
        "fi",
        'SOURCE="${TRACKKIT_REPRODUCE_SOURCE:-}"',
        'if [ -z "$SOURCE" ]; then',
        '  if [ -n "$SRC_REPO" ] && git -C "$SRC_REPO" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then',
        '    SOURCE="$SRC_REPO"',
        '  elif [ -n "$SRC_REMOTE" ]; then',
        '    SOURCE="$SRC_REMOTE"',
        "  else",
        '    die "commit $COMMIT is not in $SRC_REPO and no remote was recorded; set TRACKKIT_REPRODUCE_SOURCE"',
        "  fi",
        "fi",
        'say "cloning $SOURCE at ${COMMIT:0:12} into $WORKTREE"',
        'git clone --quiet --no-checkout -- "$SOURCE" "$WORKTREE"',
        'if ! git -C "$WORKTREE" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then',
        '  git -C "$WORKTREE" fetch --quiet origin "$COMMIT" || die "commit $COMMIT is not reachable from $SOURCE"',
        "fi",
        'git -C "$WORKTREE" -c advice.detachedHead=false checkout --quiet --detach "$COMMIT"',
        'if [ -f "$WORKTREE/.gitmodules" ]; then',
        '  git -C "$WORKTREE" submodule update --init --recursive --quiet || say "warning: submodules not restored"',
        "fi",
    ]


def _patch_section(sc: _Script) -> list[str]:
    """2. the uncommitted changes."""
    if not sc.has_patch:
        return ["", "# 2. no uncommitted changes were recorded"]
    return [
        "",
        "# 2. the uncommitted changes recorded with the run",
        'say "applying uncommitted_changes.patch"',
        'git -C "$WORKTREE" apply --whitespace=nowarn "$HERE/uncommitted_changes.patch"',
    ]


def _environment_section(sc: _Script) -> list[str]:
    """3. the interpreter, and the recorded packages in a fresh virtualenv."""
    lines = [
        "",
        "# 3. the environment: the recorded packages in a fresh virtualenv",
        f"RECORDED_PYTHON={_q(sc.recorded_python)}",
        'PY="${TRACKKIT_REPRODUCE_PYTHON:-}"',
        'if [ -z "$PY" ]; then',
        '  if [ -x "$RECORDED_PYTHON" ]; then PY="$RECORDED_PYTHON"; else PY="$(command -v python3)"; fi',
        "fi",
        f"RECORDED_VERSION={_q(sc.py_version)}",
        'NOW_VERSION="$("$PY" -c \'import platform; print(platform.python_version())\')"',
        'if [ -n "$RECORDED_VERSION" ] && [ "$NOW_VERSION" != "$RECORDED_VERSION" ]; then',
        '  say "warning: Python $NOW_VERSION here, $RECORDED_VERSION when recorded"',
        "fi",
        'if [ "${TRACKKIT_REPRODUCE_SKIP_INSTALL:-0}" = "1" ]; then',
        '  say "TRACKKIT_REPRODUCE_SKIP_INSTALL=1: using $PY as it is (no virtualenv, no pip)"',
        "else",
        '  say "creating a virtualenv in $HERE/venv"',
        '  "$PY" -m venv "$HERE/venv"',
        '  PY="$HERE/venv/bin/python"',
    ]
    if sc.has_req:
        lines += [
            '  say "installing the recorded packages (requirements-install.txt)"',
            '  "$PY" -m pip install --quiet -r "$HERE/requirements-install.txt"',
        ]
    if sc.self_editable:
        lines += [
            '  say "installing the repository itself (it was installed editable)"',
            '  "$PY" -m pip install --quiet --no-deps -e "$WORKTREE"',
        ]
    return [*lines, "fi"]


def _data_section(sc: _Script) -> list[str]:
    """4. the data: checked against the recorded fingerprints (nothing when none was recorded)."""
    checks: list[str] = []
    for d in _data_entries(sc.meta.get("data")):
        fp, path = d.get("fingerprint"), d.get("path")
        label = f"{d.get('name', '?')} {d.get('version', '')}".strip()
        if fp and path and d.get("kind") in ("file", "directory"):
            content = "False" if str(fp).startswith("sha256-names:") else "True"
            checks.append(f"check_data {_q(label)} {_q(str(path))} {_q(str(fp))} {content}")
        else:
            checks.append(f"echo {_q(f'[reproduce] data {label}: recorded by name/version only, not verified')}")
    if not checks:
        return []
    return [
        "",
        "# 4. the data: not restored, only checked against the recorded fingerprint",
        "check_data() {",
        '  local label="$1" path="$2" want="$3" content="$4" got',
        '  got="$("$PY" -c \'import sys; from trackkit.provenance import fingerprint_path as f; '
        'print(f(sys.argv[1], content=sys.argv[2] == "True").get("fingerprint"))\' "$path" "$content" '
        '2>/dev/null || echo "?")"',
        '  if [ "$got" = "$want" ]; then say "data $label: fingerprint matches";',
        '  else say "warning: data $label at $path: fingerprint $got, recorded $want"; fi',
        "}",
        f"cd \"$WORKTREE\"/{_q(sc.rel_cwd)}",
        *checks,
    ]


def _run_section(sc: _Script) -> list[str]:
    """5. the recorded command line, from the recorded directory, with the recorded seed."""
    env_vars = _mapping(sc.env, "env_vars")
    exports = [
        f"export {k}={_q(str(env_vars[k]))}" for k in _DETERMINISM_ENV
        if k in env_vars and "REDACTED" not in str(env_vars[k])
    ]
    seed = sc.seed_rec.get("seed")
    command = " ".join(["\"$PY\"", *(_shell_arg(a, sc.git_root) for a in sc.argv[1:])])
    return [
        "",
        "# 5. the run: the recorded command line, from the recorded directory, with the recorded seed",
        *exports,
        f"export TRACKKIT_REPRODUCE_OF={_q(sc.run_id)}",
        'export TRACKKIT_REPRODUCE_CONFIG="$HERE/config.json"',
        f"export TRACKKIT_REPRODUCE_SEED={_q('' if seed is None else str(seed))}",
        f"cd \"$WORKTREE\"/{_q(sc.rel_cwd)}",
        f"say {_q('running: ' + sc.command_text)}",
        f"exec {command}",
        "",
    ]


def write_script(record: RunRecord, out_dir: str) -> str:
    """Write ``reproduce.sh`` and what it needs into ``out_dir``; return the script's path.

    Next to the script: ``config.json`` (the recorded config), ``uncommitted_changes.patch``,
    ``requirements.txt`` (as recorded) and ``requirements-install.txt`` (without local installs),
    ``run.json`` (the record's identity and meta). Raises :class:`~trackkit.errors.ConfigError` when the
    record cannot be reproduced at all (no git commit, no command line), naming what is missing.

    The script, run with bash, refuses to reuse an existing worktree and honours:
    ``TRACKKIT_REPRODUCE_WORKTREE`` (default ``<out_dir>/worktree``), ``TRACKKIT_REPRODUCE_PYTHON``
    (default: the recorded interpreter if it exists, else ``python3``), ``TRACKKIT_REPRODUCE_SKIP_INSTALL=1``
    (no virtualenv, no pip: run with that interpreter as it is), ``TRACKKIT_REPRODUCE_SOURCE`` (where to
    clone from, instead of the recorded repository path or remote).
    """
    sc = _script_of(record)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    files = provenance_files(record)
    _write_run_files(sc, out_dir)
    _write_patch(sc, files, out_dir)
    _write_requirements(sc, files, out_dir)
    _note_untracked_and_cwd(sc)
    lines = [*_header(sc), *_code_section(), *_patch_section(sc), *_environment_section(sc), *_data_section(sc),
             *_run_section(sc)]
    path = os.path.join(out_dir, "reproduce.sh")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
