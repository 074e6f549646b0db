"""The module-level API: ``trackkit.init``, ``trackkit.log``, ``trackkit.finish``.

``init`` prepares the settings (``start.prepare``), finishes or keeps a run still active in the
process (``reinit``), creates the ``Run`` and makes it the active one. See docs/architecture.md."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigError, TrackkitWarning
from .events import Status
from .run import Run, current_run, make_active
from .util import warn

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
    ``start = (run.step or -1) + 1``. See docs/resume.md."""
    from .resume import resolve_id
    from .start import check_standard, prepare

    run_id, resume_mode = resolve_id(id, resume)
    prep = prepare(config, data, seed, {
        "project": project, "backend": backend, "root": root, "agent": agent, "drain_timeout": drain_timeout,
        "linger": linger, "flush_interval": flush_interval, "on_nan": on_nan, "strict": strict,
        "advisories": advisories, "capture": capture, "console": console, "system_metrics": system_metrics,
        "system_metrics_interval": system_metrics_interval,
    })
    if reinit not in ("finish_previous", "create_new"):
        raise ConfigError(f"reinit: {reinit!r} is not an option. Fix: use 'finish_previous' or 'create_new'")
    prev = current_run()
    if prev is not None and not prev.finished and reinit == "finish_previous":
        warn(f"trackkit.init: run {prev.name} is still active; it is finished (completed) before the new one starts",
             TrackkitWarning)
        prev.finish()
    run = Run(prep.settings, prep.specs, config=prep.config, name=name, group=group, tags=tags, meta=prep.meta,
              artifacts=prep.files, run_id=run_id, resume=resume_mode)
    check_standard(run)
    make_active(run)
    return run


def log(values: Mapping[str, Any], step: int | None = None) -> None:
    """``log()`` on the active run (warned once and ignored when there is none)."""
    run = current_run()
    if run is None:
        warn("trackkit.log(): no active run; call trackkit.init() first", TrackkitWarning)
        return
    run.log(values, step)


def finish(status: Status | str | None = None, reason: str = "") -> None:
    """``finish()`` of the active run (nothing when there is none)."""
    run = current_run()
    if run is not None:
        run.finish(status, reason)
