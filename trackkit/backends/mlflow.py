"""MLflow adapter: ``mlflow:./mlflow.db``, ``mlflow:sqlite:///ABS.db``, ``mlflow://HOST:PORT``, ``mlflow+https://HOST``.

Both classes talk to MLflow only through ``mlflow.tracking.MlflowClient`` (never
the fluent, process-global API). The sink runs in trackkit's delivery agent, so
blocking is acceptable but bounded: HTTP calls are made with no SDK retries and a
short timeout (the agent retries with backoff itself).

How the neutral model lands in MLflow (see ``docs/backends/mlflow.md``):

==================  ==============================================================
RunStarted          experiment = project (get or create); run name = name; tag
                    ``trackkit.run_id`` (the resume key); group -> tag
                    ``trackkit.group``; config -> params (flattened, keys mapped,
                    values shortened) + ``config.json`` artifact; meta ->
                    ``trackkit_meta.json`` artifact + scalar tags ``trackkit.<key>``
Metrics             ``log_batch`` (<= 1000 metrics a request), ±inf -> clamped by
                    MLflow, key remembered in a ``trackkit.inf.*`` tag
ConfigUpdate        params + ``trackkit/config_updates/<ms>-<sha>.json``
Tags                run tags (keys mapped)
Artifact            ``<kind>/<name>/v<version>/`` + ``trackkit/artifacts/...json``
StatusChange        tags ``trackkit.status``/``reason``/``status_step``/``status_change``
RunFinished         ``set_terminated`` FINISHED | FAILED | KILLED + the same tags
RunResumed          the same run (found by ``trackkit.run_id``) back to RUNNING, tag
                    ``trackkit.resumed`` + ``trackkit/resumes/<ms>-<segment>.json``
==================  ==============================================================
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ..backend import BackendSpec, Capabilities, map_key, shorten
from ..errors import BackendError, ConfigError, MissingDependency, TrackkitError
from ..events import (
    Artifact,
    ConfigUpdate,
    Event,
    Metrics,
    RunFinished,
    RunInfo,
    RunRecord,
    RunResumed,
    RunStarted,
    Status,
    StatusChange,
    Tags,
    event_from_record,
    event_to_record,
    flatten_config,
)

__all__ = [
    "KEY_CHARS",
    "MAX_KEY_LENGTH",
    "MAX_PARAM_LENGTH",
    "MAX_TAG_LENGTH",
    "MlflowReader",
    "MlflowSink",
    "mlflow_key",
    "shorten",
]

_log = logging.getLogger(__name__)

#: MLflow's key alphabet (POSIX): ``^[/\w.\- :]*$``
KEY_CHARS = r"/\w.\- :"
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
#: ``log_batch`` limits per request
BATCH_METRICS = 1000
BATCH_PARAMS = 100
BATCH_TAGS = 100
BATCH_ENTITIES = 1000
#: stay well below MLflow's 1 MB request limit
BATCH_BYTES = 800_000
#: MLflow clamps ±inf to ±sys.float_info.max
_FMAX = 1.7976931348623157e308

#: default HTTP behaviour of the sink: fail fast, the agent retries
DEFAULT_HTTP_TIMEOUT_S = 15
DEFAULT_HTTP_RETRIES = 0

# ---- internal tag names (all under the ``trackkit.`` prefix, hidden from user tags by the reader)
T_RUN_ID = "trackkit.run_id"
T_GROUP = "trackkit.group"
T_STATUS = "trackkit.status"
T_REASON = "trackkit.reason"
T_STATUS_STEP = "trackkit.status_step"
T_STATUS_CHANGE = "trackkit.status_change"
T_EXIT_CODE = "trackkit.exit_code"
T_START_TAGS = "trackkit.start_tags"
T_RESUMED = "trackkit.resumed"
T_KEY = "trackkit.key."  # + sha1(original)[:16] -> original key
T_INF = "trackkit.inf."  # + sha1(mapped)[:16] -> mapped metric key that had ±inf
_RESERVED = {
    T_RUN_ID,
    T_GROUP,
    T_STATUS,
    T_REASON,
    T_STATUS_STEP,
    T_STATUS_CHANGE,
    T_EXIT_CODE,
    T_START_TAGS,
    T_RESUMED,
}
A_CONFIG = "config.json"
A_META = "trackkit_meta.json"
A_CONFIG_UPDATES = "trackkit/config_updates"
A_ARTIFACTS = "trackkit/artifacts"
A_RESUMES = "trackkit/resumes"

_TO_MLFLOW = {
    Status.RUNNING: "RUNNING",
    Status.COMPLETED: "FINISHED",
    Status.DIVERGED: "FAILED",
    Status.CRASHED: "FAILED",
    Status.KILLED: "KILLED",
}
_FROM_MLFLOW = {
    "RUNNING": Status.RUNNING,
    "SCHEDULED": Status.RUNNING,
    "FINISHED": Status.COMPLETED,
    "FAILED": Status.CRASHED,
    "KILLED": Status.KILLED,
}


# ---------------------------------------------------------------- rules


def mlflow_key(key: str) -> str:
    """The key MLflow stores for ``key`` (the one key rule of ``backend.map_key``)."""
    return map_key(key, allowed=KEY_CHARS, max_length=MAX_KEY_LENGTH)


def _sha(text: str, n: int = 16) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def _value_str(value: Any) -> str:
    """Param/tag value: strings as they are, everything else as JSON (``true``, ``null``, ``[1, 2]``)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _value_back(text: str) -> Any:
    """Inverse of :func:`_value_str` where it can tell (used only when config.json is missing)."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def _json(obj: Any) -> str:
    text = json.dumps(obj, default=str, ensure_ascii=False, indent=2)
    return text if _encodable(text) else json.dumps(obj, default=str, ensure_ascii=True, indent=2)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from a filename, a bad decode): no store takes them
        return False
    return True


def _storable(text: str) -> str:
    """``text``, or its JSON form (ASCII, quoted) when it holds lone surrogates, which MLflow's stores
    cannot encode: one such value would fail the whole batch on every retry."""
    return text if _encodable(text) else json.dumps(text)


def _unstorable(text: str) -> str:
    """Inverse of :func:`_storable`."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            back = json.loads(text)
        except ValueError:
            return text
        if isinstance(back, str) and not _encodable(back):
            return back
    return text


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        ok = all(parts)
        if ok:
            for p in parts[:-1]:
                nxt = node.setdefault(p, {})
                if not isinstance(nxt, dict):
                    ok = False
                    break
                node = nxt
        if ok and not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = value
        else:  # cannot nest without clobbering: keep it flat
            out[key] = value
    return out


_SEGMENT_BAD = re.compile(r"[^\w.\- ]")


def _safe_segment(text: str) -> str:
    seg = _SEGMENT_BAD.sub("_", text).strip()
    return "_" if seg in ("", ".", "..") else seg


def _artifact_dir(ev: Artifact) -> str:
    kind = "/".join(_safe_segment(s) for s in (ev.kind or "artifact").split("/") if s)
    name = "/".join(_safe_segment(s) for s in (ev.name or "artifact").split("/") if s)
    return f"{kind or 'artifact'}/{name or 'artifact'}/v{int(ev.version)}"


def _strip_credentials(text: str) -> str:
    return re.sub(r"//[^/@\s]*@", "//", text)


# ---------------------------------------------------------------- connection


class _Conn:
    """A resolved tracking URI and its client."""

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        loc = (spec.location or "./mlflow.db").strip()
        self.remote = False
        self.artifact_base: str | None = None
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
                # MLflow prints "View run ... at: <tracking URI>" on stdout (agent.log, the trainer's
                # terminal): with the password in it, it must not
                os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
            self.uri = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
            self.remote = True
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(int(spec.options.get("retries", DEFAULT_HTTP_RETRIES)))
            os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(spec.options.get("timeout", DEFAULT_HTTP_TIMEOUT_S)))
        elif loc.startswith("sqlite:"):
            self.uri = loc
            path = loc[len("sqlite:///") :] if loc.startswith("sqlite:///") else ""
            if path:
                self.artifact_base = os.path.join(os.path.dirname(os.path.abspath(path)), "mlartifacts")
        elif "://" in loc:
            raise ConfigError(
                f"backend {_strip_credentials(str(spec))!r}: unsupported MLflow location {_strip_credentials(loc)!r}. "
                "Fix: use mlflow:./mlflow.db, mlflow:sqlite:///ABS.db, mlflow://HOST:PORT or mlflow+https://HOST"
            )
        else:
            path = os.path.abspath(os.path.expanduser(loc))
            if os.path.isdir(path):
                raise ConfigError(
                    f"backend {str(spec)!r}: {path} is a directory; MLflow 3 needs a database file "
                    "(the ./mlruns file store is deprecated). Fix: e.g. mlflow:./mlflow.db"
                )
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.uri = "sqlite:///" + path
            self.artifact_base = os.path.join(os.path.dirname(path), "mlartifacts")
        self.display = _strip_credentials(self.uri)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise MissingDependency(
                f"backend 'mlflow' needs the 'mlflow' package ({exc}). Fix: pip install 'trackkit[mlflow]'"
            ) from exc
        if self.uri.startswith("sqlite:///"):
            self.client: Any = self._init_sqlite_store(self.uri[len("sqlite:///") :], MlflowClient)
        else:
            self.client = MlflowClient(tracking_uri=self.uri)

    def _init_sqlite_store(self, path: str, client_cls: Any) -> Any:
        """Create / migrate a sqlite store under an exclusive file lock.

        MLflow creates and migrates the schema on first use; two processes doing it at
        once (the agent and ``run.native``, parallel sweeps, DDP ranks) corrupt the store
        for good ("table ... already exists"). The lock serialises the first touch."""
        import fcntl

        fd = os.open(path + ".trackkit-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            client = client_cls(tracking_uri=self.uri)
            client.search_experiments(max_results=1)
            return client
        finally:
            os.close(fd)

    @property
    def name(self) -> str:
        return _strip_credentials(self.spec.raw) if self.spec.raw else f"mlflow:{self.display}"

    def error(self, what: str, exc: BaseException) -> BackendError:
        msg = _strip_credentials(str(exc)).strip().splitlines()
        first = msg[0] if msg else type(exc).__name__
        return BackendError(f"mlflow ({self.display}): {what} failed: {type(exc).__name__}: {first[:500]}")

    def experiment_id(self, name: str, *, create: bool) -> str | None:
        from mlflow.exceptions import MlflowException

        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is None:
            if not create:
                return None
            location = None
            if self.artifact_base:
                slug = _safe_segment(name)[:60]
                location = Path(self.artifact_base, f"{slug}-{_sha(name, 8)}").as_uri()
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
        out: dict[str, str] = {}
        token = None
        while True:
            page = self.client.search_experiments(max_results=1000, page_token=token)
            for exp in page:
                out[str(exp.experiment_id)] = exp.name
            token = getattr(page, "token", None)
            if not token:
                return out

    def find_run(self, experiment_ids: Sequence[str], run_id: str) -> Any | None:
        if not experiment_ids:
            return None
        quote = "'" if "'" not in run_id else '"'
        runs = self.client.search_runs(
            list(experiment_ids), filter_string=f"tags.`{T_RUN_ID}` = {quote}{run_id}{quote}", max_results=10
        )
        return runs[0] if runs else None


# ---------------------------------------------------------------- sink


class MlflowSink:
    """Sends trackkit events to an MLflow tracking store, synchronously in ``emit``."""

    capabilities = Capabilities(
        max_key_length=MAX_KEY_LENGTH,
        restricted_key_chars=True,
        stores_inf=False,
        stores_nan=True,
        native_killed=True,
        max_param_length=MAX_PARAM_LENGTH,
        artifacts=True,
    )

    def __init__(self, spec: BackendSpec) -> None:
        self._conn = _Conn(spec)
        self.tracking_uri = self._conn.display
        #: the MLflow run id of the attached run
        self.mlflow_run_id: str | None = None
        self._mlflow_status = "RUNNING"
        # what the store is known to hold (skip re-sending; never re-log a param)
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        # pending for the next log_batch
        self._p_params: dict[str, str] = {}
        self._p_tags: dict[str, str] = {}
        self._p_metrics: list[Any] = []
        #: original key -> (MLflow key, name of its ``trackkit.key.*`` tag or None, that tag's value)
        self._keys: dict[str, tuple[str, str | None, str]] = {}
        #: the longest MLflow key in ``_keys``: bounds the size of any pending metric
        self._longest_key = 0
        from mlflow.entities import Metric

        self._metric_cls: Any = Metric

    @property
    def client(self) -> Any:
        return self._conn.client

    @classmethod
    def native(cls, spec: BackendSpec, run_id: str, project: str, name: str) -> tuple[Any, str]:
        """``Run.native("mlflow")``: ``(MlflowClient, mlflow_run_id)`` of the run with this trackkit id.

        Attaches to (or creates, tagged ``trackkit.run_id`` so the agent re-attaches to it) the
        run. This bypasses every trackkit guarantee: calls block, can raise, are not journaled."""
        import time

        sink = cls(spec)
        try:
            sink._attach(RunStarted(run_id=run_id, project=project, name=name, start_time=time.time()))
        except TrackkitError:
            raise
        except Exception as exc:
            raise sink._conn.error("native", exc) from exc
        assert sink.mlflow_run_id is not None
        return sink.client, sink.mlflow_run_id

    # ---- the seam

    def emit(self, batch: Sequence[Event]) -> None:
        what = "emit"
        try:
            for ev in batch:
                what = type(ev).__name__
                if isinstance(ev, RunStarted):
                    self._flush()
                    self._start(ev)
                    continue
                if self.mlflow_run_id is None:
                    raise BackendError(f"mlflow ({self.tracking_uri}): received {what} before RunStarted")
                if isinstance(ev, Metrics):
                    self._metrics(ev)
                elif isinstance(ev, ConfigUpdate):
                    self._config(ev.config)
                    self._upload_json(ev.config, self._update_name(ev))
                elif isinstance(ev, Tags):
                    for k, v in ev.tags.items():
                        self._tag(self._key(str(k)), _value_str(v))
                elif isinstance(ev, Artifact):
                    self._flush()
                    self._artifact(ev)
                elif isinstance(ev, StatusChange):
                    self._status_change(ev)
                elif isinstance(ev, RunFinished):
                    self._finish(ev)
                elif isinstance(ev, RunResumed):
                    self._resume(ev)
            what = "log_batch"
            self._flush()
        except TrackkitError:
            self._drop_pending()
            raise
        except Exception as exc:
            self._drop_pending()
            raise self._conn.error(what, exc) from exc

    def close(self) -> None:
        try:
            self._flush()
        except Exception as exc:
            self._drop_pending()
            raise self._conn.error("close", exc) from exc

    # ---- events

    def _attach(self, ev: RunStarted) -> bool:
        """Find the run tagged ``trackkit.run_id`` or create it; True when it already existed."""
        conn = self._conn
        exp_id = conn.experiment_id(ev.project or "Default", create=True)
        assert exp_id is not None
        run = conn.find_run([exp_id], ev.run_id)
        resumed = run is not None
        if run is not None:  # resume / redelivery: re-attach
            self.mlflow_run_id = run.info.run_id
            self._mlflow_status = run.info.status
            self._params = dict(run.data.params)
            self._tags = dict(run.data.tags)
        else:
            run = self.client.create_run(
                exp_id,
                start_time=int(ev.start_time * 1000),
                tags={T_RUN_ID: ev.run_id},
                run_name=ev.name or None,
            )
            self.mlflow_run_id = run.info.run_id
            self._mlflow_status = run.info.status
            self._params = {}
            self._tags = dict(run.data.tags)
        self._p_params, self._p_tags, self._p_metrics = {}, {}, []
        return resumed

    def _start(self, ev: RunStarted) -> None:
        resumed = self._attach(ev)
        if ev.group:
            self._tag(T_GROUP, ev.group)
        start_keys = []
        for k, v in ev.tags.items():
            start_keys.append(str(k))
            self._tag(self._key(str(k)), _value_str(v))
        start_list = json.dumps(sorted(start_keys), ensure_ascii=False)
        if len(start_list) <= MAX_TAG_LENGTH:
            self._tag(T_START_TAGS, start_list)
        for k, v in flatten_config(ev.meta).items():
            if v is None or isinstance(v, (str, int, float, bool)):
                name = f"trackkit.{k}"
                if name in _RESERVED or name.startswith((T_KEY, T_INF, "trackkit.meta.")):
                    name = f"trackkit.meta.{k}"
                self._tag(mlflow_key(name), _value_str(v))
        self._config(ev.config)
        self._flush()
        if ev.config or not resumed:
            self._upload_json(ev.config, A_CONFIG)
        if ev.meta or not resumed:
            self._upload_json(ev.meta, A_META)

    def _metrics(self, ev: Metrics) -> None:
        # the hot path of delivery: per point one dict lookup for the key, no re-validation
        ts = int(ev.time * 1000)
        step = int(ev.step)
        metric = self._metric_cls
        keys = self._keys
        pending = self._p_metrics
        isinf = math.isinf
        for k, v in ev.values.items():
            entry = keys.get(k) if type(k) is str else None
            if entry is None:
                k = str(k)
                entry = keys.get(k) or self._key_entry(k)
            key, key_tag, key_tag_value = entry
            if key_tag is not None:  # a mapped key: remember the original (as _key does)
                self._tag_value(key_tag, key_tag_value)
            value = v if type(v) is float else float(v)
            if isinf(value):
                self._tag(T_INF + _sha(key), key)
            pending.append(metric(key, value, ts, step))
            if len(pending) >= 10 * BATCH_METRICS:
                self._flush()
                pending = self._p_metrics

    def _config(self, config: Mapping[str, Any]) -> None:
        for k, v in flatten_config(config).items():
            key = self._key(k)
            value = shorten(_storable(_value_str(v)), MAX_PARAM_LENGTH)
            old = self._params.get(key, self._p_params.get(key))
            if old is None:
                self._p_params[key] = value
            elif old != value:
                # params are immutable in MLflow; the new value is kept in the config artifacts
                _log.warning(
                    "mlflow: param %r already logged as %r; new value %r kept only in the config artifacts",
                    key,
                    old[:80],
                    value[:80],
                )

    def _update_name(self, ev: ConfigUpdate) -> str:
        body = json.dumps(ev.config, default=str, sort_keys=True, ensure_ascii=False)
        return f"{A_CONFIG_UPDATES}/{int(ev.time * 1000):015d}-{_sha(body, 8)}.json"

    def _artifact(self, ev: Artifact) -> None:
        dest = _artifact_dir(ev)
        if not os.path.exists(ev.path):
            raise BackendError(f"mlflow ({self.tracking_uri}): artifact file {ev.path} does not exist")
        self.client.log_artifact(self.mlflow_run_id, ev.path, artifact_path=dest)
        rec = event_to_record(ev)
        rec.pop("k", None)
        rec["artifact_path"] = f"{dest}/{os.path.basename(ev.path.rstrip(os.sep))}"
        self._upload_json(rec, f"{A_ARTIFACTS}/{dest}.json")

    def _status_change(self, ev: StatusChange) -> None:
        self._tag(T_STATUS, ev.status.value)
        self._tag(T_REASON, shorten(ev.reason, MAX_TAG_LENGTH))
        self._tag(T_STATUS_STEP, "" if ev.step is None else str(ev.step))
        rec = event_to_record(ev)
        rec.pop("k", None)
        text = json.dumps(rec, default=str, ensure_ascii=False)
        if len(text) > MAX_TAG_LENGTH:  # a long traceback: keep its tail, where the error is
            details = {k: (shorten(v[::-1], 2000)[::-1] if isinstance(v, str) else v) for k, v in ev.details.items()}
            rec["details"] = details
            text = shorten(json.dumps(rec, default=str, ensure_ascii=False), MAX_TAG_LENGTH)
        self._tag(T_STATUS_CHANGE, text)
        if ev.status is Status.RUNNING and self._mlflow_status != "RUNNING":
            self._flush()
            self.client.update_run(self.mlflow_run_id, status="RUNNING")
            self._mlflow_status = "RUNNING"

    def _finish(self, ev: RunFinished) -> None:
        self._tag(T_STATUS, ev.status.value)
        if ev.reason or T_REASON not in self._tags:
            self._tag(T_REASON, shorten(ev.reason, MAX_TAG_LENGTH))
        if ev.exit_code is not None:
            self._tag(T_EXIT_CODE, str(ev.exit_code))
        self._flush()
        status = _TO_MLFLOW[ev.status]
        if status == "RUNNING":
            return
        self.client.set_terminated(self.mlflow_run_id, status=status, end_time=int(ev.time * 1000))
        self._mlflow_status = status

    def _resume(self, ev: RunResumed) -> None:
        """The same MLflow run goes on: RUNNING again until the next RunFinished terminates it."""
        self._tag(T_STATUS, Status.RUNNING.value)
        self._tag(T_REASON, "")
        self._tag(T_RESUMED, str(ev.segment))
        self._flush()
        rec = event_to_record(ev)
        rec.pop("k", None)
        self._upload_json(rec, f"{A_RESUMES}/{int(ev.time * 1000):015d}-{ev.segment}.json")
        if self._mlflow_status != "RUNNING":
            self.client.update_run(self.mlflow_run_id, status="RUNNING")
            self._mlflow_status = "RUNNING"

    # ---- helpers

    def _key(self, key: str) -> str:
        entry = self._keys.get(key)
        if entry is None:
            entry = self._key_entry(key)
        if entry[1] is not None:
            self._tag_value(entry[1], entry[2])
        return entry[0]

    def _key_entry(self, key: str) -> tuple[str, str | None, str]:
        """Map ``key`` once: the MLflow key and, for a key that had to change, the tag that keeps
        the original (its value already in stored form, see :meth:`_tag`)."""
        mapped = mlflow_key(key)
        if mapped != key:
            entry: tuple[str, str | None, str] = (mapped, T_KEY + _sha(key), shorten(_storable(key), MAX_TAG_LENGTH))
        else:
            entry = (mapped, None, "")
        self._keys[key] = entry
        self._longest_key = max(self._longest_key, len(mapped))
        return entry

    def _tag(self, key: str, value: str) -> None:
        self._tag_value(key, shorten(_storable(value), MAX_TAG_LENGTH))

    def _tag_value(self, key: str, value: str) -> None:
        """:meth:`_tag` of a value already in stored form."""
        if self._tags.get(key) == value and key not in self._p_tags:
            return
        self._p_tags[key] = value

    def _upload_json(self, obj: Any, artifact_file: str) -> None:
        self.client.log_text(self.mlflow_run_id, _json(obj), artifact_file)

    def _drop_pending(self) -> None:
        self._p_params, self._p_tags, self._p_metrics = {}, {}, []

    def _flush(self) -> None:
        if self.mlflow_run_id is None or not (self._p_params or self._p_tags or self._p_metrics):
            return
        from mlflow.entities import Param, RunTag

        params = list(self._p_params.items())
        tags = list(self._p_tags.items())
        metrics = self._p_metrics
        pi = ti = mi = 0
        while pi < len(params) or ti < len(tags) or mi < len(metrics):
            size = 0
            req_p: list[Any] = []
            req_t: list[Any] = []
            req_m: list[Any] = []
            while pi < len(params) and len(req_p) < BATCH_PARAMS:
                k, v = params[pi]
                cost = len(k) + 3 * len(v) + 64
                if req_p and size + cost > BATCH_BYTES:
                    break
                req_p.append(Param(k, v))
                size += cost
                pi += 1
            while ti < len(tags) and len(req_t) < BATCH_TAGS:
                k, v = tags[ti]
                cost = len(k) + 3 * len(v) + 64
                if (req_p or req_t) and size + cost > BATCH_BYTES:
                    break
                req_t.append(RunTag(k, v))
                size += cost
                ti += 1
            room = min(BATCH_METRICS, BATCH_ENTITIES - len(req_p) - len(req_t))
            n = min(room, len(metrics) - mi)
            if size + n * (self._longest_key * 3 + 96) <= BATCH_BYTES:
                # every pending key is at most _longest_key long: the loop below would take all n
                req_m = metrics[mi : mi + n]
                mi += n
            while mi < len(metrics) and len(req_m) < room:
                cost = len(metrics[mi].key) * 3 + 96
                if size + cost > BATCH_BYTES:
                    break
                req_m.append(metrics[mi])
                size += cost
                mi += 1
            self.client.log_batch(self.mlflow_run_id, metrics=req_m, params=req_p, tags=req_t, synchronous=True)
            for p in req_p:
                self._params[p.key] = p.value
            for t in req_t:
                self._tags[t.key] = t.value
        self._drop_pending()


# ---------------------------------------------------------------- reader


class MlflowReader:
    """Reads MLflow runs (made by trackkit or not) back into the neutral model."""

    def __init__(self, spec: BackendSpec) -> None:
        self._conn = _Conn(spec)
        self.tracking_uri = self._conn.display

    @property
    def client(self) -> Any:
        return self._conn.client

    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        try:
            if project is not None:
                exp_id = self._conn.experiment_id(project, create=False)
                exps = {exp_id: project} if exp_id is not None else {}
            else:
                exps = self._conn.all_experiments()
            out: list[RunInfo] = []
            ids = list(exps)
            for i in range(0, len(ids), 50):
                chunk = ids[i : i + 50]
                token = None
                while True:
                    page = self.client.search_runs(chunk, max_results=1000, page_token=token)
                    out.extend(self._info(run, exps.get(str(run.info.experiment_id), "")) for run in page)
                    token = getattr(page, "token", None)
                    if not token:
                        break
            return out
        except TrackkitError:
            raise
        except Exception as exc:
            raise self._conn.error("list_runs", exc) from exc

    def read_run(self, run_id: str) -> RunRecord:
        try:
            run, project = self._find(run_id)
            return self._record(run, project)
        except (TrackkitError, KeyError):
            raise
        except Exception as exc:
            raise self._conn.error("read_run", exc) from exc

    # ---- internals

    def _find(self, run_id: str) -> tuple[Any, str]:
        from mlflow.exceptions import MlflowException

        exps = self._conn.all_experiments()
        run = self._conn.find_run(list(exps), run_id)
        if run is None:
            try:
                run = self.client.get_run(run_id)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                    raise KeyError(run_id) from exc
                raise
        eid = str(run.info.experiment_id)
        project = exps.get(eid)
        if project is None:
            project = self.client.get_experiment(eid).name
        return run, project

    def _info(self, run: Any, project: str) -> RunInfo:
        tags: dict[str, str] = dict(run.data.tags)
        keys = _key_map(tags)
        infs = _inf_keys(tags)
        status = _status_of(run, tags)
        user_tags = {keys.get(k, k): v for k, v in tags.items() if not k.startswith(("trackkit.", "mlflow."))}
        params = {keys.get(k, k): _value_back(v) for k, v in run.data.params.items()}
        last = {keys.get(k, k): _restore_inf(k, v, infs) for k, v in run.data.metrics.items()}
        steps = [m.step for m in getattr(run.data, "_metric_objs", [])]
        end = run.info.end_time
        location = run.info.run_id
        if self._conn.remote:
            location = f"{self._conn.display}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        return RunInfo(
            run_id=tags.get(T_RUN_ID) or run.info.run_id,
            project=project,
            name=run.info.run_name or "",
            backend=self._conn.name,
            status=status,
            reason=tags.get(T_REASON, ""),
            group=tags.get(T_GROUP) or None,
            start_time=run.info.start_time / 1000 if run.info.start_time else None,
            end_time=end / 1000 if end and status.terminal else None,
            tags=user_tags,
            config=_unflatten(params),
            last_metrics=last,
            last_step=max(steps) if steps else None,
            location=location,
        )

    def _record(self, run: Any, project: str) -> RunRecord:
        info = self._info(run, project)
        tags: dict[str, str] = dict(run.data.tags)
        keys = _key_map(tags)
        infs = _inf_keys(tags)
        mid = run.info.run_id
        files = self._files(mid)

        config = self._load_json(mid, A_CONFIG) if A_CONFIG in files else None
        if not isinstance(config, dict):
            config = info.config
        meta = self._load_json(mid, A_META) if A_META in files else None
        start_keys: list[str] | None = None
        if T_START_TAGS in tags:
            loaded = _value_back(tags[T_START_TAGS])
            if isinstance(loaded, list):
                start_keys = [str(k) for k in loaded]
        start_tags = info.tags if start_keys is None else {k: v for k, v in info.tags.items() if k in start_keys}
        start = RunStarted(
            run_id=info.run_id,
            project=project,
            name=info.name,
            start_time=info.start_time or 0.0,
            group=info.group,
            tags=start_tags,
            config=config,
            meta=meta if isinstance(meta, dict) else {},
        )
        body: list[Event] = []
        later = {k: v for k, v in info.tags.items() if k not in start_tags}
        if later:
            body.append(Tags(later, time=start.start_time))
        for path in sorted(p for p in files if p.startswith(A_CONFIG_UPDATES + "/") and p.endswith(".json")):
            cfg = self._load_json(mid, path)
            ms = path.rsplit("/", 1)[-1].split("-", 1)[0]
            if isinstance(cfg, dict):
                body.append(ConfigUpdate(cfg, time=int(ms) / 1000 if ms.isdigit() else 0.0))
        merged = _merge({}, config)
        for ev in body:
            if isinstance(ev, ConfigUpdate):
                merged = _merge(merged, ev.config)
        info.config = merged
        body.extend(self._metric_events(mid, list(run.data.metrics), keys, infs))
        base = run.info.artifact_uri or ""
        for path in sorted(p for p in files if p.startswith(A_ARTIFACTS + "/") and p.endswith(".json")):
            rec = self._load_json(mid, path)
            if isinstance(rec, dict):
                body.append(_artifact_event(rec, base))
        if T_STATUS_CHANGE in tags:
            rec = _value_back(tags[T_STATUS_CHANGE])
            if isinstance(rec, dict) and rec.get("status") in {s.value for s in Status}:
                step = rec.get("step")
                body.append(
                    StatusChange(
                        status=Status(rec["status"]),
                        reason=str(rec.get("reason", "")),
                        step=int(step) if isinstance(step, (int, float)) else None,
                        time=float(rec.get("time") or 0.0),
                        details=rec.get("details") or {},
                    )
                )
        for path in sorted(p for p in files if p.startswith(A_RESUMES + "/") and p.endswith(".json")):
            rec = self._load_json(mid, path)
            if isinstance(rec, dict):
                try:
                    resumed = event_from_record({**rec, "k": "resume"})
                except (TypeError, ValueError):
                    continue
                body.append(resumed)
                info.resumed += 1
        body.sort(key=_event_time)
        events: list[Event] = [start, *body]
        if info.status.terminal and run.info.end_time:
            code = tags.get(T_EXIT_CODE, "")
            events.append(
                RunFinished(
                    status=info.status,
                    time=run.info.end_time / 1000,
                    reason=info.reason,
                    exit_code=int(code) if code.lstrip("-").isdigit() else None,
                )
            )
        return RunRecord(info, events)

    def _metric_events(
        self, mid: str, mkeys: Iterable[str], keys: Mapping[str, str], infs: set[str]
    ) -> list[Metrics]:
        points: dict[tuple[int, int], dict[str, float]] = {}
        mkeys = list(mkeys)

        def fetch(key: str) -> tuple[str, list[Any]]:
            return key, list(self.client.get_metric_history(mid, key))  # follows MLflow's pages to the end

        if self._conn.remote and len(mkeys) > 4:  # one request per key: overlap the round trips
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=8, thread_name_prefix="trackkit-mlflow-read") as pool:
                histories = list(pool.map(fetch, mkeys))
        else:
            histories = [fetch(k) for k in mkeys]
        for key, hist in histories:
            original = keys.get(key, key)
            for m in hist:
                points.setdefault((int(m.timestamp), int(m.step)), {})[original] = _restore_inf(key, m.value, infs)
        return [Metrics(step=step, time=ts / 1000, values=vals) for (ts, step), vals in sorted(points.items())]

    def _files(self, mid: str) -> set[str]:
        out: set[str] = set()
        todo: list[str | None] = [None]
        while todo:
            path = todo.pop()
            if path is not None and not (
                path.startswith("trackkit") or A_CONFIG_UPDATES.startswith(path) or A_ARTIFACTS.startswith(path)
            ):
                continue  # only walk trackkit's own bookkeeping
            for f in self.client.list_artifacts(mid, path):
                if f.is_dir:
                    todo.append(f.path)
                else:
                    out.add(f.path)
        return out

    def _load_json(self, mid: str, path: str) -> Any:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="trackkit-mlflow-") as tmp:
            local = self.client.download_artifacts(mid, path, tmp)
            with open(local, encoding="utf-8") as fh:
                return json.load(fh)


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = dict(v) if isinstance(v, Mapping) else v
    return out


def _key_map(tags: Mapping[str, str]) -> dict[str, str]:
    """mapped key -> original key, from the ``trackkit.key.*`` tags."""
    originals = (_unstorable(v) for k, v in tags.items() if k.startswith(T_KEY))
    return {mlflow_key(v): v for v in originals}


def _inf_keys(tags: Mapping[str, str]) -> set[str]:
    return {v for k, v in tags.items() if k.startswith(T_INF)}


def _restore_inf(key: str, value: float, infs: set[str]) -> float:
    if key in infs and abs(value) >= _FMAX:
        return math.copysign(math.inf, value)
    return float(value)


def _status_of(run: Any, tags: Mapping[str, str]) -> Status:
    text = tags.get(T_STATUS)
    if text in {s.value for s in Status}:
        status = Status(text)
        # a run terminated natively after our tag said running (e.g. by hand in the UI)
        if status is Status.RUNNING and run.info.status in ("FINISHED", "FAILED", "KILLED"):
            return _FROM_MLFLOW[run.info.status]
        return status
    return _FROM_MLFLOW.get(run.info.status, Status.RUNNING)


def _artifact_event(rec: Mapping[str, Any], base: str) -> Artifact:
    rel = str(rec.get("artifact_path", ""))
    uri = f"{base.rstrip('/')}/{rel}" if base else rel
    if uri.startswith("file://"):
        uri = unquote(urlsplit(uri).path)
    return Artifact(
        path=uri,
        name=str(rec.get("name", "")),
        kind=str(rec.get("kind", "")),
        sha256=str(rec.get("sha256", "")),
        size=int(rec.get("size", 0)),
        version=int(rec.get("version", 0)),
        aliases=tuple(rec.get("aliases") or ()),
        metadata=rec.get("metadata") or {},
        source=str(rec.get("source", "")),
        time=float(rec.get("time", 0.0)),
    )


def _event_time(ev: Event) -> float:
    return float(getattr(ev, "time", 0.0) or 0.0)

