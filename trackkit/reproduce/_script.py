"""``trackkit reproduce``: ``reproduce.sh`` and its files, written from a run's record (see
docs/reproducibility.md, "reproduce")."""

from __future__ import annotations

import json
import os
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..events import RunRecord
from ._record import mapping_at, provenance_files, run_meta

__all__ = ["write_script"]

#: environment variables that change numerics; exported by the script exactly as recorded
_DETERMINISM_ENV = ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


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


@dataclass(frozen=True)
class _Local:
    """A recorded package no index has: ``kind`` is ``editable`` or ``path`` (``source`` a path), ``vcs``
    or ``url`` (``source`` the URL pip installs from); ``in_repo``: the path inside the repository."""

    name: str
    version: str
    kind: str
    source: str
    in_repo: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}" if self.version else self.name


def _file_path(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path) if url.startswith("file:") else url


def _in_repo_real(path: str, git_root: str) -> str | None:
    """Like :func:`_in_repo`, also through symlinks (``/tmp`` vs ``/private/tmp``)."""
    rel = _in_repo(path, git_root)
    if rel is None and git_root and os.path.isabs(path):
        rel = _in_repo(os.path.realpath(path), os.path.realpath(git_root))
    return rel


def _install_lines(requirements: str, git_root: str) -> tuple[str, list[_Local]]:
    """Split requirements.txt: what ``pip install -r`` takes from an index, and the packages installed
    from their recorded source (editable and local paths, VCS URL + commit, archive URLs), one by one."""
    keep: list[str] = []
    local: list[_Local] = []
    for line in requirements.splitlines():
        req, _, comment = line.partition("  # ")
        req, comment = req.strip(), comment.strip()
        name, _, version = req.partition("==")
        pkg: _Local | None = None
        if req and not req.startswith("#") and " @ " in req:
            vname, _, url = req.partition(" @ ")
            pkg = _Local(vname.strip(), "", "vcs", url.strip())
        elif comment.startswith(("editable ", "file:")):
            path = _file_path(comment.removeprefix("editable ").strip())
            kind = "editable" if comment.startswith("editable ") else "path"
            pkg = _Local(name, version, kind, path, _in_repo_real(path, git_root))
        elif comment.startswith(("http://", "https://")) and version:
            pkg = _Local(name, version, "url", comment)
        if pkg is None:
            keep.append(line)
        else:
            local.append(pkg)
            keep.append(f"# installed from its recorded source, not from an index: {line}")
    return "\n".join(keep) + "\n", local


def _data_entries(data: Any) -> list[Mapping[str, Any]]:
    if not isinstance(data, Mapping) or data.get("disabled") or ("error" in data and len(data) == 1):
        return []
    if any(k in data for k in ("name", "version", "fingerprint", "path")):
        return [data]
    return [v for v in data.values() if isinstance(v, Mapping)]


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
    #: the packages installed from their recorded source (editable, local paths, VCS, URLs)
    local: list[_Local] = field(default_factory=list)
    rel_cwd: str = "."
    #: the journal root the run was read from: the re-run is journaled there too
    root: str = ""

    @property
    def run_id(self) -> str:
        return self.record.info.run_id

    @property
    def python(self) -> Mapping[str, Any]:
        return mapping_at(self.env, "python")

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
    git, inv = mapping_at(meta, "git"), mapping_at(meta, "invocation")
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
    return _Script(record, meta, git, inv, mapping_at(meta, "env"), mapping_at(meta, "seed"), str(commit), argv,
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
        pinfo = mapping_at(sc.git, "patch")
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
    installable, sc.local = _install_lines(req, sc.git_root)
    with open(os.path.join(out_dir, "requirements-install.txt"), "w", encoding="utf-8") as fh:
        fh.write(installable)


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
    torch = mapping_at(env, "torch")
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
        *[f"local      {p.label} ({p.kind}: {_local_origin(p)})" for p in sc.local],
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
        "# TRACKKIT_REPRODUCE_REUSE_PACKAGES=1 (a virtualenv over that interpreter's packages: nothing from an index),",
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


#: bash for step 3: ``install_local WHAT FROM FIX PIP-ARGS...`` installs one recorded local package and says so
_LOCAL_FUNCTIONS = [
    "LOCAL_FAILED=0",
    "install_local() {",
    '  local what="$1" from="$2" fix="$3"; shift 3',
    '  if "$PY" -m pip install --quiet --no-deps $PIP_LOCAL "$@"; then say "installed $what from $from"',
    '  else say "could not install $what from $from: pip failed (its message is above). Fix: $fix"',
    "    LOCAL_FAILED=$((LOCAL_FAILED + 1)); fi",
    "}",
    "no_local() {",
    '  say "could not install $1: $2 does not exist here. Fix: put its source at $2 and run this script again '
    '(with a new TRACKKIT_REPRODUCE_WORKTREE), or install it into the virtualenv yourself"',
    "  LOCAL_FAILED=$((LOCAL_FAILED + 1))",
    "}",
]

#: python for TRACKKIT_REPRODUCE_REUSE_PACKAGES=1: which recorded index packages differ from those reused
_VERSION_CHECK = [
    "import sys",
    "from importlib.metadata import PackageNotFoundError, version",
    "off = []",
    "for line in open(sys.argv[1], encoding='utf-8'):",
    "    name, sep, want = line.split('#')[0].strip().partition('==')",
    "    if sep:",
    "        try:",
    "            have = version(name)",
    "        except PackageNotFoundError:",
    "            have = 'missing'",
    "        if have != want:",
    "            off.append(f'{name} {have} (recorded {want})')",
    "print('[reproduce] ' + (f'{len(off)} recorded package(s) differ here: ' + ', '.join(off[:8])",
    "      + (' ...' if len(off) > 8 else '') if off else 'every recorded package is here at its recorded version'))",
]


def _local_origin(p: _Local) -> str:
    if p.in_repo is not None:
        return "<repo>" if p.in_repo == "." else f"<repo>/{p.in_repo}"
    return p.source


def _local_install(p: _Local) -> str:
    """The script line that installs one recorded local package from its recorded source."""
    if p.kind in ("vcs", "url"):
        fix = ("check that the repository and the commit are reachable from here (credentials are never recorded: "
               "use an ssh key or a git credential helper)" if p.kind == "vcs" else "check that the URL is reachable")
        return f"  install_local {_q(p.label)} {_q(p.source)} {_q(fix)} {_q(f'{p.name} @ {p.source}')}"
    flag = "-e " if p.kind == "editable" else ""
    if p.in_repo is not None:
        where = _local_origin(p)
        target = '"$WORKTREE"' if p.in_repo == "." else f'"$WORKTREE"/{_q(p.in_repo)}'
        fix = f"commit its source ({where}) with the code, or install it into the virtualenv yourself"
        origin = f"the worktree ({where}, at the recorded commit)"
        return f"  install_local {_q(p.label)} {_q(origin)} {_q(fix)} {flag}{target}"
    fix = "fix what pip says (a local build needs its build backend), or install it into the virtualenv yourself"
    return (f"  if [ -e {_q(p.source)} ]; then install_local {_q(p.label)} {_q(p.source + ' (as it is now)')} "
            f"{_q(fix)} {flag}{_q(p.source)}; else no_local {_q(p.label)} {_q(p.source)}; fi")


def _environment_section(sc: _Script) -> list[str]:
    """3. the interpreter; the recorded packages in a fresh virtualenv (from an index, or those of the
    interpreter with TRACKKIT_REPRODUCE_REUSE_PACKAGES=1); the local packages from their recorded sources."""
    names = ", ".join(p.label for p in sc.local)
    lines = [
        "",
        "# 3. the environment: the recorded packages in a fresh virtualenv, the local ones from their sources",
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
        *([f"  say {_q(f'not installed from their recorded sources: {names} (the interpreter has what it has)')}"]
          if sc.local else []),
        'elif [ "${TRACKKIT_REPRODUCE_REUSE_PACKAGES:-0}" = "1" ]; then',
        '  say "creating a virtualenv in $HERE/venv over the packages of $PY (TRACKKIT_REPRODUCE_REUSE_PACKAGES=1: '
        'nothing from an index)"',
        '  BASE_SITES="$("$PY" -c \'import site; print([*site.getsitepackages(), '
        '*([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])])\')"',
        '  "$PY" -m venv --without-pip "$HERE/venv"',
        '  PY="$HERE/venv/bin/python"',
        '  "$PY" -c \'import os, site, sys; open(os.path.join(site.getsitepackages()[0], "zz_trackkit_reproduce_base'
        '.pth"), "w").write(f"import site; list(map(site.addsitedir, {sys.argv[1]}))\\n")\' "$BASE_SITES"',
        '  PIP_LOCAL="--no-index --no-build-isolation"',
        *(['  "$PY" -m pip --version >/dev/null 2>&1 || die "no pip among the packages of the interpreter: '
           'install pip there, or unset TRACKKIT_REPRODUCE_REUSE_PACKAGES"'] if sc.local else []),
        *(['  "$PY" - "$HERE/requirements-install.txt" <<\'PYEOF\'', *_VERSION_CHECK, "PYEOF"] if sc.has_req else []),
        "else",
        '  say "creating a virtualenv in $HERE/venv"',
        '  "$PY" -m venv "$HERE/venv"',
        '  PY="$HERE/venv/bin/python"',
        '  PIP_LOCAL=""',
        *(['  say "installing the recorded packages (requirements-install.txt)"',
           '  "$PY" -m pip install --quiet -r "$HERE/requirements-install.txt"'] if sc.has_req else []),
        "fi",
    ]
    if sc.local:
        lines += [
            'if [ "${TRACKKIT_REPRODUCE_SKIP_INSTALL:-0}" != "1" ]; then',
            f"  say {_q(f'installing {len(sc.local)} local, editable or VCS package(s) from their recorded sources')}",
            *[f"  {x}" for x in _LOCAL_FUNCTIONS],
            *[_local_install(p) for p in sc.local],
            '  if [ "$LOCAL_FAILED" -gt 0 ]; then',
            f'    say "warning: $LOCAL_FAILED of {len(sc.local)} local package(s) not installed: the run may fail '
            'to import them"',
            "  fi",
            "fi",
        ]
    return lines


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


def _destination(sc: _Script) -> list[str]:
    """Where the re-run goes: the original's journal root and backends (the caller's TRACKKIT_ROOT /
    TRACKKIT_BACKEND win), so ``trackkit compare ORIGINAL NEW`` finds both."""
    lines: list[str] = []
    if sc.root:
        lines += [f"RECORDED_ROOT={_q(sc.root)}", 'export TRACKKIT_ROOT="${TRACKKIT_ROOT:-$RECORDED_ROOT}"']
    backends = [b for b in sc.meta.get("backends") or [] if isinstance(b, str)]
    if backends and not any("***" in b for b in backends):
        lines += [f"RECORDED_BACKEND={_q(','.join(backends))}",
                  'export TRACKKIT_BACKEND="${TRACKKIT_BACKEND:-$RECORDED_BACKEND}"']
    elif backends:
        sc.notes.append("the run's backend options held credentials, which are never recorded: the re-run is "
                        "delivered where the settings say (set TRACKKIT_BACKEND)")
    return [*lines, 'say "the re-run is journaled under ${TRACKKIT_ROOT:-the root the settings name} and delivered '
                    'to ${TRACKKIT_BACKEND:-the backend the settings name}"']


def _run_section(sc: _Script, destination: list[str]) -> list[str]:
    """5. the recorded command line, from the recorded directory, with the recorded seed."""
    env_vars = mapping_at(sc.env, "env_vars")
    exports = [
        f"export {k}={_q(str(env_vars[k]))}" for k in _DETERMINISM_ENV
        if k in env_vars and "REDACTED" not in str(env_vars[k])
    ]
    seed = sc.seed_rec.get("seed")
    command = " ".join(["\"$PY\"", *(_shell_arg(a, sc.git_root) for a in sc.argv[1:])])
    return [
        "",
        "# 5. the run: the recorded command line, from the recorded directory, with the recorded seed,",
        "#    journaled and delivered where the original was",
        *exports,
        f"export TRACKKIT_REPRODUCE_OF={_q(sc.run_id)}",
        'export TRACKKIT_REPRODUCE_CONFIG="$HERE/config.json"',
        f"export TRACKKIT_REPRODUCE_SEED={_q('' if seed is None else str(seed))}",
        *destination,
        f"cd \"$WORKTREE\"/{_q(sc.rel_cwd)}",
        f"say {_q('running: ' + sc.command_text)}",
        f"exec {command}",
        "",
    ]


def write_script(record: RunRecord, out_dir: str, *, root: str | None = None) -> str:
    """Write ``reproduce.sh`` and what it needs into ``out_dir``; return the script's path.

    Next to the script: ``config.json`` (the recorded config), ``uncommitted_changes.patch``,
    ``requirements.txt`` (as recorded) and ``requirements-install.txt`` (what comes from an index),
    ``run.json`` (the record's identity and meta). Raises :class:`~trackkit.errors.ConfigError` when the
    record cannot be reproduced at all (no git commit, no command line), naming what is missing.
    ``root``: the journal root the run was read from; the re-run is journaled there too (and delivered
    to the recorded backends), unless ``TRACKKIT_ROOT`` / ``TRACKKIT_BACKEND`` say otherwise when it runs.

    The script, run with bash, refuses to reuse an existing worktree and honours:
    ``TRACKKIT_REPRODUCE_WORKTREE`` (default ``<out_dir>/worktree``), ``TRACKKIT_REPRODUCE_PYTHON``
    (default: the recorded interpreter if it exists, else ``python3``), ``TRACKKIT_REPRODUCE_SKIP_INSTALL=1``
    (no virtualenv, no pip: run with that interpreter as it is), ``TRACKKIT_REPRODUCE_REUSE_PACKAGES=1``
    (a virtualenv over that interpreter's packages, nothing from an index; the local packages are still
    installed from their sources), ``TRACKKIT_REPRODUCE_SOURCE`` (where to clone from, instead of the
    recorded repository path or remote).
    """
    sc = _script_of(record)
    sc.root = os.path.abspath(root) if root else ""
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    files = provenance_files(record)
    _write_run_files(sc, out_dir)
    _write_patch(sc, files, out_dir)
    _write_requirements(sc, files, out_dir)
    _note_untracked_and_cwd(sc)
    destination = _destination(sc)  # before the header: it may add a note
    lines = [*_header(sc), *_code_section(), *_patch_section(sc), *_environment_section(sc), *_data_section(sc),
             *_run_section(sc, destination)]
    path = os.path.join(out_dir, "reproduce.sh")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
