"""Local files of what a W&B run holds outside its history: the files of a logged artifact (where
W&B staged or cached them) and the console output ``files/output.log``, for ``Artifact.path``.

An offline artifact's manifest names each file (``path``), where W&B took it from
(``local_path``: its staging copy, or the file itself with ``policy="immutable"``) and its
base64 MD5 (``digest``), under which W&B's cache keeps a copy
(``<WANDB_CACHE_DIR>/artifacts/obj/md5/<2 hex>/<rest>``). The files are linked (or copied) into
one temporary directory per process under their manifest names, so a copy keeps them.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from typing import Any

from ...backend import short_hash
from ...events import Artifact
from .media_read import Fetch

__all__ = ["artifact_location", "console_artifact", "console_text", "local_artifact", "tree_sha256"]

_DIR: list[str] = []


def _scratch() -> str:
    if not _DIR:
        d = tempfile.mkdtemp(prefix="trackkit-wandb-artifacts-")
        atexit.register(shutil.rmtree, d, True)
        _DIR.append(d)
    return _DIR[0]


def _file_sha(path: str, h: Any = None) -> tuple[str, int]:
    own = h or hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            own.update(chunk)
            size += len(chunk)
    return own.hexdigest(), size


def tree_sha256(root: str) -> tuple[str, int]:
    """sha256 and size of a directory as trackkit hashes trees (``util.copy_hashed``): a sorted walk,
    each file's relative path, a NUL byte, then its bytes."""
    h = hashlib.sha256()
    size = 0
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(base, f)
            h.update(os.path.relpath(p, root).encode("utf-8", "surrogatepass") + b"\0")
            size += _file_sha(p, h)[1]
    return h.hexdigest(), size


def _cache_roots() -> list[str]:
    """W&B's cache directories: ``WANDB_CACHE_DIR``, else ``~/.cache/wandb``."""
    env = os.environ.get("WANDB_CACHE_DIR")
    return ([env] if env else []) + [os.path.join(os.path.expanduser("~"), ".cache", "wandb")]


def _find(local_path: str, digest: str) -> str | None:
    if local_path and os.path.isfile(local_path):
        return local_path
    try:
        hexd = base64.b64decode(digest).hex()
    except (ValueError, TypeError):
        return None
    if len(hexd) != 32:
        return None
    for root in _cache_roots():
        p = os.path.join(root, "artifacts", "obj", "md5", hexd[:2], hexd[2:])
        if os.path.isfile(p):
            return p
    return None


def _place(src: str, dest: str) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.exists(dest):
        return
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def local_artifact(name: str, entries: Iterable[tuple[str, str, str, int]],
                   files: Fetch) -> tuple[str, str, int, str]:
    """``(path, sha256, size, why)`` of an offline artifact's files: one file, or a directory of
    them under their manifest paths; ``why`` says what is missing (then ``path`` is ``""``)."""
    entries = [e for e in entries if e[0]]
    if not entries:
        return "", "", 0, "its manifest lists no files (a reference artifact?)"
    found: list[tuple[str, str]] = []
    for rel, local, digest, _size in entries:
        src = _find(local, digest)
        if src is None:
            return "", "", 0, (f"its file {rel!r} is neither where W&B staged it ({local or 'no path'}) nor in "
                               "W&B's artifact cache (synced and cleaned up?)")
        if os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
            return "", "", 0, f"its manifest path {rel!r} leaves the artifact"
        found.append((rel, src))
    ident = short_hash(name + "\0" + "\0".join(f"{r}={d}" for r, _, d, _ in entries), 16)
    base = os.path.join(_scratch(), ident)
    if len(found) == 1:
        rel, src = found[0]
        dest = os.path.join(base, os.path.basename(rel))
        _place(src, dest)
        sha, size = _file_sha(dest)
        return dest, sha, size, ""
    root = os.path.join(base, name)
    for rel, src in found:
        _place(src, os.path.join(root, *rel.split("/")))
    sha, size = tree_sha256(root)
    return root, sha, size, ""


def _lasting(path: str) -> bool:
    """A file that outlives this process and W&B's bookkeeping: not in a reader's temporary directory
    (``<tmp>/trackkit-...``: a download, this module's scratch copies, removed at exit), not in W&B's
    staging area or cache."""
    real = os.path.realpath(path)
    rel = os.path.relpath(real, os.path.realpath(tempfile.gettempdir()))
    if not rel.startswith(os.pardir) and rel.startswith("trackkit-"):
        return False
    if os.sep + os.path.join("artifacts", "staging") + os.sep in real:  # removed once W&B has uploaded it
        return False
    return not any(real.startswith(os.path.realpath(r) + os.sep) for r in _cache_roots())


def artifact_location(ref: str, aliases: Iterable[str], entries: Iterable[tuple[str, str, str, int]],
                      path: str) -> str:
    """``Artifact.location`` of a W&B artifact (what ``trackkit show`` prints): ``""`` when ``path``
    lasts (trackkit's snapshot on this machine); the user's own file when W&B took it from there
    (``policy="immutable"``, one file); else W&B's name for it, ``artifact NAME:ALIAS[/file]``
    (``ref``: ``NAME:vN`` from a server; offline, where W&B numbers no version yet, the first alias
    other than ``latest``)."""
    if path and os.path.exists(path) and _lasting(path):
        return ""
    entries = [e for e in entries if e[0]]
    if len(entries) == 1 and entries[0][1] and os.path.isfile(entries[0][1]) and _lasting(entries[0][1]):
        return entries[0][1]
    if ":" not in ref:
        named = [str(a) for a in aliases if str(a) != "latest"]
        ref = f"{ref}:{named[0] if named else 'latest'}"
    return f"artifact {ref}" + (f"/{entries[0][0]}" if len(entries) == 1 else "")


def console_artifact(files: Fetch, index: int, when: float) -> Artifact | None:
    """``files/output.log`` (W&B's console capture) as an ``Artifact`` of kind ``console``."""
    path = files("output.log")
    if path is None:
        return None
    sha, size = _file_sha(path)
    return Artifact(path=path, name="output.log", kind="console", sha256=sha, size=size, version=index,
                    metadata={"wandb": "files/output.log"}, source="output.log", time=when,
                    location="" if _lasting(path) else "run file output.log")


def saved_file(files: Fetch, rel: str, when: float) -> Artifact | None:
    """A file the run saved with ``wandb.save`` (``files/<rel>``) as an ``Artifact`` of kind ``file``
    named by its path in the run (None: it is not there)."""
    path = files(rel)
    if path is None:
        return None
    sha, size = _file_sha(path)
    return Artifact(path=path, name=rel, kind="file", sha256=sha, size=size, metadata={"wandb": f"files/{rel}"},
                    source=rel, time=when, location="" if _lasting(path) else f"run file {rel}")


def console_text(files: Fetch) -> str:
    """``files/output.log`` as text ("" when there is none)."""
    path = files("output.log")
    if path is None:
        return ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()
