"""One MLflow connection: the tracking URI (credentials kept in it), the HTTP options of this
connection, the client, the lock around a new sqlite store, and the translation of SDK errors."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ...backend import BackendSpec, sdk_errors, short_hash
from ...errors import ConfigError, MissingDependency
from .names import T_RUN_ID, safe_segment

#: default HTTP behaviour of a connection: fail fast, the agent retries
DEFAULT_HTTP_TIMEOUT_S = 15
DEFAULT_HTTP_RETRIES = 0


def strip_credentials(text: str) -> str:
    """``text`` without the ``user:password@`` of any URL in it."""
    return re.sub(r"//[^/@\s]*@", "//", text)


@dataclass(frozen=True)
class HttpOptions:
    """The HTTP settings of one connection to a tracking server (``?timeout=15&retries=0``), passed
    with each of its requests: two connections in one process keep their own."""

    #: seconds per HTTP request (connect and read)
    timeout: int = DEFAULT_HTTP_TIMEOUT_S
    #: MLflow's retries of a failed request (connection errors, timeouts, 429/5xx)
    retries: int = DEFAULT_HTTP_RETRIES

    @classmethod
    def of(cls, spec: BackendSpec) -> HttpOptions:
        values = {}
        for name, default in (("timeout", DEFAULT_HTTP_TIMEOUT_S), ("retries", DEFAULT_HTTP_RETRIES)):
            text = spec.options.get(name, default)
            try:
                values[name] = int(text)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"backend {strip_credentials(str(spec))!r}: option {name}={text!r} is not a whole number. "
                    f"Fix: e.g. ?{name}={default}"
                ) from None
        return cls(**values)


@dataclass(frozen=True)
class _Location:
    uri: str
    remote: bool = False
    #: where a sqlite store's experiments keep their artifacts
    artifact_base: str | None = None
    #: the sqlite store's file (None for a server)
    path: str | None = None


def check_location(spec: BackendSpec) -> None:
    """At init (no mlflow import): a directory where a database file belongs is a setup error."""
    _locate(spec)


def store_path(spec: BackendSpec) -> str | None:
    """The sqlite store's file of a local location, None for a server; ``ConfigError`` for a directory."""
    return _locate(spec).path


def missing_store(spec: BackendSpec, path: str) -> ConfigError:
    """What a reader says about a sqlite store that does not exist (reading never creates one)."""
    return ConfigError(
        f"backend {strip_credentials(str(spec))!r}: no MLflow store at {path} (no such file); reading never "
        "creates one. Fix: give the path of an existing store (the file the runs logged to, e.g. mlflow:./mlflow.db)"
    )


_SQLITE_HEADER = b"SQLite format 3\x00"


def _schema_revisions() -> tuple[set[str], str | None]:
    """The schema revisions the installed mlflow knows and its head (from its migration scripts, read
    as text: no alembic import)."""
    import mlflow.store.db_migrations as migrations

    folder = os.path.join(os.path.dirname(migrations.__file__), "versions")
    revs: set[str] = set()
    downs: set[str] = set()
    for name in os.listdir(folder):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as fh:
            text = fh.read()
        rev = re.search(r"^revision\s*=\s*['\"]([0-9a-f]+)['\"]", text, re.M)
        down = re.search(r"^down_revision\s*=\s*['\"]([0-9a-f]+)['\"]", text, re.M)
        if rev:
            revs.add(rev.group(1))
        if down:
            downs.add(down.group(1))
    heads = revs - downs
    return revs, (next(iter(heads)) if len(heads) == 1 else None)


def check_store(spec: BackendSpec, path: str) -> None:
    """A sqlite file that is not an MLflow store the installed mlflow can open raises ``ConfigError``: one
    line naming the file, the problem and the fix (not a sqlite database, no MLflow tables, a schema of
    a newer or an older MLflow). An empty file passes (MLflow makes its tables in it)."""
    import sqlite3
    from urllib.parse import quote

    import mlflow

    where = f"backend {strip_credentials(str(spec))!r}: {path}"
    fix_path = "Fix: give the file your runs logged to (mlflow:./mlflow.db), or a server (mlflow://HOST:PORT)"
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read ({exc.strerror}). Fix: check its permissions") from None
    if not head:
        return
    if head != _SQLITE_HEADER:
        raise ConfigError(f"{where} is not an MLflow store: not a sqlite database. {fix_path}")
    try:
        db = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            rev = None
            if "alembic_version" in tables:
                row = db.execute("SELECT version_num FROM alembic_version").fetchone()
                rev = str(row[0]) if row else None
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{where} cannot be read as a sqlite database ({exc}). {fix_path}") from None
    if not tables:
        return  # an empty database: MLflow makes its tables (a reader finds no runs)
    if "runs" not in tables or rev is None:
        raise ConfigError(
            f"{where} is a sqlite database but not an MLflow store (no MLflow tables: runs, alembic_version). "
            f"{fix_path}"
        )
    known, latest = _schema_revisions()
    if rev not in known:
        raise ConfigError(
            f"{where} is an MLflow store of a newer schema (revision {rev}) than the installed mlflow "
            f"{mlflow.__version__} knows. Fix: pip install -U mlflow (the version that wrote it, or newer)"
        )
    if latest is not None and rev != latest:
        raise ConfigError(
            f"{where} is an MLflow store of an older schema (revision {rev}; mlflow {mlflow.__version__} "
            f"reads {latest}). Fix: back it up, then run: mlflow db upgrade sqlite:///{os.path.abspath(path)}"
        )


def _not_a_directory(spec: BackendSpec, path: str) -> ConfigError:
    what = "is a directory" if os.path.isdir(path) else "names a directory (it ends with '/')"
    return ConfigError(
        f"backend {strip_credentials(str(spec))!r}: {path} {what}; MLflow needs a database file there "
        f"(the ./mlruns file store is deprecated). Fix: name a file in it, e.g. "
        f"mlflow:{os.path.join(path, 'mlflow.db')}"
    )


def _locate(spec: BackendSpec) -> _Location:
    loc = (spec.location or "./mlflow.db").strip()
    if re.match(r"^https?://", loc, re.I):
        parts = urlsplit(loc)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        # credentials stay in this connection's URI (requests sends them as basic auth to this
        # host only), never in the process environment, where MLflow would send them to every
        # server a process talks to (two MLflow backends in one agent, a reader beside a sink)
        if parts.username is not None:
            netloc = f"{parts.username}:{parts.password or ''}@{netloc}"
        return _Location(urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", "")), remote=True)
    # mlflow:./dir/ (made absolute, so without its slash) means a directory as much as an existing one does
    said = (spec.raw or loc).partition("?")[0].rstrip()
    if loc.startswith("sqlite:"):
        path = loc[len("sqlite:///") :] if loc.startswith("sqlite:///") else ""
        if path and (os.path.isdir(path) or said.endswith(("/", os.sep))):
            raise _not_a_directory(spec, os.path.abspath(path))
        base = os.path.join(os.path.dirname(os.path.abspath(path)), "mlartifacts") if path else None
        return _Location(loc, artifact_base=base, path=path or None)
    if "://" in loc:
        raise ConfigError(
            f"backend {strip_credentials(str(spec))!r}: unsupported MLflow location {strip_credentials(loc)!r}. "
            "Fix: use mlflow:./mlflow.db, mlflow:sqlite:///ABS.db, mlflow://HOST:PORT or mlflow+https://HOST"
        )
    path = os.path.abspath(os.path.expanduser(loc))
    if os.path.isdir(path) or said.endswith(("/", os.sep)):
        raise _not_a_directory(spec, path)
    return _Location("sqlite:///" + path, artifact_base=os.path.join(os.path.dirname(path), "mlartifacts"), path=path)


class Connection:
    """A resolved tracking URI and its client (``mlflow.tracking.MlflowClient``)."""

    def __init__(self, spec: BackendSpec, *, read_only: bool = False) -> None:
        """``read_only`` (a reader): a sqlite store is opened read-only and never created, initialised,
        migrated or locked (``missing_store`` when its file does not exist); a sink creates its store."""
        self.spec = spec
        where = _locate(spec)
        self.uri, self.remote, self.artifact_base = where.uri, where.remote, where.artifact_base
        #: ``?timeout=&retries=`` of a server (a sqlite store has no HTTP)
        self.http = HttpOptions.of(spec) if self.remote else HttpOptions()
        self.display = strip_credentials(self.uri)
        self.label = f"mlflow ({self.display})"
        # process-wide privacy and quiet defaults, the same for every connection (not options of one)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise MissingDependency(
                f"backend 'mlflow' needs the 'mlflow' package ({exc}). Fix: pip install 'trackkit[mlflow]'"
            ) from exc
        if self.remote:
            from .transport import ConnectionClient

            # MLflow prints "View run ... at: <tracking URI>" on stdout (agent.log, the trainer's
            # terminal): with a password in the URI, this client does not
            self.client: Any = ConnectionClient(
                self.uri, timeout=self.http.timeout, retries=self.http.retries, quiet=self.uri != self.display
            )
        elif where.path is not None and read_only:
            self.client = self._open_read_only(where.path, MlflowClient)
        elif where.path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(where.path)), exist_ok=True)
            self.client = self._init_sqlite_store(where.path, MlflowClient)
        else:
            self.client = MlflowClient(tracking_uri=self.uri)

    def _init_sqlite_store(self, path: str, client_cls: Any) -> Any:
        """Create / migrate a sqlite store under an exclusive file lock.

        MLflow creates and migrates the schema on first use; two processes doing it at
        once (the agent and ``run.native``, parallel sweeps, DDP ranks) corrupt the store
        for good ("table ... already exists"). The lock serialises the first touch."""
        fd = lock_beside(path)
        try:
            if os.path.isfile(path):
                check_store(self.spec, path)
            with self.errors("open"):
                client = client_cls(tracking_uri=self.uri)
            client.search_experiments(max_results=1)
            return client
        finally:
            unlock_beside(path, fd)

    def _open_read_only(self, path: str, client_cls: Any) -> Any:
        """A client on an existing store that writes nothing to it: ``SqliteReadClient`` (the standard
        library's ``sqlite3`` on the file opened read-only), which hands what it does not read itself to
        MLflow's own client on sqlite's read-only URI (made on first use).

        ``sqlite+pysqlite:``, not ``sqlite:``: for the latter MLflow makes the "parent directory" of
        ``file:/...`` under the cwd. The path is quoted twice: SQLAlchemy unquotes the URL once, sqlite
        the ``file:`` URI once more (a ``#`` or ``?`` left bare would end the path and drop ``mode=ro``)."""
        if not os.path.isfile(path):
            raise missing_store(self.spec, path)
        check_store(self.spec, path)
        from .sqlite_read import SqliteReadClient

        with self.errors("open (read-only)"):
            client = SqliteReadClient(path, lambda: self._real_read_only(path, client_cls))
        return client if client.usable else client.real

    def _real_read_only(self, path: str, client_cls: Any) -> Any:
        """MLflow's own client on the store, read-only (what ``SqliteReadClient`` hands the rest to)."""
        name = quote(quote(os.path.abspath(path), safe="/"), safe="/")
        with self.errors("open (read-only)"):
            client = client_cls(tracking_uri=f"sqlite+pysqlite:///file:{name}?mode=ro&uri=true")
            client.search_experiments(max_results=1)
        return client

    @property
    def name(self) -> str:
        return strip_credentials(self.spec.raw) if self.spec.raw else f"mlflow:{self.display}"

    def errors(self, what: str | Callable[[], str]) -> contextlib.AbstractContextManager[None]:
        """SDK errors inside become ``BackendError("mlflow (<uri>): <what> failed: ...")``, credentials removed."""
        return sdk_errors(self.label, what, scrub=strip_credentials)

    def experiment_id(self, name: str, *, create: bool) -> str | None:
        from mlflow.exceptions import MlflowException

        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is None:
            if not create:
                return None
            location = None
            if self.artifact_base:
                location = Path(self.artifact_base, f"{safe_segment(name)[:60]}-{short_hash(name)}").as_uri()
            try:
                return str(client.create_experiment(name, artifact_location=location))
            except MlflowException:  # created concurrently: use theirs
                exp = client.get_experiment_by_name(name)
                if exp is None:
                    raise
        if create and getattr(exp, "lifecycle_stage", "active") == "deleted":
            client.restore_experiment(exp.experiment_id)
        return str(exp.experiment_id)

    def all_experiments(self) -> dict[str, str]:
        """experiment id -> name, for every active experiment."""
        return {str(exp.experiment_id): exp.name for exp in pages(self.client.search_experiments, max_results=1000)}

    def find_run(self, experiment_ids: Sequence[str], run_id: str) -> Any | None:
        if not experiment_ids:
            return None
        quote = "'" if "'" not in run_id else '"'
        runs = self.client.search_runs(
            list(experiment_ids), filter_string=f"tags.`{T_RUN_ID}` = {quote}{run_id}{quote}", max_results=10
        )
        return runs[0] if runs else None


def pages(search: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
    """Every item of an MLflow search, following its page tokens to the end."""
    token = None
    while True:
        page = search(*args, page_token=token, **kwargs)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def lock_beside(path: str) -> int:
    """An exclusive ``flock`` on ``PATH.trackkit-lock`` (created); the fd, for ``unlock_beside``.

    The holder removes the file when it is done (``unlock_beside``), so no lock file is left beside the
    store. That is safe only because every taker checks, once it holds the lock, that the file it
    locked is still the one at the path: a process that opened the file before the holder removed it
    gets the lock on a file no one else will ever open, sees that the path names another file (or
    none), and takes the lock again on the path's file. Without that check, a waiter on the removed
    file and a newcomer on a new one would both hold "the lock"."""
    import fcntl

    lock = path + ".trackkit-lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(lock)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_ino, now.st_dev) == (held.st_ino, held.st_dev):
            return fd
        os.close(fd)  # the holder before removed the file this fd locked: lock the one there now


def unlock_beside(path: str, fd: int) -> None:
    """Remove the lock file while still holding it (see ``lock_beside``), then release it. Only the file
    this fd locked is removed (one put there after it was removed by hand is another taker's)."""
    lock = path + ".trackkit-lock"
    try:
        held, now = os.fstat(fd), os.stat(lock)
        if (now.st_ino, now.st_dev) == (held.st_ino, held.st_dev):
            os.unlink(lock)
    except OSError:  # gone already, or a directory that does not allow it: the lock still ends
        pass
    finally:
        os.close(fd)
