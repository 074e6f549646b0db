"""``MlflowSink``: trackkit events into an MLflow tracking store, synchronously in ``emit``."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import posixpath
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ...backend import BackendSpec, Capabilities, ConsoleFile, short_hash, shorten
from ...errors import BackendError
from ...events import (
    Artifact,
    Checkpoint,
    CheckpointPruned,
    ConfigUpdate,
    Console,
    Event,
    Media,
    MetricGoal,
    Metrics,
    RunFinished,
    RunResumed,
    RunStarted,
    Status,
    StatusChange,
    Summary,
    SystemMetrics,
    Tags,
    event_to_record,
    flatten_config,
)
from .batches import pack
from .best import BestValues
from .connection import Connection
from .mapping import GIT_TAGS, NOT_RESTORED, T_PARENT_RUN, dataset_entities
from .media import MediaWriter
from .names import (
    A_ARTIFACTS,
    A_CKPT_PRUNES,
    A_CONFIG,
    A_CONFIG_UPDATES,
    A_META,
    A_RESUMES,
    A_SUMMARIES,
    BATCH_METRICS,
    MAX_KEY_LENGTH,
    MAX_PARAM_LENGTH,
    MAX_TAG_LENGTH,
    RESERVED,
    T_CHECKPOINT,
    T_EXIT_CODE,
    T_GROUP,
    T_INF,
    T_KEY,
    T_PARENT,
    T_REASON,
    T_RESUMED,
    T_RUN_ID,
    T_START_TAGS,
    T_STATUS,
    T_STATUS_CHANGE,
    T_STATUS_STEP,
    T_SUMMARY,
    TO_MLFLOW,
    artifact_dir,
    mlflow_key,
    safe_segment,
    storable,
    tag_digest,
    to_json,
    user_tag_key,
    value_str,
)

_log = logging.getLogger("trackkit.backends.mlflow")
#: the artifact that holds the run's console output, and how often a live run's copy is replaced
A_CONSOLE = "console.log"
CONSOLE_UPLOAD_S = 15.0


#: seconds between two writes of the metrics' extremes as tags (``best.py``) while a run is live
BEST_EVERY_S = 30.0


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
        key_rule=mlflow_key,
        media={
            "histogram": "a JSON artifact per step (histograms/<key>/step_<step>-<id>.json, the counts and edges)",
            "audio": "a WAV artifact per step (audio/<key>/step_<step>-<id>.wav)",
        },
    )

    def __init__(self, spec: BackendSpec) -> None:
        self._conn = Connection(spec)
        self.tracking_uri = self._conn.display
        #: the MLflow run id of the attached run
        self.mlflow_run_id: str | None = None
        #: the run's local artifact directory ("" once known not to be local); checkpoint artifact paths
        self._artifact_root: str | None = None
        self._ckpt_paths: dict[tuple[str, int], str] = {}
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
        #: the same for the keys of user tags
        self._tag_keys: dict[str, tuple[str, str | None, str]] = {}
        #: the longest MLflow key in ``_keys``: bounds the size of any pending metric
        self._longest_key = 0
        #: what ``emit`` is doing (named in its errors)
        self._doing = "emit"
        self._experiment = ""
        from mlflow.entities import Metric

        self._metric_cls: Any = Metric
        self._media = MediaWriter(self._conn.client)
        #: each metric's extremes and goal, kept as tags (``best.py``)
        self._best = BestValues()
        #: the extremes' tags are written at most every BEST_EVERY_S and when the run ends: a
        #: metrics batch keeps MLflow's whole 1000-entity budget for points
        self._best_at = time.monotonic()
        self._console: ConsoleFile | None = None
        self._console_sent = 0.0

    @property
    def client(self) -> Any:
        return self._conn.client

    @classmethod
    def native(cls, spec: BackendSpec, run_id: str, project: str, name: str) -> tuple[Any, str]:
        """``Run.native("mlflow")``: ``(MlflowClient, mlflow_run_id)`` of the run with this trackkit id.

        Attaches to (or creates, tagged ``trackkit.run_id`` so the agent re-attaches to it) the
        run. This bypasses every trackkit guarantee: calls block, can raise, are not journaled."""
        sink = cls(spec)
        with sink._conn.errors("native"):
            sink._attach(RunStarted(run_id=run_id, project=project, name=name, start_time=time.time()))
        assert sink.mlflow_run_id is not None
        return sink.client, sink.mlflow_run_id

    # ---- the seam

    def emit(self, batch: Sequence[Event]) -> None:
        self._doing = "emit"
        with self._delivering(lambda: self._doing):
            for ev in batch:
                self._doing = type(ev).__name__
                self._handle(ev)
            if self._media.pending:
                self._doing = "media index"
                assert self.mlflow_run_id is not None
                for k, v in self._media.finish_batch(self.mlflow_run_id, {**self._tags, **self._p_tags}).items():
                    self._tag_value(k, v)
            self._doing = "log_batch"
            self._flush()
            if self._console is not None and self._console.dirty and \
                    time.monotonic() - self._console_sent >= CONSOLE_UPLOAD_S:
                self._doing = "console.log"
                self._console_upload()

    def close(self) -> None:
        with self._delivering("close"):
            self._flush(final=True)
            if self._console is not None and self._console.dirty and self.mlflow_run_id is not None:
                self._console_upload()

    @contextlib.contextmanager
    def _delivering(self, what: str | Callable[[], str]) -> Iterator[None]:
        """SDK errors as ``BackendError``; after any failure nothing stays pending (the agent sends
        the batch again)."""
        try:
            with self._conn.errors(what):
                yield
        except Exception:
            self._drop_pending()
            self._media.drop()
            raise

    def _handle(self, ev: Event) -> None:
        if isinstance(ev, RunStarted):
            self._flush()
            self._start(ev)
            return
        if self.mlflow_run_id is None:
            raise BackendError(f"{self._conn.label}: received {type(ev).__name__} before RunStarted")
        if isinstance(ev, Metrics):
            self._metrics(ev)
        elif isinstance(ev, ConfigUpdate):
            self._config(ev.config)
            self._upload_json(ev.config, self._update_name(ev))
        elif isinstance(ev, Tags):
            for k, v in ev.tags.items():
                self._tag(self._key(str(k), tag=True), value_str(v))
        elif isinstance(ev, Artifact):
            self._flush()
            self._artifact(ev)
        elif isinstance(ev, Checkpoint):
            self._flush()
            self._checkpoint(ev)
        elif isinstance(ev, CheckpointPruned):
            self._flush()
            self._checkpoint_pruned(ev)
        elif isinstance(ev, StatusChange):
            self._status_change(ev)
        elif isinstance(ev, RunFinished):
            self._finish(ev)
        elif isinstance(ev, RunResumed):
            self._resume(ev)
        elif isinstance(ev, Media):
            self._media_value(ev)
        elif isinstance(ev, Summary):
            self._summary(ev)
        elif isinstance(ev, MetricGoal):
            self._best.goal(ev.key, ev.goal)
        elif isinstance(ev, Console):
            self._console_add(ev)
        elif isinstance(ev, SystemMetrics):  # MLflow's own names (trackkit/sysmetrics.py): its system-metrics view
            self._metrics(Metrics(step=ev.seq, time=ev.time, values=ev.values))

    def _console_add(self, ev: Console) -> None:
        """The console into a local ``console.log`` (started from the run's artifact, if it has one),
        uploaded whole every ``CONSOLE_UPLOAD_S`` seconds and when the run ends."""
        if self._console is None:
            folder = tempfile.mkdtemp(prefix="trackkit-mlflow-console-")
            with contextlib.suppress(Exception):
                self.client.download_artifacts(self.mlflow_run_id, A_CONSOLE, folder)
            self._console = ConsoleFile(os.path.join(folder, A_CONSOLE))
        self._console.add(ev)

    def _console_upload(self) -> None:
        assert self._console is not None and self.mlflow_run_id is not None
        self.client.log_artifact(self.mlflow_run_id, self._console.path)
        self._console.dirty = False
        self._console_sent = time.monotonic()

    # ---- events

    def _attach(self, ev: RunStarted) -> bool:
        """Find the run tagged ``trackkit.run_id`` or create it; True when it already existed."""
        conn = self._conn
        exp_id = conn.experiment_id(ev.project or "Default", create=True)
        assert exp_id is not None
        run = conn.find_run([exp_id], ev.run_id)
        resumed = run is not None
        if run is not None:  # resume / redelivery: re-attach
            self._params = dict(run.data.params)
        else:
            run = self.client.create_run(
                exp_id,
                start_time=int(ev.start_time * 1000),
                tags={T_RUN_ID: ev.run_id},
                run_name=ev.name or None,
            )
            self._params = {}
        self.mlflow_run_id = run.info.run_id
        self._artifact_root = None
        self._experiment = exp_id
        self._mlflow_status = run.info.status
        self._tags = dict(run.data.tags)
        self._best.attach(self._tags)
        self._drop_pending()
        return resumed

    def _start(self, ev: RunStarted) -> None:
        resumed = self._attach(ev)
        if ev.group:
            self._tag(T_GROUP, ev.group)
        if ev.parent:
            self._parent(ev)
        self._system_tags(ev.meta)
        start_keys = []
        for k, v in ev.tags.items():
            start_keys.append(str(k))
            self._tag(self._key(str(k), tag=True), value_str(v))
        start_list = json.dumps(sorted(start_keys), ensure_ascii=False)
        if len(start_list) <= MAX_TAG_LENGTH:
            self._tag(T_START_TAGS, start_list)
        for k, v in flatten_config(ev.meta).items():
            if v is None or isinstance(v, (str, int, float, bool)):
                name = f"trackkit.{k}"
                if name in RESERVED or name.startswith((T_KEY, T_INF, "trackkit.meta.")):
                    name = f"trackkit.meta.{k}"
                self._tag(mlflow_key(name), value_str(v))
        self._config(ev.config)
        self._flush()
        if ev.config or not resumed:
            self._upload_json(ev.config, A_CONFIG)
        if ev.meta or not resumed:
            self._upload_json(ev.meta, A_META)
        mlf = ev.meta.get("mlflow")
        if not resumed and isinstance(mlf, Mapping) and mlf.get("datasets"):
            inputs = dataset_entities(mlf["datasets"])
            if inputs:
                self.client.log_inputs(self.mlflow_run_id, datasets=inputs)
        self._adopt_children(ev)

    def _parent(self, ev: RunStarted) -> None:
        """``mlflow.parentRunId`` = the MLflow id of the run tagged with the parent's trackkit id (same
        experiment); the trackkit id itself always in ``trackkit.parent``. A parent not there yet is said
        once; it links its children when it arrives (``_adopt_children``)."""
        assert ev.parent is not None
        self._tag(T_PARENT, ev.parent)
        if self._tags.get(T_PARENT_RUN):
            return
        parent = self._conn.find_run([self._experiment], ev.parent)
        if parent is not None:
            self._tag(T_PARENT_RUN, parent.info.run_id)
        else:
            _log.warning(
                "mlflow: the parent run %r of run %r is not in experiment %r yet; kept as the tag %s, and "
                "mlflow.parentRunId is set when the parent run is written there too (delivered, or migrated: "
                "migrate it as well)",
                ev.parent, ev.run_id, ev.project or "Default", T_PARENT,
            )  # fmt: skip

    def _adopt_children(self, ev: RunStarted) -> None:
        """Runs that named this one as their parent before it existed get their ``mlflow.parentRunId``."""
        quote = "'" if "'" not in ev.run_id else '"'
        waiting = self.client.search_runs(
            [self._experiment], filter_string=f"tags.`{T_PARENT}` = {quote}{ev.run_id}{quote}", max_results=1000
        )
        for child in waiting:
            if not child.data.tags.get(T_PARENT_RUN):
                self.client.set_tag(child.info.run_id, T_PARENT_RUN, self.mlflow_run_id)

    def _system_tags(self, meta: Mapping[str, Any]) -> None:
        """MLflow's own tags a source recorded (``meta["mlflow"]["tags"]``: source, user, git, note ...) and
        ``meta["git"]`` as ``mlflow.source.git.*``, so MLflow's UI shows them; not the name, the parent and
        the lists of media and models, which this run gets anew."""
        mlf = meta.get("mlflow")
        tags = mlf.get("tags") if isinstance(mlf, Mapping) else None
        if isinstance(tags, Mapping):
            for k, v in tags.items():
                if isinstance(k, str) and k.startswith("mlflow.") and k not in NOT_RESTORED and isinstance(v, str):
                    self._tag(k, v)
        git = meta.get("git")
        if isinstance(git, Mapping):
            for tag, name in GIT_TAGS.items():
                if isinstance(git.get(name), str) and git[name] and tag not in self._p_tags:
                    self._tag(tag, git[name])

    def _summary(self, ev: Summary) -> None:
        """``trackkit/summaries/<ms>-<hash>.json`` (the values exactly, merged in order by the reader) and a
        tag ``trackkit.summary.<key>`` per scalar value, for MLflow's UI and ``list_runs``."""
        for k, v in ev.values.items():
            name = T_SUMMARY + str(k)
            if (v is None or isinstance(v, (str, int, float, bool))) and mlflow_key(name) == name:
                text = value_str(v)
                if len(text) <= MAX_TAG_LENGTH:
                    self._tag(name, text)
        body = json.dumps(ev.values, default=str, sort_keys=True, ensure_ascii=False)
        rec = {"values": dict(ev.values), "time": ev.time}
        self._upload_json(rec, f"{A_SUMMARIES}/{int(ev.time * 1000):015d}-{short_hash(body)}.json")

    def _metrics(self, ev: Metrics) -> None:
        # the hot path of delivery: per point one dict lookup for the key, no re-validation
        ts = int(ev.time * 1000)
        step = int(ev.step)
        metric = self._metric_cls
        keys = self._keys
        pending = self._p_metrics
        isinf = math.isinf
        best = self._best.add
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
                self._tag(T_INF + tag_digest(key), key)
            pending.append(metric(key, value, ts, step))
            best(k, step, value)
            if len(pending) >= 10 * BATCH_METRICS:
                self._flush()
                pending = self._p_metrics

    def _config(self, config: Mapping[str, Any]) -> None:
        for k, v in flatten_config(config).items():
            key = self._key(k)
            value = shorten(storable(value_str(v)), MAX_PARAM_LENGTH)
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
        return f"{A_CONFIG_UPDATES}/{int(ev.time * 1000):015d}-{short_hash(body)}.json"

    def _artifact(self, ev: Artifact) -> None:
        dest = artifact_dir(ev)
        if not os.path.exists(ev.path):
            raise BackendError(f"{self._conn.label}: artifact file {ev.path} does not exist")
        rec = event_to_record(ev)
        rec.pop("k", None)
        where = _own_path(ev)
        if where is not None:  # a file an MLflow run had at this path: the same path in the copy
            folder = posixpath.dirname(where)
            self.client.log_artifact(self.mlflow_run_id, ev.path, artifact_path=folder or None)
            rec["artifact_path"] = where
        else:
            self.client.log_artifact(self.mlflow_run_id, ev.path, artifact_path=dest)
            rec["artifact_path"] = f"{dest}/{os.path.basename(ev.path.rstrip(os.sep))}"
        self._upload_json(rec, f"{A_ARTIFACTS}/{dest}.json")

    def _local_root(self) -> str | None:
        """The run's artifact directory when the store is local (``file:`` URI), else None."""
        if self._artifact_root is None:
            from urllib.parse import unquote, urlsplit

            uri = str(self.client.get_run(self.mlflow_run_id).info.artifact_uri or "")
            if uri.startswith("file:"):
                self._artifact_root = unquote(urlsplit(uri).path)
            elif uri and "://" not in uri and os.path.isabs(uri):
                self._artifact_root = uri
            else:
                self._artifact_root = ""
        return self._artifact_root or None

    def _checkpoint(self, ev: Checkpoint) -> None:
        """A checkpoint under ``checkpoint/<name>/v<N>/``: a hard link in a local artifact store (a copy
        only across filesystems), an upload to a server; its record (epoch, step, metrics, config, git,
        sha256) beside it as ``<file>.json`` and under ``trackkit/artifacts/``; tags name the latest/best."""
        a = ev.as_artifact()
        if not os.path.exists(ev.path):  # retention removed it before it was delivered
            _log.info("mlflow: checkpoint %s v%d was pruned before delivery; skipped", ev.name, ev.version)
            return
        dest = artifact_dir(a)
        rel = f"{dest}/{os.path.basename(ev.path)}"
        local = self._local_root()
        if local is not None:
            target = os.path.join(local, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _link_into(ev.path, target)
        elif os.path.isdir(ev.path):
            self.client.log_artifacts(self.mlflow_run_id, ev.path, artifact_path=rel)
        else:
            self.client.log_artifact(self.mlflow_run_id, ev.path, artifact_path=dest)
        rec = event_to_record(a)
        rec.pop("k", None)
        rec["artifact_path"] = rel
        self._upload_json(rec, f"{rel}.json")
        self._upload_json(rec, f"{A_ARTIFACTS}/{dest}.json")
        self._ckpt_paths[(ev.name, ev.version)] = rel
        for alias in ev.aliases:
            self._tag(f"{T_CHECKPOINT}{safe_segment(ev.name)}.{alias}", rel)
        self._flush()

    def _checkpoint_pruned(self, ev: CheckpointPruned) -> None:
        """Retention removed a checkpoint: its folder goes from the store (local: the link; a server: the
        files, where its artifact repository can delete), and a record says so."""
        dest = artifact_dir(Artifact(path="", name=ev.name, kind="checkpoint", sha256="", size=0, version=ev.version))
        local = self._local_root()
        if local is not None:
            import shutil

            shutil.rmtree(os.path.join(local, *dest.split("/")), ignore_errors=True)
        else:
            try:
                from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

                uri = str(self.client.get_run(self.mlflow_run_id).info.artifact_uri)
                get_artifact_repository(uri).delete_artifacts(dest)  # type: ignore[no-untyped-call]
            except Exception as exc:  # a store that cannot delete: the record below still says it is pruned
                _log.warning("mlflow: could not delete pruned checkpoint %s: %s", dest, exc)
        rec = event_to_record(ev)
        rec.pop("k", None)
        self._upload_json(rec, f"{A_CKPT_PRUNES}/{safe_segment(ev.name)}/v{int(ev.version)}.json")
        for alias, version in ev.aliases.items():
            rel = self._ckpt_paths.get((ev.name, int(version)))
            if rel is not None:
                self._tag(f"{T_CHECKPOINT}{safe_segment(ev.name)}.{alias}", rel)
        self._flush()

    def _media_value(self, ev: Media) -> None:
        """One media value in MLflow's form (``media.py``; docs/backends/mlflow.md, "Media")."""
        what = f"mlflow: {ev.kind} {ev.key!r} at step {ev.step}"
        if not ev.canonical:  # the agent encodes every value before a sink sees it
            _log.warning("%s: not in a delivered format (%s); skipped. Fix: deliver it through trackkit's agent",
                         what, ev.format)
            return
        if not os.path.isfile(ev.path):
            _log.warning("%s: payload %s is gone; skipped. Fix: keep the run directory's media/ until delivered",
                         what, ev.path)
            return
        self._doing = f"{ev.kind} {ev.key!r} at step {ev.step}"
        assert self.mlflow_run_id is not None
        self._media.write(self.mlflow_run_id, ev)

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
        if ev.status is Status.RUNNING:
            self._running_again()

    def _finish(self, ev: RunFinished) -> None:
        self._tag(T_STATUS, ev.status.value)
        if ev.reason or T_REASON not in self._tags:
            self._tag(T_REASON, shorten(ev.reason, MAX_TAG_LENGTH))
        if ev.exit_code is not None:
            self._tag(T_EXIT_CODE, str(ev.exit_code))
        self._flush(final=True)
        if self._console is not None and self._console.dirty:
            self._console_upload()
        status = TO_MLFLOW[ev.status]
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
        self._running_again()

    def _running_again(self) -> None:
        """The MLflow run back to RUNNING (after what is pending), unless it is."""
        if self._mlflow_status != "RUNNING":
            self._flush()
            self.client.update_run(self.mlflow_run_id, status="RUNNING")
            self._mlflow_status = "RUNNING"

    # ---- helpers

    def _key(self, key: str, *, tag: bool = False) -> str:
        """The stored key of a metric/param (``tag``: of a user's tag, see ``user_tag_key``)."""
        entry = (self._tag_keys if tag else self._keys).get(key)
        if entry is None:
            entry = self._key_entry(key, tag)
        if entry[1] is not None:
            self._tag_value(entry[1], entry[2])
        return entry[0]

    def _key_entry(self, key: str, tag: bool = False) -> tuple[str, str | None, str]:
        """Map ``key`` once: the MLflow key and, for a key that had to change, the tag that keeps
        the original (its value already in stored form, see :meth:`_tag`)."""
        mapped = user_tag_key(key) if tag else mlflow_key(key)
        entry: tuple[str, str | None, str] = (mapped, None, "")
        if mapped != key:
            entry = (mapped, T_KEY + tag_digest(key), shorten(storable(key), MAX_TAG_LENGTH))
        (self._tag_keys if tag else self._keys)[key] = entry
        self._longest_key = max(self._longest_key, len(mapped))
        return entry

    def _tag(self, key: str, value: str) -> None:
        self._tag_value(key, shorten(storable(value), MAX_TAG_LENGTH))

    def _tag_value(self, key: str, value: str) -> None:
        """:meth:`_tag` of a value already in stored form."""
        if self._tags.get(key) == value and key not in self._p_tags:
            return
        self._p_tags[key] = value

    def _upload_json(self, obj: Any, artifact_file: str) -> None:
        self.client.log_text(self.mlflow_run_id, to_json(obj), artifact_file)

    def _drop_pending(self) -> None:
        self._p_params, self._p_tags, self._p_metrics = {}, {}, []
        self._best.again()

    def _flush(self, final: bool = False) -> None:
        if self.mlflow_run_id is None:
            return
        if self._best.dirty and (final or time.monotonic() - self._best_at >= BEST_EVERY_S):
            self._best_at = time.monotonic()
            for k, v in self._best.tags().items():
                self._tag(k, v)
        if not (self._p_params or self._p_tags or self._p_metrics):
            return
        from mlflow.entities import Param, RunTag

        for params, tags, metrics in pack(
            list(self._p_params.items()), list(self._p_tags.items()), self._p_metrics, self._longest_key
        ):
            self.client.log_batch(
                self.mlflow_run_id,
                metrics=metrics,
                params=[Param(k, v) for k, v in params],
                tags=[RunTag(k, v) for k, v in tags],
                synchronous=True,
            )
            self._params.update(params)
            self._tags.update(tags)
        self._p_params, self._p_tags, self._p_metrics = {}, {}, []


def _link_into(src: str, target: str) -> None:
    """``target`` in a local artifact store as hard link(s) to the immutable checkpoint ``src`` (a
    file or a folder); a copy only where no link can be made (another filesystem)."""
    import shutil

    def one(s: str, d: str) -> None:
        if os.path.exists(d) and os.path.samefile(s, d):
            return
        if os.path.exists(d):
            os.unlink(d)
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    if os.path.isdir(src):
        shutil.copytree(src, target, copy_function=one, dirs_exist_ok=True)
    else:
        one(src, target)


def _own_path(ev: Artifact) -> str | None:
    """The artifact path an MLflow run kept this file at (``metadata["mlflow_path"]``, the reader's), where
    the copy can hold it there too: a plain relative path, the same file name, not trackkit's own files."""
    path = ev.metadata.get("mlflow_path") if isinstance(ev.metadata, Mapping) else None
    if not isinstance(path, str) or not path or path.startswith("/") or os.path.isdir(ev.path):
        return None
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or parts[-1] != os.path.basename(ev.path):
        return None
    if path in (A_CONFIG, A_META) or parts[0] == "trackkit":
        return None
    return path
