"""Backend strings -> adapters, by name only (the core never imports an adapter).

Grammar (one string works as a kwarg, in ``TRACKKIT_BACKEND`` and in trackkit.toml)::

    tensorboard[:DIR]                 default DIR ./runs
    wandb[:PROJECT][?entity=E&group=G&mode=offline|online]
    mlflow:PATH.db | mlflow:sqlite:///ABS.db      a local sqlite store
    mlflow://HOST:PORT                             a tracking server over http
    mlflow+https://HOST[/PATH]                     a tracking server over https
    memory[:NAME]                                  in-process, for tests
    SCHEME:...                                     a plug-in (entry point group ``trackkit.backends``)

Several at once: a list, or one string joined with ``,`` or ``;`` (``TRACKKIT_BACKEND``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .backend import BackendSpec
from .errors import BackendNotFound, ConfigError, MissingDependency

__all__ = [
    "BackendEntry", "display_backend", "known_schemes", "load_reader", "load_sink", "parse_backend", "parse_backends",
    "register", "sink_class",
]


@dataclass(frozen=True)
class BackendEntry:
    scheme: str
    sink: str
    reader: str | None = None
    #: top-level module of the SDK; checked (not imported) at init
    sdk: str | None = None
    #: the extra that installs the SDK
    extra: str | None = None
    #: location is a filesystem path, made absolute at init
    local_path: bool = False
    default_location: str = ""
    #: sink state lives in the trainer's process (forces the thread agent)
    in_process: bool = False
    #: ``"module:function"`` checking a location cheaply at init (no SDK import): raises ``ConfigError``
    check: str | None = None


_BUILTIN: dict[str, BackendEntry] = {
    "memory": BackendEntry(
        "memory", "trackkit.backends.memory:MemorySink", "trackkit.backends.memory:MemoryReader", in_process=True
    ),
    "tensorboard": BackendEntry(
        "tensorboard",
        "trackkit.backends.tensorboard:TensorBoardSink",
        "trackkit.backends.tensorboard:TensorBoardReader",
        sdk="tensorboard",
        extra="tensorboard",
        local_path=True,
        default_location="./runs",
        check="trackkit.backends.tensorboard:check_location",
    ),
    "wandb": BackendEntry(
        "wandb",
        "trackkit.backends.wandb:WandbSink",
        "trackkit.backends.wandb:WandbReader",
        sdk="wandb",
        extra="wandb",
        default_location="",
    ),
    "mlflow": BackendEntry(
        "mlflow",
        "trackkit.backends.mlflow:MlflowSink",
        "trackkit.backends.mlflow:MlflowReader",
        sdk="mlflow",
        extra="mlflow",
        default_location="./mlflow.db",
        check="trackkit.backends.mlflow.connection:check_location",
    ),
}
_PLUGINS: dict[str, BackendEntry] = {}
_entry_points_loaded = False


def register(entry: BackendEntry) -> None:
    """Register a backend at run time (entry points do the same from packaging metadata)."""
    _PLUGINS[entry.scheme] = entry


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="trackkit.backends"):
        if ep.name in _BUILTIN or ep.name in _PLUGINS:
            continue
        try:
            cls = ep.load()
        except Exception:  # a broken plug-in must not break the known backends
            continue
        _PLUGINS[ep.name] = BackendEntry(
            ep.name,
            ep.value,
            getattr(cls, "reader", None),
            sdk=getattr(cls, "sdk", None),
            extra=getattr(cls, "extra", None),
        )


def known_schemes() -> list[str]:
    _load_entry_points()
    return sorted({*_BUILTIN, *_PLUGINS})


def entry_for(scheme: str) -> BackendEntry:
    if scheme in _BUILTIN:
        return _BUILTIN[scheme]
    if scheme not in _PLUGINS:
        _load_entry_points()
    if scheme in _PLUGINS:
        return _PLUGINS[scheme]
    raise BackendNotFound(
        f"unknown backend {scheme!r}; known backends: {', '.join(known_schemes())}. "
        "Fix: use one of them (e.g. 'tensorboard:./runs') or install the plug-in that provides it."
    )


def parse_backend(text: str) -> BackendSpec:
    """Parse one backend string. Relative paths are made absolute against the cwd."""
    raw = text.strip()
    if not raw:
        raise ConfigError("backend: empty backend string. Fix: e.g. backend='tensorboard:./runs'")
    query = ""
    scheme, _, rest = raw.partition(":")
    transport = ""
    if "+" in scheme:
        scheme, _, transport = scheme.partition("+")
    scheme = scheme.lower()
    if "?" in rest:
        rest, _, query = rest.partition("?")
    entry = entry_for(scheme)
    options = dict(parse_qsl(query, keep_blank_values=True))
    if transport:
        if not rest.startswith("//"):
            raise ConfigError(f"backend {raw!r}: '{scheme}+{transport}:' must be followed by //HOST")
        location = f"{transport}:{rest}"
    elif rest.startswith("//") and not entry.local_path:
        location = f"http:{rest}"
    else:
        location = rest or entry.default_location
    if entry.local_path or (scheme == "mlflow" and "://" not in location):
        if scheme == "mlflow" and location.startswith("sqlite:"):
            pass
        elif location:
            location = os.path.abspath(os.path.expanduser(location))
    return BackendSpec(scheme=scheme, location=location, options=options, raw=raw)


def parse_backends(value: str | BackendSpec | Sequence[str | BackendSpec] | None) -> list[BackendSpec]:
    if value is None:
        return []
    if isinstance(value, BackendSpec):
        return [value]
    parts: list[str | BackendSpec]
    if isinstance(value, str):
        parts = list(parse_str_list(value))
    else:
        parts = [p for item in value for p in ([item] if isinstance(item, BackendSpec) else parse_str_list(item))]
    out = [p if isinstance(p, BackendSpec) else parse_backend(p) for p in parts]
    if not out:
        raise ConfigError("backend: no backend given. Fix: e.g. backend='tensorboard:./runs'")
    return out


def parse_str_list(value: str) -> list[str]:
    """Split ``"a:x,b:y;c"`` into backend strings."""
    return [p for chunk in value.split(";") for p in _split_commas(chunk)]


def _split_commas(chunk: str) -> list[str]:
    # a comma separates backends unless it is inside a query string value
    out: list[str] = []
    for piece in chunk.split(","):
        if out and "=" in piece and ":" not in piece.split("=", 1)[0]:
            out[-1] += "," + piece
        else:
            out.append(piece)
    return [p.strip() for p in out if p.strip()]


def check_available(spec: BackendSpec) -> None:
    """Raise ``MissingDependency`` when the backend's SDK is not installed (without importing it), and
    ``ConfigError`` when the adapter's cheap check finds the location unusable (a directory where MLflow
    needs a database file): a setup error at init, not a failure in the agent later."""
    entry = entry_for(spec.scheme)
    if entry.sdk and importlib.util.find_spec(entry.sdk) is None:
        raise MissingDependency(
            f"backend {spec.scheme!r} needs the {entry.sdk!r} package. "
            f"Fix: pip install 'trackkit[{entry.extra or entry.sdk}]'"
        )
    if entry.check:
        _load(entry.check, spec)(spec)


def _load(target: str, spec: BackendSpec) -> Any:
    module, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        entry = entry_for(spec.scheme)
        raise MissingDependency(
            f"backend {spec.scheme!r} could not be loaded ({exc}). "
            f"Fix: pip install 'trackkit[{entry.extra or spec.scheme}]'"
        ) from exc
    return getattr(mod, attr)


def load_sink(spec: BackendSpec) -> Any:
    return _load(entry_for(spec.scheme).sink, spec)(spec)


#: called with the spec before a Reader is made: ``delivering.wait_for`` (registered when a run of this
#: process finished without waiting for its delivery) waits for that delivery, so the process that
#: wrote a run reads it back whole
BEFORE_READ: list[Callable[[BackendSpec], None]] = []


def load_reader(spec: BackendSpec, *, must_exist: bool = True) -> Any:
    """The backend's Reader. Reading never creates a store: a missing one is a ``ConfigError`` naming the
    path and the fix; with ``must_exist=False`` (a migration target, created by its sink) it reads as
    empty until it exists. A plug-in Reader without a ``must_exist`` keyword is called with the spec."""
    for hook in list(BEFORE_READ):
        hook(spec)
    entry = entry_for(spec.scheme)
    if not entry.reader:
        raise BackendNotFound(f"backend {spec.scheme!r} has no reader; it cannot be queried or migrated from")
    cls = _load(entry.reader, spec)
    try:
        takes = "must_exist" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        takes = False
    return cls(spec, must_exist=must_exist) if takes else cls(spec)


def strip_credentials(spec: BackendSpec) -> str:
    """The backend string without ``user:pass@`` (what may be written to disk)."""
    loc = spec.location
    if "://" in loc:
        parts = urlsplit(loc)
        if parts.username or parts.password:
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            loc = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    opts = {k: ("***" if any(s in k.lower() for s in ("key", "token", "password", "secret")) else v)
            for k, v in spec.options.items()}
    q = "&".join(f"{k}={v}" for k, v in sorted(opts.items()))
    return f"{spec.scheme}:{loc}" + (f"?{q}" if q else "")


def display_backend(spec: BackendSpec) -> str:
    """The backend string to show a user: :func:`strip_credentials`, in the form it is written
    (``mlflow://HOST:PORT``, ``mlflow+https://HOST``; not ``mlflow:http://HOST:PORT``)."""
    text = strip_credentials(spec)
    for transport, written in (("http", f"{spec.scheme}:"), ("https", f"{spec.scheme}+https:")):
        head = f"{spec.scheme}:{transport}://"
        if text.startswith(head):
            return written + text[len(head) - 2 :]
    return text


def sink_class(spec: BackendSpec) -> Any:
    """The Sink class of a backend (adapter modules import their SDK lazily: this imports none)."""
    return _load(entry_for(spec.scheme).sink, spec)


def load_native(spec: BackendSpec, run: Any) -> Any:
    """The SDK's own run object (``Run.native``): adapters expose ``SinkClass.native(spec, run_id, project, name)``."""
    cls = _load(entry_for(spec.scheme).sink, spec)
    fn = getattr(cls, "native", None)
    if fn is None:
        raise BackendNotFound(f"backend {spec.scheme!r} offers no native object")
    return fn(spec, run.id, run.project, run.name)
