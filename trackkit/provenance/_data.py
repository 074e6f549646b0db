"""The data pillar: dataset name and version, and a cached content fingerprint for local paths.

The fingerprint of a path is ``sha256`` over, for every regular file in sorted relative-name order,
``name NUL size NUL sha256(content) LF``. Per-file content hashes are cached in a JSON file keyed by
absolute path and validated by ``(size, mtime_ns, inode)``, so a large dataset is read once; a file
modified less than two seconds before hashing is not cached (its mtime could still change within the
same clock tick without the size changing, the "racily clean" problem git also guards against).

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._secrets import redact_config, strip_url_credentials

__all__ = ["FingerprintCache", "cache_path", "capture_data", "fingerprint_path"]

_CHUNK = 1024 * 1024
#: files modified this recently are hashed but not cached
RACY_WINDOW_NS = 2_000_000_000
#: the cache forgets the oldest entries beyond this
MAX_CACHE_ENTRIES = 500_000
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_LOCK = threading.Lock()


def cache_path() -> str:
    """``$TRACKKIT_CACHE_DIR/fingerprints.json``, else ``$XDG_CACHE_HOME/trackkit/``, else ``~/.cache/trackkit/``."""
    base = os.environ.get("TRACKKIT_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "trackkit")
    return os.path.join(base, "fingerprints.json")


class FingerprintCache:
    """Per-file content hashes on disk. Loaded lazily, saved atomically, merged with concurrent writers."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or cache_path()
        self._entries: dict[str, list[Any]] | None = None
        self._dirty: dict[str, list[Any]] = {}
        self.hits = 0
        self.misses = 0
        self.hashed_bytes = 0

    def _load(self) -> dict[str, list[Any]]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return {}
        entries = data.get("files") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        if self._entries is None:
            self._entries = self._load()
        entry = self._entries.get(path)
        if (
            isinstance(entry, list)
            and len(entry) == 4
            and entry[0] == st.st_size
            and entry[1] == st.st_mtime_ns
            and entry[2] == st.st_ino
        ):
            return str(entry[3])
        return None

    def store(self, path: str, st: os.stat_result, digest: str) -> None:
        if time.time_ns() - st.st_mtime_ns < RACY_WINDOW_NS:
            return
        entry = [st.st_size, st.st_mtime_ns, st.st_ino, digest]
        if self._entries is not None:
            self._entries[path] = entry
        self._dirty[path] = entry

    def save(self) -> None:
        """Write new entries, merging with whatever another process saved meanwhile. Never raises."""
        if not self._dirty:
            return
        with _LOCK:
            try:
                merged = self._load()
                merged.update(self._dirty)
                if len(merged) > MAX_CACHE_ENTRIES:  # dicts keep insertion order: drop the oldest
                    for key in list(merged)[: len(merged) - MAX_CACHE_ENTRIES]:
                        del merged[key]
                folder = os.path.dirname(self.path) or "."
                os.makedirs(folder, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".fingerprints-", dir=folder)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as fh:
                        json.dump({"version": 1, "files": merged}, fh, separators=(",", ":"))
                    os.replace(tmp, self.path)
                except BaseException:
                    try:
                        os.unlink(tmp)
                    except OSError:
                        pass
                    raise
                self._dirty.clear()
            except OSError:
                pass  # a read-only home: fingerprints are still right, only slower next time


def _walk(root: str) -> Iterator[tuple[str, str]]:
    """``(relative posix name, absolute path)`` of every file below root, sorted, symlinked files followed."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            yield os.path.relpath(full, root).replace(os.sep, "/"), full


def _hash_file(path: str, cache: FingerprintCache, st: os.stat_result) -> str:
    cached = cache.lookup(path, st)
    if cached is not None:
        cache.hits += 1
        return cached
    cache.misses += 1
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            cache.hashed_bytes += len(chunk)
    digest = h.hexdigest()
    cache.store(path, st, digest)
    return digest


def fingerprint_path(path: str, cache: FingerprintCache | None = None, *, content: bool = True) -> dict[str, Any]:
    """Fingerprint a file or directory: ``{"fingerprint": "sha256:...", "files": n, "bytes": n, ...}``.

    ``content=False`` hashes names and sizes only (no file is read): for datasets too large to read.
    """
    cache = cache or FingerprintCache()
    root = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(root):
        entries: Iterator[tuple[str, str]] = iter([(os.path.basename(root), root)])
    elif os.path.isdir(root):
        entries = _walk(root)
    else:
        return {"exists": False, "fingerprint": None}
    items = sorted(entries)
    before = (cache.hits, cache.misses, cache.hashed_bytes)
    top = hashlib.sha256()
    total = 0
    count = 0
    skipped = 0
    for rel, full in items:
        try:
            st = os.stat(full)
        except OSError:
            skipped += 1  # a dangling symlink
            continue
        if not os.path.isfile(full):
            skipped += 1
            continue
        digest = _hash_file(os.path.realpath(full), cache, st) if content else "-"
        top.update(f"{rel}\0{st.st_size}\0{digest}\n".encode("utf-8", "surrogateescape"))
        total += st.st_size
        count += 1
    cache.save()
    out: dict[str, Any] = {
        "fingerprint": ("sha256:" if content else "sha256-names:") + top.hexdigest(),
        "files": count,
        "bytes": total,
        "kind": "file" if os.path.isfile(root) else "directory",
        "cache": {
            "hits": cache.hits - before[0],
            "misses": cache.misses - before[1],
            "hashed_bytes": cache.hashed_bytes - before[2],
        },
    }
    if skipped:
        out["skipped"] = skipped
    return out


def _one(spec: Mapping[str, Any], cache: FingerprintCache, cwd: str | None) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for key, value in redact_config(dict(spec)).items():
        if key == "hash":
            continue
        rec[str(key)] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
    path = spec.get("path")
    if path is None:
        return rec
    path = str(os.fspath(path))
    if _REMOTE.match(path) and not path.startswith("file://"):
        rec["path"] = strip_url_credentials(path)
        rec["fingerprint"] = None
        rec["fingerprint_note"] = "remote path: not hashed (record a version)"
        return rec
    if path.startswith("file://"):
        path = path[len("file://") :]
    full = path if os.path.isabs(path) or cwd is None else os.path.join(cwd, path)
    rec["path"] = path
    rec["abspath"] = os.path.abspath(os.path.expanduser(full))
    mode = spec.get("hash", True)
    if mode is False or mode == "none":
        rec["fingerprint"] = None
        return rec
    rec.update(fingerprint_path(full, cache, content=mode != "names"))
    return rec


def capture_data(
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]], cwd: str | None = None, cache_file: str | None = None
) -> dict[str, Any]:
    """The data record. One mapping gives a flat record (``data.name``, ``data.fingerprint``, ...);
    a list gives ``{name: record}`` (``data.cifar10.fingerprint``), unnamed entries keyed by position.

    Keys of a mapping: ``name``, ``version``, ``path`` (file, directory or URL; URLs are not hashed),
    ``hash`` (``True`` default, ``"names"`` for names and sizes only, ``False`` for none), anything else
    is recorded as given (secrets redacted).
    """
    cache = FingerprintCache(cache_file)
    if isinstance(data, Mapping):
        return _one(data, cache, cwd)
    out: dict[str, Any] = {}
    for i, spec in enumerate(data):
        if not isinstance(spec, Mapping):
            raise TypeError(f"data[{i}] must be a mapping like {{'name': ..., 'path': ...}}, got {type(spec).__name__}")
        key = str(spec.get("name") or i)
        if key in out:
            key = f"{key}_{i}"
        out[key] = _one(spec, cache, cwd)
    return out
