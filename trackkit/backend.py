"""The two seams every backend implements, and what each backend can hold.

A **Sink** receives batches of neutral events (``emit``) and is closed once
(``close``). It dispatches on the event type, so a new event kind costs one
branch per adapter rather than a new method on every class. The delivery agent
always hands a fresh sink the run's ``RunStarted`` first, also when it resumes
a run after a restart, so ``RunStarted`` handling must be idempotent (re-attach
to the backend's run for that ``run_id``).

A **Reader** turns what a backend stored back into ``RunInfo`` + events, which
is what ``runs``, ``compare`` and ``migrate`` are built on.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .errors import BackendError, TrackkitError
from .events import Console, Event, RunInfo, RunRecord

__all__ = [
    "BackendSpec", "Capabilities", "ConsoleFile", "Reader", "Sink", "image_meta", "map_key", "payload_file",
    "safe_name", "sdk_errors", "short_hash", "shorten",
]


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend string such as ``tensorboard:./runs`` or ``mlflow://127.0.0.1:5000``."""

    scheme: str
    #: what follows the scheme: a directory, a file, a URL, a project name
    location: str
    options: Mapping[str, str] = field(default_factory=dict)
    #: the string as the user wrote it
    raw: str = ""

    def __str__(self) -> str:
        return self.raw or f"{self.scheme}:{self.location}"


@runtime_checkable
class Sink(Protocol):
    def emit(self, batch: Sequence[Event]) -> None:
        """Deliver events in order. Raise on failure: the agent retries the whole
        batch later, so a sink must tolerate seeing a batch again."""

    def close(self) -> None:
        """Flush and release. Called once, also after a failed emit."""


@runtime_checkable
class Reader(Protocol):
    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        """Summaries of stored runs, optionally of one project."""

    def read_run(self, run_id: str) -> RunRecord:
        """One run with every event. Raises ``KeyError`` when it does not exist."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can hold; ``init`` warns once about the gaps of the chosen ones."""

    #: longest metric/param key stored as-is (None: no limit)
    max_key_length: int | None = None
    #: keys with characters outside this backend's alphabet are mapped (see docs/configuration.md)
    restricted_key_chars: bool = False
    #: ±inf stored faithfully
    stores_inf: bool = True
    #: NaN stored faithfully
    stores_nan: bool = True
    #: a native status for killed runs
    native_killed: bool = True
    #: longest config value stored as-is (None: no limit)
    max_param_length: int | None = None
    #: artifacts stored by the backend itself
    artifacts: bool = True
    #: the key this backend stores for a metric/param key (None: every key as it is); the trainer
    #: calls it once per new key to say, once, when a key of this run had to be mapped
    key_rule: Callable[[str], str] | None = None
    #: media kinds this backend has no native form for -> what trackkit stores instead
    #: (``{"histogram": "a JSON artifact per step"}``); a kind not named is stored natively
    media: Mapping[str, str] = field(default_factory=dict)

    def gaps(self) -> list[str]:
        """Plain-words list of what this backend cannot hold and what trackkit does instead."""
        out = []
        if self.max_key_length is not None or self.restricted_key_chars:
            out.append(
                f"keys longer than {self.max_key_length} characters or with unsupported characters "
                "are mapped by the documented key rule (original kept as a tag)"
            )
        if not self.stores_inf:
            out.append("±inf is clamped by the backend; the true value is recorded as a tag")
        if not self.stores_nan:
            out.append("NaN cannot be stored; it is recorded as a tag")
        if not self.native_killed:
            out.append("no native 'killed' status; trackkit's status is written as a tag/text")
        if self.max_param_length is not None:
            out.append(
                f"config values over {self.max_param_length} characters are shortened; "
                "the full config is kept as the config.json artifact"
            )
        for kind, instead in self.media.items():
            what = {"audio": "audio clips"}.get(kind, kind + "s")
            out.append(f"no native {kind} type; trackkit stores {what} as {instead}")
        return out


def capabilities_of(sink_or_cls: object) -> Capabilities:
    caps = getattr(sink_or_cls, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()



# ---------------------------------------------------------------- the error seam


@contextlib.contextmanager
def sdk_errors(label: str, what: str | Callable[[], str], scrub: Callable[[str], str] | None = None) -> Iterator[None]:
    """The one translation of SDK errors at an adapter's seam: any exception that is not
    already a ``TrackkitError`` becomes ``BackendError("<label>: <what> failed: <Type>: <first
    line>")`` raised from it. ``what`` may be a callable, read when the error happens (the event
    being handled); ``scrub`` removes credentials from the SDK's message."""
    try:
        yield
    except TrackkitError:
        raise
    except Exception as exc:
        text = str(exc)
        if scrub is not None:
            text = scrub(text)
        lines = text.strip().splitlines()
        first = lines[0][:500] if lines else type(exc).__name__
        doing = what() if callable(what) else what
        raise BackendError(f"{label}: {doing} failed: {type(exc).__name__}: {first}") from exc


# ---------------------------------------------------------------- names


def short_hash(text: str, n: int = 8) -> str:
    """The first ``n`` hex digits of the SHA-1 of ``text``: the one short digest that keeps mapped
    names distinct (key rule, sink keys, W&B project names, MLflow artifact names)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def safe_name(name: str, *, keep: str = "-_.", limit: int = 100) -> str:
    """``name`` as one path component: characters other than letters, digits and ``keep``
    become ``_``, leading/trailing dots go, at most ``limit`` characters; never empty."""
    out = "".join(c if c.isalnum() or c in keep else "_" for c in name).strip(".")
    return out[:limit] or "_"


# ---------------------------------------------------------------- the key rule

def map_key(key: str, *, allowed: str, max_length: int | None, separator_rules: bool = True) -> str:
    """The one deterministic, collision-free mapping of a key a backend cannot hold.

    ``allowed`` is a regular-expression character class body (e.g. ``/\\w.\\- :``).
    A key that is already valid is returned unchanged. Otherwise every character
    outside ``allowed`` becomes ``_``, empty path segments, ``.``/``..`` segments
    and leading/trailing ``/`` are removed and a leading ``..`` gets a ``_`` in front
    (``separator_rules``), the result is cut
    to leave room, and ``-h`` plus the first 8 hex digits of the SHA-1 of the
    *original* key is appended: two different keys never map to the same one
    (barring a SHA-1 prefix collision) and the same key always maps the same way.
    """
    import re

    bad = re.compile(f"[^{allowed}]")

    def valid(k: str) -> bool:
        if not k or bad.search(k):
            return False
        if max_length is not None and len(k) > max_length:
            return False
        if separator_rules:
            if k.startswith("/") or k.endswith("/"):
                return False
            if any(seg in ("", ".", "..") for seg in k.split("/")):
                return False
            if k.startswith(".."):  # MLflow (posixpath.normpath) reads "..x" as a parent reference
                return False
        return True

    if valid(key):
        return key
    body = bad.sub("_", key)
    if separator_rules:
        body = "/".join(seg for seg in body.split("/") if seg not in ("", ".", ".."))
        if body.startswith(".."):
            body = "_" + body
    suffix = "-h" + short_hash(key)
    if max_length is not None:
        body = body[: max_length - len(suffix)].rstrip("/")
    return (body or "key") + suffix


def shorten(value: str, limit: int) -> str:
    """The one documented shortening of values a backend cannot hold whole: keep the head,
    append ``…[sha256:<8 hex of the full value>]``, so the result is exactly ``limit``
    characters and two different long values stay distinct."""
    if len(value) <= limit:
        return value
    tail = "…[sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8] + "]"
    return value[: limit - len(tail)] + tail


# ---------------------------------------------------------------- media payloads a reader found

_PAYLOAD_DIR: list[str] = []


def payload_file(data: bytes, ext: str) -> tuple[str, str]:
    """Keep media bytes a Reader found inside a backend's storage (an image in a TensorBoard event
    file) as a file, for ``Media.path``: ``(path, sha256)``. Content-addressed, in one temporary
    directory per process (removed at exit), so reading a run twice writes nothing twice."""
    import atexit
    import os
    import shutil
    import tempfile

    if not _PAYLOAD_DIR:
        d = tempfile.mkdtemp(prefix="trackkit-read-")
        atexit.register(shutil.rmtree, d, True)
        _PAYLOAD_DIR.append(d)
    sha = hashlib.sha256(data).hexdigest()
    path = os.path.join(_PAYLOAD_DIR[0], f"{sha}.{ext}")
    if not os.path.exists(path):
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    return path, sha


def image_meta(data: bytes) -> dict[str, int | str]:
    """``format``, ``width``, ``height`` and ``channels`` (as PIL counts its bands: palette and GIF 1)
    of PNG, GIF or JPEG bytes, read from the header ({} when unknown), so an adapter fills
    ``Media.meta`` without an image library."""
    import struct

    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 26:
        w, h = struct.unpack(">II", data[16:24])
        out: dict[str, int | str] = {"format": "png", "width": w, "height": h}
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(data[25])
        if channels:
            out["channels"] = channels
        return out
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return {"format": "gif", "width": w, "height": h, "channels": 1}
    if data[:3] == b"\xff\xd8\xff":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2:i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return {"format": "jpeg", "width": w, "height": h, "channels": int(data[i + 9])}
            i += 2 + length
    return {}


class ConsoleFile:
    """The run's console as one text file a backend stores whole (W&B's ``output.log``, MLflow's
    ``console.log`` artifact): ``add(Console)`` appends its lines once, however often a batch is sent
    again (a chunk whose first line number the file already has is skipped)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines = 0
        self.dirty = False
        try:
            with open(path, "rb") as fh:
                self.lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        except OSError:
            pass

    def add(self, ev: Console) -> bool:
        """True when the file grew."""
        if 0 <= ev.line < self.lines or not ev.text:
            return False
        with open(self.path, "a", encoding="utf-8", errors="replace") as fh:
            fh.write(ev.text if ev.text.endswith("\n") else ev.text + "\n")
        self.lines = (ev.line if ev.line >= 0 else self.lines) + ev.text.count("\n") + (not ev.text.endswith("\n"))
        self.dirty = True
        return True
