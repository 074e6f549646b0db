"""``MlflowReader``: MLflow runs (made by trackkit or not) back into the neutral model."""

from __future__ import annotations

import json
import math
import os
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from ...backend import BackendSpec
from ...events import (
    Artifact,
    ConfigUpdate,
    Event,
    Media,
    Metrics,
    RunFinished,
    RunInfo,
    RunRecord,
    RunStarted,
    Status,
    StatusChange,
    Tags,
    event_from_record,
)
from .connection import Connection, missing_store, pages, store_path, strip_credentials
from .media import read_media, walk
from .names import (
    A_ARTIFACTS,
    A_CONFIG,
    A_CONFIG_UPDATES,
    A_META,
    A_RESUMES,
    FMAX,
    FROM_MLFLOW,
    RESERVED_TAG_PREFIXES,
    T_EXIT_CODE,
    T_GROUP,
    T_INF,
    T_KEY,
    T_REASON,
    T_RUN_ID,
    T_START_TAGS,
    T_STATUS,
    T_STATUS_CHANGE,
    mlflow_key,
    unstorable,
    user_tag_key,
    value_back,
)


class MlflowReader:
    """Reads MLflow runs (made by trackkit or not) back into the neutral model.

    Reading writes nothing: a sqlite store is opened read-only, and one that does not exist is a
    ``ConfigError`` naming the path. With ``must_exist=False`` (a migration target, which its sink
    creates) a missing store reads as empty, and is opened once it exists."""

    def __init__(self, spec: BackendSpec, *, must_exist: bool = True) -> None:
        self._spec = spec
        self._path = store_path(spec)
        self._opened: Connection | None = None
        if must_exist:
            self._open()
            if self._opened is None:
                raise missing_store(spec, self._path or "")

    def _open(self) -> Connection | None:
        """The read-only connection; None while the sqlite store does not exist."""
        if self._opened is None and (self._path is None or os.path.isfile(self._path)):
            self._opened = Connection(self._spec, read_only=True)
        return self._opened

    @property
    def _conn(self) -> Connection:
        conn = self._open()
        if conn is None:
            raise missing_store(self._spec, self._path or "")
        return conn

    @property
    def tracking_uri(self) -> str:
        """The tracking URI read from, without credentials."""
        if self._opened is not None:
            return self._opened.display
        return f"sqlite:///{self._path}" if self._path else strip_credentials(self._spec.location)

    @property
    def client(self) -> Any:
        return self._conn.client

    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        if self._open() is None:
            return []  # must_exist=False: no store yet, no runs
        with self._conn.errors("list_runs"):
            if project is not None:
                exp_id = self._conn.experiment_id(project, create=False)
                exps = {exp_id: project} if exp_id is not None else {}
            else:
                exps = self._conn.all_experiments()
            out: list[RunInfo] = []
            ids = list(exps)
            for i in range(0, len(ids), 50):
                for run in pages(self.client.search_runs, ids[i : i + 50], max_results=1000):
                    out.append(self._info(run, exps.get(str(run.info.experiment_id), "")))
            return out

    def read_run(self, run_id: str) -> RunRecord:
        if self._open() is None:
            raise KeyError(run_id)
        with self._conn.errors("read_run"):
            found = self._find(run_id)
        if found is None:
            raise KeyError(run_id)
        with self._conn.errors("read_run"):
            return self._record(*found)

    # ---- internals

    def _find(self, run_id: str) -> tuple[Any, str] | None:
        """The MLflow run tagged with this trackkit id, else with this MLflow id, and its experiment's name."""
        from mlflow.exceptions import MlflowException

        exps = self._conn.all_experiments()
        run = self._conn.find_run(list(exps), run_id)
        if run is None:
            try:
                run = self.client.get_run(run_id)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                    return None
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
        user_tags = {keys.get(k, k): v for k, v in tags.items() if not k.startswith(RESERVED_TAG_PREFIXES)}
        params = {keys.get(k, k): value_back(v) for k, v in run.data.params.items()}
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
        mid = run.info.run_id
        files = self._files(mid)
        config = self._load_json(mid, A_CONFIG) if A_CONFIG in files else None
        if not isinstance(config, dict):
            config = info.config
        start = self._start_event(info, tags, config, self._load_json(mid, A_META) if A_META in files else None)
        body: list[Event] = []
        later = {k: v for k, v in info.tags.items() if k not in start.tags}
        if later:
            body.append(Tags(later, time=start.start_time))
        for path, cfg in self._json_files(mid, files, A_CONFIG_UPDATES):
            ms = path.rsplit("/", 1)[-1].split("-", 1)[0]
            if isinstance(cfg, dict):
                body.append(ConfigUpdate(cfg, time=int(ms) / 1000 if ms.isdigit() else 0.0))
        merged = _merge({}, config)
        for ev in body:
            if isinstance(ev, ConfigUpdate):
                merged = _merge(merged, ev.config)
        info.config = merged
        body.extend(self._metric_events(mid, list(run.data.metrics), _key_map(tags), _inf_keys(tags)))
        base = run.info.artifact_uri or ""
        art_recs = [rec for _, rec in self._json_files(mid, files, A_ARTIFACTS)]
        body.extend(_artifact_event(rec, base) for rec in art_recs)
        skip = {posixpath.dirname(str(rec.get("artifact_path", ""))) for rec in art_recs}
        body.extend(self._media(mid, tags, info, skip))
        change = _status_change(tags)
        if change is not None:
            body.append(change)
        for _, rec in self._json_files(mid, files, A_RESUMES):
            try:
                body.append(event_from_record({**rec, "k": "resume"}))
            except (TypeError, ValueError):
                continue
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

    def _media(self, mid: str, tags: Mapping[str, str], info: RunInfo, skip: set[str]) -> list[Media]:
        """The run's media (``media.py``), counted into ``info``; ``skip``: trackkit's artifact directories."""
        files = walk(self.client, mid, skip)
        found = read_media(self.client, mid, files, tags, info.start_time or 0.0, self._conn.remote)
        for ev in found:
            info.media[ev.kind] = info.media.get(ev.kind, 0) + 1
            info.last_step = ev.step if info.last_step is None else max(info.last_step, ev.step)
        return found

    @staticmethod
    def _start_event(info: RunInfo, tags: Mapping[str, str], config: dict[str, Any], meta: Any) -> RunStarted:
        start_keys: list[str] | None = None
        if T_START_TAGS in tags:
            loaded = value_back(tags[T_START_TAGS])
            if isinstance(loaded, list):
                start_keys = [str(k) for k in loaded]
        start_tags = info.tags if start_keys is None else {k: v for k, v in info.tags.items() if k in start_keys}
        return RunStarted(
            run_id=info.run_id,
            project=info.project,
            name=info.name,
            start_time=info.start_time or 0.0,
            group=info.group,
            tags=start_tags,
            config=config,
            meta=meta if isinstance(meta, dict) else {},
        )

    def _json_files(self, mid: str, files: Iterable[str], folder: str) -> list[tuple[str, Any]]:
        """``(path, content)`` of the JSON files under ``folder``, in path order; only dicts."""
        out = []
        for path in sorted(p for p in files if p.startswith(folder + "/") and p.endswith(".json")):
            rec = self._load_json(mid, path)
            if isinstance(rec, dict):
                out.append((path, rec))
        return out

    def _metric_events(self, mid: str, mkeys: Iterable[str], keys: Mapping[str, str], infs: set[str]) -> list[Metrics]:
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
    out: dict[str, str] = {}
    for original in (unstorable(v) for k, v in tags.items() if k.startswith(T_KEY)):
        out[mlflow_key(original)] = original
        if original.startswith(RESERVED_TAG_PREFIXES):
            out[user_tag_key(original)] = original
    return out


def _inf_keys(tags: Mapping[str, str]) -> set[str]:
    return {v for k, v in tags.items() if k.startswith(T_INF)}


def _restore_inf(key: str, value: float, infs: set[str]) -> float:
    if key in infs and abs(value) >= FMAX:
        return math.copysign(math.inf, value)
    return float(value)


def _status_of(run: Any, tags: Mapping[str, str]) -> Status:
    text = tags.get(T_STATUS)
    if text in {s.value for s in Status}:
        status = Status(text)
        # a run terminated natively after our tag said running (e.g. by hand in the UI)
        if status is Status.RUNNING and run.info.status in ("FINISHED", "FAILED", "KILLED"):
            return FROM_MLFLOW[run.info.status]
        return status
    return FROM_MLFLOW.get(run.info.status, Status.RUNNING)


def _status_change(tags: Mapping[str, str]) -> StatusChange | None:
    """The last status change, from the ``trackkit.status_change`` tag."""
    rec = value_back(tags[T_STATUS_CHANGE]) if T_STATUS_CHANGE in tags else None
    if not (isinstance(rec, dict) and rec.get("status") in {s.value for s in Status}):
        return None
    step = rec.get("step")
    return StatusChange(
        status=Status(rec["status"]),
        reason=str(rec.get("reason", "")),
        step=int(step) if isinstance(step, (int, float)) else None,
        time=float(rec.get("time") or 0.0),
        details=rec.get("details") or {},
    )


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
