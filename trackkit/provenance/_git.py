"""The code pillar: commit, branch, remote, dirty flag, uncommitted patch, untracked files.

Uses the ``git`` executable (no GitPython): three short subprocesses in the common case
(``status``, ``config``, ``diff``), each with a timeout. Standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from ._secrets import redact_patch, strip_url_credentials

__all__ = ["GIT_TIMEOUT_S", "MAX_PATCH_BYTES", "MAX_UNTRACKED_FILE_BYTES", "MAX_UNTRACKED_TOTAL_BYTES", "capture_git"]

GIT_TIMEOUT_S = 10.0
#: the tracked-changes diff is cut (and marked truncated) beyond this
MAX_PATCH_BYTES = 10 * 1024 * 1024
#: untracked text files up to this size are included in the patch ...
MAX_UNTRACKED_FILE_BYTES = 64 * 1024
#: ... until they add up to this
MAX_UNTRACKED_TOTAL_BYTES = 1024 * 1024
#: at most this many untracked names are listed in untracked_files.txt
MAX_UNTRACKED_LISTED = 10_000
#: and this many in the small meta record
MAX_UNTRACKED_IN_META = 20

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
    info: dict[str, Any] = {"oid": None, "head": None, "upstream": None, "changed": 0, "untracked": []}
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
        elif entry.startswith("2 "):
            info["changed"] += 1
            i += 1  # a rename carries its original path in the next field
        elif entry[:2] in ("1 ", "u "):
            info["changed"] += 1
    return info


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


def capture_git(cwd: str, extra_patterns: Sequence[re.Pattern[str]] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """Return ``(meta, files)`` for the git pillar. Raises only on unexpected errors (the caller records them)."""
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
        "dirty": status["changed"] > 0,
        "changed_files": status["changed"],
        "untracked_count": len(status["untracked"]),
    }
    if len(remotes) > 1:
        meta["remotes"] = remotes
    files: dict[str, str] = {}

    tracked = ""
    truncated = False
    binary: list[str] = []
    if status["changed"] and status["oid"] is not None:
        raw = _git(["diff", "HEAD", "--no-color", "--no-ext-diff", "--no-textconv"], root, env, timeout=30.0)
        if len(raw) > MAX_PATCH_BYTES:
            raw = raw[:MAX_PATCH_BYTES]
            raw = raw[: raw.rfind(b"\n") + 1]
            truncated = True
        tracked = raw.decode("utf-8", "replace")
        binary = re.findall(r"^Binary files (?:a/)?(.*?) and ", tracked, flags=re.M)
    elif status["changed"]:
        meta["note"] = "no commit yet: staged files are not saved as a patch"

    untracked_patch, included, rows = _untracked(root, status["untracked"])
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
        for row in rows[:MAX_UNTRACKED_LISTED]:
            size = row.get("bytes")
            state = "included" if row.get("included") else f"skipped ({row.get('skipped', '?')})"
            listing.append(f"{row['path']}\t{'' if size is None else size}\t{state}")
        if len(status["untracked"]) > len(rows):
            listing.append(f"... {len(status['untracked']) - len(rows)} more")
        files[UNTRACKED_LIST_NAME] = "\n".join(listing) + "\n"
        meta["untracked"] = [r["path"] for r in rows[:MAX_UNTRACKED_IN_META]]
        meta["untracked_included"] = included[:MAX_UNTRACKED_IN_META]
    return meta, files
