"""Weights & Biases adapter: ``WandbSink`` writes runs with the W&B SDK, ``WandbReader`` reads them back.

Backend string: ``wandb[:PROJECT][?entity=E&group=G&mode=offline|online&dir=D]``.
See ``docs/backends/wandb.md`` for the mapping, the limits and the status rule.

The sink runs inside trackkit's delivery agent, never in the training thread.
The reader parses W&B's own ``run-<id>.wandb`` files (W&B 0.31 ships no Python
reader for them) and decodes each record with W&B's protobuf module; runs that
live only on a W&B server are read through ``wandb.Api()`` when an API key is set.

Importing this module is cheap: ``wandb`` is imported when a sink or reader is built.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backend import BackendSpec, Capabilities, map_key
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
)

__all__ = ["WandbReader", "WandbSink", "iter_records", "iter_run_file", "wandb_run_id"]

log = logging.getLogger("trackkit.wandb")

#: top-level config key holding trackkit's own bookkeeping (hidden in the W&B UI: leading ``_``)
INTERNAL = "_trackkit"
#: history column holding points whose step was below the current W&B step (JSON list)
LATE_KEY = "trackkit/late"
#: history column holding the event time when delivery lagged (replay, sync)
TIME_KEY = "trackkit/time"
#: the tag that carries the final status, as on every backend
STATUS_TAG = "trackkit.status"
#: metric keys W&B would lose or confuse; they are mapped (and mapped back by the reader)
_RESERVED_METRIC_KEYS = frozenset({"", "_step", "_timestamp", "_runtime", "_wandb", LATE_KEY, TIME_KEY})
_RESERVED_CONFIG_KEYS = frozenset({"_wandb", INTERNAL})
_HISTORY_INTERNAL = frozenset({"_step", "_timestamp", "_runtime", "_wandb", LATE_KEY, TIME_KEY})
_MAX_TAG = 64
_ART_NAME_CHARS = r"a-zA-Z0-9_\-."
#: a Metrics event delivered this many seconds after it happened also records its own time
_TIME_LAG_S = 2.0


def _install_hint() -> str:
    return "Fix: pip install 'trackkit[wandb]'"


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError as exc:
        raise MissingDependency(f"the wandb backend needs the 'wandb' package. {_install_hint()}") from exc
    return wandb


def _sha(text: str, n: int = 8) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def wandb_run_id(run_id: str) -> str:
    """The W&B run id of a trackkit run id: deterministic, so a resumed run re-attaches.

    Ids of lowercase letters, digits, ``_`` and ``-`` (at most 64) are used unchanged;
    any other id is mapped by the key rule (``-h`` + 8 hex digits of its SHA-1).
    """
    return map_key(run_id, allowed=r"a-z0-9_\-", max_length=64, separator_rules=False)


def _project_name(project: str) -> str:
    """W&B project names: at most 128 characters, none of ``/ \\ # ? % :`` (mapped by the key rule)."""
    name = project or "trackkit"
    if len(name) <= 128 and not re.search(r"[/\\#?%:]", name):
        return name
    suffix = f"-h{_sha(name)}"
    return re.sub(r"[/\\#?%:]", "_", name)[: 128 - len(suffix)] + suffix


def _reserved(name: str) -> str:
    return f"{name or 'key'}-h{_sha(name)}"


def _tag_text(key: str, value: str) -> str:
    return key if not value else f"{key}:{value}"


def _parse_tag(text: str) -> tuple[str, str]:
    key, _, value = text.partition(":")
    return key, value


@contextlib.contextmanager
def _seam(what: str) -> Iterator[None]:
    """Translate any SDK error into ``BackendError`` at the adapter seam."""
    try:
        yield
    except (BackendError, ConfigError, MissingDependency):
        raise
    except Exception as exc:
        raise BackendError(f"wandb: {what} failed: {type(exc).__name__}: {exc}") from exc


def _clear_inherited_service() -> None:
    """Drop a ``WANDB_SERVICE`` this process inherited from its parent (e.g. the trainer).

    W&B's helper started by the trainer dies with the trainer; the agent must run
    its own. A token written by this very process (its pid is in the token) is kept.
    """
    token = os.environ.get("WANDB_SERVICE")
    if not token:
        return
    parts = token.split("-", 2)
    if len(parts) < 2 or parts[1] != str(os.getpid()):
        os.environ.pop("WANDB_SERVICE", None)


#: SDK runs the sinks of this process hold open, by W&B id (``native`` hands them out)
_OPEN_RUNS: dict[str, Any] = {}


def _default_root(options: Mapping[str, str]) -> str:
    return os.path.abspath(os.path.expanduser(options.get("dir") or os.environ.get("WANDB_DIR") or os.getcwd()))


# ====================================================================== the sink


class WandbSink:
    """Delivers trackkit events to one W&B run per ``RunStarted``.

    Options (``wandb:PROJECT?...``): ``entity``, ``group``, ``mode`` (``offline``/``online``;
    default: W&B's own setting), ``dir`` (default ``WANDB_DIR`` or the cwd),
    ``init_timeout``, ``finish_timeout`` and ``flush_timeout`` in seconds (default 60, 300, 30).
    """

    capabilities = Capabilities(native_killed=False)

    def __init__(self, spec: BackendSpec) -> None:
        self._wandb = _import_wandb()
        self.spec = spec
        opts = dict(spec.options)
        mode = opts.get("mode")
        if mode is not None and mode not in ("offline", "online", "disabled"):
            raise ConfigError(f"backend {spec}: mode={mode!r} is not one of offline, online, disabled")
        self._mode = mode
        self._entity = opts.get("entity") or None
        self._group = opts.get("group") or None
        self._root = _default_root(opts)
        try:
            self._init_timeout = float(opts.get("init_timeout", "60"))
            self._finish_timeout = float(opts.get("finish_timeout", "300"))
            self._flush_timeout = float(opts.get("flush_timeout", "30"))
        except ValueError as exc:
            raise ConfigError(f"backend {spec}: the *_timeout options must be numbers of seconds") from exc
        #: the run's RunStarted, to re-attach when a resumed run continues after its RunFinished
        self._start_ev: RunStarted | None = None
        self._reset()

    def _reset(self) -> None:
        self.run: Any = None
        self._run_id: str | None = None
        self._finished = False
        #: the current W&B step (highest step logged); lower steps go to ``trackkit/late``
        self._step: int | None = None
        #: W&B steps below this were written by an earlier segment of the run (resume)
        self._floor: int | None = None
        self._row_keys: set[str] = set()
        self._late_rows: list[list[Any]] = []
        self._late_dirty = False
        self._late_total = 0
        self._warned_late = False
        self._config: dict[str, Any] = {}
        self._config_dirty = False
        self._internal: dict[str, Any] = {}
        self._tags: dict[str, str] = {}  # W&B tag text -> trackkit key (for replacement)

    # ------------------------------------------------------------------ API

    def emit(self, batch: Sequence[Event]) -> None:
        try:
            self._emit(batch)
        except BaseException:
            if self.run is not None and not self._finished:
                with contextlib.suppress(Exception):
                    self._flush_late()
            raise
        if self.run is not None and not self._finished:
            self._flush_late()

    def _emit(self, batch: Sequence[Event]) -> None:
        for ev in batch:
            if isinstance(ev, RunStarted):
                self._start(ev)
                continue
            if isinstance(ev, RunResumed):
                self._resume(ev)
                continue
            if self._finished:
                continue  # a retried batch after RunFinished: already delivered
            if self.run is None:
                raise BackendError("wandb: received an event before RunStarted")
            if isinstance(ev, Metrics):
                self._metrics(ev)
            elif isinstance(ev, ConfigUpdate):
                self._config_update(ev)
            elif isinstance(ev, Tags):
                self._add_tags(ev.tags)
            elif isinstance(ev, Artifact):
                self._artifact(ev)
            elif isinstance(ev, StatusChange):
                self._status(ev)
            elif isinstance(ev, RunFinished):
                self._finish(ev)

    def close(self) -> None:
        """Finish an open run WITHOUT a trackkit status: the agent stopped before the run ended.

        The run is marked *preempting* (W&B's "may resume") and finished with exit code 1,
        plus the summary ``trackkit/detached: true``; the reader reports it as ``killed``
        with the reason "delivery stopped before the run finished" unless a later
        segment (a resume) finishes it. It is never marked completed.
        """
        if self.run is None or self._finished:
            return
        run = self.run
        try:
            self._flush_late()
            self._log_config_artifact()
            with _seam("close"):
                run.summary.update({"trackkit/detached": True})
                with contextlib.suppress(Exception):
                    run.mark_preempting()
                path = self._run_file(run)
                run.finish(exit_code=1)
            self._wait_written(path)
        finally:
            self._finished = True
            self._forget(run)
            self.run = None

    @classmethod
    def native(cls, spec: BackendSpec, run_id: str, project: str, name: str) -> Any:
        """``Run.native("wandb")``: a W&B SDK run (``wandb.Run``) in the CALLER's process.

        It attaches to the same W&B run id (``resume="allow"``) and writes its own segment
        (offline: its own ``run-<id>.wandb``). Calls block on the SDK, can raise, are not
        journaled and bypass trackkit's step, key and status rules; the reader takes metrics,
        config updates and artifacts from it, never tags or status. Finish it yourself.
        """
        wandb = _import_wandb()
        wid = wandb_run_id(run_id)
        if wid in _OPEN_RUNS:  # the thread agent holds it in this process: W&B allows one writer per id
            return _OPEN_RUNS[wid]
        opts = dict(spec.options)
        _clear_inherited_service()
        settings_kw: dict[str, Any] = {"silent": True, "x_disable_stats": True, "x_save_requirements": False}
        if opts.get("mode"):
            settings_kw["mode"] = opts["mode"]
        root = _default_root(opts)
        os.makedirs(root, exist_ok=True)
        with _seam("init (native)"):
            return wandb.init(
                project=_project_name(spec.location or project),
                entity=opts.get("entity") or None,
                group=opts.get("group") or None,
                name=name or None,
                id=wid,
                resume="allow",
                config={INTERNAL: {"native": True, "run_id": run_id}},
                dir=root,
                reinit="create_new",
                settings=wandb.Settings(**settings_kw),
            )

    @property
    def sdk_run(self) -> Any:
        """The agent-side SDK run while it is open (for diagnostics), else None."""
        return self.run

    # ------------------------------------------------------------------ start / resume

    def _start(self, ev: RunStarted) -> None:
        if self.run is not None and self._run_id == ev.run_id:
            return  # idempotent: the same run is already open
        if self.run is not None:
            self.close()
        self._reset()
        self._start_ev = ev
        wandb = self._wandb
        _clear_inherited_service()
        wid = wandb_run_id(ev.run_id)
        project = _project_name(self.spec.location or ev.project)
        os.makedirs(self._root, exist_ok=True)

        prior = _prior_state(self._root, wid)
        internal: dict[str, Any] = {
            "v": 1,
            "run_id": ev.run_id,
            "project": ev.project,
            "name": ev.name,
            "start_time": ev.start_time,
            "meta": dict(ev.meta),
            "keys": {},
            "config_keys": {},
            "tags": {},
        }
        config: dict[str, Any] = {}
        if prior is not None:
            # re-attach: keep what earlier segments learned (config updates, mapped keys, tags)
            for part in ("keys", "config_keys", "tags"):
                internal[part].update(prior.internal.get(part, {}))
            source: Mapping[str, Any] = prior.config
            self._floor = prior.max_step
            for text in prior.wandb_tags:
                pair = internal["tags"].get(text)
                self._tags[text] = str(pair[0]) if isinstance(pair, list) and pair else _parse_tag(text)[0]
        else:
            source = ev.config
        for k, v in source.items():
            config[self._config_key(str(k), internal)] = v
        self._internal = internal
        self._config = {str(k): v for k, v in source.items()}
        if prior is None:  # on a resume the earlier segments' tags are the current ones
            for k, v in ev.tags.items():
                self._tag_add_local(str(k), str(v))

        settings_kw: dict[str, Any] = {
            "silent": True,
            "console": "off",
            "x_disable_stats": True,
            "x_disable_meta": True,
            "x_disable_machine_info": True,
            "x_save_requirements": False,
            "save_code": False,
            "disable_git": True,
            "disable_job_creation": True,
            "init_timeout": self._init_timeout,
            "finish_timeout": self._finish_timeout,
        }
        if self._mode:
            settings_kw["mode"] = self._mode
        with _seam("init"):
            settings = wandb.Settings(**settings_kw)
            self.run = wandb.init(
                project=project,
                entity=self._entity,
                group=ev.group or self._group,
                name=ev.name or None,
                id=wid,
                resume="allow",
                config={**config, INTERNAL: internal},
                tags=sorted(self._tags),
                dir=self._root,
                reinit="create_new",
                settings=settings,
            )
        self._run_id = ev.run_id
        _OPEN_RUNS[wid] = self.run
        if prior is None or prior.max_step is None:
            starting = getattr(self.run, "starting_step", 0) or 0
            if starting > 0:  # online resume: the server already holds steps below this
                self._floor = starting - 1
        self._config_dirty = prior is None
        if prior is None:
            self._log_config_artifact()

    def _resume(self, ev: RunResumed) -> None:
        """A resumed trackkit run: re-open the same W&B run (a new segment) if its earlier segment
        was finished, and say it is running again; the next RunFinished sets the final status."""
        if self.run is None:
            if self._start_ev is None:
                raise BackendError("wandb: received RunResumed before RunStarted")
            self._start(self._start_ev)
        for text, key in list(self._tags.items()):
            if key == STATUS_TAG:  # the earlier segment's final status no longer holds
                del self._tags[text]
        with _seam("resume"):
            self.run.tags = tuple(sorted(self._tags))
            self.run.summary.update(
                {
                    "trackkit/status": Status.RUNNING.value,
                    "trackkit/reason": "",
                    "trackkit/finished": False,
                    "trackkit/resumed": ev.segment,
                    "trackkit/resume_time": ev.time,
                    "trackkit/resume_step": ev.step,
                    "trackkit/previous_status": ev.previous_status.value if ev.previous_status else None,
                }
            )

    # ------------------------------------------------------------------ keys

    def _metric_key(self, key: str) -> str:
        if key in _RESERVED_METRIC_KEYS:
            mapped = _reserved(key)
            if self._internal["keys"].get(mapped) != key:
                self._internal["keys"][mapped] = key
                self._push_internal()
            return mapped
        return key

    @staticmethod
    def _config_key(key: str, internal: dict[str, Any]) -> str:
        if key in _RESERVED_CONFIG_KEYS:
            mapped = _reserved(key)
            internal["config_keys"][mapped] = key
            return mapped
        return key

    def _push_internal(self) -> None:
        if self.run is not None:
            with _seam("config update"):
                self.run.config.update({INTERNAL: self._internal}, allow_val_change=True)

    # ------------------------------------------------------------------ metrics

    def _metrics(self, ev: Metrics) -> None:
        step = int(ev.step)
        values = dict(ev.values)
        late: dict[str, float] = {}
        current = self._step if self._step is not None else self._floor
        if current is None or step > current or (step == current and self._step is None):
            pass  # a new W&B row
        elif step == current:
            # W&B keeps one value per key and step: a second value for a key goes to the late column
            late = {k: v for k, v in values.items() if k in self._row_keys}
            values = {k: v for k, v in values.items() if k not in self._row_keys}
        else:
            late, values = values, {}
        if values:
            if self._step is None or step > self._step:
                self._flush_late()
                self._step = step
                self._row_keys = set()
                self._late_rows = []
            row: dict[str, Any] = {self._metric_key(k): v for k, v in values.items()}
            if ev.time and abs(time.time() - ev.time) > _TIME_LAG_S:
                row[TIME_KEY] = ev.time
            with _seam("log"):
                self.run.log(row, step=step)
            self._row_keys.update(values)
        if late:
            self._record_late(step, ev.time, late)

    def _record_late(self, step: int, when: float, values: Mapping[str, float]) -> None:
        if self._step is None:
            self._step = self._floor if self._floor is not None else step
        self._late_rows.append([step, when, dict(values)])
        self._late_dirty = True
        self._late_total += len(values)
        if not self._warned_late:
            self._warned_late = True
            msg = (
                f"wandb: metric points at step {step}, below the current W&B step {self._step} "
                f"(W&B would drop them silently); they are kept in the '{LATE_KEY}' column with "
                "their original step and read back by trackkit. Warned once per run."
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            log.warning(msg)

    def _flush_late(self) -> None:
        if not self._late_dirty or self.run is None or self._step is None:
            return
        payload = json.dumps(self._late_rows, separators=(",", ":"), allow_nan=True)
        with _seam("log"):
            self.run.log({LATE_KEY: payload}, step=self._step)
            self.run.summary.update({"trackkit/late_points": self._late_total})
        self._late_dirty = False

    # ------------------------------------------------------------------ config / tags

    def _config_update(self, ev: ConfigUpdate) -> None:
        before = dict(self._internal["config_keys"])
        update = {self._config_key(str(k), self._internal): v for k, v in ev.config.items()}
        if self._internal["config_keys"] != before:
            update[INTERNAL] = self._internal
        with _seam("config update"):
            self.run.config.update(update, allow_val_change=True)
        self._config.update({str(k): v for k, v in ev.config.items()})
        self._config_dirty = True

    def _tag_add_local(self, key: str, value: str) -> bool:
        """Update the local tag set; True when the mapping of long/ambiguous tags changed."""
        text = _tag_text(key, value)
        mapped_changed = False
        if not text or len(text) > _MAX_TAG or ":" in key:
            body = re.sub(r"\s+", " ", text)[: _MAX_TAG - 10] or "tag"
            mapped = f"{body}-h{_sha(key + chr(0) + value)}"
            if self._internal["tags"].get(mapped) != [key, value]:
                self._internal["tags"][mapped] = [key, value]
                mapped_changed = True
            text = mapped
        for old, old_key in list(self._tags.items()):
            if old_key == key and old != text:
                del self._tags[old]
        self._tags[text] = key
        return mapped_changed

    def _add_tags(self, tags: Mapping[str, str]) -> None:
        changed = False
        for k, v in tags.items():
            changed |= self._tag_add_local(str(k), str(v))
        if changed:
            self._push_internal()
        with _seam("tags"):
            self.run.tags = tuple(sorted(self._tags))

    # ------------------------------------------------------------------ artifacts

    def _log_artifact_files(
        self, name: str, kind: str, path: str, metadata: dict[str, Any], aliases: list[str]
    ) -> None:
        wandb = self._wandb
        with _seam(f"artifact {name!r}"):
            art = wandb.Artifact(name, type=kind, metadata=metadata)
            if os.path.isdir(path):
                art.add_dir(path)
            else:
                art.add_file(path, name=os.path.basename(path))
            self.run.log_artifact(art, aliases=aliases)

    def _artifact(self, ev: Artifact) -> None:
        name = map_key(ev.name, allowed=_ART_NAME_CHARS, max_length=128, separator_rules=False)
        kind = ev.kind or "artifact"
        if kind == "job" or kind.startswith("wandb-"):
            kind = f"trackkit-{kind}"
        alias_map: dict[str, str] = {}
        aliases: list[str] = []
        for a in ev.aliases:
            mapped = a
            if not a or "/" in a or ":" in a:
                mapped = f"{re.sub('[/:]', '_', a) or 'alias'}-h{_sha(a)}"
                alias_map[mapped] = a
            aliases.append(mapped)
        metadata: dict[str, Any] = dict(ev.metadata)
        added = [] if "sha256" in metadata else ["sha256"]
        metadata.setdefault("sha256", ev.sha256)
        metadata[INTERNAL] = {
            "run_id": self._run_id,
            "name": ev.name,
            "kind": ev.kind,
            "sha256": ev.sha256,
            "size": ev.size,
            "version": ev.version,
            "aliases": list(ev.aliases),
            "alias_map": alias_map,
            "added": added,
            "path": ev.path,
            "source": ev.source,
            "time": ev.time,
        }
        if not os.path.exists(ev.path):
            raise BackendError(f"wandb: artifact {ev.name!r}: the snapshot {ev.path!r} does not exist")
        self._log_artifact_files(name, kind, ev.path, metadata, aliases)

    def _log_config_artifact(self) -> None:
        """The house rule: the full config always travels as the ``config.json`` artifact too."""
        if not self._config_dirty or self.run is None:
            return
        tmp = tempfile.mkdtemp(prefix="trackkit-wandb-")
        try:
            path = os.path.join(tmp, "config.json")
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(self._config, fh, indent=2, sort_keys=True, default=str)
            wid = wandb_run_id(self._run_id or "")
            name = map_key(f"trackkit-config-{wid}", allowed=_ART_NAME_CHARS, max_length=128, separator_rules=False)
            meta = {INTERNAL: {"internal": "config", "run_id": self._run_id}}
            self._log_artifact_files(name, "config", path, meta, [])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._config_dirty = False

    # ------------------------------------------------------------------ status

    def _status(self, ev: StatusChange) -> None:
        with _seam("summary"):
            self.run.summary.update(
                {
                    "trackkit/status": ev.status.value,
                    "trackkit/reason": ev.reason,
                    "trackkit/status_step": ev.step,
                    "trackkit/status_time": ev.time,
                    "trackkit/details": _jsonable(dict(ev.details)),
                }
            )

    def _finish(self, ev: RunFinished) -> None:
        self._flush_late()
        self._log_config_artifact()
        for text, key in list(self._tags.items()):
            if key == STATUS_TAG:
                del self._tags[text]
        self._tags[_tag_text(STATUS_TAG, ev.status.value)] = STATUS_TAG
        exit_code = 0 if ev.status is Status.COMPLETED else (ev.exit_code or 1)
        with _seam("finish"):
            self.run.tags = tuple(sorted(self._tags))
            self.run.summary.update(
                {
                    "trackkit/status": ev.status.value,
                    "trackkit/reason": ev.reason,
                    "trackkit/end_time": ev.time,
                    "trackkit/exit_code": ev.exit_code,
                    "trackkit/finished": True,
                }
            )
            path = self._run_file(self.run)
            self.run.finish(exit_code=exit_code)
        self._forget(self.run)
        self._finished = True
        self.run = None
        self._wait_written(path)

    @staticmethod
    def _forget(run: Any) -> None:
        for wid, open_run in list(_OPEN_RUNS.items()):
            if open_run is run:
                del _OPEN_RUNS[wid]

    @staticmethod
    def _run_file(run: Any) -> str | None:
        path = getattr(getattr(run, "settings", None), "sync_file", None)
        return str(path) if path else None

    def _wait_written(self, path: str | None) -> None:
        """``finish()`` can return before wandb-core has written the file: wait (bounded) until
        the exit record is on disk, so that a closed sink means readable data."""
        if not path:
            return
        deadline = time.monotonic() + self._flush_timeout
        delay = 0.005
        while time.monotonic() < deadline:
            if _has_exit_record(path):
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        msg = f"wandb: {path} was not complete {self._flush_timeout:.0f} s after finish(); reading it may miss data"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        log.warning(msg)


def _has_exit_record(path: str) -> bool:
    """True once the run file ends with W&B's ``exit`` record on disk (reads the last blocks only)."""
    import importlib

    pb: Any = importlib.import_module("wandb.proto.wandb_internal_pb2")
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            base = max(0, (size // _BLOCK - 1) * _BLOCK)
            fh.seek(base)
            data = fh.read()
    except OSError:
        return False
    start = _FILE_HEADER.size if base == 0 else 0
    for payload in _frames(data, start, base):
        rec = pb.Record()
        with contextlib.suppress(Exception):
            rec.ParseFromString(payload)
            if rec.WhichOneof("record_type") == "exit":
                return True
    return False


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=True)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str, allow_nan=True))


# ====================================================================== the file format

_FILE_HEADER = struct.Struct("<4sHB")
_REC_HEADER = struct.Struct("<IHB")
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def iter_records(data: bytes) -> Iterator[bytes]:
    """Payloads of a ``run-<id>.wandb`` file (LevelDB-style log framing).

    7-byte file header ``<4sHB`` (``b":W&B"``, 0xBEE1, 0), then 32 KiB blocks of
    records, each with a 7-byte header ``<IHB`` (crc32, length, type). A record
    split across blocks comes as first/middle/last fragments; fewer than 7 bytes
    left in a block are zero padding. A torn tail ends the iteration; a record
    with a bad checksum skips the rest of its block.
    """
    if len(data) < _FILE_HEADER.size:
        return
    ident, magic, _version = _FILE_HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError("not a W&B run file (bad header)")
    yield from _frames(data, _FILE_HEADER.size, 0)


def _frames(data: bytes, pos: int, base: int) -> Iterator[bytes]:
    """Reassembled payloads of ``data``, whose byte 0 lies at file offset ``base``."""
    end_of_data = len(data)
    pending: bytearray | None = None
    while pos < end_of_data:
        left = _BLOCK - (base + pos) % _BLOCK
        if left < _REC_HEADER.size:
            pos += left
            continue
        if pos + _REC_HEADER.size > end_of_data:
            break  # torn record header
        crc, length, rtype = _REC_HEADER.unpack_from(data, pos)
        start = pos + _REC_HEADER.size
        stop = start + length
        if rtype == 0 and length == 0:
            pos += left  # zero fill: nothing more in this block
            continue
        if length > left - _REC_HEADER.size or rtype not in (_FULL, _FIRST, _MIDDLE, _LAST):
            pending = None
            pos += left  # corrupt header: resynchronise at the next block
            continue
        if stop > end_of_data:
            break  # torn payload
        payload = data[start:stop]
        if zlib.crc32(payload, zlib.crc32(bytes([rtype]))) & 0xFFFFFFFF != crc:
            pending = None
            pos += left
            continue
        pos = stop
        if rtype == _FULL:
            pending = None
            yield payload
        elif rtype == _FIRST:
            pending = bytearray(payload)
        elif rtype == _MIDDLE:
            if pending is not None:
                pending += payload
        elif pending is not None:
            pending += payload
            yield bytes(pending)
            pending = None


def iter_run_file(path: str) -> Iterator[Any]:
    """``wandb_internal_pb2.Record`` messages of one run file (undecodable records are skipped)."""
    import importlib

    pb: Any = importlib.import_module("wandb.proto.wandb_internal_pb2")
    with open(path, "rb") as fh:
        data = fh.read()
    for payload in iter_records(data):
        rec = pb.Record()
        try:
            rec.ParseFromString(payload)
        except Exception:  # a damaged record: skip it, keep the rest
            continue
        yield rec


# ====================================================================== decoding a run


def _loads(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _item_key(item: Any) -> str:
    if item.key:
        return str(item.key)
    return ".".join(str(k) for k in item.nested_key)


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    return None


@dataclass
class _Segment:
    """One ``run-<id>.wandb`` file: one process's share of a run."""

    path: str
    wid: str = ""
    project: str = ""
    entity: str = ""
    start: float = 0.0
    #: written by ``Run.native("wandb")`` in the trainer: metrics only, no say in tags or status
    native: bool = False
    records: list[Any] = field(default_factory=list)


@dataclass
class _Decoded:
    """A run decoded from its segments, with sink-side state for a resume."""

    wid: str
    run_id: str
    project: str
    events: list[Event]
    info: RunInfo
    internal: dict[str, Any]
    config: dict[str, Any]
    wandb_tags: list[str]
    max_step: int | None


def _read_segment(path: str) -> _Segment | None:
    seg = _Segment(path=path)
    try:
        for rec in iter_run_file(path):
            seg.records.append(rec)
            if not seg.wid and rec.WhichOneof("record_type") == "run":
                r = rec.run
                seg.wid, seg.project, seg.entity = r.run_id, r.project, r.entity
                seg.start = r.start_time.seconds + r.start_time.nanos / 1e9
                for it in r.config.update:
                    if _item_key(it) == INTERNAL:
                        tk = _loads(it.value_json)
                        seg.native = isinstance(tk, dict) and bool(tk.get("native"))
    except (OSError, ValueError) as exc:
        log.warning("wandb: cannot read %s: %s", path, exc)
        return None
    if not seg.wid:
        m = re.search(r"run-(.+)\.wandb$", os.path.basename(path))
        if not m:
            return None
        seg.wid = m.group(1)
        seg.start = os.path.getmtime(path)
    return seg


def _find_files(root: str) -> list[str]:
    out: set[str] = set()
    for pattern in ("wandb/*run-*/run-*.wandb", "*run-*/run-*.wandb", "run-*.wandb"):
        for p in glob.glob(os.path.join(glob.escape(root), pattern)):
            out.add(os.path.realpath(p))
    return sorted(out)


def _merge_internal(into: dict[str, Any], value: Any) -> None:
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if k in ("keys", "config_keys", "tags") and isinstance(v, dict):
            into.setdefault(k, {}).update(v)
        elif k not in into or k not in ("run_id", "project", "name", "start_time", "meta"):
            into[k] = v


def _decode(segments: list[_Segment]) -> _Decoded:
    # trackkit's own segments in time order, then native ones (trainer-side SDK runs)
    segments = sorted(segments, key=lambda s: (s.native, s.start, s.path))
    first = segments[0]
    last_own = max((i for i, s in enumerate(segments) if not s.native), default=len(segments) - 1)
    has_own = not segments[last_own].native
    internal: dict[str, Any] = {"keys": {}, "config_keys": {}, "tags": {}}
    # bookkeeping first: every segment's _trackkit (mapped keys and tags may be learnt late)
    for seg in segments:
        if seg.native and has_own:
            continue
        for rec in seg.records:
            kind = rec.WhichOneof("record_type")
            items = rec.run.config.update if kind == "run" else rec.config.update if kind == "config" else ()
            for it in items:
                if _item_key(it) == INTERNAL:
                    _merge_internal(internal, _loads(it.value_json))
    keys: dict[str, str] = internal["keys"]
    config_keys: dict[str, str] = internal["config_keys"]
    tag_map: dict[str, Any] = internal["tags"]
    run_id = str(internal.get("run_id") or first.wid)

    def tag_pair(text: str) -> tuple[str, str]:
        pair = tag_map.get(text)
        if isinstance(pair, list) and len(pair) == 2:
            return str(pair[0]), str(pair[1])
        return _parse_tag(text)

    def config_of(items: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for it in items:
            k = _item_key(it)
            if k in ("_wandb", INTERNAL):
                continue
            out[config_keys.get(k, k)] = _loads(it.value_json)
        return out

    events: list[Event] = []
    info = RunInfo(run_id=run_id, project=first.project, name="", backend="wandb")
    seen_points: set[tuple[int, str, str]] = set()
    seen_artifacts: set[str] = set()
    current_tags: set[str] = set()
    full_config: dict[str, Any] = {}
    started = False
    last_time: float | None = None
    max_step: int | None = None
    finished: RunFinished | None = None
    status_ev: StatusChange | None = None
    exit_code: int | None = None
    detached = False
    preempting = False
    summary: dict[str, Any] = {}
    resumes: set[int] = set()

    def add_metrics(step: int, when: float, values: dict[str, float]) -> None:
        fresh: dict[str, float] = {}
        for k, v in values.items():
            ident = (step, k, repr(v))
            if ident in seen_points:
                continue  # a retried batch or a re-sent point after a resume
            seen_points.add(ident)
            fresh[k] = v
        if fresh:
            events.append(Metrics(step=step, time=when, values=fresh))
            info.last_metrics.update(fresh)
            info.last_step = step if info.last_step is None else max(info.last_step, step)

    tail: RunFinished | None = None
    for index, seg in enumerate(segments):
        exit_code, detached, preempting = None, False, False
        finished_here = False
        for rec in seg.records:
            kind = rec.WhichOneof("record_type")
            if seg.native and has_own and kind in ("run", "summary", "exit", "preempting"):
                continue
            if kind == "run":
                r = rec.run
                tags = list(r.tags)
                if not started:
                    started = True
                    cfg = config_of(r.config.update)
                    full_config.update(cfg)
                    current_tags = set(tags)
                    start_time = float(internal.get("start_time") or seg.start)
                    events.append(
                        RunStarted(
                            run_id=run_id,
                            project=str(internal.get("project") or r.project),
                            name=str(internal.get("name") or r.display_name or r.run_id),
                            start_time=start_time,
                            group=r.run_group or None,
                            tags=dict(tag_pair(t) for t in tags),
                            config=cfg,
                            meta=dict(internal.get("meta") or {}),
                        )
                    )
                    info.project = str(internal.get("project") or r.project)
                    info.name = str(internal.get("name") or r.display_name or r.run_id)
                    info.group = r.run_group or None
                    info.start_time = start_time
                    info.config.update(cfg)
                    continue
                new = [t for t in tags if t not in current_tags]
                current_tags = set(tags)  # a run record carries the whole tag list
                if new:
                    events.append(Tags(tags=dict(tag_pair(t) for t in new)))
            elif kind == "history":
                row: dict[str, Any] = {}
                for it in rec.history.item:
                    row[_item_key(it)] = _loads(it.value_json)
                step_v = row.get("_step")
                step = int(step_v) if isinstance(step_v, (int, float)) else int(rec.history.step.num)
                when = _num(row.get(TIME_KEY)) or _num(row.get("_timestamp")) or 0.0
                last_time = max(last_time or 0.0, _num(row.get("_timestamp")) or 0.0) or last_time
                max_step = step if max_step is None else max(max_step, step)
                values: dict[str, float] = {}
                for k, v in row.items():
                    if k in _HISTORY_INTERNAL:
                        continue
                    n = _num(v)
                    if n is not None:
                        values[keys.get(k, k)] = n
                add_metrics(step, when, values)
                late = row.get(LATE_KEY)
                if isinstance(late, str):
                    for entry in _loads(late) or []:
                        if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], dict):
                            vals = {str(k): f for k, v in entry[2].items() if (f := _num(v)) is not None}
                            add_metrics(int(entry[0]), float(entry[1] or 0.0), vals)
            elif kind == "config":
                cfg = config_of(rec.config.update)
                if cfg:
                    full_config.update(cfg)
                    info.config.update(cfg)
                    events.append(ConfigUpdate(config=cfg))
            elif kind == "summary":
                upd = {_item_key(it): _loads(it.value_json) for it in rec.summary.update}
                summary.update(upd)
                if upd.get("trackkit/detached"):
                    detached = True
                st = upd.get("trackkit/status")
                seg_v = upd.get("trackkit/resumed")
                seg_no = int(seg_v) if isinstance(seg_v, (int, float)) and not isinstance(seg_v, bool) else 0
                resumed_here = seg_no > 0 and seg_no not in resumes and not upd.get("trackkit/finished")
                if resumed_here:
                    resumes.add(seg_no)
                    status_ev = None  # an earlier segment's status no longer holds
                    prev = upd.get("trackkit/previous_status")
                    r_step = upd.get("trackkit/resume_step")
                    events.append(
                        RunResumed(
                            time=float(upd.get("trackkit/resume_time") or 0.0),
                            segment=seg_no,
                            previous_status=Status(prev) if prev in Status._value2member_map_ else None,
                            step=int(r_step) if isinstance(r_step, (int, float)) else None,
                        )
                    )
                if isinstance(st, str) and st in Status._value2member_map_ and not resumed_here:
                    if upd.get("trackkit/finished"):
                        code = upd.get("trackkit/exit_code")
                        finished = RunFinished(
                            status=Status(st),
                            time=float(upd.get("trackkit/end_time") or 0.0),
                            reason=str(upd.get("trackkit/reason") or ""),
                            exit_code=int(code) if isinstance(code, (int, float)) else None,
                        )
                        finished_here = True  # appended after the segment: W&B writes the last row later
                    else:
                        s_step = upd.get("trackkit/status_step")
                        details = upd.get("trackkit/details")
                        status_ev = StatusChange(
                            status=Status(st),
                            reason=str(upd.get("trackkit/reason") or ""),
                            step=int(s_step) if isinstance(s_step, (int, float)) else None,
                            time=float(upd.get("trackkit/status_time") or 0.0),
                            details=details if isinstance(details, dict) else {},
                        )
                        events.append(status_ev)
            elif kind == "artifact":
                ev = _artifact_event(rec.artifact)
                ident = repr((ev.name, ev.sha256, ev.version, ev.time, ev.aliases)) if ev is not None else ""
                if ev is not None and ident not in seen_artifacts:  # a re-sent batch logs it again
                    seen_artifacts.add(ident)
                    events.append(ev)
            elif kind == "exit":
                exit_code = int(rec.exit.exit_code)
            elif kind == "preempting":
                preempting = True
        if index != last_own:
            if finished_here and finished is not None:
                events.append(finished)
            continue
        # the last of trackkit's own segments decides the status
        if finished_here and finished is not None:
            tail = finished
            info.status, info.reason, info.end_time = finished.status, finished.reason, finished.time or last_time
        elif status_ev is not None and status_ev.status.terminal and not finished_here:
            info.status, info.reason = status_ev.status, status_ev.reason
        elif detached or preempting:
            info.status, info.reason = Status.KILLED, "trackkit delivery stopped before the run finished"
        elif exit_code is None:
            info.status, info.reason = Status.KILLED, "no exit record"
        elif exit_code == 0:
            info.status, info.reason = Status.COMPLETED, ""
        else:
            info.status, info.reason = Status.CRASHED, f"exit code {exit_code}"
        if not finished_here:
            info.end_time = last_time if info.status is not Status.RUNNING else None
            tail = RunFinished(status=info.status, time=info.end_time or 0.0, reason=info.reason, exit_code=exit_code)
    if tail is not None:
        events.append(tail)
    info.tags = dict(tag_pair(t) for t in sorted(current_tags))
    info.resumed = len(resumes)
    info.location = os.path.dirname(segments[last_own].path)
    info.backend = f"wandb:{segments[last_own].project}"
    return _Decoded(
        wid=first.wid,
        run_id=run_id,
        project=info.project,
        events=events,
        info=info,
        internal=internal,
        config=full_config,
        wandb_tags=sorted(current_tags),
        max_step=max_step,
    )


def _artifact_event(a: Any) -> Artifact | None:
    meta = _loads(a.metadata) if a.metadata else {}
    if not isinstance(meta, dict):
        meta = {}
    tk = meta.pop(INTERNAL, None)
    tk = tk if isinstance(tk, dict) else {}
    if tk.get("internal"):
        return None  # trackkit's own config.json copy
    for k in tk.get("added", []):
        meta.pop(k, None)
    alias_map = tk.get("alias_map") or {}
    aliases = [alias_map.get(x, x) for x in a.aliases]
    original = [str(x) for x in tk.get("aliases", [])]
    if "latest" not in original:
        aliases = [x for x in aliases if x != "latest"]
    # W&B does not keep the order: restore the order trackkit gave
    aliases.sort(key=lambda x: original.index(x) if x in original else len(original))
    size = sum(int(c.size) for c in a.manifest.contents)
    return Artifact(
        path=str(tk.get("path") or ""),
        name=str(tk.get("name") or a.name),
        kind=str(tk.get("kind") or a.type),
        sha256=str(tk.get("sha256") or ""),
        size=int(tk.get("size") or size),
        version=int(tk.get("version") or 0),
        aliases=tuple(aliases),
        metadata=meta,
        source=str(tk.get("source") or ""),
        time=float(tk.get("time") or 0.0),
    )


def _prior_state(root: str, wid: str) -> _Decoded | None:
    """What earlier segments of this W&B run left in ``root`` (for a resume), or None."""
    segs = []
    for path in _find_files(root):
        if os.path.basename(path) != f"run-{wid}.wandb":
            continue
        seg = _read_segment(path)
        if seg is not None and seg.wid == wid:
            segs.append(seg)
    return _decode(segs) if segs else None


# ====================================================================== the reader


class WandbReader:
    """Reads W&B runs back as trackkit events.

    Offline (and local copies of online runs): scans ``dir`` (option), else ``WANDB_DIR``,
    else the cwd for ``wandb/*run-*/run-*.wandb``. Online, with ``mode=online`` or an API
    key in the environment and W&B not in offline mode: ``wandb.Api()`` (untested here).
    """

    def __init__(self, spec: BackendSpec) -> None:
        self._wandb = _import_wandb()
        self.spec = spec
        opts = dict(spec.options)
        self._root = _default_root(opts)
        self._project = spec.location or None
        self._entity = opts.get("entity") or None
        mode = opts.get("mode") or os.environ.get("WANDB_MODE", "")
        self._online = mode == "online" or (
            mode not in ("offline", "dryrun", "disabled") and bool(os.environ.get("WANDB_API_KEY"))
        )
        self._cache: dict[str, tuple[float, int, _Segment]] = {}

    # ------------------------------------------------------------------ offline

    def _segments(self) -> list[_Segment]:
        out = []
        for path in _find_files(self._root):
            try:
                st = os.stat(path)
            except OSError:
                continue
            hit = self._cache.get(path)
            if hit is not None and hit[0] == st.st_mtime and hit[1] == st.st_size:
                out.append(hit[2])
                continue
            seg = _read_segment(path)
            if seg is not None:
                self._cache[path] = (st.st_mtime, st.st_size, seg)
                out.append(seg)
        return out

    def _local_runs(self) -> list[_Decoded]:
        groups: dict[tuple[str, str], list[_Segment]] = {}
        for seg in self._segments():
            groups.setdefault((seg.project, seg.wid), []).append(seg)
        return [_decode(segs) for segs in groups.values()]

    @staticmethod
    def _matches(run: _Decoded, project: str | None) -> bool:
        if project is None:
            return True
        return project in (run.project, run.info.backend.partition(":")[2])

    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        project = project or self._project
        if self._online:
            return [self._online_info(r) for r in self._online_runs(project)]
        runs = [r.info for r in self._local_runs() if self._matches(r, project)]
        return sorted(runs, key=lambda i: (i.start_time or 0.0, i.run_id))

    def read_run(self, run_id: str) -> RunRecord:
        if self._online:
            return self._online_read(run_id)
        wid = wandb_run_id(run_id)
        hits = [
            r
            for r in self._local_runs()
            if r.run_id == run_id or (r.wid in (run_id, wid) and not r.internal.get("run_id"))
        ]
        if self._project:
            hits = [r for r in hits if self._matches(r, self._project)] or hits
        if not hits:
            raise KeyError(run_id)
        run = hits[0]
        return RunRecord(info=run.info, events=run.events)

    # ------------------------------------------------------------------ online (needs an API key)

    def _api(self) -> Any:
        with _seam("Api"):
            return self._wandb.Api()

    def _online_runs(self, project: str | None) -> list[Any]:
        api = self._api()
        if not project:
            raise ConfigError("wandb reader: online listing needs a project (wandb:PROJECT)")
        path = f"{self._entity}/{project}" if self._entity else project
        with _seam("Api.runs"):
            return list(api.runs(path))

    @staticmethod
    def _online_info(run: Any) -> RunInfo:
        cfg = dict(run.config)
        tk = cfg.pop(INTERNAL, {}) or {}
        cfg.pop("_wandb", None)
        summ = dict(run.summary)
        st = summ.get("trackkit/status")
        state = str(getattr(run, "state", ""))
        if isinstance(st, str) and st in Status._value2member_map_:
            status, reason = Status(st), str(summ.get("trackkit/reason") or "")
        else:
            status, reason = {
                "finished": (Status.COMPLETED, ""),
                "running": (Status.RUNNING, ""),
                "crashed": (Status.KILLED, "W&B: crashed (no heartbeat)"),
                "failed": (Status.CRASHED, "W&B: failed"),
                "killed": (Status.KILLED, "W&B: killed"),
                "preempted": (Status.KILLED, "W&B: preempted"),
            }.get(state, (Status.RUNNING, state))
        tag_map = tk.get("tags", {}) if isinstance(tk, dict) else {}
        tags = {}
        for t in run.tags:
            pair = tag_map.get(t)
            k, v = (pair[0], pair[1]) if isinstance(pair, list) else _parse_tag(t)
            tags[k] = v
        return RunInfo(
            run_id=str(tk.get("run_id") or run.id),
            project=str(tk.get("project") or run.project),
            name=str(tk.get("name") or run.name),
            backend=f"wandb:{run.project}",
            status=status,
            reason=reason,
            group=run.group or None,
            start_time=tk.get("start_time"),
            tags=tags,
            config=cfg,
            last_metrics={
                k: float(v)
                for k, v in summ.items()
                if not k.startswith(("_", "trackkit/")) and isinstance(v, (int, float))
            },
            last_step=summ.get("_step"),
            location=str(getattr(run, "url", "")),
        )

    def _online_read(self, run_id: str) -> RunRecord:
        api = self._api()
        if not self._project:
            raise ConfigError("wandb reader: online reading needs a project (wandb:PROJECT)")
        base = f"{self._entity}/{self._project}" if self._entity else self._project
        try:
            run = api.run(f"{base}/{wandb_run_id(run_id)}")
        except Exception as exc:
            raise KeyError(run_id) from exc
        info = self._online_info(run)
        events: list[Event] = [
            RunStarted(
                run_id=info.run_id,
                project=info.project,
                name=info.name,
                start_time=info.start_time or 0.0,
                group=info.group,
                tags=dict(info.tags),
                config=dict(info.config),
                meta=dict((dict(run.config).get(INTERNAL) or {}).get("meta", {})),
            )
        ]
        keys = (dict(run.config).get(INTERNAL) or {}).get("keys", {})
        with _seam("scan_history"):
            for row in run.scan_history():
                step = int(row.get("_step", 0))
                when = float(row.get(TIME_KEY) or row.get("_timestamp") or 0.0)
                vals = {
                    keys.get(k, k): float(v)
                    for k, v in row.items()
                    if k not in _HISTORY_INTERNAL and isinstance(v, (int, float)) and v is not None
                }
                if vals:
                    events.append(Metrics(step=step, time=when, values=vals))
                late = row.get(LATE_KEY)
                if isinstance(late, str):
                    for entry in _loads(late) or []:
                        if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], dict):
                            events.append(
                                Metrics(
                                    step=int(entry[0]),
                                    time=float(entry[1] or 0.0),
                                    values={
                                        str(k): float(v) for k, v in entry[2].items() if isinstance(v, (int, float))
                                    },
                                )
                            )
            for art in run.logged_artifacts():
                meta = dict(art.metadata or {})
                tk = meta.pop(INTERNAL, {}) or {}
                if tk.get("internal"):
                    continue
                for k in tk.get("added", []):
                    meta.pop(k, None)
                events.append(
                    Artifact(
                        path=str(tk.get("path") or ""),
                        name=str(tk.get("name") or art.name),
                        kind=str(tk.get("kind") or art.type),
                        sha256=str(tk.get("sha256") or ""),
                        size=int(tk.get("size") or art.size or 0),
                        version=int(tk.get("version") or 0),
                        aliases=tuple(a for a in art.aliases if a != "latest"),
                        metadata=meta,
                    )
                )
        if info.status.terminal:
            events.append(RunFinished(status=info.status, time=info.end_time or 0.0, reason=info.reason))
        return RunRecord(info=info, events=events)
