"""The trainer's side of the delivery agent: ``start_agent`` starts it (a process by default, a thread
for ``agent="thread"`` or an in-process backend) and returns the ``AgentHandle`` a ``Run`` holds: wait
for it, let it go, hand the console back, say which backends are behind. The agent itself is
``agent.py`` (docs/architecture.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .agent import SPECS_ENV, WATCH_POLL, WATCH_S, Delivery, delivery_state, file_logger, public_spec, user_line
from .backend import BackendSpec
from .errors import TrackkitWarning
from .reach import server_address
from .rundir import RunDir, sink_key

if TYPE_CHECKING:
    from .console import ConsoleCapture, ConsoleEnd
    from .journal import JournalWriter
    from .observe import Relay
    from .run import Run

__all__ = ["AgentHandle", "start_agent"]


class AgentHandle:
    def __init__(
        self,
        run_dir: str,
        specs: Sequence[BackendSpec],
        proc: subprocess.Popen[bytes] | None = None,
        thread: threading.Thread | None = None,
        stop: threading.Event | None = None,
        console: ConsoleCapture | None = None,
        relay: Relay | None = None,
        poke: Callable[[], None] | None = None,
        wake_fd: int = -1,
    ) -> None:
        self.run_dir = run_dir
        #: the thread that writes the process agent's records into the journal (observe.Relay)
        self.relay = relay
        self.specs = list(specs)
        self.proc = proc
        self.thread = thread
        self.stop = stop
        #: the trainer's console capture (engaged), ended by end_console() at finish
        self.console = console
        #: the thread agent's Delivery.poke; the write end of the process agent's wake pipe
        self._poke = poke
        self._wake_fd = wake_fd
        self._watch_stop = threading.Event()
        if any(server_address(s) is not None for s in self.specs):
            where = user_line()
            threading.Thread(target=self._watch, args=where, name="trackkit-watch", daemon=True).start()

    def _watch(self, filename: str, lineno: int) -> None:
        """A daemon thread in the trainer, for the first seconds: one warning per backend the agent
        finds failing (its start-up check, its first sends), at the user's ``init`` line. ``log()``
        never waits on it; it never raises."""
        try:
            rd, told, end = RunDir(self.run_dir), set(), time.monotonic() + WATCH_S
            keys = {sink_key(s): s for s in self.specs}
            while not self._watch_stop.wait(WATCH_POLL) and time.monotonic() < end:
                for key, entry in rd.load_delivery_state().items():
                    if key in keys and entry.get("error") and key not in told:
                        told.add(key)
                        warnings.warn_explicit(
                            f"trackkit: cannot deliver to {public_spec(keys[key])} yet: {entry['error']}. The run goes "
                            f"on; the journal keeps everything and the agent retries (see {rd.agent_log})",
                            TrackkitWarning, filename, lineno,
                        )
        except Exception:  # a warning turned into an error, a vanished directory: never the trainer's problem
            pass

    def poke(self, last: bool = False) -> None:
        """Wake the agent: deliver what the journal holds now (it reads in batches while the run is
        live). ``last``: the run is finished; the process agent's wake pipe is closed after it."""
        if self._poke is not None:
            self._poke()
        fd = self._wake_fd
        if fd < 0:
            return
        try:
            os.write(fd, b"!")
        except OSError:  # full (pokes pending: as good), or the agent is gone
            pass
        if last:
            self._wake_fd = -1
            os.close(fd)

    @property
    def mode(self) -> str:
        return "process" if self.proc is not None else "thread"

    def wait(self, timeout: float) -> bool:
        """Wait for the agent to drain and exit; False when the deadline passed first."""
        self._watch_stop.set()  # finish() says what is left, with the cause
        if self.stop is not None:
            self.stop.set()
        self.poke(last=True)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout + 1.0)
            except subprocess.TimeoutExpired:
                return False
            return True
        if self.thread is not None:
            self.thread.join(timeout)
            return not self.thread.is_alive()
        return True

    def let_go(self, timeout: float) -> None:
        """``finish()`` without waiting: the process agent delivers the rest on its own (a Reader made
        in this process waits for it, at most ``timeout``: ``delivering``)."""
        from .delivering import track

        self._watch_stop.set()
        self.poke(last=True)
        track(self, timeout)

    def wait_delivered(self, timeout: float, finished: bool) -> bool:
        """Wait until every backend holds the journal (``finished``: until the agent, done with the
        run, exited, so the backends are closed too); False when ``timeout`` passed first."""
        if finished:
            if self.proc is not None:
                self.wait(timeout)
            return not self.pending()
        deadline = time.monotonic() + timeout
        if self.pending():
            self.poke()  # the live agent reads in batches: read and send now
        pause = 0.005  # a small run is delivered within milliseconds of the poke
        while self.pending() and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(2 * pause, WATCH_POLL)
        return not self.pending()

    def end_console(self, timeout: float) -> ConsoleEnd | None:
        """Give fds 1 and 2 back and wait (at most ``timeout``) for the agent to have all of the console."""
        cap, self.console = self.console, None
        end = cap.end(timeout) if cap is not None else None
        if self.relay is not None:  # the console's last records, relayed before the agent said it has them all
            self.relay.drain()
        return end

    def close_relay(self) -> None:
        """The journal is closed: the agent's later records are not the run's."""
        if self.relay is not None:
            self.relay.close()

    def pending(self, failing_only: bool = False) -> list[str]:
        """The backends still behind, each with the cause the agent gave and where its log is:
        ``mlflow://nohost:1 (cannot resolve host 'nohost'; see <run dir>/agent.log)``
        (``failing_only``: only those the agent gave a cause for)."""
        log = RunDir(self.run_dir).agent_log
        return [f"{b} ({cause}; see {log})" if cause else b for b, cause in delivery_state(self.run_dir, self.specs)
                if cause or not failing_only]


def start_agent(run: Run, journal: JournalWriter) -> AgentHandle:
    """The run's agent; ``journal`` is the trainer's writer (the agent's records go through it)."""
    from . import observe
    from .registry import entry_for

    specs = run.specs
    mode = run.settings.agent
    if any(entry_for(s.scheme).in_process for s in specs):
        mode = "thread"
    cap, opts = observe.prepare(run.dir, run.id, run.settings, os.getpid())
    if mode == "thread":
        stop = threading.Event()
        log = file_logger(RunDir(run.dir).agent_log)
        delivery = Delivery(
            run.dir, specs, poll_interval=run.settings.poll_interval, drain_timeout=run.settings.drain_timeout,
            flush_interval=run.settings.flush_interval, log=log,
        )
        observers = delivery.observers = observe.start(run.dir, opts, log, journal.write_line)
        if observers is None and cap is not None:  # could not start: nothing captured, never an init error
            cap.abandon()
            cap = None
        if cap is not None:
            pump = observers.pump if observers is not None else None
            cap.engage(pump.alive if pump is not None else lambda: False)
        target: Callable[..., Any] = delivery.run
        if getattr(run, "resumed", 0):  # one deliverer per run: an earlier segment's agent may still deliver
            target = _after_earlier_agent(run.dir, delivery)
        t = threading.Thread(target=observe.then_close(target, observers), args=(lambda: True, stop),
                             name=f"trackkit-agent-{run.id}", daemon=True)
        t.start()
        return AgentHandle(run.dir, specs, thread=t, stop=stop, console=cap, poke=delivery.poke)
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env[SPECS_ENV] = json.dumps([[s.scheme, s.location, dict(s.options), s.raw] for s in specs])
    fds = observe.option_fds(opts)
    relay_r = -1
    wake_r, wake_w = os.pipe()  # the trainer's pokes (AgentHandle.poke): the agent sleeps between batches
    os.set_blocking(wake_w, False)
    fds.append(wake_r)
    if opts is not None:
        relay_r, relay_w = observe.relay_pipe()
        opts["relay"] = relay_w
        fds.append(relay_w)
        env[observe.OBSERVE_ENV] = json.dumps(opts)
    logf = open(RunDir(run.dir).agent_log, "ab")
    try:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "trackkit.agent", run.dir,
                "--poll", str(run.settings.poll_interval), "--drain-timeout", str(run.settings.drain_timeout),
                "--linger", str(run.settings.linger),
                "--flush-interval", str(run.settings.flush_interval),
                "--wake-fd", str(wake_r),
                *(["--resumed"] if getattr(run, "resumed", 0) else []),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
            close_fds=True,
            pass_fds=fds,
        )
    except BaseException:
        if cap is not None:
            cap.abandon()
        if relay_r >= 0:
            observe.close_fds([relay_r])
        os.close(wake_w)
        raise
    finally:
        logf.close()
        observe.close_fds(fds)  # the agent holds them now
    if cap is not None:
        cap.engage(lambda: proc.poll() is None)
    relay = observe.Relay(relay_r, journal.write_line) if relay_r >= 0 else None
    return AgentHandle(run.dir, specs, proc=proc, console=cap, relay=relay, wake_fd=wake_w)


def _after_earlier_agent(run_dir: str, delivery: Delivery) -> Callable[[Callable[[], bool], threading.Event], bool]:
    """The thread agent of a resumed run: wait for the delivery lock an earlier segment's process
    agent may still hold, deliver holding it, then let it go."""

    def run(writer_alive: Callable[[], bool], stop: threading.Event) -> bool:
        fd = RunDir(run_dir).wait_agent_lock(stop, delivery.log)
        if fd is None:  # finish() came first: the earlier agent delivers this segment too
            return False
        try:
            return delivery.run(writer_alive, stop)
        finally:
            os.close(fd)

    return run


