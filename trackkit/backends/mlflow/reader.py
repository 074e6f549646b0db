"""``MlflowReader``: MLflow runs (made by trackkit, MLflow's fluent API or autolog) back into the neutral model.

``list_runs`` is ``search_runs`` pages only; ``stream_run`` reads one run in bounded chunks (metrics in
step order, ``history``), ``read_run`` is the same stream gathered. The mapping of MLflow's own tags,
inputs and artifacts is ``mapping``; docs/backends/mlflow.md ("Runs MLflow wrote", "Reading") is the truth.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...backend import BackendSpec
from ...events import (
    Artifact,
    ConfigUpdate,
    Event,
    Media,
    MetricGoal,
    Metrics,
    RunFinished,
    RunInfo,
    RunRecord,
    RunStarted,
    Summary,
    SystemMetrics,
    Tags,
    checkpoint_of,
    event_from_record,
)
from .best import read_best
from .connection import Connection, missing_store, pages, store_path, strip_credentials
from .history import metric_events, paged_points, restore, sqlite_count, sqlite_events
from .mapping import (
    T_PARENT_RUN,
    artifact_event,
    inf_keys,
    key_map,
    merge,
    status_change,
    status_of,
    store_uri,
    system_meta,
    unflatten,
)
from .media import candidates, consumed, read_media
from .names import (
    A_ARTIFACTS,
    A_CKPT_PRUNES,
    A_CONFIG,
    A_CONFIG_UPDATES,
    A_META,
    A_RESUMES,
    A_SUMMARIES,
    RESERVED_TAG_PREFIXES,
    T_EXIT_CODE,
    T_GROUP,
    T_PARENT,
    T_REASON,
    T_RUN_ID,
    T_START_TAGS,
    T_SUMMARY,
    value_back,
)

#: a chunk of ``stream_run``: at most this many events / metric points (100,000 points per chunk held
#: 29 MB more at the peak of a 200k-point migrate; 10,000 hold ~2 MB)
CHUNK_EVENTS = 2_000
CHUNK_POINTS = 10_000
_VERSION_DIR = re.compile(r"/v\d+$")

Chunk = tuple[list[Event], "float | None", list[str]]


@dataclass
class _Plan:
    """One run, ready to stream: what comes before the metrics, the media to merge into them by step,
    the artifacts (downloaded as they are streamed) and what comes after."""

    info: RunInfo
    mid: str
    head: list[Event]
    media: list[Media]
    #: (artifact path, trackkit's record of it or None, the file is in the run)
    artifacts: list[tuple[str, Mapping[str, Any] | None, bool]]
    tail: list[Event]
    metric_keys: list[str]
    infs: set[str]
    keys: dict[str, str]
    max_step: int | None
    base: str = ""
    notes: list[str] = field(default_factory=list)


class MlflowReader:
    """Reads MLflow runs (made by trackkit or not) back into the neutral model.

    Reading writes nothing: a sqlite store is opened read-only, and one that does not exist is a
    ``ConfigError`` naming the path. With ``must_exist=False`` (a migration target, which its sink
    creates) a missing store reads as empty, and is opened once it exists."""

    def __init__(self, spec: BackendSpec, *, must_exist: bool = True) -> None:
        self._spec = spec
        self._path = store_path(spec)
        self._opened: Connection | None = None
        self._parents: dict[str, str] = {}
        self._tmp: str | None = None
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
            runs: list[Any] = []
            ids = list(exps)
            for i in range(0, len(ids), 50):
                runs.extend(pages(self.client.search_runs, ids[i : i + 50], max_results=1000))
            for run in runs:  # the parents' trackkit ids, from the listing itself
                self._parents[run.info.run_id] = run.data.tags.get(T_RUN_ID) or run.info.run_id
            return [self._info(run, exps.get(str(run.info.experiment_id), "")) for run in runs]

    def read_run(self, run_id: str, *, metrics: bool = True) -> RunRecord:
        """The whole run; ``metrics=False``: without the metric histories (one request per key over a
        server), for what needs only the last values the listing already has (``trackkit show``)."""
        plan = self._open_run(run_id)
        events: list[Event] = []
        for chunk, _, _ in self._chunks(plan, metrics):
            events.extend(chunk)
        return RunRecord(plan.info, events)

    def stream_run(self, run_id: str) -> Iterator[Chunk]:
        """The run in chunks of at most ``CHUNK_EVENTS`` events / ``CHUNK_POINTS`` points, metrics (and media)
        in step order, with the fraction read so far; ``KeyError`` (at once) for an unknown run."""
        return self._chunks(self._open_run(run_id))

    def _open_run(self, run_id: str) -> _Plan:
        if self._open() is None:
            raise KeyError(run_id)
        with self._conn.errors("read_run"):
            found = self._find(run_id)
        if found is None:
            raise KeyError(run_id)
        with self._conn.errors("read_run"):
            return self._plan(*found)

    # ---- the stream

    def _chunks(self, plan: _Plan, metrics: bool = True) -> Iterator[Chunk]:
        conn = self._conn
        notes = plan.notes
        said = 0
        out: list[Event] = list(plan.head)
        points = 0
        media = sorted(plan.media, key=lambda m: (m.step, m.time))
        mi = 0
        info = plan.info
        with conn.errors("read_run (metrics)"):
            evs: Iterator[Metrics | SystemMetrics] = iter(())  # metrics=False: no history is read
            total: int | None = None
            if metrics and (conn.remote or self._path is None):
                evs = metric_events(paged_points(self._page(plan.mid), plan.metric_keys, notes), plan.keys, plan.infs)
            elif metrics and self._path is not None:
                total = sqlite_count(self._path, plan.mid)
                evs = sqlite_events(self._path, plan.mid, plan.keys, plan.infs)
            done = 0
            for ev in evs:
                step = ev.step if isinstance(ev, Metrics) else None  # system metrics: their own axis
                while step is not None and mi < len(media) and media[mi].step < step:
                    out.append(media[mi])
                    mi += 1
                out.append(ev)
                n = len(ev.values)
                points += n
                done += n
                if step is not None:
                    info.last_step = step if info.last_step is None else max(info.last_step, step)
                if len(out) >= CHUNK_EVENTS or points >= CHUNK_POINTS:
                    frac = done / total if total else _frac(step or 0, plan.max_step)
                    new = notes[said:]
                    info.notes.extend(new)
                    yield out, min(frac, 0.99) if frac is not None else None, new
                    said = len(notes)
                    out, points = [], 0
        out.extend(media[mi:])
        with conn.errors("read_run (artifacts)"):
            local_store = plan.base.startswith("file:") or (bool(plan.base) and os.path.isabs(plan.base))
            for path, rec, present in plan.artifacts:
                if present and rec is not None and rec.get("kind") == "checkpoint" and local_store:
                    # a checkpoint in a local store: its file where it is, not a download (a copy) of it
                    out.append(checkpoint_of(artifact_event(rec, plan.base)))
                elif present:
                    out.append(checkpoint_of(self._artifact(plan, path, rec)))
                elif rec is not None:  # recorded, but its file is gone (migrate says so; a pruned checkpoint)
                    out.append(checkpoint_of(artifact_event(rec, plan.base)))
                if len(out) >= CHUNK_EVENTS:
                    yield out, 0.99, []
                    out = []
        out.extend(plan.tail)
        info.notes.extend(notes[said:])
        yield out, 1.0, notes[said:]

    def _page(self, mid: str) -> Any:
        client = self.client
        page_of = getattr(client, "metric_history_page", None)
        if page_of is None:  # a plain MlflowClient (another tracking URI): its store
            store = client._tracking_client.store

            def page_of(run_id: str, key: str, max_results: int, token: str | None) -> tuple[list[Any], str | None]:
                got = store.get_metric_history(run_id, key, max_results=max_results, page_token=token)
                return list(got), getattr(got, "token", None)

        def page(key: str, size: int, token: str | None) -> tuple[list[Any], str | None]:
            items, nxt = page_of(mid, key, size, token)
            return items, nxt

        return page

    def _artifact(self, plan: _Plan, path: str, rec: Mapping[str, Any] | None) -> Artifact:
        """An artifact file of the run, downloaded into this reader's temporary directory."""
        local = self._download(plan.mid, path)
        if rec is not None:  # trackkit's record of it (sha256 as logged: a changed file shows)
            return artifact_event(rec, plan.base, local)
        h = hashlib.sha256()
        with open(local, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return Artifact(
            path=local, name=path, kind="file", sha256=h.hexdigest(), size=os.path.getsize(local),
            metadata={"mlflow_path": path}, source=f"runs:/{plan.mid}/{path}", time=plan.info.start_time or 0.0,
            location=store_uri(plan.base, path),
        )  # fmt: skip

    def _download(self, mid: str, path: str) -> str:
        if self._tmp is None:
            import atexit
            import shutil
            import tempfile

            self._tmp = tempfile.mkdtemp(prefix="trackkit-mlflow-read-")
            atexit.register(shutil.rmtree, self._tmp, True)
        dest = os.path.join(self._tmp, mid)  # MLflow keeps the artifact's path under it: dest/dir/name
        os.makedirs(dest, exist_ok=True)
        return str(self.client.download_artifacts(mid, path, dest))

    # ---- one run, planned

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

    def _parent_id(self, mlflow_parent: str) -> str:
        """The parent's trackkit run id (its ``trackkit.run_id`` tag), else its MLflow run id."""
        from mlflow.exceptions import MlflowException

        if mlflow_parent not in self._parents:
            try:
                tags = self.client.get_run(mlflow_parent).data.tags
                self._parents[mlflow_parent] = tags.get(T_RUN_ID) or mlflow_parent
            except MlflowException:
                self._parents[mlflow_parent] = mlflow_parent
        return self._parents[mlflow_parent]

    def _info(self, run: Any, project: str) -> RunInfo:
        tags: dict[str, str] = dict(run.data.tags)
        keys = key_map(tags)
        infs = inf_keys(tags)
        status = status_of(run, tags)
        user_tags = {keys.get(k, k): v for k, v in tags.items() if not k.startswith(RESERVED_TAG_PREFIXES)}
        params = {keys.get(k, k): value_back(v) for k, v in run.data.params.items()}
        last = {keys.get(k, k): restore(k, v, infs) for k, v in run.data.metrics.items()}
        steps = [m.step for m in getattr(run.data, "_metric_objs", [])]
        end = run.info.end_time
        location = run.info.run_id
        if self._conn.remote:
            location = f"{self._conn.display}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        parent = tags.get(T_PARENT) or None
        if parent is None and tags.get(T_PARENT_RUN):
            parent = self._parent_id(tags[T_PARENT_RUN])
        summary = {k[len(T_SUMMARY):]: value_back(v) for k, v in tags.items() if k.startswith(T_SUMMARY)}
        info = RunInfo(
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
            config=unflatten(params),
            last_metrics=last,
            last_step=max(steps) if steps else None,
            location=location,
            summary=summary,
            parent=parent,
        )
        read_best(info, tags, {keys.get(m.key, m.key): m.step for m in getattr(run.data, "_metric_objs", [])})
        return info

    def _plan(self, run: Any, project: str) -> _Plan:
        info = self._info(run, project)
        tags: dict[str, str] = dict(run.data.tags)
        mid = run.info.run_id
        ours = T_RUN_ID in tags  # a run trackkit wrote: its bookkeeping files are not the user's artifacts
        files, models = self._walk(mid)
        config = self._load_json(mid, A_CONFIG) if ours and A_CONFIG in files else None
        if not isinstance(config, dict):
            config = info.config
        meta = self._load_json(mid, A_META) if ours and A_META in files else None
        if not isinstance(meta, dict):
            meta = {} if ours else system_meta(tags, getattr(run, "inputs", None))
        start = _start_event(info, tags, config, meta)
        head: list[Event] = [start]
        later = {k: v for k, v in info.tags.items() if k not in start.tags}
        if later:
            head.append(Tags(later, time=start.start_time))
        head.extend(MetricGoal(k, g, time=start.start_time) for k, g in info.goals.items())
        merged = merge({}, config)
        for path, cfg in self._json_files(mid, files, A_CONFIG_UPDATES):
            ms = path.rsplit("/", 1)[-1].split("-", 1)[0]
            head.append(ConfigUpdate(cfg, time=int(ms) / 1000 if ms.isdigit() else 0.0))
            merged = merge(merged, cfg)
        info.config = merged
        summaries = [rec for _, rec in self._json_files(mid, files, A_SUMMARIES)]
        for rec in summaries:
            values = rec.get("values")
            if isinstance(values, dict):
                head.append(Summary(values, time=float(rec.get("time") or 0.0)))
        if summaries:
            info.summary = {}
            for ev in head:
                if isinstance(ev, Summary):
                    info.summary.update(ev.values)
        elif info.summary:
            head.append(Summary(dict(info.summary), time=start.start_time))
        # artifacts trackkit recorded, then every other file that is neither bookkeeping nor media
        recs = [rec for _, rec in self._json_files(mid, files, A_ARTIFACTS)] if ours else []
        recs.sort(key=lambda r: float(r.get("time") or 0.0) if isinstance(r.get("time"), (int, float)) else 0.0)
        owned = {str(r.get("artifact_path", "")) for r in recs}
        layout_dirs = {posixpath.dirname(p) for p in owned if _VERSION_DIR.search(posixpath.dirname(p))}
        media_files = candidates(files, layout_dirs, models)
        media = read_media(self.client, mid, media_files, tags, info.start_time or 0.0, self._conn.remote)
        for ev in media:
            info.media[ev.kind] = info.media.get(ev.kind, 0) + 1
            info.last_step = ev.step if info.last_step is None else max(info.last_step, ev.step)
        taken = consumed(media_files, tags) | owned
        artifacts: list[tuple[str, Mapping[str, Any] | None, bool]] = [
            (str(r.get("artifact_path", "")), r, str(r.get("artifact_path", "")) in files) for r in recs
        ]
        for path in sorted(files):
            if path in taken or (ours and _bookkeeping(path)) or any(path.startswith(d + "/") for d in layout_dirs):
                continue
            artifacts.append((path, None, True))
        tail: list[Event] = []
        change = status_change(tags)
        if change is not None:
            tail.append(change)
        for _, rec in self._json_files(mid, files, A_CKPT_PRUNES):
            try:
                tail.append(event_from_record({**rec, "k": "ckpt_prune"}))
            except (TypeError, ValueError):
                continue
        for _, rec in self._json_files(mid, files, A_RESUMES):
            try:
                tail.append(event_from_record({**rec, "k": "resume"}))
            except (TypeError, ValueError):
                continue
            info.resumed += 1
        if info.status.terminal and run.info.end_time:
            code = tags.get(T_EXIT_CODE, "")
            exit_code = int(code) if code.lstrip("-").isdigit() else None
            tail.append(RunFinished(status=info.status, time=run.info.end_time / 1000, reason=info.reason,
                                    exit_code=exit_code))
        steps = [m.step for m in getattr(run.data, "_metric_objs", [])]
        return _Plan(
            info=info, mid=mid, head=head, media=media, artifacts=artifacts, tail=tail,
            metric_keys=sorted(run.data.metrics), infs=inf_keys(tags), keys=key_map(tags),
            max_step=max(steps) if steps else None, base=run.info.artifact_uri or "",
        )  # fmt: skip

    def _walk(self, mid: str) -> tuple[set[str], set[str]]:
        """Every artifact file of the run (one listing per directory), and the logged-model directories
        (holding an ``MLmodel`` file) among its directories."""
        files: set[str] = set()
        models: set[str] = set()
        todo: list[str | None] = [None]
        while todo:
            path = todo.pop()
            infos = list(self.client.list_artifacts(mid, path))
            if path is not None and any(posixpath.basename(f.path) == "MLmodel" for f in infos):
                models.add(path)
            for f in infos:
                if f.is_dir:
                    todo.append(f.path)
                else:
                    files.add(f.path)
        return files, models

    def _json_files(self, mid: str, files: Iterable[str], folder: str) -> list[tuple[str, dict[str, Any]]]:
        """``(path, content)`` of the JSON files under ``folder``, in path order; only dicts."""
        out = []
        for path in sorted(p for p in files if p.startswith(folder + "/") and p.endswith(".json")):
            rec = self._load_json(mid, path)
            if isinstance(rec, dict):
                out.append((path, rec))
        return out

    def _load_json(self, mid: str, path: str) -> Any:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="trackkit-mlflow-") as tmp:
            local = self.client.download_artifacts(mid, path, tmp)
            try:
                with open(local, encoding="utf-8") as fh:
                    return json.load(fh)
            except (ValueError, UnicodeDecodeError):
                return None


def _bookkeeping(path: str) -> bool:
    """trackkit's own files in a run it wrote (config, meta, updates, records, indexes)."""
    return path in (A_CONFIG, A_META) or path.startswith("trackkit/")


def _frac(step: int, max_step: int | None) -> float | None:
    if not max_step or max_step <= 0:
        return None
    return max(0.0, min(1.0, step / max_step))


def _start_event(info: RunInfo, tags: Mapping[str, str], config: dict[str, Any], meta: dict[str, Any]) -> RunStarted:
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
        meta=meta,
        parent=info.parent,
    )

