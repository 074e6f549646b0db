"""Run resumption: ``trackkit.init(id=..., resume="never"|"allow"|"must")``.

A preempted job (SLURM requeue, a spot instance) starts again, reloads its checkpoint
and continues THE SAME run: the same journal directory ``<root>/<project>/<id>/``, the
same backend runs (MLflow finds its run by the ``trackkit.run_id`` tag, W&B uses the same
deterministic id, TensorBoard the same directory). The journal gets a ``resume`` record
(docs/journal.md); everything after it is the run's next *segment*. See docs/resume.md.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, TrackkitWarning
from .events import Artifact, RunFinished, RunRecord, RunResumed, RunStarted, Status, flatten_config
from .journal import JOURNAL_NAME

if TYPE_CHECKING:
    from .run import Run

__all__ = ["ID_ENV", "ID_PATTERN", "RESUME_ENV", "RESUME_MODES", "resolve_id", "validate_id"]

ID_ENV = "TRACKKIT_RUN_ID"
RESUME_ENV = "TRACKKIT_RESUME"
RESUME_MODES = ("never", "allow", "must")
#: a run id is a directory name and part of backend ids: letters, digits, ``_ - .``; starts with a
#: letter or digit; at most 64 characters (W&B's limit). SLURM job ids (``123456``, ``123456_7``) fit.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
ALLOWED_TEXT = "letters, digits, '_', '-' and '.', starting with a letter or digit, at most 64 characters"


def validate_id(run_id: Any, source: str = "id") -> str:
    """The id, or a ``ConfigError`` naming the field and the fix."""
    if not isinstance(run_id, str) or not ID_PATTERN.fullmatch(run_id):
        shown = repr(run_id) if not isinstance(run_id, str) or len(run_id) <= 80 else repr(run_id[:77] + "...")
        raise ConfigError(
            f"{source}: {shown} is not a valid run id. A run id may hold {ALLOWED_TEXT}. "
            "Fix: choose such an id (e.g. the SLURM job id: TRACKKIT_RUN_ID=$SLURM_JOB_ID)"
        )
    return run_id


def resolve_id(run_id: str | None, resume: str | None, environ: Mapping[str, str] | None = None) -> tuple[
        str | None, str]:
    """``(id, resume mode)`` from the arguments, then ``TRACKKIT_RUN_ID`` / ``TRACKKIT_RESUME``."""
    env = os.environ if environ is None else environ
    id_source = "id"
    if run_id is None and env.get(ID_ENV):
        run_id, id_source = env[ID_ENV], f"environment variable {ID_ENV}"
    resume_source = "resume"
    if resume is None and env.get(RESUME_ENV):
        resume, resume_source = env[RESUME_ENV].strip().lower(), f"environment variable {RESUME_ENV}"
    mode = "never" if resume is None else resume
    if mode not in RESUME_MODES:
        raise ConfigError(
            f"{resume_source}: {mode!r} is not a resume mode. Fix: use one of 'never' (default: a new run), "
            "'allow' (continue the run with this id if it exists, else create it) or 'must' (it must exist)"
        )
    if run_id is not None:
        validate_id(run_id, id_source)
    elif mode == "must":
        raise ConfigError(
            f"{resume_source}: resume='must' needs the id of the run to continue. "
            f"Fix: pass id='...' (or set {ID_ENV}), e.g. the SLURM job id"
        )
    return run_id, mode


def open_named(run: Run, parent: str, run_id: str, resume: str) -> tuple[str, RunRecord | None]:
    """The directory of a run with a chosen id, its lock taken (``run._lock_fd``); with the
    earlier segments' record when the run is resumed, else None (a new run with that id)."""
    d = os.path.join(parent, run_id)
    where = f"project {run.project!r} under {os.path.dirname(parent)!r}"
    if _exists(d) and resume == "never":
        raise ConfigError(
            f"id: a run with id {run_id!r} already exists in {where}. Fix: pass resume='allow' or "
            f"resume='must' (or {RESUME_ENV}=allow) to continue it, or choose another id"
        )
    if not _exists(d) and resume == "must":
        raise ConfigError(
            f"id: resume='must' but there is no run with id {run_id!r} in {where}. Fix: check the id, "
            "project and root (the run lives in <root>/<project>/<id>/), or use resume='allow' to create it"
        )
    os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    if not _flock_soon(fd):
        os.close(fd)
        raise ConfigError(
            f"id: run {run_id!r} in {where} is still running: its training process holds {os.path.join(d, 'lock')}. "
            "Fix: resume only after that process has ended (stop it, or wait for it), or choose another id"
        ) from None
    run._lock_fd = fd
    if not _exists(d):
        return d, None  # a new run with this id
    if resume == "never":  # created by another process since the check above
        raise ConfigError(
            f"id: a run with id {run_id!r} already exists in {where}. Fix: pass resume='allow' or "
            "resume='must' to continue it, or choose another id"
        )
    from .journal import load_run

    try:
        prior: RunRecord = load_run(d)
    except ValueError as exc:  # a journal written by a newer trackkit
        raise ConfigError(f"id: run {run_id!r} in {where} cannot be resumed: {exc}") from None
    if not any(isinstance(ev, RunStarted) for ev in prior.events):
        return d, None  # the journal holds no start record (its first init died at once): start it anew
    return d, prior


def _flock_soon(fd: int, patience: float = 2.0) -> bool:
    """Take the trainer lock, retrying for ``patience`` seconds: a lingering agent or ``trackkit
    sync`` probes it (taking it for an instant) to see whether the trainer is alive."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _exists(d: str) -> bool:
    try:
        return os.path.getsize(os.path.join(d, JOURNAL_NAME)) > 0
    except OSError:
        return False


def continue_run(
    run: Run,
    prior: RunRecord,
    *,
    name: str | None,
    group: str | None,
    tags: Mapping[str, str] | Iterable[str] | None,
) -> None:
    """Write the records that make ``run`` the next segment of ``prior`` and take over its state."""
    from .run import _jsonable, _norm_tags, _time

    info = prior.info
    passed_config = dict(run.config)
    passed_tags = _norm_tags(tags)
    if name and name != info.name:
        _warn(f"run {run.id!r} is resumed under its recorded name {info.name!r}; name={name!r} is ignored")
    if group is not None and group != info.group:
        _warn(f"run {run.id!r} is resumed in its recorded group {info.group!r}; group={group!r} is ignored")
    run.name, run.group = info.name, info.group
    if info.start_time is not None:
        run.start_time = info.start_time
    run.tags = dict(info.tags)
    run.config = dict(info.config)
    run._step = info.last_step if info.last_step is not None else -1
    for ev in prior.events:
        if isinstance(ev, Artifact):
            run._artifact_versions[ev.name] = max(run._artifact_versions[ev.name], ev.version + 1)

    # the earlier segment must be closed: a trainer that died with its agent (a whole SLURM job
    # killed) left no finish record, so this process records what the agent would have
    last_end = next((ev for ev in reversed(prior.events) if isinstance(ev, (RunFinished, RunResumed))), None)
    previous: Status = info.status
    if not isinstance(last_end, RunFinished):
        previous = _close_segment(run, info.last_step)
    else:  # an earlier segment's finish.json (its journal was full) must not decide this one's status
        from .agent import FINISH_NOTE

        try:
            os.unlink(os.path.join(run.dir, FINISH_NOTE))
        except OSError:
            pass
    run.resumed = info.resumed + 1
    if previous is Status.COMPLETED:
        _warn(
            f"run {run.id!r} had completed; it is resumed (its status goes back to running and the new "
            "segment's end decides the final status)"
        )
    run._write_record(
        {
            "k": "resume",
            "time": _time(),
            "segment": run.resumed,
            "previous_status": previous.value,
            "step": info.last_step,
            "meta": run.meta,
        },
        "resume",
    )
    # config: the recorded one is kept; what was passed now is merged in as a config update
    recorded = run.config
    merged = _deep_merge(recorded, passed_config)
    update = {k: merged[k] for k in passed_config if k not in recorded or merged[k] != recorded[k]}
    if update:
        flat_old, flat_new = flatten_config(recorded), flatten_config(passed_config)
        changed = sorted(k for k, v in flat_new.items() if k in flat_old and flat_old[k] != v)
        if changed:
            shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
            _warn(
                f"run {run.id!r} is resumed with config values that differ from the recorded ones: {shown}. "
                "The new values are recorded as a config update (MLflow keeps the first value of a param; "
                "the config artifacts hold both)"
            )
        run.config = merged
        run._write_record({"k": "config", "config": _jsonable(update), "time": _time()}, "config")
    new_tags = {k: v for k, v in passed_tags.items() if run.tags.get(k) != v}
    if new_tags:
        run.tags.update(new_tags)
        run._write_record({"k": "tags", "tags": new_tags, "time": _time()}, "tags")


def _close_segment(run: Run, last_step: int | None) -> Status:
    """Append ``status`` + ``finish`` for an earlier segment whose trainer died unmarked: the status
    it left in ``finish.json`` (its journal was full), else ``killed``. Returns that status."""
    from .agent import FINISH_NOTE
    from .run import _time

    status, reason, exit_code, step = Status.KILLED, "", None, last_step
    note_path = os.path.join(run.dir, FINISH_NOTE)
    try:
        with open(note_path) as fh:
            note = json.load(fh)
        status = Status(str(note["status"]))
        reason = str(note.get("reason") or "")
        code = note.get("exit_code")
        exit_code = code if isinstance(code, int) else None
        step = note.get("step", last_step)
    except (OSError, ValueError, KeyError, TypeError):
        reason = "the training process ended without finishing (SIGKILL, OOM or hard crash); seen at resume"
    now = _time()
    run._write_record(
        {"k": "status", "status": status.value, "reason": reason, "step": step, "time": now, "details": {}}, "status"
    )
    run._write_record(
        {"k": "finish", "status": status.value, "time": now, "reason": reason, "exit_code": exit_code}, "finish"
    )
    try:  # it belonged to that segment: a later one must not inherit it
        os.unlink(note_path)
    except OSError:
        pass
    return status


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        old = out.get(k)
        out[k] = _deep_merge(old, v) if isinstance(old, Mapping) and isinstance(v, Mapping) else v
    return out


def _warn(message: str) -> None:
    warnings.warn(f"trackkit: {message}", TrackkitWarning, stacklevel=5)


def wait_for_agent_lock(run_dir: str, stop: Any, log: Any, poll: float = 0.1) -> int | None:
    """For the agent of a resumed run: wait while the agent of an earlier segment (still draining
    it, or already delivering the new segment) holds the delivery lock; None when ``stop`` is set."""
    from .agent import hold_agent_lock

    logged = False
    while True:
        fd = hold_agent_lock(run_dir)
        if fd is not None:
            return fd
        if not logged:
            log("the agent of an earlier segment is still delivering this run; waiting for it")
            logged = True
        if stop.is_set():
            return None
        time.sleep(poll)
