"""The Run: lifecycle, the microsecond ``log()`` path, status.

``log()`` encodes one compact record and appends it to the journal with one ``write(2)``.
No SDK call, no lock wait, no exception into the loop (unless ``strict`` or
``on_nan="stop"``). A delivery agent (``agent.py``) feeds the backends from the journal.
How the pieces fit: docs/architecture.md.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .coerce import to_number
from .console.capture import console_loss_note
from .errors import ConfigError, DivergedError, TrackkitError, TrackkitWarning
from .events import Artifact, ConfigUpdate, Console, Event, RunStarted, Status, StatusChange, Tags, flatten_config
from .hooks import ProcessHooks, exception_ending
from .journal import MetricLines, encode, open_writer
from .limits import Limits
from .media.recorder import MediaRecorder
from .media.values import MediaValue, Options
from .naming import default_name
from .natives import Natives
from .rundir import RunDir, ending_events, release
from .summary import RunSummary, goal_event, summary_event
from .tail import POKED
from .util import jsonable, norm_tags, safe_repr, warn

if TYPE_CHECKING:
    from .backend import BackendSpec
    from .checkpoints.manager import CheckpointManager
    from .launch import AgentHandle
    from .resume import ResumePlan
    from .settings import Settings

__all__ = ["Run", "current_run", "make_active"]

_time = time.time
#: different problems a run warns about before it only counts them
MAX_WARNED = 20

_active: Run | None = None
_active_lock = threading.Lock()


def current_run() -> Run | None:
    return _active


def make_active(run: Run) -> None:
    """The run module-level ``trackkit.log`` and ``current_run()`` use (``init`` sets it)."""
    global _active
    with _active_lock:
        _active = run


def _new_run_id() -> str:
    # time-ordered, W&B/MLflow/path-safe: 8 base-36-ish hex of ms time + 4 random hex
    return f"{int(time.time() * 1000):x}"[-8:] + secrets.token_hex(2)


class Run:
    """One tracked run. Create with :func:`trackkit.init`."""

    #: False on a rank that records nothing (``trackkit.noop.NoopRun``, docs/distributed.md)
    records = True

    def __init__(
        self,
        settings: Settings,
        specs: list[BackendSpec],
        *,
        config: Mapping[str, Any] | None,
        name: str | None,
        group: str | None,
        tags: Mapping[str, str] | Iterable[str] | None,
        meta: Mapping[str, Any] | None = None,
        artifacts: Mapping[str, bytes | str] | None = None,
        run_id: str | None = None,
        resume: str = "never",
        parent: str | Run | None = None,
        name_suffix: str = "",
    ) -> None:
        self.settings = settings
        self.specs = specs
        self.id = run_id or _new_run_id()
        self.project = settings.project
        self.group = group
        #: the parent run's id (a sweep's trial: ``init(parent=...)``, ``run.child()``)
        self.parent = parent.id if isinstance(parent, Run) else parent
        self.start_time = _time()
        #: the config as recorded: init() already made it JSON and redacted it
        self.config: dict[str, Any] = dict(config or {})
        project_dir = RunDir.project_dir(settings.root, self.project)
        self.name = name or default_name(settings.name_template or settings.standard.name_template, self.project,
                                         self.id, self.start_time, group, self.config,
                                         lambda since: RunDir.names_in(project_dir, since), name_suffix)
        self.tags: dict[str, str] = norm_tags(tags)
        #: provenance and run facts recorded at init (the journal's start record)
        self.meta: dict[str, Any] = jsonable(dict(meta or {}))
        self.status = Status.RUNNING
        self.reason = ""
        #: counters of problems handled (bad values, journal errors ...); never raised unless strict
        self.problems: Counter[str] = Counter()
        self.records_written = 0
        #: log() calls whose record could not be written to the journal (lost; also in problems["journal"])
        self.logs_lost = 0
        #: how many times this run was resumed before this process (0: a new run)
        self.resumed = 0
        self._warned: set[str] = set()
        self._step = -1
        self._diverged: tuple[str, float, int] | None = None
        self._finished = False
        self._strict = settings.strict
        self._on_nan = settings.on_nan
        self._artifact_versions: Counter[str] = Counter()
        #: SDK objects handed out by native(), finished with the run
        self._natives = Natives(self.specs, self, self._problem)
        #: what the backends cannot hold, said when this run's data meets it (None: advisories off)
        self._limits = Limits.of(specs, _advise) if settings.advisories else None
        #: the metric line encoder's bound method (one attribute lookup less per log())
        self._encode_metrics = MetricLines(self._coerce_value, self._limits.key if self._limits else None).encode
        #: media values (trackkit.Image ...): payloads beside the journal, records in it (docs/media.md)
        self._media: MediaRecorder | None = None
        self._media_step = 0
        #: the process that owns the run; forked children (DataLoader workers) never finish it
        self._pid = os.getpid()
        self._lock_fd = -1
        #: the parent ``Run`` object when it lives in this process (``child()``, ``init(parent=run)``)
        self._parent_run = parent if isinstance(parent, Run) else None
        self._summary = RunSummary(self._write_summary)

        if self._limits:
            self._limits.config(flatten_config(self.config))
        plan = self._open(os.path.abspath(settings.root), run_id, resume, name=name, group=group)
        if plan is not None:  # a resumed run: a resume record continues the journal (docs/resume.md)
            self._apply(plan)
        else:
            self._write(
                RunStarted(run_id=self.id, project=self.project, name=self.name, start_time=self.start_time,
                           group=group, tags=self.tags, config=self.config, meta=self.meta, parent=self.parent),
                "start",
            )
        for fname, content in (artifacts or {}).items():
            self._snapshot_bytes(fname, content)

        from .launch import start_agent

        self._agent: AgentHandle = start_agent(self, self._journal)
        self._hooks = ProcessHooks(self._pid, self.finish, self._finish_from_exception)
        self._hooks.install()

    def _open(self, root: str, run_id: str | None, resume: str, *, name: str | None,
              group: str | None) -> ResumePlan | None:
        """Create (or, with an id, open) the run directory, hold the trainer lock for the process's
        lifetime (the kernel drops it however the process dies) and open the journal. Returns the
        resume plan of a run that continues, else None."""
        plan: ResumePlan | None = None
        try:
            parent = RunDir.project_dir(root, self.project)
            if run_id is None:
                self._rundir, self.id = RunDir.claim(parent, _new_run_id, self.id)
                fd = self._rundir.lock_trainer()
                if fd is None:  # a directory just made by this process: nobody else can hold it
                    raise OSError(f"the trainer lock of the new run directory {self._rundir.path} is held")
                self._lock_fd = fd
            else:
                from . import resume as resuming

                opened = resuming.open_named(parent, self.project, run_id, resume)
                self._rundir, self._lock_fd = opened.rundir, opened.lock_fd
                if opened.prior is not None:
                    plan = resuming.plan(self._rundir, opened.prior, run_id=self.id, name=name, group=group,
                                         config=self.config, tags=self.tags, meta=self.meta)
            self.dir = self._rundir.path
            self._journal = open_writer(self._rundir.journal, self.id, self.start_time, self.settings.journal_mapped)
        except ConfigError:  # resume refused after the lock was taken: never keep it held
            self._release_lock()
            raise
        except OSError as exc:  # a setup error: raise at init, naming the fix
            self._release_lock()
            raise ConfigError(
                f"root: cannot create the run's journal under {root!r} ({exc}). Fix: point root= "
                "(or TRACKKIT_ROOT, or root in trackkit.toml) at a writable directory with free space"
            ) from exc
        return plan

    def _apply(self, plan: ResumePlan) -> None:
        """Become the next segment of a resumed run: take over its state, write its records."""
        self.name, self.group, self.tags, self.config = plan.name, plan.group, plan.tags, plan.config
        if plan.start_time is not None:
            self.start_time = plan.start_time
        self._step = plan.step
        self._artifact_versions.update(plan.artifact_versions)
        self.resumed = plan.resumed
        for message in plan.warnings:
            warn(f"trackkit: {message}", TrackkitWarning)
        self._write_all(plan.records)
        # an earlier segment's finish note must not decide this one's status
        self._rundir.drop_finish_note()

    # ------------------------------------------------------------------ logging

    def log(self, values: Mapping[str, Any], step: int | None = None) -> None:
        """Record metric values at ``step`` (default: the last step + 1). Costs a few
        microseconds; never raises into the loop unless strict or ``on_nan='stop'``."""
        try:
            if step is None:
                step = self._step + 1
            elif type(step) is not int:
                step = self._coerce_step(step)
            if step > self._step:
                self._step = step
            self._media_step = step
            data, bad = self._encode_metrics(values, step, _time())
            if data is None:
                return
            self._journal.store(data)
            self.records_written += 1
            if bad is not None:  # after the write: the diverging value itself is kept
                if self._limits:
                    self._limits.value(bad[0], bad[1])
                self._nonfinite(bad[0], bad[1], step)
        except DivergedError:
            raise
        except OSError as exc:
            if self._finished:  # not a disk problem: the caller logs into a run that has ended
                self._problem("finished", f"log() on run {self.name}, which is finished; not recorded. "
                              "Fix: log before finish(), or start a new run with trackkit.init()")
                return
            self.logs_lost += 1
            self._problem("journal", f"journal write failed ({exc}); this log() call was NOT saved")
        except Exception as exc:
            self._problem("log", f"log() could not record {safe_repr(values, 200)}: {safe_repr(exc)}",
                          type(exc).__name__)

    def _coerce_step(self, step: Any) -> int:
        try:
            s = int(step)
        except Exception as exc:
            raise ConfigError(f"step: {safe_repr(step)} is not an integer. Fix: pass step=int(...)") from exc
        return s

    def _coerce_value(self, key: Any, v: Any) -> float | int | None:
        if isinstance(v, MediaValue):
            self._record_media(str(key), v, self._media_step)
            return None
        return to_number(key, v, self._problem)

    def log_media(self, values: Mapping[str, MediaValue], step: int) -> None:
        """Record media values at ``step`` without moving ``run.step`` (``watch()`` uses it)."""
        for key, value in values.items():
            self._record_media(str(key), value, int(step))

    def _record_media(self, key: str, value: MediaValue, step: int) -> None:
        if self._media is None:
            opts = Options(self.settings.media_max_image_px, self.settings.media_max_bytes)
            self._media = MediaRecorder(self._rundir.payloads(), opts, self._write, self._problem, _advise,
                                        self._limits.media if self._limits else None)
        self._media.record(key, value, step)

    def watch(self, model: Any, every: int = 100, log: str = "gradients") -> Any:
        """Log a torch module's gradient and/or weight histograms every ``every`` steps
        (``log="gradients"|"parameters"|"all"``); off unless asked. Returns a handle with ``remove()``."""
        from .media.watch import watch

        return watch(self, model, every=every, log=log)

    def _nonfinite(self, key: str, value: float, step: int) -> None:
        if self._on_nan == "ignore" or self._diverged is not None:
            if self._on_nan == "stop":
                raise DivergedError(key, value, step)
            return
        self._diverged = (key, value, step)
        reason = f"{key}={value} at step {step}"
        self._write(StatusChange(status=Status.DIVERGED, reason=reason, step=step, time=_time()), "status")
        self.status, self.reason = Status.DIVERGED, reason
        if self._on_nan == "stop":
            raise DivergedError(key, value, step)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Add or change config values (merged into the run's config)."""
        data = jsonable(dict(config))
        if self._limits:
            self._limits.config(flatten_config(data))
        self.config.update(data)
        self._write(ConfigUpdate(config=data, time=_time()), "config")

    def define_metric(self, key: str, goal: str = "max") -> None:
        """Declare which way ``key`` is better (``"max"``: accuracy; ``"min"``: a loss), so its best
        value and step are known (``RunInfo.best``, ``metrics.KEY.best``) and each backend shows it."""
        ev = goal_event(key, goal)
        if ev is None:
            self._problem(f"goal:{key}", f"define_metric({key!r}, goal={goal!r}): not a goal; ignored. "
                          "Fix: goal='max' or goal='min'")
            return
        self._write(ev, "goal")

    @property
    def summary(self) -> RunSummary:
        """The run's summary values: ``run.summary["test/acc"] = 0.93`` records one (the last word
        per key; not a series). Reading gives the values set in this process."""
        return self._summary

    def _write_summary(self, values: Mapping[str, Any]) -> Mapping[str, Any] | None:
        ev = summary_event(jsonable(dict(values)))
        return ev.values if self._write(ev, "summary") else None

    def set_tags(self, tags: Mapping[str, str] | Iterable[str]) -> None:
        data = norm_tags(tags)
        self.tags.update(data)
        self._write(Tags(tags=data, time=_time()), "tags")

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        kind: str = "file",
        aliases: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Snapshot a file or directory *now* (so a later overwrite cannot change what
        was recorded) and deliver it to every backend; the agent hashes it. A checkpoint a
        ``run.checkpoints()`` manager wrote never changes: its snapshot is a hard link, not a copy.
        Returns the snapshot path, or None when it could not be taken (warned)."""
        from .checkpoints.files import snapshot

        try:
            src = os.fspath(path)
            name = name or os.path.basename(src.rstrip(os.sep))
            version = self._artifact_versions[name]
            self._artifact_versions[name] += 1
            dest = os.path.join(self._rundir.artifact_dir(name, version), os.path.basename(src.rstrip(os.sep)) or name)
            size = snapshot(src, dest)
            self._write(
                Artifact(path=dest, name=name, kind=kind, sha256="", size=size, version=version,
                         aliases=tuple(dict.fromkeys(aliases)), metadata=jsonable(dict(metadata or {})),
                         source=os.path.abspath(src), time=_time()),
                "artifact",
            )
            return dest
        except OSError as exc:
            self._problem("artifact", f"log_artifact({path!r}) failed: {exc}")
            return None

    def checkpoints(self, monitor: str | None = None, mode: str = "max", **options: Any) -> CheckpointManager:
        """A checkpoint manager: ``save(state, step=, epoch=, metrics=)`` writes a new, never
        overwritten file; ``best()``, ``latest()``, ``list()``. Options: ``keep_best``, ``keep_last``,
        ``every_n_epochs``, ``every_n_steps``, ``name``, ``dirpath``, ``extension``, ``save_fn``,
        ``load_fn``. A resumed run's manager knows the earlier segments' checkpoints. docs/checkpoints.md."""
        from .checkpoints.manager import CheckpointManager

        return CheckpointManager(self, self._rundir, self._write, self._problem, monitor=monitor, mode=mode,
                                 **options)

    def _snapshot_bytes(self, fname: str, content: bytes | str) -> None:
        p = os.path.join(self._rundir.provenance_dir(), fname)
        with open(p, "wb") as fh:
            fh.write(content.encode() if isinstance(content, str) else content)
        self.log_artifact(p, fname, kind="provenance")

    # ------------------------------------------------------------------ status

    def finish(
        self,
        status: Status | str | None = None,
        reason: str = "",
        *,
        exit_code: int | None = None,
        details: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        wait: str | None = None,
    ) -> None:
        """End the run: record the final status (fsynced), then, with ``finish_wait="delivery"``
        (or ``wait="delivery"``), wait at most ``drain_timeout`` for the backends; what is not
        delivered by then stays in the journal for ``trackkit sync``. With ``"journal"`` (the
        default) it returns at once and the process agent delivers in the background
        (:meth:`wait_delivery` waits for it). Idempotent."""
        global _active
        if self._finished or os.getpid() != self._pid:
            return
        if wait not in (None, "journal", "delivery"):
            raise ConfigError(f"wait: {wait!r} is not known. Fix: use 'journal' or 'delivery'")
        # the thread agent ends with this process: only the process agent can be left to deliver
        waits = (wait or self.settings.finish_wait) == "delivery" or self._agent.mode == "thread"
        if status is None:
            st = Status.DIVERGED if self._diverged else Status.COMPLETED
            if self._diverged and not reason:
                reason = self.reason
        else:
            try:
                st = Status(status)
            except ValueError:
                raise ConfigError(
                    f"status: {status!r} is not a status. Fix: use one of {[s.value for s in Status]}"
                ) from None
        self._finished = True
        self._natives.close()
        if self._media is not None:
            self._media.close()
        try:
            reason, details = self._end_console(st, reason, details)
            last_step = self._step if self._step >= 0 else None
            # a diverged run already has its status record (at the step it happened)
            ending = ending_events(st, reason, last_step, exit_code, details=jsonable(dict(details or {})),
                                   with_status=st is not Status.DIVERGED or not self._diverged)
            if not self._write_all(ending):
                # the journal cannot hold it (disk full, file too large): leave the true status in a
                # small side file, and let go of the lock now, so the agent ends the run with it at
                # once instead of waiting for the drain deadline and calling it killed
                self._rundir.write_finish_note(st, reason, last_step, exit_code, self.problems.get("journal", 0))
                self._release_lock()
            self.status, self.reason = st, reason
            self._journal.close()
            self._agent.close_relay()
        finally:
            with _active_lock:
                if _active is self:  # a finished child hands the module-level API back to its open parent
                    up = self._parent_run
                    _active = up if up is not None and not up.finished else None
            self._hooks.uninstall()
            if waits:
                self._agent.wait(self.settings.drain_timeout if timeout is None else timeout)
            else:
                self._agent.let_go(self.settings.drain_timeout)
            self._release_lock()
            self._report(waits)

    def child(
        self, name: str | None = None, config: Mapping[str, Any] | None = None, *,
        tags: Mapping[str, str] | Iterable[str] | None = None, group: str | None = None, **settings: Any,
    ) -> Run:
        """Start a child run of this one (a sweep's trial): same project and settings (backends, root,
        agent, capture ...) unless ``settings`` (``init``'s keyword arguments) say otherwise; it
        becomes the active run until it finishes, then this one is again. Backends: MLflow nested
        run, W&B group + job type, TensorBoard directory in this run's (docs/sweeps.md)."""
        from .start import check_standard, prepare

        base = {k: getattr(self.settings, k) for k in _INHERITED}
        base["project"] = self.project
        data, seed = settings.pop("data", None), settings.pop("seed", None)
        prep = prepare(config, data, seed, {**base, **settings})
        run = Run(prep.settings, prep.specs, config=prep.config, name=name, group=group, tags=tags, meta=prep.meta,
                  artifacts=prep.files, parent=self)
        check_standard(run)
        make_active(run)
        return run

    def _end_console(self, st: Status, reason: str,
                     details: Mapping[str, Any] | None) -> tuple[str, Mapping[str, Any] | None]:
        """The console handed back to the terminal, all of it with the agent; a crashed run's reason
        gets its last lines (a killed one's details: its reason stays the signal's name)."""
        end = self._agent.end_console(min(3.0, self.settings.drain_timeout))
        if end is None:
            return reason, details
        if end.lost or end.stopped:
            note = console_loss_note(end)
            self._write(Console(text=note + "\n", time=_time(), line=-1, lost=end.lost), "console")
            self.problems["console"] += 1  # never raised, not even strict: the run is ending
            warn(f"trackkit: run {self.name}: {note}", TrackkitWarning)
        if end.tail and st is Status.CRASHED:
            return f"{reason}\nlast output:\n{end.tail}", details
        if end.tail and st is not Status.COMPLETED:
            return reason, {**(details or {}), "last_output": end.tail}
        return reason, details

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, -1
        release(fd)

    def wait_delivery(self, timeout: float | None = None) -> bool:
        """Wait until every backend holds everything the journal holds (after ``finish``: until the
        agent delivered the whole run and closed the backends), at most ``timeout`` seconds
        (default ``drain_timeout``). True when nothing is left; what is not delivered stays in the
        journal either way (``trackkit sync``)."""
        return self._agent.wait_delivered(self.settings.drain_timeout if timeout is None else timeout,
                                          finished=self._finished)

    def _report(self, waited: bool = True) -> None:
        lost = self.problems.get("journal", 0)
        if lost:
            warn(f"trackkit run {self.name}: {lost} record(s) could not be written to the journal and are lost "
                 f"({self.logs_lost} of them log() calls); the backends hold only what the journal holds",
                 TrackkitWarning)
        # not waited for: a backend still behind is the agent's work in progress, unless it failed
        pending = self._agent.pending(failing_only=not waited)
        if pending:
            warn(f"trackkit run {self.name}: not yet delivered to {', '.join(pending)}; "
                 f"the journal keeps it. Deliver later with: trackkit sync {self.id}", TrackkitWarning)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if ev is None:
            self.finish()
        else:
            self._finish_from_exception(ev, tb)

    @property
    def finished(self) -> bool:
        """True once the run ended (whatever its status)."""
        return self._finished

    @property
    def step(self) -> int | None:
        """The highest step logged so far (None before the first ``log()``)."""
        return self._step if self._step >= 0 else None

    def pending(self) -> list[str]:
        """Backends that have not yet received everything the journal holds."""
        return self._agent.pending()

    def finish_from_exception(self, exc: BaseException, tb: TracebackType | None = None) -> None:
        """End the run with the status an exception means: ``SystemExit`` by its code,
        ``KeyboardInterrupt`` killed, ``DivergedError`` diverged, anything else crashed
        (with the traceback). For integrations that catch exceptions themselves."""
        self._finish_from_exception(exc, tb if tb is not None else exc.__traceback__)

    def _finish_from_exception(self, exc: BaseException, tb: TracebackType | None) -> None:
        status, reason, exit_code, details = exception_ending(exc, tb, self._step)
        self.finish(status, reason, exit_code=exit_code, details=details)

    # ------------------------------------------------------------------ internals

    def _write(self, ev: Event, what: str) -> bool:
        """Append one record (built from its event by the journal's one encoder); True when the
        journal holds it."""
        try:
            line = encode(ev)
            self._journal.write_line(line)
            self.records_written += 1
            if line.startswith(POKED) and hasattr(self, "_agent"):  # sent now, not at the next batch; init's
                self._agent.poke()  # records (provenance artifacts) come before the agent, which reads them at once
            return True
        except OSError as exc:
            self._problem("journal", f"journal write failed ({exc}); the {what} record was NOT saved")
        except (TypeError, ValueError) as exc:
            self._problem(what, f"could not encode the {what} record: {exc}")
        return False

    def _write_all(self, events: Sequence[Event]) -> bool:
        """Append records in order; True when the journal holds the last one (the one that
        decides: a segment's finish)."""
        ok = True
        for ev in events:
            ok = self._write(ev, _WHAT.get(type(ev).__name__, type(ev).__name__))
        return ok

    def _problem(self, kind: str, message: str, cause: str = "") -> None:
        """Count a problem handled for the user (``run.problems[kind]``) and warn about it once: once
        per problem — its kind (``value:KEY`` for a value) and ``cause`` — not once per category.
        After ``MAX_WARNED`` different problems the rest are only counted (one line says so)."""
        self.problems[kind.split(":")[0]] += 1
        if self._strict:
            raise TrackkitError(message)
        which = f"{kind}|{cause}"
        if which in self._warned:
            return
        self._warned.add(which)
        if len(self._warned) > MAX_WARNED:
            if len(self._warned) == MAX_WARNED + 1:
                warn(f"trackkit: run {self.name}: more than {MAX_WARNED} different problems; the rest are only "
                     "counted in run.problems", TrackkitWarning)
            return
        warn(f"trackkit: {message} (warned once; counted in run.problems)", TrackkitWarning)

    def native(self, backend: str) -> Any:
        """The SDK's own run object for ``backend`` ("wandb", "mlflow", "tensorboard"). This bypasses
        every trackkit guarantee: calls block on the SDK, can raise, and are not journaled."""
        return self._natives.get(backend)

    def __repr__(self) -> str:
        return f"<trackkit.Run {self.name} id={self.id} status={self.status.value} dir={self.dir}>"


#: the settings a child run takes from its parent (``Run.child``) unless told otherwise
_INHERITED = ("backend", "root", "agent", "drain_timeout", "linger", "flush_interval", "on_nan", "strict", "advisories",
              "capture")

#: the word a failed write of a record of this kind is reported with
_WHAT = {"Media": "media", "StatusChange": "status", "RunFinished": "finish", "RunResumed": "resume",
         "ConfigUpdate": "config", "Tags": "tags", "Artifact": "artifact", "RunStarted": "start",
         "Summary": "summary", "MetricGoal": "goal", "Checkpoint": "checkpoint", "CheckpointPruned": "checkpoint prune"}


def _advise(message: str) -> None:
    warn(message, TrackkitWarning)
