"""Run resumption: ``trackkit.init(id=..., resume="never"|"allow"|"must")``.

A preempted job (SLURM requeue, a spot instance) starts again, reloads its checkpoint
and continues THE SAME run: the same journal directory ``<root>/<project>/<id>/``, the
same backend runs (MLflow finds its run by the ``trackkit.run_id`` tag, W&B uses the same
deterministic id, TensorBoard the same directory). The journal gets a ``resume`` record
(docs/journal.md); everything after it is the run's next *segment*. See docs/resume.md.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .events import (
    Artifact,
    ConfigUpdate,
    Event,
    RunFinished,
    RunRecord,
    RunResumed,
    RunStarted,
    Status,
    Tags,
    flatten_config,
)
from .rundir import RunDir, ending_events, release
from .util import jsonable

__all__ = [
    "ID_ENV", "ID_PATTERN", "RESUME_ENV", "RESUME_MODES", "Opened", "ResumePlan", "open_named", "plan", "resolve_id",
    "validate_id",
]

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


@dataclass
class Opened:
    """A run directory with a chosen id, its trainer lock taken (``lock_fd``, the caller's to keep)."""

    rundir: RunDir
    lock_fd: int
    #: the earlier segments' record when the run is resumed; None: a new run with that id
    prior: RunRecord | None


def open_named(parent: str, project: str, run_id: str, resume: str) -> Opened:
    """Open (or create) the directory of a run with a chosen id and take its trainer lock,
    enforcing the resume mode. Raises ``ConfigError`` naming the fix; never leaves the lock held."""
    rd = RunDir(os.path.join(parent, run_id))
    where = f"project {project!r} under {os.path.dirname(parent)!r}"
    if rd.has_journal() and resume == "never":
        raise ConfigError(
            f"id: a run with id {run_id!r} already exists in {where}. Fix: pass resume='allow' or "
            f"resume='must' (or {RESUME_ENV}=allow) to continue it, or choose another id"
        )
    if not rd.has_journal() and resume == "must":
        raise ConfigError(
            f"id: resume='must' but there is no run with id {run_id!r} in {where}. Fix: check the id, "
            "project and root (the run lives in <root>/<project>/<id>/), or use resume='allow' to create it"
        )
    os.makedirs(rd.path, exist_ok=True)
    # a lingering agent or ``trackkit sync`` probes the lock (taking it for an instant): be patient
    fd = rd.lock_trainer(patience=2.0)
    if fd is None:
        raise ConfigError(
            f"id: run {run_id!r} in {where} is still running: its training process holds {rd.trainer_lock}. "
            "Fix: resume only after that process has ended (stop it, or wait for it), or choose another id"
        ) from None
    try:
        if not rd.has_journal():
            return Opened(rd, fd, None)  # a new run with this id
        if resume == "never":  # created by another process since the check above
            raise ConfigError(
                f"id: a run with id {run_id!r} already exists in {where}. Fix: pass resume='allow' or "
                "resume='must' to continue it, or choose another id"
            )
        from .journal import load_run

        try:
            prior: RunRecord = load_run(rd.path)
        except ValueError as exc:  # a journal written by a newer trackkit
            raise ConfigError(f"id: run {run_id!r} in {where} cannot be resumed: {exc}") from None
    except BaseException:
        release(fd)
        raise
    if not any(isinstance(ev, RunStarted) for ev in prior.events):
        return Opened(rd, fd, None)  # the journal holds no start record (its first init died at once): start anew
    return Opened(rd, fd, prior)


@dataclass
class ResumePlan:
    """What a resumed run starts from, computed from the earlier segments' record; ``Run``
    applies it (takes the fields, writes ``records`` in order, emits ``warnings``)."""

    name: str
    group: str | None
    start_time: float | None
    tags: dict[str, str]
    config: dict[str, Any]
    #: the last step logged before (-1: none)
    step: int
    #: next version number per artifact name
    artifact_versions: dict[str, int]
    #: how many times the run has been resumed, this one included
    resumed: int
    records: list[Event] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def plan(
    rd: RunDir,
    prior: RunRecord,
    *,
    run_id: str,
    name: str | None,
    group: str | None,
    config: Mapping[str, Any],
    tags: Mapping[str, str],
    meta: Mapping[str, Any],
) -> ResumePlan:
    """The records that make a new process the next segment of ``prior``, and the state it takes
    over. ``config`` and ``tags`` are what was passed now (already JSON and normalised)."""
    info = prior.info
    out = ResumePlan(
        name=info.name, group=info.group, start_time=info.start_time, tags=dict(info.tags),
        config=dict(info.config), step=info.last_step if info.last_step is not None else -1,
        artifact_versions={}, resumed=info.resumed + 1,
    )
    if name and name != info.name:
        out.warnings.append(
            f"run {run_id!r} is resumed under its recorded name {info.name!r}; name={name!r} is ignored"
        )
    if group is not None and group != info.group:
        out.warnings.append(
            f"run {run_id!r} is resumed in its recorded group {info.group!r}; group={group!r} is ignored"
        )
    for ev in prior.events:
        if isinstance(ev, Artifact):
            out.artifact_versions[ev.name] = max(out.artifact_versions.get(ev.name, 0), ev.version + 1)

    # the earlier segment must be closed: a trainer that died with its agent (a whole SLURM job
    # killed) left no finish record, so this process records what the agent would have
    last_end = next((ev for ev in reversed(prior.events) if isinstance(ev, (RunFinished, RunResumed))), None)
    previous: Status = info.status
    if not isinstance(last_end, RunFinished):
        end = rd.ending(info.last_step, killed_reason=SEEN_AT_RESUME)
        previous = end.status
        out.records += ending_events(end.status, rd.ending_reason(end), end.step, end.exit_code)
    if previous is Status.COMPLETED:
        out.warnings.append(
            f"run {run_id!r} had completed; it is resumed (its status goes back to running and the new "
            "segment's end decides the final status)"
        )
    now = time.time()
    out.records.append(
        RunResumed(time=now, segment=out.resumed, previous_status=previous, step=info.last_step, meta=dict(meta))
    )
    # config: the recorded one is kept; what was passed now is merged in as a config update
    recorded = out.config
    merged = _deep_merge(recorded, config)
    update = {k: merged[k] for k in config if k not in recorded or merged[k] != recorded[k]}
    if update:
        flat_old, flat_new = flatten_config(recorded), flatten_config(config)
        changed = sorted(k for k, v in flat_new.items() if k in flat_old and flat_old[k] != v)
        if changed:
            shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
            out.warnings.append(
                f"run {run_id!r} is resumed with config values that differ from the recorded ones: {shown}. "
                "The new values are recorded as a config update (MLflow keeps the first value of a param; "
                "the config artifacts hold both)"
            )
        out.config = merged
        out.records.append(ConfigUpdate(config=jsonable(update), time=now))
    new_tags = {k: v for k, v in tags.items() if out.tags.get(k) != v}
    if new_tags:
        out.tags.update(new_tags)
        out.records.append(Tags(tags=new_tags, time=now))
    return out


#: the killed reason of a segment found unmarked when its run is resumed
SEEN_AT_RESUME = "the training process ended without finishing (SIGKILL, OOM or hard crash); seen at resume"


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        old = out.get(k)
        out[k] = _deep_merge(old, v) if isinstance(old, Mapping) and isinstance(v, Mapping) else v
    return out
