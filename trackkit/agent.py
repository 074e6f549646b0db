"""The delivery agent: tails a run's journal and feeds every sink.

* one cursor per sink (``<run dir>/cursors/<key>.json``, the byte offset of the last delivered
  record), so a restarted agent or ``trackkit sync`` resumes without duplicates;
* batches (up to ``BATCH`` records per ``emit``); while the run is live the journal is read and
  sent at most every ``flush_interval``, and the agent sleeps in between (docs/journal.md);
* retry with exponential backoff per sink; a failing sink never blocks or breaks another, and its
  data waits in the journal;
* a bounded drain: ``finish()`` waits for delivery at most ``drain_timeout`` seconds; after the
  run's ``finish`` record (or the trainer's death) the process agent, which nobody waits for, goes
  on delivering for at most ``linger`` seconds (a slow SDK start-up or a backend that comes back
  still gets everything), then exits; on SIGTERM it drains for ``drain_timeout`` and exits;
* trainer death is seen through the run's lock file: the trainer holds an ``flock`` for its
  lifetime and the kernel drops it however the process dies (SIGKILL, OOM killer). The agent then
  appends ``status: killed`` and ``finish`` to the journal, drains, and exits;
* a reachability check at start (a server backend's host resolved, its port connected, off the
  training thread); that result and each failure's cause, in one line, go to the delivery state
  (``RunDir.save_delivery_state``), which the trainer watches for a few seconds, and ``finish`` and
  ``trackkit sync`` quote (:func:`delivery_state`); tracebacks stay in ``agent.log``.

By default the agent is a separate process (``python -m trackkit.agent``) in its
own session, so it outlives a killed trainer and keeps SDK work (and the GIL)
off the training process. ``agent="thread"`` runs the same loop in a daemon
thread where processes are not allowed; backends whose state lives in the
trainer's process (``memory:``) force it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .backend import BackendSpec
from .checkpoints.deliver import CheckpointFiles
from .events import Artifact, Checkpoint, CheckpointPruned, Event, Media, Metrics, RunStarted, event_from_record
from .index import Summarizer
from .journal import JournalReader
from .media.encode import materialize
from .media.values import MediaError
from .reach import describe_failure, probe, server_address
from .rundir import RunDir, release, sink_key
from .sender import Sender, cpu_seconds, read_pokes, thread_clock
from .tail import JournalTail

if TYPE_CHECKING:
    from .observe import Observers

__all__ = [
    "SPECS_ENV", "WATCH_POLL", "WATCH_S", "Delivery", "agent_logger", "delivery_state", "describe_failure",
    "file_logger", "main", "pending_sinks", "probe", "public_spec", "user_line",
]

BATCH = 10_000
#: bytes of journal parsed per loop turn (~20k metric records): sending starts while the rest is read
READ_SLICE = 2 << 20
#: while the run is live the journal is read at most every flush_interval, or sooner once it grew by this
GROW_BYTES = READ_SLICE // 4
#: while the run is live, how often the loop looks at the journal's size and the trainer's lock (seconds);
#: a send that completes, ``stop`` and the trainer's pokes (finish, checkpoints, artifacts) wake it at once
LIVE_POLL = 1.0
#: the account (agent-stats.json) is written when a poke is served, at the end, and at most this often (s);
#: the run index entry, while the run is live, at most this often (a reader catches up the rest);
#: and each backend's cursor, while the run is live and nobody waits (a crashed agent resends that much)
STATS_EVERY, INDEX_LIVE, CURSOR_LIVE = 10.0, 5.0, 5.0
MAX_BACKOFF = 30.0
SPECS_ENV = "TRACKKIT_AGENT_SPECS"
#: seconds the start-up check waits for a TCP connect
#: how long, and how often, the trainer looks at the delivery state for a backend to warn about
WATCH_S, WATCH_POLL = 6.0, 0.1


@dataclass
class _SinkState:
    spec: BackendSpec
    key: str
    cursor: int = 0
    pending: list[tuple[Event, int]] = field(default_factory=list)
    sink: Any = None
    started: bool = False
    failures: int = 0
    next_try: float = 0.0
    last_error: str = ""
    delivered: int = 0
    last_emit: float = 0.0
    #: the batch being sent by this backend's sender thread, and its size
    inflight: Future[None] | None = None
    inflight_n: int = 0
    sender: Sender | None = None
    #: the in-flight call is the backend's close, not a batch
    closing: bool = False
    #: CPU seconds the sender thread spent inside this backend's calls (load, emit, close)
    sdk_cpu: float = 0.0
    #: the cursor moved since it was saved, and when it was saved (monotonic)
    dirty: bool = False
    saved_at: float = 0.0


class Delivery:
    """The agent loop, shared by the process agent, the thread agent and ``trackkit sync``."""

    def __init__(
        self,
        run_dir: str,
        specs: Sequence[BackendSpec],
        *,
        poll_interval: float = 0.05,
        drain_timeout: float = 10.0,
        linger: float | None = None,
        flush_interval: float = 1.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        from .registry import load_sink

        self._load_sink = load_sink
        self.run_dir = run_dir
        self.rundir = RunDir(run_dir)
        self.journal_path = self.rundir.journal
        self.reader = JournalReader(self.journal_path)
        self.poll_interval = poll_interval
        self.drain_timeout = drain_timeout
        #: how long delivery goes on once the run is finished (or its trainer dead) with nobody
        #: waiting: the process agent lingers; thread mode and sync use drain_timeout
        self.linger = drain_timeout if linger is None else linger
        self.flush_interval = flush_interval
        self.log = log or (lambda msg: None)
        self.start_event: RunStarted | None = None
        #: the console pump and system sampler of this run (observe.Observers), if any
        self.observers: Observers | None = None
        self.finished = False
        self.last_step: int | None = None
        self.sinks = [_SinkState(s, sink_key(s)) for s in specs]
        for st in self.sinks:
            st.cursor = self.rundir.load_cursor(st.key)
        #: the delivery state (sink key -> backend, error, probe, time), written whole on each change
        self._state = self.rundir.load_delivery_state()
        self._state_lock = threading.Lock()
        #: checkpoints and artifacts: hashed and linked into the journal directory here, not in the trainer
        self.files = CheckpointFiles(self.rundir, self.log)
        #: the run index entry, folded from what is read here (it reads from the journal's start) and
        #: written at most once per flush_interval and when delivery stops (trackkit.index)
        self.summary = Summarizer(run_dir)
        self._delivered_seen = 0
        #: live batching: when the journal is read next (monotonic); what the polls look at
        self._next_read = 0.0
        self.tail = JournalTail(self.journal_path)
        #: set by a send that completes, stop, and the trainer's pokes: the loop's sleep ends
        self.wake = threading.Event()
        self._poked = False
        #: the wake pipe is open (the trainer's pokes come through it), and when the lock is looked at next
        self._listening = False
        self._alive_at = 0.0
        #: serving a poke (wait_delivery, finish): read and send at once until every backend has the journal;
        #: this loop turn reads and sends at once (finished, stopping, poked): cursors are saved at once
        self._hurry = False
        self._urgent = True
        #: the CPU account (agent-stats.json): records read, the loop thread's clock, a change to write
        self.records_read = 0
        self._clock: int | None = None
        self._stats_due = False
        self._stats_at = 0.0
        #: the process agent: what is alive after a backend started is kept out of garbage collections
        self.freeze_gc = False

    # ---------------------------------------------------------------- the delivery state

    def note(self, spec: BackendSpec, error: str, probe: str | None = None) -> None:
        """Record why ``spec`` is not delivering (``""``: it delivers); written only on a change."""
        key = sink_key(spec)
        with self._state_lock:
            old = self._state.get(key, {})
            new = {**old, "backend": public_spec(spec), "error": error, "time": time.time()}
            if probe is not None:
                new["probe"] = probe
            if {k: v for k, v in old.items() if k != "time"} == {k: v for k, v in new.items() if k != "time"}:
                return
            self._state[key] = new
            try:
                self.rundir.save_delivery_state(self._state)
            except OSError as exc:
                self.log(f"could not save the delivery state: {exc}")

    def _probe(self, spec: BackendSpec) -> None:
        """The start-up check of one server backend, on a daemon thread of its own."""
        cause = probe(spec)
        if cause is not None:
            self.log(f"{public_spec(spec)}: {cause or 'the server port answers'} (checked at start)")
            with self._state_lock:
                error = cause or str(self._state.get(sink_key(spec), {}).get("error") or "")
            self.note(spec, error, probe=cause)

    # ---------------------------------------------------------------- the loop

    def read_new(self) -> int:
        # a quarter slice (~8k metric records): the first send of a backlog starts after one or
        # two slices are parsed instead of one large one, while the next slices are parsed during it
        items = self.reader.read_events(max_bytes=READ_SLICE // 4)
        if not items:
            return 0
        fresh: list[tuple[Event, int]]
        if self.reader.metrics_only:  # the live loop's usual slice
            fresh, self.last_step = items, items[-1][0].step  # type: ignore[assignment,union-attr]
            self.summary.fold_metrics([item for item, _ in items], self.reader.offset)  # type: ignore[misc]
        else:
            fresh = []
            seen: list[Event] = []  # for the index: every event as the journal has it
            add, see = fresh.append, seen.append
            for pair in items:
                item, end = pair
                if type(item) is Metrics:  # a metric record in Run.log's form, decoded by the reader
                    self.last_step = item.step
                    add(pair)  # type: ignore[arg-type]  # (Metrics, int) is a (Event, int)
                    see(item)
                    continue
                rec: dict[str, Any] = item  # type: ignore[assignment]  # not a Metrics: a record's dict
                try:
                    ev = event_from_record(rec)
                except Exception as exc:  # any bad record (e.g. OverflowError) is skipped, never kills the agent
                    self.log(f"skipping a damaged record at offset {end}: {exc!r}")
                    continue
                see(ev)
                if isinstance(ev, RunStarted):
                    self.start_event = ev
                elif isinstance(ev, Media):  # encoded here, once for every backend (docs/media.md)
                    try:
                        ev = materialize(ev, self.rundir.media_dir())
                    except MediaError as exc:
                        self.log(f"skipping a media value: {exc}")
                        continue
                elif isinstance(ev, (Checkpoint, CheckpointPruned, Artifact)):
                    prepared = self.files.prepare(ev)
                    if prepared is None:
                        continue
                    ev = prepared
                kind = rec.get("k")
                if kind == "m":
                    self.last_step = rec.get("s", self.last_step)
                elif kind == "finish":
                    self.finished = True
                    if self.observers is not None:
                        self.observers.finished()
                elif kind == "resume":  # a later segment of the run (docs/resume.md): not the end after all
                    self.finished = False
                elif kind in ("console", "sys"):  # the agent's own, relayed through the trainer: read back
                    if self.observers is not None:
                        self.observers.ack(rec)
                    if self.finished:  # after the end: not delivered
                        continue
                add((ev, end))
            self.summary.fold(seen, self.reader.offset)
        self.records_read += len(items)
        if fresh:
            for st in self.sinks:
                if fresh[0][1] > st.cursor:
                    st.pending.extend(fresh)
                else:  # resuming: this sink already has the start of the slice
                    st.pending.extend(p for p in fresh if p[1] > st.cursor)
        return len(items)

    def deliver(self, urgent: bool = False) -> bool:
        """Collect finished sends and start a send for every backend that has records waiting and
        none in flight (unless ``urgent`` is false: then only a full ``BATCH``). True when a batch
        completed (delivered or failed) or a send started. While the run is live the loop reads and
        calls this with ``urgent`` at most every ``flush_interval`` (:meth:`run`): fewer, larger SDK
        calls. Safety does not depend on it: what is accepted is already in the journal."""
        progressed = False
        for st in self.sinks:
            if st.inflight is not None:
                if not st.inflight.done():
                    continue
                self._collect(st)
                progressed = True
            if self.finished and not st.pending and st.sink is not None and st.sender is not None:
                # this backend has the whole run: close it now (W&B writes its exit record, TensorBoard
                # its session end) rather than when the slowest backend is done or given up on
                st.closing = True
                st.inflight = st.sender.submit(self._close_sink(st, st.sink))
                st.inflight.add_done_callback(lambda fut: self.wake.set())
                progressed = True
                continue
            now = time.monotonic()
            if not st.pending or now < st.next_try:
                continue
            if not urgent and len(st.pending) < BATCH:
                continue
            batch = [ev for ev, _ in st.pending[:BATCH]]
            if st.sender is None:
                st.sender = Sender(st.spec.scheme)
            st.inflight_n = len(batch)
            st.inflight = st.sender.submit(lambda st=st, batch=batch: self._send(st, batch))  # type: ignore[misc]
            st.inflight.add_done_callback(lambda fut: self.wake.set())
            progressed = True
        return progressed

    def _send(self, st: _SinkState, batch: list[Event]) -> None:
        """On the backend's sender thread."""
        c0 = time.thread_time()
        try:
            fresh = st.sink is None  # also a backend closed at a finish that a resume then reopens
            if fresh:
                st.sink = self._load_sink(st.spec)
            if (fresh or not st.started) and not isinstance(batch[0], RunStarted):
                if self.start_event is None:
                    raise RuntimeError("journal has no start record")
                batch.insert(0, self.start_event)
            st.sink.emit(batch)
        finally:
            st.sdk_cpu += time.thread_time() - c0

    def _close_sink(self, st: _SinkState, sink: Any) -> Callable[[], None]:
        """The backend's close, timed as its calls are (on its sender thread)."""

        def close() -> None:
            c0 = time.thread_time()
            try:
                sink.close()
            finally:
                st.sdk_cpu += time.thread_time() - c0

        return close

    def _collect(self, st: _SinkState) -> None:
        fut, n = st.inflight, st.inflight_n
        st.inflight, st.inflight_n = None, 0
        assert fut is not None
        exc = fut.exception()
        if st.closing:
            st.closing, st.sink = False, None
            if exc is not None:
                self.log(f"{st.spec.scheme}: close failed: {exc!r}")
            return
        if exc is not None:
            st.failures += 1
            st.next_try = time.monotonic() + min(MAX_BACKOFF, 0.25 * 2 ** min(st.failures, 10))
            st.last_error = f"{type(exc).__name__}: {exc}"
            self.log(f"{st.spec.scheme}: delivery failed (attempt {st.failures}): {st.last_error}")
            if st.failures == 1:
                self.log("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
            self.note(st.spec, describe_failure(exc, st.spec))
            return
        if st.failures or self._state.get(st.key, {}).get("error"):
            self.note(st.spec, "")
        if not st.started and self.freeze_gc:
            gc.freeze()  # the SDK's modules and objects, loaded now: never traversed again by a collection
        st.started = True
        st.last_emit = time.monotonic()
        st.failures = 0
        st.delivered += n
        st.cursor = st.pending[n - 1][1]
        del st.pending[:n]
        self._stats_due = st.dirty = True
        self.save_cursor(st, self._urgent)

    def save_cursor(self, st: _SinkState, now: bool) -> None:
        """Save a moved cursor: ``now``, or while the run is live at most every ``CURSOR_LIVE`` seconds
        (a rename costs the machine more than the batch's decode; a poke or the end saves it at once)."""
        t = time.monotonic()
        if not st.dirty or (not now and t - st.saved_at < CURSOR_LIVE):
            return
        st.dirty, st.saved_at = False, t
        try:
            self.rundir.save_cursor(st.key, st.cursor, st.spec.scheme, st.delivered)
        except OSError as exc:
            self.log(f"could not save cursor of {st.spec.scheme}: {exc}")

    def wait_any(self, timeout: float) -> None:
        """Sleep until a send finishes, the agent is poked or stopped (:attr:`wake`), or ``timeout``."""
        self.wake.wait(timeout)
        self.wake.clear()  # what woke it is looked at after this: a later wake-up is never lost

    def poke(self) -> None:
        """The trainer wants delivery now (``wait_delivery``, ``finish``): read and send at once, until
        every backend holds the journal. Any thread may call it."""
        self._poked = True
        self.wake.set()

    def listen(self, fd: int) -> None:
        """Poke on each byte the trainer writes to ``fd`` (the process agent's wake pipe), on a daemon
        thread that blocks in ``read``; its end (the trainer closed it, or died) wakes the loop too."""

        def ended() -> None:
            self._listening = False
            self.wake.set()

        self._listening = True
        threading.Thread(target=read_pokes, args=(fd, self.poke, ended), name="trackkit-wake", daemon=True).start()

    # ---------------------------------------------------------------- live batching

    def _due(self, now: float) -> bool:
        """While the run is live: is it time to read the journal? At most every ``flush_interval``
        (when there is something to read or send); sooner when it grew by ``GROW_BYTES`` or a finish,
        checkpoint or artifact record came (``tail.JournalTail``: the data end and one ``pread``)."""
        size = self.tail.size()
        if size is None:
            return True  # no journal to look at: the read says what is there
        if now >= self._next_read:
            if size > self.reader.offset or any(st.pending for st in self.sinks):
                return True
            self._next_read = now + self.flush_interval  # idle: nothing to read or send
        return self.tail.urgent(size, self.reader.offset, GROW_BYTES)

    def _check_alive(self, now: float) -> bool:
        """Time to look at the trainer's lock? With a wake pipe (whose end wakes the loop) at most every
        LIVE_POLL while it is open; without one, at every poll."""
        if self._listening and now < self._alive_at:
            return False
        self._alive_at = now + LIVE_POLL
        return True

    def _behind(self) -> bool:
        """The reader has not reached the journal's end (a backlog: read on at once)."""
        size = self.tail.size()
        return size is not None and size > self.reader.offset

    # ---------------------------------------------------------------- the CPU account

    def stats(self) -> dict[str, Any]:
        """The agent's CPU account so far (docs/journal.md, "What the agent costs"; for the thread agent
        the process is the trainer's). Trackkit's own work: the loop plus the senders outside the calls."""
        import resource

        ru = resource.getrusage(resource.RUSAGE_SELF)
        sinks = {}
        for st in self.sinks:
            clock = st.sender.clock if st.sender is not None else None
            sinks[st.key] = {"backend": public_spec(st.spec), "delivered": st.delivered, "offset": st.cursor,
                             "sdk_cpu_s": st.sdk_cpu, "sender_cpu_s": cpu_seconds(clock)}
        return {"pid": os.getpid(), "time": time.time(), "process_cpu_s": ru.ru_utime + ru.ru_stime,
                "loop_cpu_s": cpu_seconds(self._clock), "records_read": self.records_read, "sinks": sinks}

    def save_stats(self) -> None:
        self._stats_due = False
        try:
            self.rundir.save_agent_stats(self.stats())
        except (OSError, ValueError) as exc:
            self.log(f"could not save the agent's CPU account: {exc}")

    def _moved(self) -> bool:
        """True when a backend accepted records since the last call."""
        n = sum(st.delivered for st in self.sinks)
        moved, self._delivered_seen = n != self._delivered_seen, n
        return moved

    def caught_up(self) -> bool:
        return all(not st.pending and st.inflight is None for st in self.sinks)

    def close(self, timeout: float = 30.0) -> None:
        """Close every backend on its own sender thread. A backend still stuck in a send
        (a server that never answers) is left behind: its data stays in the journal."""
        self.summary.save_every(self.flush_interval, force=True)
        self.tail.close()
        closing: list[tuple[_SinkState, Future[None]]] = []
        self._urgent = True
        for st in self.sinks:
            if st.inflight is not None and st.inflight.done():
                self._collect(st)
            self.save_cursor(st, True)
            if st.inflight is not None and st.closing:
                closing.append((st, st.inflight))
                st.inflight, st.closing = None, False
            elif st.inflight is not None:
                self.log(f"{st.spec.scheme}: a send is still in flight at the deadline; left in the journal")
            elif st.sink is not None and st.sender is not None:
                closing.append((st, st.sender.submit(self._close_sink(st, st.sink))))
            if st.sender is not None:
                st.sender.stop()
        for st, fut in closing:
            try:
                fut.result(timeout=timeout)
            except Exception as exc:
                self.log(f"{st.spec.scheme}: close failed: {exc!r}")
            st.sink = None
        self.save_stats()
        account = self.stats()
        inside = ", ".join(f"{s['backend']} {s['sdk_cpu_s']:.2f} s" for s in account["sinks"].values())
        self.log(f"CPU: {self.records_read} records read; delivery loop {account['loop_cpu_s']:.2f} s, inside "
                 f"the backends' calls: {inside or '-'} (process {account['process_cpu_s']:.2f} s)")

    def mark_ended(self, tail: str = "") -> None:
        """The trainer is gone and the journal has no finish record: record the status the trainer
        left in its finish note when its journal was full, else that the run was killed (``tail``: its
        last console lines, for the reason)."""
        end = self.rundir.close_segment(self.start_event.run_id if self.start_event else "", self.last_step, tail)
        source = f" from {os.path.basename(self.rundir.finish_note)}" if end.from_note else ""
        self.log(f"marked the run {end.status.value}{source}: {self.rundir.ending_reason(end)}")

    def run(self, writer_alive: Callable[[], bool], stop: threading.Event | None = None) -> bool:
        """Deliver until the run is finished and every sink caught up, or the drain
        deadline passes. Returns True when everything was delivered."""
        deadline: float | None = None
        stop_deadline: float | None = None
        for st in self.sinks:  # the start-up reachability check, off this loop
            if server_address(st.spec) is not None:
                threading.Thread(target=self._probe, args=(st.spec,), name="trackkit-probe", daemon=True).start()
        self._clock = thread_clock(threading.current_thread())
        while True:
            if self._poked:
                self._poked, self._hurry = False, True
            # live, the journal is read in batches (_due); finished, stopping or poked, at once
            urgent = self._urgent = self.finished or self._hurry or (stop is not None and stop.is_set())
            now = time.monotonic()
            got = 0
            if urgent or self._due(now):
                got = self.read_new()
                if self.reader.capped:  # a backlog (not what was added meanwhile): read on at once
                    self._next_read = 0.0
                else:
                    self._next_read = now + self.flush_interval
                progressed = self.deliver(urgent=True)
            else:
                progressed = self.deliver(urgent=False)
            self.summary.save_every(self.flush_interval if urgent else max(self.flush_interval, INDEX_LIVE))
            for st in self.sinks:
                self.save_cursor(st, urgent)
            if self._stats_due and (self._hurry or now - self._stats_at >= STATS_EVERY) and self.caught_up():
                self._stats_at = now
                self.save_stats()
            if self._hurry and self.caught_up() and not self._behind():
                self._hurry = False
            if self.finished and self.caught_up():
                if self.read_new():  # a resume record may follow the finish: deliver on
                    continue
                self.close()
                return True
            if not self.finished and (urgent or self._check_alive(now)) and not writer_alive():
                # mark the run ended only while holding the trainer lock: a requeued trainer that
                # resumed the run in the meantime holds it, and its live segment must not get a
                # killed/finish pair in the middle (docs/resume.md)
                held = self.rundir.take_trainer_lock()
                if held is None:
                    continue
                try:
                    while self.read_new():  # to the end: the last records the trainer wrote before dying
                        pass
                    # then the rest of its console (the records it did not write first), journaled here
                    tail = self.observers.trainer_gone() if self.observers is not None else ""
                    while self.read_new():
                        pass
                    if not self.finished:
                        self.mark_ended(tail)
                finally:
                    release(held)
                continue
            now = time.monotonic()
            if stop is not None and stop.is_set():
                # asked to stop (finish() in thread mode, SIGTERM to the process agent):
                # the drain deadline, counted from the request, caps any linger already running
                if stop_deadline is None:
                    stop_deadline = now + self.drain_timeout
                    deadline = stop_deadline if deadline is None else min(deadline, stop_deadline)
            elif self.finished and (deadline is None or self._moved()):
                # linger counts from the last record a backend accepted: many agents sharing a busy
                # machine (a sweep whose finish() did not wait) deliver slowly but surely
                deadline = now + self.linger
            elif not self.finished and deadline is not None and stop_deadline is None:
                deadline = None  # resumed: the run is live again
            if deadline is not None and now >= deadline:
                self.close()
                return self.caught_up()
            if not got and not progressed:
                poll = max(LIVE_POLL, self.poll_interval) * (1 << min(self.tail.quiet, 2))
                live = min(poll, max(self._next_read - now, self.poll_interval))
                self.wait_any(self.poll_interval if urgent else live)


def pending_sinks(run_dir: str, specs: Sequence[BackendSpec]) -> list[str]:
    """Backends whose cursor is behind the end of the journal, as backend strings fit to show."""
    return [public_spec(s) for s in RunDir(run_dir).pending(specs)]


def delivery_state(run_dir: str, specs: Sequence[BackendSpec]) -> list[tuple[str, str]]:
    """The backends still behind the end of the run's journal, each as ``(backend string fit to show,
    the deliverer's last word on why)``: ``"cannot resolve host 'nohost'"``, or ``""`` when it gave
    none (not tried yet, or slow). ``[]``: every backend has everything."""
    rd = RunDir(run_dir)
    state = rd.load_delivery_state()
    return [(public_spec(s), str(state.get(sink_key(s), {}).get("error") or "")) for s in rd.pending(specs)]


def agent_logger(run_dir: str) -> Callable[[str], None]:
    """A logger that appends time-stamped, scrubbed lines to the run's ``agent.log``."""
    return file_logger(RunDir(run_dir).agent_log)


def file_logger(path: str) -> Callable[[str], None]:
    lock = threading.Lock()

    def log(msg: str) -> None:
        msg = _scrub(msg)
        with lock, open(path, "a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")

    return log


def public_spec(spec: BackendSpec) -> str:
    """A backend string fit for logs and warnings: no ``user:pass@``, no secret options."""
    from .registry import display_backend

    return display_backend(spec)


def user_line() -> tuple[str, int]:
    """The first frame outside trackkit (the user's ``init`` line) as ``(file, line)``."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(here):
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno


def _scrub(msg: str) -> str:
    """agent.log is a file on disk: URL credentials and token formats (an SDK error or traceback
    may quote them) are removed from every line."""
    try:
        from .provenance import redact_text

        return redact_text(msg, assignments=False)[0]
    except Exception:  # pragma: no cover - never lose the log line
        return msg


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m trackkit.agent", description="trackkit delivery agent")
    p.add_argument("run_dir")
    p.add_argument("--poll", type=float, default=0.05)
    p.add_argument("--drain-timeout", type=float, default=10.0)
    p.add_argument("--linger", type=float, default=120.0)
    p.add_argument("--flush-interval", type=float, default=1.0)
    p.add_argument("--nice", type=int, default=int(os.environ.get("TRACKKIT_AGENT_NICE", "10")))
    p.add_argument("--resumed", action="store_true", help="a resumed run: wait for an earlier segment's agent")
    p.add_argument("--wake-fd", type=int, default=-1, help="the read end of the trainer's wake pipe")
    args = p.parse_args(argv)
    raw = json.loads(os.environ.pop(SPECS_ENV, "[]"))
    specs = [BackendSpec(scheme=a, location=b, options=c, raw=d) for a, b, c, d in raw]
    rd = RunDir(args.run_dir)
    log = file_logger(rd.agent_log)
    from .observe import Observers

    # the console pump first: the trainer's output is shown on its terminal from now on, whoever delivers
    observers = Observers.from_env(args.run_dir, log)
    stop = threading.Event()
    lock = rd.hold_agent_lock()
    if lock is None and args.resumed:
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        lock = rd.wait_agent_lock(stop, log)
    if lock is None:
        log("another agent is delivering this run; exiting")
        return 0
    with contextlib.suppress(ImportError):  # every SDK imports numpy: once, before two sender threads race to
        import numpy  # noqa: F401
    with contextlib.suppress(OSError, AttributeError):  # background work: the scheduler favours the trainer
        os.nice(args.nice)
    # SIGTERM (scancel, systemd, docker stop signal every process, the agent too): drain within
    # drain_timeout, then exit, instead of dying with accepted data undelivered
    woken: list[Delivery] = []

    def _on_term(signum: int, frame: object) -> None:
        stop.set()
        for d in woken:
            d.wake.set()

    signal.signal(signal.SIGTERM, _on_term)
    log(f"agent started (pid {os.getpid()}) for {[public_spec(s) for s in specs]}")
    delivery = Delivery(args.run_dir, specs, poll_interval=args.poll, drain_timeout=args.drain_timeout,
                        linger=args.linger, flush_interval=args.flush_interval, log=log)
    delivery.observers = observers
    woken.append(delivery)
    delivery.freeze_gc = True
    gc.set_threshold(10_000, 10, 10)  # fewer young collections: a batch of records is freed by refcounts
    if args.wake_fd >= 0:
        delivery.listen(args.wake_fd)
    try:
        ok = delivery.run(rd.trainer_alive, stop)
    finally:
        if observers is not None:
            observers.close()
    if stop.is_set():
        log("agent got SIGTERM: drained before exiting")
    left = pending_sinks(args.run_dir, specs)
    log("agent done: everything delivered" if ok else f"agent done: left in the journal for {left}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
