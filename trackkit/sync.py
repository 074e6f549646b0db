"""``trackkit sync``: deliver what a journal still holds, after an outage or a killed agent.

``sync`` is Journal -> Sink, by the same delivery loop the agent runs (``agent.Delivery``),
one deliverer per run (the run directory's delivery lock, ``rundir.RunDir``)::

    from trackkit.sync import sync

    report = sync("./.trackkit")            # every run with undelivered data
    report = sync(run="3f9a", timeout=30)   # one run (id, id prefix or name)
    assert report.ok

A run whose trainer is alive is left to its own agent; a run whose trainer is gone without
finishing is marked ended (killed, or the status its finish note holds) while it is delivered.
The delivery's messages (tracebacks included) go to the run's ``agent.log``; a backend still
behind is reported with the cause in one line (``RunSync.causes``, from ``agent.delivery_state``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .events import RunRecord, RunResumed, RunStarted, Status

__all__ = ["RunSync", "SyncReport", "run_backends", "sync", "sync_run"]

State = Literal["delivered", "up to date", "running", "busy", "pending"]


@dataclass(frozen=True)
class RunSync:
    """What ``sync`` did with one run."""

    run_id: str
    #: ``delivered``: every backend caught up; ``up to date``: nothing to do; ``running``: its trainer
    #: is alive (its agent delivers), skipped; ``busy``: another deliverer holds the run, skipped;
    #: ``pending``: some backend is still behind
    state: State
    #: the run's backends (its start record's, plus any a resumed segment added)
    backends: list[str] = field(default_factory=list)
    #: the backends still behind, without credentials (``pending``)
    pending: list[str] = field(default_factory=list)
    #: why each of ``pending`` is behind, in one line (``"cannot resolve host 'nohost'"``; ``""``: no
    #: failure seen, only not done within the timeout)
    causes: dict[str, str] = field(default_factory=dict)
    #: the run's ``agent.log``: the delivery's messages and tracebacks
    log_path: str = ""

    @property
    def failed(self) -> bool:
        """Data is still undelivered (``busy`` or ``pending``)."""
        return self.state in ("busy", "pending")


@dataclass
class SyncReport:
    runs: list[RunSync] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.runs)


def run_backends(rec: RunRecord) -> list[str]:
    """The backend strings a journaled run delivers to: its start record's, plus any a resumed
    segment added (as recorded: credentials stripped)."""
    out: list[str] = []
    for ev in rec.events:
        if isinstance(ev, (RunStarted, RunResumed)):
            out += [str(b) for b in ev.meta.get("backends", []) if b not in out]
    return out


def sync_run(rec: RunRecord, *, timeout: float = 60.0, log: Callable[[str], None] | None = None,
             backends: Sequence[str] | None = None) -> RunSync:
    """Deliver one journaled run to its backends (``backends``: as its index entry lists them; default:
    from its events), for at most ``timeout`` seconds of trying. The delivery's messages go to the
    run's ``agent.log``, and to ``log`` too when given."""
    from .agent import Delivery, agent_logger, delivery_state
    from .registry import display_backend, parse_backend
    from .rundir import RunDir, release

    rid = rec.info.run_id
    rd = RunDir(rec.info.location)
    specs = [parse_backend(b) for b in (run_backends(rec) if backends is None else backends)]
    shown = [display_backend(s) for s in specs]
    if rd.trainer_alive():
        return RunSync(rid, "running", shown)
    if not rd.pending(specs) and rec.info.status is not Status.RUNNING:
        return RunSync(rid, "up to date", shown)
    lock = rd.hold_agent_lock()
    if lock is None:
        return RunSync(rid, "busy", shown)
    to_file = agent_logger(rd.path)

    def tee(msg: str) -> None:
        to_file(msg)
        if log is not None:
            log(msg)

    try:
        delivery = Delivery(rd.path, specs, drain_timeout=timeout, log=tee)
        trainer_back = threading.Event()

        def trainer_alive() -> bool:
            # a requeued trainer resumed this run while we deliver it: leave it to its agent
            # (which waits for our delivery lock) instead of marking a live run ended
            if rd.trainer_alive():
                trainer_back.set()
                return True
            return False

        ok = delivery.run(trainer_alive, trainer_back)
    finally:
        release(lock)
    left = delivery_state(rd.path, specs)
    return RunSync(rid, "delivered" if ok and not left else "pending", shown, [b for b, _ in left],
                   dict(left), rd.agent_log)


def sync(
    root: str | None = None,
    run: str | None = None,
    *,
    timeout: float = 60.0,
    log: Callable[[str], None] | None = None,
    progress: Callable[[RunSync], None] | None = None,
) -> SyncReport:
    """Deliver the runs under the journal ``root`` (default: the settings' ``root``) that hold
    undelivered data, or only ``run`` (id, id prefix or name; ``lookup.RunLookupError`` when no
    run or several answer to it). ``log`` gets the delivery's messages, ``progress`` each run's
    outcome as it is known."""
    from .lookup import find_entry, journal_entries, journal_root

    where = journal_root(root)
    entries = [find_entry(run, where)] if run else journal_entries(where)
    report = SyncReport()
    for e in entries:  # the index has what deciding needs; the Delivery reads the journal itself
        outcome = sync_run(RunRecord(e.info, []), timeout=timeout, log=log, backends=e.backends)
        report.runs.append(outcome)
        if progress is not None:
            progress(outcome)
    return report
