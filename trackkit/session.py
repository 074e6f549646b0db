"""The module-level API: ``trackkit.init``, ``trackkit.log``, ``trackkit.finish``.

``init`` prepares the settings (``start.prepare``), finishes or keeps a run still active in the
process (``reinit``), creates the ``Run`` and makes it the active one. See docs/architecture.md."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigError, TrackkitWarning
from .events import Status
from .run import Run, current_run, make_active
from .util import norm_tags, warn

__all__ = ["finish", "init", "log"]


def init(
    config: Mapping[str, Any] | None = None,
    *,
    project: str | None = None,
    name: str | None = None,
    group: str | None = None,
    tags: Mapping[str, str] | Iterable[str] | None = None,
    backend: str | list[str] | None = None,
    root: str | None = None,
    agent: str | None = None,
    drain_timeout: float | None = None,
    finish_wait: str | None = None,
    linger: float | None = None,
    flush_interval: float | None = None,
    on_nan: str | None = None,
    strict: bool | None = None,
    advisories: bool | None = None,
    capture: bool | Mapping[str, bool] | None = None,
    console: bool | None = None,
    system_metrics: bool | None = None,
    system_metrics_interval: float | None = None,
    seed: int | None = None,
    data: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    reinit: str = "finish_previous",
    id: str | None = None,  # the name W&B users know (shadows the builtin here only)
    resume: str | None = None,
    parent: Run | str | None = None,
    ranks: str | None = None,
) -> Run:
    """Start a run. Setup problems (bad settings, unknown backend, missing SDK) raise
    here with a message naming the fix; after this, logging never raises into the loop.

    ``reinit``: what happens to a run still active in this process — ``"finish_previous"``
    (default: it is finished, completed, with a warning) or ``"create_new"`` (it stays open;
    several runs side by side, e.g. a sweep; module-level ``trackkit.log`` goes to the newest).

    ``id`` / ``resume`` (or ``TRACKKIT_RUN_ID`` / ``TRACKKIT_RESUME``; the arguments win):
    continue a run after preemption, as W&B's ``wandb.init(id=..., resume=...)``.
    ``resume="never"`` (default) refuses an id that exists, ``"allow"`` continues it or
    creates it, ``"must"`` refuses an id that does not exist. A resumed run keeps its
    journal, config and backend runs; ``run.step`` is the last step logged before, so
    ``start = (run.step or -1) + 1``. See docs/resume.md.

    ``ranks`` (or ``TRACKKIT_RANKS``): in a distributed launch (``RANK``/``LOCAL_RANK``/``SLURM_PROCID``
    set), ``"zero"`` (default) records rank 0 only: another rank gets a run that records nothing and
    costs nothing (``run.records`` is False); ``"all"``: one run per rank, grouped, tagged ``rank``.
    See docs/distributed.md."""
    from .ranks import process_rank
    from .resume import resolve_id
    from .start import check_standard, load, prepare

    parent = _parent(parent)
    if isinstance(parent, Run) and project is None:
        project = parent.project  # MLflow nests a child in its parent's experiment
    kwargs = {
        "project": project, "backend": backend, "root": root, "agent": agent, "drain_timeout": drain_timeout,
        "finish_wait": finish_wait, "linger": linger, "flush_interval": flush_interval, "on_nan": on_nan,
        "strict": strict, "advisories": advisories, "capture": capture, "ranks": ranks,
        "console": console, "system_metrics": system_metrics, "system_metrics_interval": system_metrics_interval,
    }
    rank = process_rank()
    settings = load(kwargs) if rank is not None else None
    suffix = ""
    if rank is not None and settings is not None:
        if settings.ranks != "all" and rank.rank != 0:
            from .noop import NoopRun

            noop = NoopRun(settings, config=config if isinstance(config, Mapping) else None, name=name,
                           group=group, tags=tags, rank=rank.rank)
            make_active(noop)
            return noop
        if settings.ranks == "all":
            group = group or rank.launch
            tags = {**norm_tags(tags), "rank": str(rank.rank)}
            suffix = f"-rank{rank.rank}"
            name = name + suffix if name else None
    run_id, resume_mode = resolve_id(id, resume)
    prep = prepare(config, data, seed, kwargs, settings)
    if reinit not in ("finish_previous", "create_new"):
        raise ConfigError(f"reinit: {reinit!r} is not an option. Fix: use 'finish_previous' or 'create_new'")
    prev = current_run()
    if prev is not None and isinstance(parent, str) and prev.id == parent:
        parent = prev  # the active run's child: it becomes active again when the child finishes
    keep = prev is not None and prev is parent
    if prev is not None and not prev.finished and reinit == "finish_previous" and not keep:
        warn(f"trackkit.init: run {prev.name} is still active; it is finished (completed) before the new one starts",
             TrackkitWarning)
        prev.finish()
    run = Run(prep.settings, prep.specs, config=prep.config, name=name, group=group, tags=tags, meta=prep.meta,
              artifacts=prep.files, run_id=run_id, resume=resume_mode, parent=parent, name_suffix=suffix)
    check_standard(run)
    make_active(run)
    return run


def _parent(parent: object) -> Run | str | None:
    if parent is None or isinstance(parent, Run):
        return parent
    if isinstance(parent, str) and parent.strip() and not any(c in parent for c in "/\\\0"):
        return parent.strip()
    raise ConfigError(f"parent: {parent!r} is not a run. Fix: pass the parent Run object or its id "
                      "(run.id, a string without slashes), or call parent_run.child(...)")


def log(values: Mapping[str, Any], step: int | None = None) -> None:
    """``log()`` on the active run (warned once and ignored when there is none)."""
    run = current_run()
    if run is None:
        warn("trackkit.log(): no active run; call trackkit.init() first", TrackkitWarning)
        return
    run.log(values, step)


def finish(status: Status | str | None = None, reason: str = "", *, wait: str | None = None) -> None:
    """``finish()`` of the active run (nothing when there is none); ``wait``: ``"journal"`` or
    ``"delivery"``, this call's ``finish_wait``."""
    run = current_run()
    if run is not None:
        run.finish(status, reason, wait=wait)
