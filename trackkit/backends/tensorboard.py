"""TensorBoard, the default backend — written with the ``tensorboard`` package alone.

Layout: ``<location>/<project>/[<group>/]<run name>/`` holds the event files,
``config.json`` and ``artifacts/<name>/v<N>/``. A marker file
``.trackkit_run_id`` ties the directory to its run; a second run with the same
name gets ``<run name>-<run id>``.

Mapping (docs/backends/tensorboard.md):

* metrics -> scalar summaries (``simple_value``: float32), step and wall time kept;
* config -> the HParams plugin (flattened with ``.``; lists/None as JSON text)
  and the full nested config as the text summary ``trackkit/config`` and ``config.json``;
* run identity, tags, status, artifacts -> JSON text summaries ``trackkit/run``,
  ``trackkit/tags``, ``trackkit/status``, ``trackkit/artifact``;
* the final status -> the HParams session end (SUCCESS for completed, FAILURE
  otherwise: TensorBoard has no KILLED) plus ``trackkit/status`` with the real one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from ..backend import BackendSpec, Capabilities, safe_name, sdk_errors
from ..errors import BackendError, ConfigError, MissingDependency
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
    flatten_config,
)

__all__ = ["TensorBoardReader", "TensorBoardSink", "check_location"]

MARKER = ".trackkit_run_id"
#: the run's current tags (TensorBoard keeps them only as text summaries): a re-attached sink reads them
TAGS_FILE = ".trackkit_tags.json"
TEXT_RUN, TEXT_CONFIG, TEXT_TAGS, TEXT_STATUS, TEXT_ARTIFACT = (
    "trackkit/run", "trackkit/config", "trackkit/tags", "trackkit/status", "trackkit/artifact"
)
_TEXT_TAGS = {TEXT_RUN, TEXT_CONFIG, TEXT_TAGS, TEXT_STATUS, TEXT_ARTIFACT}


#: a project, group, run or artifact name as one directory name
_safe = partial(safe_name, keep="-_.=", limit=120)


def _hparam_value(v: Any) -> bool | int | float | str:
    if isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, default=str)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)


def run_dir_for(root: str, project: str, group: str | None, name: str, run_id: str) -> str:
    """The directory of a run; the name gets ``-<run id>`` when another run holds it.

    The name's directory is claimed with an atomic ``mkdir``: two runs of one name whose
    agents open it in the same instant never share it (a check-then-create would let both in)."""
    base = os.path.join(root, _safe(project), *([_safe(group)] if group else []))
    d = os.path.join(base, _safe(name))
    os.makedirs(base, exist_ok=True)
    try:
        os.mkdir(d)
        return d  # ours
    except FileExistsError:
        pass
    try:
        with open(os.path.join(d, MARKER)) as fh:
            owner = fh.read().strip()
    except OSError:
        owner = ""  # not ours, or another run claimed it and has not written its marker yet
    if owner != run_id:
        d = os.path.join(base, f"{_safe(name)}-{run_id}")
    return d


class TensorBoardSink:
    capabilities = Capabilities(stores_inf=True, stores_nan=True, native_killed=False)

    def __init__(self, spec: BackendSpec) -> None:
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError as exc:  # pragma: no cover - tensorboard is a base dependency
            raise MissingDependency(
                "the tensorboard backend needs the tensorboard package. Fix: pip install 'trackkit[tensorboard]'"
            ) from exc
        self._Writer = EventFileWriter
        self._Event = event_pb2.Event
        self._Summary = summary_pb2.Summary
        self.root = spec.location or os.path.abspath("./runs")
        self.writer: Any = None
        self.dir: str | None = None
        self.tags: dict[str, str] = {}
        self.start: RunStarted | None = None

    # ------------------------------------------------------------------ emit

    def emit(self, batch: Sequence[Event]) -> None:
        doing = "write"
        with sdk_errors("tensorboard", lambda: doing):
            for ev in batch:
                doing = f"write {type(ev).__name__}"
                if isinstance(ev, Metrics):
                    self._scalars(ev)
                elif isinstance(ev, RunStarted):
                    self._open(ev)
                elif self.writer is None:
                    raise BackendError("tensorboard sink got events before RunStarted")
                elif isinstance(ev, ConfigUpdate):
                    self._config(ev.config, ev.time)
                elif isinstance(ev, Tags):
                    self.tags.update(ev.tags)
                    self._save_tags()
                    self._text(TEXT_TAGS, _dumps(self.tags), ev.time)
                elif isinstance(ev, Artifact):
                    self._artifact(ev)
                elif isinstance(ev, StatusChange):
                    self._text(TEXT_STATUS, _dumps(_status_json(ev.status, ev.reason, ev.step, ev.details)), ev.time,
                               ev.step)
                elif isinstance(ev, RunFinished):
                    self._finish(ev)
                elif isinstance(ev, RunResumed):
                    # the same run directory goes on; the next RunFinished writes the final session end
                    prev = ev.previous_status.value if ev.previous_status else None
                    details = {"resumed": ev.segment, "previous_status": prev}
                    self._text(TEXT_STATUS, _dumps(_status_json(Status.RUNNING, "resumed", ev.step, details)), ev.time,
                               ev.step)
            doing = "flush"
            if self.writer is not None:
                self.writer.flush()  # the agent advances its cursor only after this returns

    def _open(self, ev: RunStarted) -> None:
        self.start = ev
        self.dir = run_dir_for(self.root, ev.project, ev.group, ev.name, ev.run_id)
        reattach = os.path.exists(os.path.join(self.dir, "config.json"))
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, MARKER), "w") as fh:
            fh.write(ev.run_id)
        if self.writer is not None:
            self.writer.close()
        self.writer = self._Writer(self.dir, max_queue_size=1000, flush_secs=5)
        self.tags = dict(ev.tags)
        if reattach and os.path.exists(os.path.join(self.dir, TAGS_FILE)):
            # tags set after the start (an earlier segment, before an agent restart) stay in force
            with open(os.path.join(self.dir, TAGS_FILE), encoding="utf-8") as fh:
                self.tags.update(json.load(fh))
        info = {
            "run_id": ev.run_id, "project": ev.project, "name": ev.name, "group": ev.group,
            "start_time": ev.start_time, "meta": ev.meta,
        }
        self._text(TEXT_RUN, _dumps(info), ev.start_time)
        self._text(TEXT_TAGS, _dumps(self.tags), ev.start_time)
        if reattach:
            # a restarted agent or a resumed run: config updates already delivered stay in force
            with open(os.path.join(self.dir, "config.json"), encoding="utf-8") as fh:
                delivered = json.load(fh)
            self._config({k: v for k, v in ev.config.items() if k not in delivered}, ev.start_time)
        else:
            self._config(ev.config, ev.start_time)

    def _save_tags(self) -> None:
        assert self.dir is not None
        path = os.path.join(self.dir, TAGS_FILE)
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(self.tags, fh, ensure_ascii=False)
        os.replace(path + ".tmp", path)

    def _config(self, config: Mapping[str, Any], t: float) -> None:
        assert self.dir is not None and self.start is not None
        path = os.path.join(self.dir, "config.json")
        full: dict[str, Any] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                full = json.load(fh)
        full.update(config)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(full, fh, indent=2, default=str, ensure_ascii=False)
        os.replace(tmp, path)
        self._text(TEXT_CONFIG, _dumps(full), t)
        from tensorboard.plugins.hparams import summary_v2

        hp = {k: _hparam_value(v) for k, v in flatten_config(full).items()}
        if hp:
            self._add(summary_v2.hparams_pb(hp, trial_id=self.start.run_id, start_time_secs=self.start.start_time), t)

    def _scalars(self, ev: Metrics) -> None:
        V = self._Summary.Value
        values = [V(tag=k, simple_value=float(v)) for k, v in ev.values.items()]
        self.writer.add_event(self._Event(wall_time=ev.time, step=ev.step, summary=self._Summary(value=values)))

    def _artifact(self, ev: Artifact) -> None:
        assert self.dir is not None
        dest_dir = os.path.join(self.dir, "artifacts", _safe(ev.name), f"v{ev.version}")
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, os.path.basename(ev.path.rstrip(os.sep)))
        if os.path.isdir(ev.path):
            shutil.copytree(ev.path, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(ev.path, dest)
        rec = {
            "name": ev.name, "kind": ev.kind, "version": ev.version, "sha256": ev.sha256, "size": ev.size,
            "aliases": list(ev.aliases), "metadata": dict(ev.metadata), "path": dest, "source": ev.source,
        }
        self._text(TEXT_ARTIFACT, _dumps(rec), ev.time)

    def _finish(self, ev: RunFinished) -> None:
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        self._text(TEXT_STATUS, _dumps(_status_json(ev.status, ev.reason, None, {"final": True,
                                                                               "exit_code": ev.exit_code})), ev.time)
        tb_status = api_pb2.STATUS_SUCCESS if ev.status is Status.COMPLETED else api_pb2.STATUS_FAILURE
        info = plugin_data_pb2.SessionEndInfo(status=tb_status, end_time_secs=ev.time)
        content = plugin_data_pb2.HParamsPluginData(session_end_info=info, version=metadata.PLUGIN_DATA_VERSION)
        summary = self._Summary(
            value=[
                self._Summary.Value(
                    tag=metadata.SESSION_END_INFO_TAG,
                    metadata=self._meta(metadata.PLUGIN_NAME, content.SerializeToString()),
                )
            ]
        )
        self._add(summary, ev.time)

    def _meta(self, plugin: str, content: bytes) -> Any:
        from tensorboard.compat.proto import summary_pb2

        return summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin, content=content)
        )

    def _text(self, tag: str, text: str, t: float, step: int | None = None) -> None:
        from tensorboard.plugins.text import summary_v2

        self._add(summary_v2.text_pb(tag, text), t, step)

    def _add(self, summary: Any, t: float, step: int | None = None) -> None:
        self.writer.add_event(self._Event(wall_time=t, step=step or 0, summary=summary))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    @classmethod
    def native(cls, spec: BackendSpec, run_id: str, project: str, name: str) -> Any:
        """A ``tensorboard`` EventFileWriter on a sibling directory ``<run dir>/native``."""
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        d = os.path.join(spec.location or os.path.abspath("./runs"), _safe(project), _safe(name), "native")
        os.makedirs(d, exist_ok=True)
        return EventFileWriter(d)


def _status_json(status: Status, reason: str, step: int | None, details: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": status.value, "reason": reason, "step": step, "details": dict(details)}


# ---------------------------------------------------------------------- reader


def check_location(spec: BackendSpec) -> None:
    """At init: a logdir that is a file is a setup error (the sink would fail in the agent later)."""
    root = spec.location or os.path.abspath("./runs")
    if os.path.exists(root) and not os.path.isdir(root):
        raise ConfigError(
            f"backend {str(spec)!r}: {root} is a file, not a TensorBoard logdir. "
            "Fix: name a directory (created when missing), e.g. tensorboard:./runs"
        )


class TensorBoardReader:
    """Reads runs back through tensorboard's own EventAccumulator (every point, no reservoir sampling).
    Reading creates nothing: a logdir that does not exist is a ``ConfigError`` (``must_exist=False``,
    a migration target: it reads as empty until the sink creates it)."""

    def __init__(self, spec: BackendSpec, *, must_exist: bool = True) -> None:
        self.root = spec.location or os.path.abspath("./runs")
        self.spec = spec
        if must_exist and not os.path.isdir(self.root):
            what = "is a file, not a directory" if os.path.exists(self.root) else "does not exist"
            raise ConfigError(
                f"backend {str(spec)!r}: no TensorBoard logdir at {self.root} (it {what}). "
                "Fix: give the directory the runs were logged to, e.g. tensorboard:./runs"
            )

    def _run_dirs(self) -> list[str]:
        out = []
        for d, _dirs, files in os.walk(self.root):
            if MARKER in files or any(f.startswith("events.out.tfevents") for f in files):
                if os.path.basename(d) != "native":
                    out.append(d)
        return sorted(out)

    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        runs = [self._load(d).info for d in self._run_dirs()]
        return [r for r in runs if project is None or r.project == project]

    def read_run(self, run_id: str) -> RunRecord:
        for d in self._run_dirs():
            try:
                with open(os.path.join(d, MARKER)) as fh:
                    rid = fh.read().strip()
            except OSError:
                rid = os.path.relpath(d, self.root)
            if rid == run_id or os.path.relpath(d, self.root) == run_id:
                return self._load(d)
        raise KeyError(f"no tensorboard run {run_id!r} under {self.root}")

    def _load(self, d: str) -> RunRecord:
        from tensorboard.backend.event_processing import plugin_event_accumulator as pea
        from tensorboard.plugins.hparams import metadata as hp_meta
        from tensorboard.plugins.hparams import plugin_data_pb2
        from tensorboard.util import tensor_util

        # purge_orphaned_data=False: keep out-of-order steps and every status text (the default purges them)
        acc = pea.EventAccumulator(
            d, size_guidance={pea.TENSORS: 0}, purge_orphaned_data=False
        )
        acc.Reload()
        rel = os.path.relpath(d, self.root)
        parts = rel.split(os.sep)
        info = RunInfo(run_id=rel, project=parts[0], name=parts[-1], backend=f"tensorboard:{self.root}", location=d)
        events: list[Event] = []
        texts: dict[str, list[tuple[float, int, str]]] = {}
        points: dict[tuple[int, float], dict[str, float]] = {}
        for tag in acc.Tags().get("tensors", []):
            for te in acc.Tensors(tag):
                arr = tensor_util.make_ndarray(te.tensor_proto)
                if tag in _TEXT_TAGS:
                    raw = arr.item() if arr.shape == () else arr.reshape(-1)[0]
                    texts.setdefault(tag, []).append(
                        (te.wall_time, te.step, raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
                    )
                elif arr.size == 1 and arr.dtype.kind == "f":
                    points.setdefault((te.step, te.wall_time), {})[tag] = float(arr.item())
        start: dict[str, Any] = {}
        if TEXT_RUN in texts:
            start = json.loads(texts[TEXT_RUN][-1][2])
            info.run_id = start.get("run_id", info.run_id)
            info.project = start.get("project", info.project)
            info.name = start.get("name", info.name)
            info.group = start.get("group")
            info.start_time = start.get("start_time")
        if TEXT_CONFIG in texts:
            info.config = json.loads(texts[TEXT_CONFIG][-1][2])
        else:
            info.config = self._hparams(acc, hp_meta, plugin_data_pb2)
        if TEXT_TAGS in texts:
            info.tags = json.loads(texts[TEXT_TAGS][-1][2])
        events.append(
            RunStarted(
                run_id=info.run_id, project=info.project, name=info.name, start_time=info.start_time or 0.0,
                group=info.group, tags=dict(info.tags), config=dict(info.config), meta=start.get("meta", {}),
            )
        )
        for (step, wall), vals in sorted(points.items()):
            events.append(Metrics(step=step, time=wall, values=vals))
            info.last_metrics.update(vals)
            info.last_step = step if info.last_step is None else max(step, info.last_step)
        for wall, _step, text in sorted(texts.get(TEXT_ARTIFACT, [])):
            a = json.loads(text)
            events.append(
                Artifact(path=a["path"], name=a["name"], kind=a["kind"], sha256=a["sha256"], size=a["size"],
                         version=a.get("version", 0), aliases=tuple(a.get("aliases", ())),
                         metadata=a.get("metadata", {}), source=a.get("source", ""), time=wall)
            )
        statuses = [(wall, step, json.loads(text)) for wall, step, text in texts.get(TEXT_STATUS, [])]
        statuses.sort(key=lambda x: (x[0], bool((x[2].get("details") or {}).get("final"))))
        for wall, _step, s in statuses:
            st = Status(s["status"])
            details = s.get("details") or {}
            if details.get("final"):
                events.append(RunFinished(status=st, time=wall, reason=s.get("reason", ""),
                                          exit_code=details.get("exit_code")))
                info.end_time = wall
            elif details.get("resumed"):
                prev = details.get("previous_status")
                events.append(RunResumed(time=wall, segment=int(details["resumed"]), step=s.get("step"),
                                         previous_status=Status(prev) if prev in Status._value2member_map_ else None))
                info.resumed += 1
                info.end_time = None
            else:
                events.append(StatusChange(status=st, reason=s.get("reason", ""), step=s.get("step"), time=wall,
                                           details=details))
            info.status, info.reason = st, s.get("reason", "")
        if TEXT_STATUS not in texts:
            end = self._session_end(acc, hp_meta, plugin_data_pb2)
            if end is not None:
                info.status, info.end_time = end
        return RunRecord(info, events)

    @staticmethod
    def _hparams(acc: Any, hp_meta: Any, pd: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _tag, content in acc.PluginTagToContent(hp_meta.PLUGIN_NAME).items():
            data = pd.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                for k, v in data.session_start_info.hparams.items():
                    kind = v.WhichOneof("kind")
                    out[k] = getattr(v, kind) if kind else None
        return out

    @staticmethod
    def _session_end(acc: Any, hp_meta: Any, pd: Any) -> tuple[Status, float] | None:
        content = acc.PluginTagToContent(hp_meta.PLUGIN_NAME).get(hp_meta.SESSION_END_INFO_TAG)
        if content is None:
            return None
        end = pd.HParamsPluginData.FromString(content).session_end_info
        from tensorboard.plugins.hparams import api_pb2

        st = Status.COMPLETED if end.status == api_pb2.STATUS_SUCCESS else Status.CRASHED
        return st, end.end_time_secs
