"""``TensorBoardSink``: a run's events as TensorBoard event files, written with the ``tensorboard`` package alone.

Mapping (docs/backends/tensorboard.md):

* metrics -> scalar summaries (``simple_value``: float32), step and wall time kept;
* config -> the HParams plugin (flattened with ``.``; lists/None as JSON text)
  and the full nested config as the text summary ``trackkit/config`` and ``config.json``;
* run identity, tags, status, artifacts -> JSON text summaries ``trackkit/run``,
  ``trackkit/tags``, ``trackkit/status``, ``trackkit/artifact``;
* checkpoints -> a hard link (a copy only across filesystems) under ``artifacts/<name>/v<N>/`` with
  ``<file>.json`` (epoch, step, metrics, config, git, sha256 ...) beside it and a ``trackkit/artifact``
  record (kind ``checkpoint``); a prune removes both and writes ``trackkit/checkpoint_pruned``;
* media -> image, histogram, text (tables: rank-2 text) and audio summaries plus a
  ``trackkit/media`` record each (``media_out``);
* summary values -> the JSON text summary ``trackkit/summary``;
* a declared goal -> ``trackkit/goal``; when the run ends, the best value of each such metric as the
  scalar ``trackkit/best/<key>`` at its best step (the HParams dashboard shows it as a metric column);
* console output -> the text summary ``console``, one per chunk, at the step of its first line
  number (each line indented: a Markdown code block); system metrics -> scalars ``system/...`` at
  the sample's number, with its wall time (TensorBoard's "wall" axis);
* the final status -> the HParams session end (SUCCESS for completed, FAILURE
  otherwise: TensorBoard has no KILLED) plus ``trackkit/status`` with the real one;
* a child run (``RunStarted.parent``) -> a directory in its parent's run directory (a child
  started in the last minute waits up to ``PARENT_WAIT`` s for its parent's directory to appear:
  the parent's start is delivered by another agent; a child whose parent is not in the logdir
  is placed like any run).

One event file per sink (``records.EventFile``), written synchronously: a batch is one ``write``
and one flush; scalar events are encoded by hand (``records.scalar_event``).

A batch the agent sends again after a failure is not written twice: the sink remembers the
events of its last ``emit`` and skips them (``fingerprint``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from ...backend import BackendSpec, Capabilities, sdk_errors
from ...errors import BackendError, MissingDependency
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
from .layout import (
    BEST_FILE,
    BEST_PREFIX,
    MARKER,
    TAGS_FILE,
    TEXT_ARTIFACT,
    TEXT_CKPT_PRUNED,
    TEXT_CONFIG,
    TEXT_CONSOLE,
    TEXT_GOAL,
    TEXT_RUN,
    TEXT_STATUS,
    TEXT_SUMMARY,
    TEXT_TAGS,
    dumps,
    find_run_dir,
    root_of,
    run_dir_for,
    safe,
    status_json,
)
from .media_out import media_summary
from .records import EventFile, scalar_event

#: seconds a live child run's sink waits for its parent's directory (module docstring)
PARENT_WAIT = 10.0

__all__ = ["MEDIA_CAPABILITIES", "TensorBoardSink", "fingerprint"]

_log = logging.getLogger("trackkit.tensorboard")

#: what TensorBoard stores differently (docs/backends/tensorboard.md#media)
MEDIA_CAPABILITIES = {
    "table": "a text-dashboard table (cells as text; the typed table kept as JSON in the trackkit/media text, "
             "from which it is read back)",
}


def _link(src: str, dest: str) -> None:
    """``dest`` as a hard link to the immutable ``src`` (no bytes copied); a copy across filesystems."""
    try:
        if os.path.samefile(src, dest):
            return
        os.unlink(dest)
    except OSError:
        pass
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _hparam_value(v: Any) -> bool | int | float | str:
    if isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, default=str)


def fingerprint(ev: Event) -> Hashable:
    """What makes an event the same event when the agent sends its batch again (None: never skipped).
    Metrics: step, time and values (the very objects of the re-sent batch; NaN hashes by identity)."""
    if isinstance(ev, RunStarted):
        return None  # always handled: it (re-)attaches the run directory
    if isinstance(ev, Metrics):
        return ("m", ev.step, ev.time, tuple(ev.values.items()))
    if isinstance(ev, Media):
        return ("media", ev.key, ev.step, ev.time, ev.kind, ev.sha256)
    return json.dumps(event_to_record(ev), sort_keys=True, default=str)


class TensorBoardSink:
    capabilities = Capabilities(stores_inf=True, stores_nan=True, native_killed=False, media=MEDIA_CAPABILITIES)

    def __init__(self, spec: BackendSpec) -> None:
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
        except ImportError as exc:  # pragma: no cover - tensorboard is a base dependency
            raise MissingDependency(
                "the tensorboard backend needs the tensorboard package. Fix: pip install 'trackkit[tensorboard]'"
            ) from exc
        self._Event = event_pb2.Event
        self._Summary = summary_pb2.Summary
        self.root = root_of(spec)
        self.writer: Any = None
        self.dir: str | None = None
        self.tags: dict[str, str] = {}
        self.start: RunStarted | None = None
        #: fingerprints of the events of the last emit: a batch sent again skips them
        self.recent: set[Hashable] = set()
        #: declared goals, and the best (value, step) of those metrics so far (``BEST_FILE`` keeps them)
        self.goals: dict[str, str] = {}
        self.best: dict[str, list[Any]] = {}
        self._best_changed = False

    # ------------------------------------------------------------------ emit

    def emit(self, batch: Sequence[Event]) -> None:
        doing = "write"
        seen: set[Hashable] = set()  # this batch's events already in the event files (written before, or now)
        fresh: set[Hashable] = set()  # ... written by this call
        ok = False
        if self.writer is not None:
            self.writer.dropped = False
        try:
            with sdk_errors("tensorboard", lambda: doing):
                recent, writer = self.recent, self.writer
                for ev in batch:
                    if type(ev) is Metrics and writer is not None:  # the hot path: a step's scalars
                        fp: Hashable = ("m", ev.step, ev.time, tuple(ev.values.items()))
                        if fp not in recent and fp not in seen:
                            writer.add(scalar_event(ev.step, ev.time, ev.values))
                            fresh.add(fp)
                            if self.goals:
                                self._track(ev)
                        seen.add(fp)
                        continue
                    fp = fingerprint(ev)
                    if fp is not None and (fp in self.recent or fp in seen):
                        seen.add(fp)
                        continue  # sent again after a failure: already written
                    doing = f"write {type(ev).__name__}"
                    self._event(ev)
                    writer = self.writer
                    doing = "write Metrics"
                    if fp is not None:
                        seen.add(fp)
                        fresh.add(fp)
                doing = "flush"
                if self.writer is not None:
                    self.writer.flush()  # the agent advances its cursor only after this returns
                if self._best_changed:
                    self._save_best()
                ok = True
        finally:
            if not ok and fresh and not self._flushed():
                seen -= fresh  # the writer failed: what this call queued may be lost, so write it again
            self.recent = seen | (self.recent if not ok else set())

    def _flushed(self) -> bool:
        try:
            if self.writer is not None:
                self.writer.flush()
                return not self.writer.dropped
            return True
        except Exception:
            return False

    def _event(self, ev: Event) -> None:
        if isinstance(ev, Metrics):
            self._scalars(ev)
        elif isinstance(ev, RunStarted):
            self._open(ev)
        elif self.writer is None:
            raise BackendError("tensorboard sink got events before RunStarted")
        elif isinstance(ev, Media):
            self._write(self._Event(wall_time=ev.time, step=ev.step, summary=media_summary(ev)))
        elif isinstance(ev, ConfigUpdate):
            self._config(ev.config, ev.time)
        elif isinstance(ev, Tags):
            self.tags.update(ev.tags)
            self._save_tags()
            self._text(TEXT_TAGS, dumps(self.tags), ev.time)
        elif isinstance(ev, Artifact):
            self._artifact(ev)
        elif isinstance(ev, Checkpoint):
            try:
                self._artifact(ev.as_artifact(), link=True)
            except FileNotFoundError:  # retention removed it before it was delivered: nothing to keep
                _log.info("tensorboard: checkpoint %s v%d was pruned before delivery; skipped", ev.name, ev.version)
        elif isinstance(ev, CheckpointPruned):
            self._pruned(ev)
        elif isinstance(ev, Summary):
            self._text(TEXT_SUMMARY, dumps(dict(ev.values)), ev.time)
        elif isinstance(ev, MetricGoal):
            self.goals[ev.key] = ev.goal
            self._best_changed = True
            self._text(TEXT_GOAL, dumps({"key": ev.key, "goal": ev.goal}), ev.time)
        elif isinstance(ev, StatusChange):
            self._text(TEXT_STATUS, dumps(status_json(ev.status, ev.reason, ev.step, ev.details)), ev.time, ev.step)
        elif isinstance(ev, RunFinished):
            self._finish(ev)
        elif isinstance(ev, Console):
            self._text(TEXT_CONSOLE, "".join("    " + line + "\n" for line in ev.text.splitlines()), ev.time, ev.line)
        elif isinstance(ev, SystemMetrics):
            self.writer.add(scalar_event(ev.seq, ev.time, ev.values))
        elif isinstance(ev, RunResumed):
            # the same run directory goes on; the next RunFinished writes the final session end
            prev = ev.previous_status.value if ev.previous_status else None
            details = {"resumed": ev.segment, "previous_status": prev}
            self._text(TEXT_STATUS, dumps(status_json(Status.RUNNING, "resumed", ev.step, details)), ev.time, ev.step)

    def _parent_dir(self, ev: RunStarted) -> str | None:
        """The parent's directory. A live child (started in the last minute: a sweep's trial) waits up
        to ``PARENT_WAIT`` s for it: the parent's own agent may not have delivered its start yet."""
        assert ev.parent is not None
        found = find_run_dir(self.root, ev.project, ev.parent)
        deadline = time.monotonic() + (PARENT_WAIT if abs(time.time() - ev.start_time) < 60 else 0)
        while found is None and time.monotonic() < deadline:
            time.sleep(0.05)
            found = find_run_dir(self.root, ev.project, ev.parent)
        return found

    def _open(self, ev: RunStarted) -> None:
        self.start = ev
        self.dir = None
        if ev.parent:  # a child run: in its parent's directory (where it already is, when re-attached)
            mine = find_run_dir(self.root, ev.project, ev.run_id)
            parent_dir = None if mine else self._parent_dir(ev)
            self.dir = mine or (run_dir_for(self.root, ev.project, ev.group, ev.name, ev.run_id, parent_dir)
                                if parent_dir else None)
        if self.dir is None:
            self.dir = run_dir_for(self.root, ev.project, ev.group, ev.name, ev.run_id)
        reattach = os.path.exists(os.path.join(self.dir, "config.json"))
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, MARKER), "w") as fh:
            fh.write(ev.run_id)
        if self.writer is not None:
            self.writer.close()
        self.writer = EventFile(self.dir)
        self._load_best()
        self.tags = dict(ev.tags)
        if reattach and os.path.exists(os.path.join(self.dir, TAGS_FILE)):
            # tags set after the start (an earlier segment, before an agent restart) stay in force
            with open(os.path.join(self.dir, TAGS_FILE), encoding="utf-8") as fh:
                self.tags.update(json.load(fh))
        info = {
            "run_id": ev.run_id, "project": ev.project, "name": ev.name, "group": ev.group,
            "start_time": ev.start_time, "meta": ev.meta,
        }
        if ev.parent:
            info["parent"] = ev.parent
        self._text(TEXT_RUN, dumps(info), ev.start_time)
        self._text(TEXT_TAGS, dumps(self.tags), ev.start_time)
        if reattach:
            # a restarted agent or a resumed run: config updates already delivered stay in force
            with open(os.path.join(self.dir, "config.json"), encoding="utf-8") as fh:
                delivered = json.load(fh)
            self._config({k: v for k, v in ev.config.items() if k not in delivered}, ev.start_time)
        else:
            self._config(ev.config, ev.start_time)

    def _track(self, ev: Metrics) -> None:
        """The best value and step of each metric with a declared goal."""
        for key, goal in self.goals.items():
            v = ev.values.get(key)
            if v is None or v != v:
                continue
            b = self.best.get(key)
            if b is None or (v > b[0] if goal == "max" else v < b[0]):
                self.best[key] = [float(v), ev.step]
                self._best_changed = True

    def _save_best(self) -> None:
        assert self.dir is not None
        path = os.path.join(self.dir, BEST_FILE)
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump({"goals": self.goals, "best": self.best}, fh)
        os.replace(path + ".tmp", path)
        self._best_changed = False

    def _load_best(self) -> None:
        self.goals, self.best, self._best_changed = {}, {}, False
        assert self.dir is not None
        try:
            with open(os.path.join(self.dir, BEST_FILE), encoding="utf-8") as fh:
                saved = json.load(fh)
            self.goals = {str(k): str(g) for k, g in saved.get("goals", {}).items()}
            self.best = {str(k): [float(b[0]), int(b[1])] for k, b in saved.get("best", {}).items()}
        except (OSError, ValueError, TypeError, AttributeError, IndexError):
            return

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
        self._text(TEXT_CONFIG, dumps(full), t)
        from tensorboard.plugins.hparams import summary_v2

        hp = {k: _hparam_value(v) for k, v in flatten_config(full).items()}
        if hp:
            self._add(summary_v2.hparams_pb(hp, trial_id=self.start.run_id, start_time_secs=self.start.start_time), t)

    def _scalars(self, ev: Metrics) -> None:
        if self.writer is None:
            raise BackendError("tensorboard sink got events before RunStarted")
        self.writer.add(scalar_event(ev.step, ev.time, ev.values))

    def _write(self, event: Any) -> None:
        self.writer.add(event.SerializeToString())

    def _artifact_dir(self, name: str, version: int) -> str:
        assert self.dir is not None
        return os.path.join(self.dir, "artifacts", safe(name), f"v{version}")

    def _artifact(self, ev: Artifact, link: bool = False) -> None:
        """``link``: the file is immutable (a checkpoint): a hard link to it, a copy only where none can be made."""
        dest_dir = self._artifact_dir(ev.name, ev.version)
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, os.path.basename(ev.path.rstrip(os.sep)))
        if os.path.isdir(ev.path):
            shutil.copytree(ev.path, dest, dirs_exist_ok=True, copy_function=_link if link else shutil.copy2)
        elif link:
            _link(ev.path, dest)
        else:
            shutil.copy2(ev.path, dest)
        rec = {
            "name": ev.name, "kind": ev.kind, "version": ev.version, "sha256": ev.sha256, "size": ev.size,
            "aliases": list(ev.aliases), "metadata": dict(ev.metadata), "path": dest, "source": ev.source,
        }
        if link:  # the metadata beside the file, for someone who looks in the run directory
            with open(dest + ".json.tmp", "w", encoding="utf-8") as fh:
                json.dump({**rec, "time": ev.time}, fh, indent=2, default=str, ensure_ascii=False)
            os.replace(dest + ".json.tmp", dest + ".json")
        self._text(TEXT_ARTIFACT, dumps(rec), ev.time)

    def _pruned(self, ev: CheckpointPruned) -> None:
        """Retention removed a checkpoint: its link (and metadata) go from the run directory too."""
        shutil.rmtree(self._artifact_dir(ev.name, ev.version), ignore_errors=True)
        rec = {"name": ev.name, "version": ev.version, "reason": ev.reason, "aliases": dict(ev.aliases)}
        self._text(TEXT_CKPT_PRUNED, dumps(rec), ev.time)

    def _finish(self, ev: RunFinished) -> None:
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        self._text(TEXT_STATUS, dumps(status_json(ev.status, ev.reason, None, {"final": True,
                                                                               "exit_code": ev.exit_code})), ev.time)
        for key, (value, step) in sorted(self.best.items()):  # the HParams dashboard's metric columns
            self.writer.add(scalar_event(step, ev.time, {BEST_PREFIX + key: value}))
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
        self._write(self._Event(wall_time=t, step=step or 0, summary=summary))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    @classmethod
    def native(cls, spec: BackendSpec, run_id: str, project: str, name: str) -> Any:
        """A ``tensorboard`` EventFileWriter on a sibling directory ``<run dir>/native``."""
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        d = os.path.join(root_of(spec), safe(project), safe(name), "native")
        os.makedirs(d, exist_ok=True)
        return EventFileWriter(d)
