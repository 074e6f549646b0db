"""The code pillar: commit, branch, remote, dirty flag, uncommitted patch, untracked files.

Uses the ``git`` executable (no GitPython): three short subprocesses in the common case
(``status``, ``config``, ``diff``), each with a timeout. Standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from typing import Any

from ._secrets import redact_patch, strip_url_credentials

__all__ = [
    "GIT_TIMEOUT_S",
    "MAX_PATCH_BYTES",
    "MAX_UNTRACKED_FILES",
    "MAX_UNTRACKED_FILE_BYTES",
    "MAX_UNTRACKED_TOTAL_BYTES",
    "capture_git",
    "left_out_note",
]

GIT_TIMEOUT_S = 10.0
#: the tracked-changes diff is cut (and marked truncated) beyond this
MAX_PATCH_BYTES = 10 * 1024 * 1024
#: untracked text files up to this size are included in the patch ...
MAX_UNTRACKED_FILE_BYTES = 64 * 1024
#: ... until they add up to this ...
MAX_UNTRACKED_TOTAL_BYTES = 1024 * 1024
#: ... or this many files are in (whatever comes first); what is left out is said
MAX_UNTRACKED_FILES = 200
#: at most this many untracked names are listed in untracked_files.txt
MAX_UNTRACKED_LISTED = 10_000
#: and this many in the small meta record
MAX_UNTRACKED_IN_META = 20
#: names per reason in the left-out warning
_LEFT_OUT_NAMED = 5

PATCH_NAME = "uncommitted_changes.patch"
UNTRACKED_LIST_NAME = "untracked_files.txt"


class GitError(Exception):
    pass


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",  # never wait for a password
            "GIT_OPTIONAL_LOCKS": "0",  # status must not take index.lock from under the user
            "LC_ALL": "C",
            "GIT_PAGER": "cat",
        }
    )
    return env


def _git(args: Sequence[str], cwd: str, env: dict[str, str], timeout: float = GIT_TIMEOUT_S) -> bytes:
    try:
        proc = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} timed out after {timeout:g}s") from exc
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(msg[-1] if msg else f"git {args[0]} exited with {proc.returncode}")
    return proc.stdout


def _parse_status(raw: bytes) -> dict[str, Any]:
    """``git status --porcelain=v2 --branch -z``: header lines, changed entries, untracked ``?`` entries."""
    info: dict[str, Any] = {"oid": None, "head": None, "upstream": None, "changed": [], "untracked": []}
    fields = raw.split(b"\0")
    i = 0
    while i < len(fields):
        entry = fields[i].decode("utf-8", "surrogateescape")
        i += 1
        if not entry:
            continue
        if entry.startswith("# branch.oid "):
            oid = entry[len("# branch.oid ") :]
            info["oid"] = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry[len("# branch.head ") :]
            info["head"] = None if head == "(detached)" else head
        elif entry.startswith("# branch.upstream "):
            info["upstream"] = entry[len("# branch.upstream ") :]
        elif entry.startswith("? "):
            info["untracked"].append(entry[2:])
        elif entry.startswith("2 "):  # 2 XY sub mH mI mW hH hI Xscore PATH, then the original path
            info["changed"].append(entry.split(" ", 9)[-1])
            i += 1
        elif entry.startswith("1 "):  # 1 XY sub mH mI mW hH hI PATH
            info["changed"].append(entry.split(" ", 8)[-1])
        elif entry.startswith("u "):  # u XY sub m1 m2 m3 mW h1 h2 h3 PATH
            info["changed"].append(entry.split(" ", 10)[-1])
    return info


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def _relative_excludes(root: str, cwd: str, paths: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[str]]:
    """``paths`` (absolute, or relative to ``cwd``) as repository-relative POSIX names, those inside
    ``root``; and the ones not used because they hold the whole repository. A path counts when it lies
    inside the repository either as written or with symlinks resolved; a path outside is ignored."""
    tops = {os.path.normpath(root), os.path.realpath(root)}
    rels: set[str] = set()
    covering: list[str] = []
    for raw in paths:
        try:
            text = os.fspath(raw)
        except TypeError:
            continue
        if not text:
            continue
        full = os.path.normpath(os.path.join(cwd, os.path.expanduser(text)))
        # as written; with the folders above resolved (a symlink named as the location is itself
        # excluded); fully resolved (what the symlink points at)
        cands = {full, os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full)),
                 os.path.realpath(full)}
        if any(_inside(top, cand) for cand in cands for top in tops):  # the repository or a folder above it
            if full not in covering:
                covering.append(full)
            continue
        rels.update(
            os.path.relpath(cand, top).replace(os.sep, "/") for cand in cands for top in tops if _inside(cand, top)
        )
    return sorted(rels), covering


def _is_excluded(name: str, rels: Sequence[str]) -> bool:
    name = name.rstrip("/")
    return any(name == rel or name.startswith(rel + "/") for rel in rels)


def _is_text(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_SAFE_PATH = re.compile(r'^[^\x00-\x1f\x7f"\\]+$')
#: untracked files never read, whatever their size: they exist to hold secrets
_SECRET_FILE = re.compile(
    r"(?i)(?:^|/)(?:\.env(?:\..*)?|\.netrc|\.pgpass|\.npmrc|\.pypirc|id_[rd]sa\w*|id_ed25519\w*|"
    r"credentials?(?:\.\w+)?|secrets?(?:\.\w+)?|.*\.(?:pem|key|p12|pfx|keystore|jks|gpg|asc))$"
)


def _new_file_diff(path: str, data: bytes, executable: bool) -> str:
    """A ``git apply``-able diff that creates ``path`` with ``data`` (text)."""
    text = data.decode("utf-8")
    mode = "100755" if executable else "100644"
    head = f"diff --git a/{path} b/{path}\nnew file mode {mode}\n"
    if not text:
        return head
    lines = text.splitlines(keepends=True)
    count = "1" if len(lines) == 1 else f"1,{len(lines)}"
    body = [f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +{count} @@\n"]
    for line in lines:
        if line.endswith("\n"):
            body.append("+" + line)
        else:
            body.append("+" + line + "\n\\ No newline at end of file\n")
    return head + "".join(body)


def _untracked(root: str, names: list[str]) -> tuple[str, list[str], list[dict[str, Any]]]:
    """Read small untracked text files; returns (patch text, included names, listing rows)."""
    patch: list[str] = []
    included: list[str] = []
    rows: list[dict[str, Any]] = []
    total = 0
    for name in sorted(names)[:MAX_UNTRACKED_LISTED]:  # a huge unignored folder: stat no more than we list
        row: dict[str, Any] = {"path": name}
        rows.append(row)
        if name.endswith("/"):  # an untracked directory (only when git collapses it)
            row["skipped"] = "directory"
            continue
        full = os.path.join(root, name)
        try:
            st = os.stat(full)
        except OSError as exc:
            row["skipped"] = f"unreadable: {exc.strerror}"
            continue
        row["bytes"] = st.st_size
        if _SECRET_FILE.search(name):
            row["skipped"] = "name suggests secrets"
        elif not _SAFE_PATH.match(name):
            row["skipped"] = "unusual characters in name"
        elif st.st_size > MAX_UNTRACKED_FILE_BYTES:
            row["skipped"] = f"larger than {MAX_UNTRACKED_FILE_BYTES} bytes"
        elif total + st.st_size > MAX_UNTRACKED_TOTAL_BYTES:
            row["skipped"] = f"total cap of {MAX_UNTRACKED_TOTAL_BYTES} bytes reached"
        elif len(included) >= MAX_UNTRACKED_FILES:
            row["skipped"] = f"count cap of {MAX_UNTRACKED_FILES} files reached"
        else:
            try:
                with open(full, "rb") as fh:
                    data = fh.read(MAX_UNTRACKED_FILE_BYTES + 1)
            except OSError as exc:
                row["skipped"] = f"unreadable: {exc.strerror}"
                continue
            if not _is_text(data):
                row["skipped"] = "binary"
                continue
            total += len(data)
            patch.append(_new_file_diff(name, data, bool(st.st_mode & 0o111)))
            included.append(name)
            row["included"] = True
    return "".join(patch), included, rows


def _remotes(root: str, env: dict[str, str]) -> dict[str, str]:
    try:
        raw = _git(["config", "--get-regexp", r"^remote\..*\.url$"], root, env)
    except GitError:
        return {}  # exit status 1: no remote configured
    out: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        key, _, url = line.partition(" ")
        name = key[len("remote.") : -len(".url")]
        out[name] = strip_url_credentials(url.strip())
    return out


def capture_git(
    cwd: str,
    extra_patterns: Sequence[re.Pattern[str]] = (),
    exclude_paths: Iterable[str | os.PathLike[str]] = (),
) -> tuple[dict[str, Any], dict[str, str]]:
    """Return ``(meta, files)`` for the git pillar. Raises only on unexpected errors (the caller records them).

    ``exclude_paths`` (absolute, or relative to ``cwd``): trackkit's own output (the journal root, local
    backend stores). Files under them are not the user's changes: they are left out of the dirty check,
    the patch and the untracked listing, and counted in ``meta["excluded"]``.
    """
    if shutil.which("git") is None:
        return {"available": False, "reason": "git executable not found"}, {}
    env = _env()
    try:
        root = _git(["rev-parse", "--show-toplevel"], cwd, env).decode("utf-8", "surrogateescape").strip()
    except GitError as exc:
        if "not a git repository" in str(exc).lower():
            return {"available": False, "reason": "not a git repository"}, {}
        raise
    except OSError as exc:  # git vanished between which() and run(), or cwd is gone
        return {"available": False, "reason": f"git could not run: {exc}"}, {}

    status = _parse_status(_git(["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all"], root, env))
    rels, covering = _relative_excludes(root, cwd, exclude_paths)
    changed = [p for p in status["changed"] if not _is_excluded(p, rels)]
    untracked = [p for p in status["untracked"] if not _is_excluded(p, rels)]
    remotes = _remotes(root, env)
    upstream_remote = (status["upstream"] or "").split("/", 1)[0]
    remote_name = next((n for n in (upstream_remote, "origin") if n in remotes), next(iter(sorted(remotes)), None))
    meta: dict[str, Any] = {
        "available": True,
        "root": root,
        "commit": status["oid"],
        "branch": status["head"],
        "detached": status["head"] is None and status["oid"] is not None,
        "remote": remote_name,
        "remote_url": remotes.get(remote_name) if remote_name else None,
        "dirty": len(changed) > 0,
        "changed_files": len(changed),
        "untracked_count": len(untracked),
    }
    if len(remotes) > 1:
        meta["remotes"] = remotes
    present = [rel for rel in rels if os.path.lexists(os.path.join(root, rel))]
    if present or covering:
        meta["excluded"] = {
            "paths": present,
            "changed_files": len(status["changed"]) - len(changed),
            "untracked_files": len(status["untracked"]) - len(untracked),
        }
        if covering:
            meta["excluded"]["not_excluded"] = covering
            meta["excluded"]["note"] = "a trackkit output location holds the whole repository: not excluded"
    files: dict[str, str] = {}

    tracked = ""
    truncated = False
    binary: list[str] = []
    if changed and status["oid"] is not None:
        args = ["diff", "HEAD", "--no-color", "--no-ext-diff", "--no-textconv"]
        if len(changed) < len(status["changed"]):  # trackkit's own tracked files changed: not the user's
            args += ["--", ".", *(f":(exclude,literal){rel}" for rel in rels)]
        raw = _git(args, root, env, timeout=30.0)
        if len(raw) > MAX_PATCH_BYTES:
            raw = raw[:MAX_PATCH_BYTES]
            raw = raw[: raw.rfind(b"\n") + 1]
            truncated = True
        tracked = raw.decode("utf-8", "replace")
        binary = re.findall(r"^Binary files (?:a/)?(.*?) and ", tracked, flags=re.M)
    elif changed:
        meta["note"] = "no commit yet: staged files are not saved as a patch"

    untracked_patch, included, rows = _untracked(root, untracked)
    patch = tracked + untracked_patch
    if patch:
        patch, redacted_lines = redact_patch(patch, extra_patterns)
        files[PATCH_NAME] = patch
        meta["patch"] = {
            "file": PATCH_NAME,
            "bytes": len(patch.encode("utf-8")),
            "truncated": truncated,
            "redacted_lines": redacted_lines,
            "binary_files_not_saved": binary,
            "untracked_included": len(included),
            "apply": "git apply --whitespace=nowarn " + PATCH_NAME,
        }
    if rows:
        listing = []
        for row in rows:
            size = row.get("bytes")
            state = "included" if row.get("included") else f"skipped ({row.get('skipped', '?')})"
            listing.append(f"{row['path']}\t{'' if size is None else size}\t{state}")
        if len(untracked) > len(rows):
            listing.append(f"... {len(untracked) - len(rows)} more")
        files[UNTRACKED_LIST_NAME] = "\n".join(listing) + "\n"
        meta["untracked"] = [r["path"] for r in rows[:MAX_UNTRACKED_IN_META]]
        meta["untracked_included"] = included[:MAX_UNTRACKED_IN_META]
        left = _left_out(rows, len(untracked) - len(rows))
        if left:
            meta["untracked_left_out"] = left
    return meta, files


def _left_out(rows: list[dict[str, Any]], not_listed: int) -> dict[str, Any] | None:
    """What of the untracked files is not in the patch, by reason (the note in meta and in the warning)."""
    reasons: dict[str, dict[str, Any]] = {}
    count = total = 0
    for row in rows:
        if row.get("included"):
            continue
        entry = reasons.setdefault(str(row.get("skipped", "?")), {"count": 0, "files": []})
        entry["count"] += 1
        if len(entry["files"]) < _LEFT_OUT_NAMED:
            entry["files"].append(row["path"])
        count += 1
        total += int(row.get("bytes") or 0)
    if not_listed:
        reasons[f"beyond the first {MAX_UNTRACKED_LISTED} untracked files, not looked at"] = {
            "count": not_listed,
            "files": [],
        }
        count += not_listed
    if not count:
        return None
    return {"count": count, "bytes": total, "reasons": reasons, "listing": UNTRACKED_LIST_NAME}


def left_out_note(git_meta: dict[str, Any]) -> str | None:
    """One sentence naming the untracked files not saved in the patch and why, or ``None``."""
    left = git_meta.get("untracked_left_out")
    if not isinstance(left, dict) or not left.get("count"):
        return None
    parts = []
    for reason, entry in (left.get("reasons") or {}).items():
        n, names = int(entry.get("count", 0)), list(entry.get("files") or [])
        more = f", ... {n - len(names)} more" if names and n > len(names) else ""
        parts.append(f"{reason} ({n})" + (f": {', '.join(names)}{more}" if names else ""))
    return (
        f"{left['count']} untracked file(s) are not in {PATCH_NAME} -- {'; '.join(parts)}. "
        f"{UNTRACKED_LIST_NAME} lists them; commit, add or .gitignore them"
    )
