"""``WandbSink``: trackkit events into one W&B run per ``RunStarted``, with the W&B SDK.

The sink runs inside trackkit's delivery agent, never in the training thread.
See ``docs/backends/wandb.md`` for the mapping, the limits and the status rule.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ...backend import BackendSpec, Capabilities, ConsoleFile, sdk_errors
from ...errors import BackendError, ConfigError
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
    MetricStats,
    RunFinished,
    RunResumed,
    RunStarted,
    Status,
    StatusChange,
    Summary,
    SystemMetrics,
    Tags,
)
from .artifacts import checkpoint_name, log_artifact, log_checkpoint, log_config
from .bookkeeping import Bookkeeping
from .framing import has_exit_record
from .media import extras, kept_file, native
from .names import (
    INTERNAL,
    LATE_KEY,
    MEDIA_KEY,
    RESERVED_METRIC_KEYS,
    project_name,
    stored_metric_key,
    wandb_run_id,
)
from .sdk import LABEL, OPEN_RUNS, clear_inherited_service, default_root, import_wandb, native_run
from .segments import prior_state
from .system import output_log_path, publish_stats

__all__ = ["WandbSink"]

log = logging.getLogger("trackkit.wandb")

#: a Metrics event delivered this many seconds after it happened also records its own time
_TIME_LAG_S = 2.0
#: at most this many ``notes`` lines; the last one then counts the rest
_MAX_NOTES = 1000
#: ``wandb.Settings`` of the agent's runs: no console capture, stats, code or git bookkeeping
_SETTINGS: dict[str, Any] = {
    "silent": True,
    "console": "off",
    "x_disable_stats": True,
    "x_disable_meta": True,
    "x_disable_machine_info": True,
    "x_save_requirements": False,
    "save_code": False,
    "disable_git": True,
    "disable_job_creation": True,
}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=True)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str, allow_nan=True))


class WandbSink:
    """Delivers trackkit events to one W&B run per ``RunStarted``.

    Options (``wandb:PROJECT?...``): ``entity``, ``group``, ``mode`` (``offline``/``online``;
    default: W&B's own setting), ``dir`` (default ``WANDB_DIR`` or the cwd),
    ``init_timeout``, ``finish_timeout`` and ``flush_timeout`` in seconds (default 60, 300, 30).
    """

    capabilities = Capabilities(
        native_killed=False,
        key_rule=stored_metric_key,
        media={"text": "W&B HTML panels (wandb.Html: the text escaped in a <pre> block, read back exactly)"},
    )
    #: the open run's ``_trackkit`` value and tags (set by ``_start``)
    _book: Bookkeeping

    def __init__(self, spec: BackendSpec) -> None:
        self._wandb = import_wandb()
        self.spec = spec
        opts = dict(spec.options)
        mode = opts.get("mode")
        if mode is not None and mode not in ("offline", "online", "disabled"):
            raise ConfigError(f"backend {spec}: mode={mode!r} is not one of offline, online, disabled")
        self._mode = mode
        self._entity = opts.get("entity") or None
        self._group = opts.get("group") or None
        self._root = default_root(opts)
        try:
            self._init_timeout = float(opts.get("init_timeout", "60"))
            self._finish_timeout = float(opts.get("finish_timeout", "300"))
            self._flush_timeout = float(opts.get("flush_timeout", "30"))
        except ValueError as exc:
            raise ConfigError(f"backend {spec}: the *_timeout options must be numbers of seconds") from exc
        #: the run's RunStarted, to re-attach when a resumed run continues after its RunFinished
        self._start_ev: RunStarted | None = None
        #: one line per value carried in a lesser form (a media value kept as a run file): a migration lists them
        self.notes: list[str] = []
        self._more_notes = 0
        self._reset()

    def _reset(self) -> None:
        self.run: Any = None
        self._run_id: str | None = None
        self._finished = False
        #: checkpoint versions logged by this sink, for deleting a pruned one (online)
        self._ckpt_artifacts: dict[tuple[str, int], Any] = {}
        #: the current W&B step (highest step logged); lower steps go to ``trackkit/late``
        self._step: int | None = None
        #: W&B steps below this were written by an earlier segment of the run (resume)
        self._floor: int | None = None
        self._row_keys: set[str] = set()
        #: the current step's metric columns not yet handed to ``run.log`` (one call per step)
        self._pending: dict[str, Any] = {}
        #: the current row's own time when it is not now (W&B stamps every later log of the row again)
        self._row_time: dict[str, float] = {}
        self._late_rows: list[list[Any]] = []
        self._late_dirty = False
        self._late_total = 0
        self._warned_late = False
        self._config_dirty = False
        #: (key, step, sha256) of every media value this run holds (a re-sent batch logs nothing twice)
        self._media_seen: set[tuple[str, int, str]] = set()
        #: the current row's ``trackkit/media`` value: extras per stored key, run-file descriptors
        self._row_media: dict[str, Any] = {}
        self._warned_media: set[str] = set()
        #: min/max with steps of the metrics with a declared goal, sent as the summary ``trackkit/best``
        self._best: dict[str, MetricStats] = {}
        self._best_dirty = False
        self._console: ConsoleFile | None = None

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
            if self._best_dirty:
                self._send_best()

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
            elif isinstance(ev, Checkpoint):
                self._checkpoint(ev)
            elif isinstance(ev, CheckpointPruned):
                self._checkpoint_pruned(ev)
            elif isinstance(ev, Media):
                self._media(ev)
            elif isinstance(ev, Summary):
                self._summary(ev)
            elif isinstance(ev, MetricGoal):
                self._goal(ev)
            elif isinstance(ev, StatusChange):
                self._status(ev)
            elif isinstance(ev, RunFinished):
                self._finish(ev)
            elif isinstance(ev, Console):
                self._console_text(ev)
            elif isinstance(ev, SystemMetrics):
                with sdk_errors(LABEL, "system metrics"):
                    publish_stats(self._wandb, self.run, ev.values, ev.time)

    def _console_text(self, ev: Console) -> None:
        """The console into the run's ``output.log`` (W&B's "Logs"), whose lines it keeps once."""
        if self._console is None:
            path = output_log_path(self.run)
            if path is None:
                return
            self._console = ConsoleFile(path)
        self._console.add(ev)

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
            with sdk_errors(LABEL, "close"):
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
        return native_run(spec, run_id, project, name)

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
        clear_inherited_service()
        wid = wandb_run_id(ev.run_id)
        os.makedirs(self._root, exist_ok=True)
        prior = prior_state(self._root, wid)
        self._book = book = Bookkeeping(ev, prior)
        if prior is not None:
            self._floor = prior.max_step
            self._media_seen.update(prior.media_idents)
        settings_kw = {**_SETTINGS, "init_timeout": self._init_timeout, "finish_timeout": self._finish_timeout}
        if self._mode:
            settings_kw["mode"] = self._mode
        group = ev.group or self._group
        found = ev.meta.get("wandb")
        wmeta: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        job_type = str(wmeta.get("job_type") or "") or None
        if ev.parent:  # a child run: grouped with its parent (docs/backends/wandb.md#parent-and-child-runs)
            book.internal["parent"] = ev.parent
            book.internal["group"] = ev.group
            group = group or wandb_run_id(ev.parent)
            job_type = job_type or "child"
        with sdk_errors(LABEL, "init"):
            settings = self._wandb.Settings(**settings_kw)
            self.run = self._wandb.init(
                project=project_name(self.spec.location or ev.project),
                entity=self._entity,
                group=group,
                job_type=job_type,
                notes=str(wmeta.get("notes") or "") or None,
                name=ev.name or None,
                id=wid,
                resume="allow",
                config={**book.start_config, INTERNAL: book.internal},
                tags=list(book.wandb_tags()),
                dir=self._root,
                reinit="create_new",
                settings=settings,
            )
        self._run_id = ev.run_id
        OPEN_RUNS[wid] = self.run
        if prior is None or prior.max_step is None:
            starting = getattr(self.run, "starting_step", 0) or 0
            if starting > 0:  # online resume: the server already holds steps below this
                self._floor = starting - 1
        self._config_dirty = prior is None
        if prior is None:
            self._log_config_artifact()
        goals = book.internal.get("goals") or {}
        if goals:  # a re-attached sink: W&B's summaries of the declared metrics, and what was seen of them
            self._best = {k: st for k, st in (prior.info.metrics if prior else {}).items() if k in goals}
            for key in goals:
                self._define(key)

    def _resume(self, ev: RunResumed) -> None:
        """A resumed trackkit run: re-open the same W&B run (a new segment) if its earlier segment
        was finished, and say it is running again; the next RunFinished sets the final status."""
        if self.run is None:
            if self._start_ev is None:
                raise BackendError("wandb: received RunResumed before RunStarted")
            self._start(self._start_ev)
        self._book.set_status(None)  # the earlier segment's final status no longer holds
        with sdk_errors(LABEL, "resume"):
            self.run.tags = self._book.wandb_tags()
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

    def _push_internal(self) -> None:
        """Send ``_trackkit`` to W&B when it changed (a newly mapped key or tag)."""
        if self._book.take_dirty() and self.run is not None:
            with sdk_errors(LABEL, "config update"):
                self.run.config.update({INTERNAL: self._book.internal}, allow_val_change=True)

    # ------------------------------------------------------------------ metrics

    def _metrics(self, ev: Metrics) -> None:
        step = int(ev.step)
        values = dict(ev.values)
        late: dict[str, float] = {}
        place = self._place(step)
        if place == "row":
            # W&B keeps one value per key and step: a second value for a key goes to the late column
            late = {k: v for k, v in values.items() if k in self._row_keys}
            values = {k: v for k, v in values.items() if k not in self._row_keys}
        elif place == "late":
            late, values = values, {}
        if values:
            self._open_row(step)
            book, row = self._book, self._pending
            for k, v in values.items():
                row[k if k not in RESERVED_METRIC_KEYS else book.metric_key(k)] = v
            if book.dirty:
                self._push_internal()
            if ev.time and abs(time.time() - ev.time) > _TIME_LAG_S:
                row["_timestamp"] = ev.time  # W&B takes the row's time from the row (a replay, a migration)
                self._row_time = {"_timestamp": ev.time}
            self._row_keys.update(values)
            goals = self._book.internal.get("goals")
            if goals:
                self._track(goals, step, values)
        if late:
            self._record_late(step, ev.time, late)

    def _place(self, step: int) -> str:
        """Where a value at ``step`` goes: a ``new`` W&B row, the current ``row``, or ``late``
        (below the current W&B step, which W&B would drop silently)."""
        current = self._step if self._step is not None else self._floor
        if current is None or step > current or (step == current and self._step is None):
            return "new"
        return "row" if step == current else "late"

    def _commit(self) -> None:
        """Hand the current step's metric columns to W&B: one ``run.log`` per step."""
        if self._pending:
            row, self._pending = self._pending, {}
            with sdk_errors(LABEL, "log"):
                self.run.log(row, step=self._step)

    def _open_row(self, step: int) -> None:
        """Make ``step`` the current W&B row (the earlier row's late points and media notes first)."""
        if self._step is None or step > self._step:
            self._flush_late()
            self._step = step
            self._row_time = {}
            self._row_keys = set()
            self._late_rows = []
            self._row_media = {}

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
            self._warn(msg)

    def _flush_late(self) -> None:
        if self.run is None or self._step is None:
            return
        self._commit()
        if self._row_media.pop("dirty", False):
            note = json.dumps(self._row_media, separators=(",", ":"), allow_nan=True, default=str)
            with sdk_errors(LABEL, "log"):
                self.run.log({MEDIA_KEY: note, **self._row_time}, step=self._step)
        if not self._late_dirty:
            return
        payload = json.dumps(self._late_rows, separators=(",", ":"), allow_nan=True)
        with sdk_errors(LABEL, "log"):
            self.run.log({LATE_KEY: payload, **self._row_time}, step=self._step)
            self.run.summary.update({"trackkit/late_points": self._late_total})
        self._late_dirty = False

    # ------------------------------------------------------------------ media

    def _media(self, ev: Media) -> None:
        """A canonical media value as W&B's own type in the row of its step (with the metrics of
        that step); what W&B cannot take there is kept as a run file (see ``media.py``)."""
        step = int(ev.step)
        ident = (ev.key, step, ev.sha256)
        if ident in self._media_seen:
            return  # a re-sent batch: already in the run
        what = f"{ev.kind} {ev.key!r} at step {step}"
        if not ev.canonical:
            self._warn_media(f"raw:{ev.key}", f"wandb: {what} is not in a delivered format ({ev.format}); skipped. "
                             "Fix: none needed in user code (the agent encodes media); report it")
            return
        key = self._book.metric_key(ev.key)
        place = self._place(step)
        if place == "row" and ev.key in self._row_keys:
            place = "late"  # W&B keeps one value per key and step
        obj, cause, fix = None, "", ""
        if place != "late":
            try:
                obj = native(self._wandb, ev)
            except Exception as exc:  # e.g. PIL missing for wandb.Image, a table over W&B's row limit
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                cause = f"W&B could not build its {ev.kind} type ({type(exc).__name__}: {first})"
                fix = "Fix: see the cause (a missing package: install it; a size limit: log less per value)"
        else:
            current = self._step if self._step is not None else self._floor
            cause = f"W&B already holds step {current} (it drops lower steps and keeps one value per key and step)"
            fix = "Fix: log media with the metrics of its step, or at a later step"
        if obj is not None:
            with sdk_errors(LABEL, lambda: f"read {what}"):
                note = extras(ev)
            self._open_row(step)
            self._push_internal()
            self._commit()
            with sdk_errors(LABEL, lambda: f"log {what}"):
                self.run.log({key: obj, **self._row_time}, step=step)
            self._row_keys.add(ev.key)
            self._row_media.setdefault("extras", {})[key] = note
        else:
            self._keep_file(ev, key, what, cause, fix)
        self._row_media["dirty"] = True
        self._media_seen.add(ident)

    def _keep_file(self, ev: Media, key: str, what: str, cause: str, fix: str) -> None:
        if self._step is None:
            self._step = self._floor if self._floor is not None else int(ev.step)
        with sdk_errors(LABEL, lambda: f"keep {what} as a run file"):
            path, desc = kept_file(ev, str(self.run.dir), key)
            self.run.save(path, base_path=str(self.run.dir), policy="now")
        self._row_media.setdefault("files", []).append(desc)
        line = (f"{ev.kind} {ev.key}@{ev.step}: {cause}; kept as the run file {desc['file']} (read back by "
                "trackkit; the W&B media panel does not show it)")
        if not self._more_notes and len(self.notes) < _MAX_NOTES:  # a live run's sink lives long: bounded
            self.notes.append(line)
        else:  # the last line counts the rest
            if not self._more_notes:
                self.notes.append("")
            self._more_notes += 1
            self.notes[-1] = f"... and {self._more_notes} more media value(s) kept as W&B run files"
        self._warn_media(f"file:{ev.kind}:{cause[:16]}", (
            f"wandb: {what}: {cause}; kept as the run file {desc['file']} (read back by trackkit at step "
            f"{ev.step}; the W&B media panel does not show it). {fix}. Warned once per kind and cause."))

    def _warn(self, msg: str) -> None:
        """What the sink tells its caller (a value W&B cannot hold where it was logged, a run file not
        complete), naming the run: one ``RuntimeWarning``, never also a log record, so nothing shows
        twice. The CLI prints it as one ``warning: ...`` line (``trackkit.cli.plain_warnings``)."""
        if self._run_id is not None and msg.startswith("wandb: "):
            msg = f"wandb: run {self._run_id}: {msg[len('wandb: '):]}"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)

    def _warn_media(self, ident: str, msg: str) -> None:
        if ident not in self._warned_media:
            self._warned_media.add(ident)
            self._warn(msg)

    # ------------------------------------------------------------------ summary

    def _summary(self, ev: Summary) -> None:
        """``Summary`` values into ``run.summary`` (keys W&B reserves mapped); their keys are kept in
        ``_trackkit.summary_keys`` so the reader tells them from W&B's auto-summary of the history."""
        values = {self._book.metric_key(str(k)): _jsonable(v) for k, v in ev.values.items()}
        known = self._book.internal.setdefault("summary_keys", [])
        fresh = [k for k in values if k not in known]
        if fresh:
            known.extend(fresh)
            self._book.dirty = True
        self._push_internal()
        with sdk_errors(LABEL, "summary"):
            self.run.summary.update(values)

    def _goal(self, ev: MetricGoal) -> None:
        """A declared goal: W&B's ``define_metric(key, summary="min,max,last")`` (its UI shows the three),
        the goal in ``_trackkit.goals``, and the best with its step as the summary ``trackkit/best``."""
        goals = self._book.internal.setdefault("goals", {})
        if goals.get(ev.key) != ev.goal:
            goals[ev.key] = ev.goal
            self._book.dirty = True
        self._push_internal()
        self._define(ev.key)

    def _define(self, key: str) -> None:
        with sdk_errors(LABEL, "define_metric"):
            self.run.define_metric(self._book.metric_key(key), summary="min,max,last")

    def _track(self, goals: Mapping[str, str], step: int, values: Mapping[str, Any]) -> None:
        for key in goals:
            v = values.get(key)
            if v is None:
                continue
            st = self._best.get(key)
            if st is None:
                self._best[key] = MetricStats.first(step, float(v))
            else:
                st.add(step, float(v))
            self._best_dirty = True

    def _send_best(self) -> None:
        best = {k: {"min": st.min, "min_step": st.min_step, "max": st.max, "max_step": st.max_step}
                for k, st in self._best.items() if st.min_step is not None}
        self._best_dirty = False
        if best:
            with sdk_errors(LABEL, "summary"):
                self.run.summary.update({"trackkit/best": best})

    # ------------------------------------------------------------------ config / tags

    def _config_update(self, ev: ConfigUpdate) -> None:
        update = self._book.wandb_config(ev.config)
        if self._book.take_dirty():
            update[INTERNAL] = self._book.internal
        with sdk_errors(LABEL, "config update"):
            self.run.config.update(update, allow_val_change=True)
        self._book.config.update({str(k): v for k, v in ev.config.items()})
        self._config_dirty = True

    def _add_tags(self, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self._book.add_tag(str(k), str(v))
        self._push_internal()
        with sdk_errors(LABEL, "tags"):
            self.run.tags = self._book.wandb_tags()

    # ------------------------------------------------------------------ artifacts

    def _artifact(self, ev: Artifact) -> None:
        log_artifact(self._wandb, self.run, self._run_id, ev)

    def _checkpoint_dir(self) -> str:
        """Beside the W&B run's ``files/``: the links W&B uploads checkpoints from."""
        return os.path.join(os.path.dirname(str(self.run.dir)), "trackkit-checkpoints")

    def _checkpoint(self, ev: Checkpoint) -> None:
        if not os.path.exists(ev.path):  # retention removed it before it was delivered
            log.info("wandb: checkpoint %s v%d was pruned before delivery; skipped", ev.name, ev.version)
            return
        art = log_checkpoint(self._wandb, self.run, self._run_id, ev, self._checkpoint_dir())
        self._ckpt_artifacts[(ev.name, ev.version)] = art

    def _checkpoint_pruned(self, ev: CheckpointPruned) -> None:
        """Aliases already moved (each save names ``latest``/``best``). The prune is recorded in the
        summary; an online run also deletes the version (an offline run cannot: ``wandb sync`` uploads
        it later from the kept link, docs/checkpoints.md)."""
        with sdk_errors(LABEL, "summary"):
            self.run.summary.update({"trackkit/checkpoint_pruned": {
                "name": ev.name, "version": ev.version, "reason": ev.reason, "aliases": dict(ev.aliases),
                "time": ev.time}})
        mode = str(getattr(getattr(self.run, "settings", None), "mode", "") or self._mode or "")
        if mode in ("offline", "dryrun", "disabled"):
            return
        art = self._ckpt_artifacts.pop((ev.name, ev.version), None)
        try:  # online: the version goes once uploaded (best effort: the run's data never depends on it)
            if art is not None:
                art.wait()
                art.delete(delete_aliases=False)
            link = os.path.join(self._checkpoint_dir(), f"v{ev.version}")
            import shutil

            shutil.rmtree(link, ignore_errors=True)
        except Exception as exc:
            log.warning("wandb: could not delete pruned checkpoint %s v%d: %s", checkpoint_name(ev.name, self._run_id),
                        ev.version, exc)

    def _log_config_artifact(self) -> None:
        """The house rule: the full config always travels as the ``config.json`` artifact too."""
        if not self._config_dirty or self.run is None:
            return
        log_config(self._wandb, self.run, self._run_id, self._book.config)
        self._config_dirty = False

    # ------------------------------------------------------------------ status

    def _status(self, ev: StatusChange) -> None:
        with sdk_errors(LABEL, "summary"):
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
        if self._best_dirty:
            self._send_best()
        self._log_config_artifact()
        self._book.set_status(ev.status.value)
        exit_code = 0 if ev.status is Status.COMPLETED else (ev.exit_code or 1)
        with sdk_errors(LABEL, "finish"):
            self.run.tags = self._book.wandb_tags()
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
        for wid, open_run in list(OPEN_RUNS.items()):
            if open_run is run:
                del OPEN_RUNS[wid]

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
            if has_exit_record(path):
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        msg = f"wandb: {path} was not complete {self._flush_timeout:.0f} s after finish(); reading it may miss data"
        self._warn(msg)
