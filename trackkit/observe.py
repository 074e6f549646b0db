"""What the agent watches besides the journal: the trainer's console and the machine.

The agent (process or thread) starts :class:`Observers` with the options the trainer passed
(``observe_options``): a :class:`~trackkit.console.ConsolePump` on the trainer's console pipes
and a :class:`~trackkit.sysmetrics.SystemSampler`. Their records (``console``, ``sys``) go into the
run's journal, so every backend, ``trackkit sync`` and ``migrate`` get them like any record. While
the trainer lives it is the journal's one writer (a shared mapping, docs/journal.md), so the process
agent **relays** each record to it (a pipe; the trainer's :class:`Relay` thread writes it) and keeps
it until it reads it back from the journal (:meth:`Observers.ack`); once the trainer is gone
(:meth:`Observers.trainer_gone`) it writes what was not read back, and the rest, itself. The thread
agent writes through the trainer's writer. The delivery loop calls :meth:`Observers.finished` at the
run's finish record.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .console.pump import ConsolePump
from .journal import JournalWriter, encode
from .rundir import RunDir
from .sysmetrics import SystemSampler

__all__ = ["OBSERVE_ENV", "Observers", "Relay", "close_fds", "observe_options", "option_fds", "prepare", "relay_pipe",
           "start", "then_close"]

#: the environment variable that carries the options to the process agent
OBSERVE_ENV = "TRACKKIT_AGENT_OBSERVE"
#: how long the agent waits for a dead trainer's console pipes to end (its children may hold them)
CONSOLE_END_S = 3.0
#: how long a relayed record waits for room in the relay pipe before it waits in the agent instead
RELAY_WAIT_S = 1.0


def observe_options(
    *, console_fds: Sequence[tuple[int, int]] | None, sentinel: bytes, pid: int, system_interval: float,
    redact_patterns: Sequence[str], disk_path: str,
) -> dict[str, Any]:
    return {"console": [list(p) for p in console_fds] if console_fds else None, "sentinel": sentinel.hex(),
            "pid": pid, "system_interval": system_interval, "redact": list(redact_patterns), "disk": disk_path}


class Observers:
    def __init__(self, run_dir: str, opts: Mapping[str, Any], log: Callable[[str], None],
                 write: Callable[[str], None] | None = None) -> None:
        rd = RunDir(run_dir)
        self._log = log
        self._lock = threading.Lock()
        #: the thread agent: the trainer's own writer
        self._write = write
        #: the process agent: the pipe to the trainer's Relay (None: broken, or writing directly)
        self._relay: int | None = int(opts["relay"]) if opts.get("relay") is not None and write is None else None
        if self._relay is not None:
            os.set_blocking(self._relay, False)
        self._out = bytearray()  # relayed bytes the pipe had no room for yet
        #: relayed records not yet read back from the journal, by identity (ack)
        self._unacked: dict[tuple[Any, ...], str] = {}
        #: the trainer is gone: this process writes the journal itself
        self._writer: JournalWriter | None = None
        self._closed = False
        self._journal = rd.journal
        self.pump: ConsolePump | None = None
        self.sampler: SystemSampler | None = None
        fds = opts.get("console")
        if fds:
            patterns = [re.compile(p) for p in opts.get("redact") or ()]
            self.pump = ConsolePump(
                [(int(r), int(t)) for r, t in fds], bytes.fromhex(str(opts.get("sentinel", ""))), rd.console_log,
                rd.console_state, self.record, _redactor(patterns), log,
            ).start()
        interval = float(opts.get("system_interval") or 0)
        if interval > 0:
            self.sampler = SystemSampler(int(opts["pid"]), interval, str(opts.get("disk") or run_dir), self.record,
                                         log).start()

    @classmethod
    def from_env(cls, run_dir: str, log: Callable[[str], None]) -> Observers | None:
        raw = os.environ.pop(OBSERVE_ENV, "")
        if not raw:
            return None
        try:
            return cls(run_dir, json.loads(raw), log)
        except Exception as exc:  # never the reason the agent does not deliver
            log(f"console/system metrics: not started: {exc!r}")
            return None

    def record(self, ev: Any) -> None:
        """Put one record into the journal (from the pump's and the sampler's threads)."""
        line = encode(ev)
        with self._lock:
            if self._closed:
                raise OSError("the agent's journal writer is closed")
            if self._writer is not None:
                self._writer.write_line(line)
            elif self._write is not None:
                self._write(line)
            else:
                self._unacked[_identity_of(ev)] = line
                if self._relay is not None:
                    self._out += line.encode("utf-8", "surrogatepass") + b"\n"
                    self._send(RELAY_WAIT_S)

    def _send(self, wait: float) -> None:
        """Write what waits for the relay pipe, waiting at most ``wait`` s for room (under the lock)."""
        while self._out and self._relay is not None:
            try:
                n = os.write(self._relay, self._out)
            except BlockingIOError:
                if wait <= 0 or not select.select([], [self._relay], [], wait)[1]:
                    return  # the trainer does not read now: the bytes wait here, the records in _unacked
                wait = 0
                continue
            except OSError:  # the trainer is gone (EPIPE): trainer_gone() writes what it did not read back
                self._close_relay()
                return
            del self._out[:n]

    def _close_relay(self) -> None:
        if self._relay is not None:
            try:
                os.close(self._relay)
            except OSError:
                pass
            self._relay = None
        self._out.clear()

    def ack(self, rec: Mapping[str, Any]) -> None:
        """The delivery loop read ``rec`` (a ``console`` or ``sys`` record) back from the journal."""
        if self._unacked:
            with self._lock:
                self._unacked.pop(_identity(rec, str(rec.get("k"))), None)
                if self._out:
                    self._send(0)

    def finished(self) -> None:
        """The run's finish record is read: nothing more to sample; what was relayed after it is not
        delivered (docs/journal.md), so nothing waits to be read back."""
        if self.sampler is not None:
            self.sampler.stop()
        with self._lock:
            self._unacked.clear()

    def _direct(self) -> None:
        """The trainer is gone (the caller holds its lock and read the journal to its end): write the
        relayed records it did not write, and every later one, with this process's own writer."""
        with self._lock:
            self._close_relay()
            if self._writer is not None or self._write is not None or self._closed:
                return
            lines, self._unacked = list(self._unacked.values()), {}
            try:
                self._writer = JournalWriter(self._journal, "", time.time())
                for line in lines:
                    self._writer.write_line(line)
            except OSError as exc:
                self._log(f"console/system metrics: could not journal {len(lines)} record(s): {exc}")

    def trainer_gone(self) -> str:
        """The trainer died without finishing: journal the rest of its console; its last lines."""
        if self.sampler is not None:
            self.sampler.stop()
        self._direct()
        if self.pump is None:
            return ""
        return self.pump.wait_ended(CONSOLE_END_S)

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        with self._lock:
            self._closed = True
            self._close_relay()
            if self._writer is not None:
                self._writer.close()
                self._writer = None


def _identity_of(ev: Any) -> tuple[Any, ...]:
    from .events import Console

    if isinstance(ev, Console):
        return ("console", ev.time, ev.line)
    return ("sys", ev.time, getattr(ev, "seq", None))


def _identity(rec: Mapping[str, Any], kind: str) -> tuple[Any, ...]:
    """What tells one ``console``/``sys`` record from another: its kind, time and number."""
    return (kind, rec.get("time"), rec.get("line") if kind == "console" else rec.get("seq"))


class Relay:
    """The trainer's side of the relay: a daemon thread that writes the process agent's records
    (``console``, ``sys``) into the journal with the trainer's own writer. Every read is made under
    one lock, so :meth:`drain` (at ``finish``, before the final records) keeps their order."""

    def __init__(self, fd: int, write: Callable[[str], None]) -> None:
        self._fd: int | None = fd
        os.set_blocking(fd, False)
        self._write = write
        self._lock = threading.Lock()
        self._buf = b""
        threading.Thread(target=self._loop, name="trackkit-relay", daemon=True).start()

    def _loop(self) -> None:
        while True:
            fd = self._fd
            if fd is None:
                return
            try:
                select.select([fd], [], [], 1.0)
            except (OSError, ValueError):
                return
            if not self._take():
                return

    def _take(self) -> bool:
        """Write every whole record the pipe holds now; False once it ended (the agent is gone)."""
        with self._lock:
            while self._fd is not None:
                try:
                    data = os.read(self._fd, 1 << 16)
                except BlockingIOError:
                    return True
                except OSError:
                    data = b""
                if not data:
                    self._close_locked()
                    return False
                buf = self._buf + data
                cut = buf.rfind(b"\n") + 1
                self._buf = buf[cut:]
                for line in buf[:cut].split(b"\n")[:-1]:
                    try:
                        self._write(line.decode("utf-8", "surrogatepass"))
                    except OSError:  # the journal is closed (finished) or full: the agent keeps the record
                        pass
            return False

    def drain(self) -> None:
        """Write what the agent relayed so far (``finish``: the console's last lines before the end)."""
        self._take()

    def _close_locked(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self._close_locked()


def relay_pipe() -> tuple[int, int]:
    """``(read end, write end)`` of a new relay pipe, made large (1 MiB where Linux allows)."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass
    return r, w


def _redactor(patterns: Sequence[re.Pattern[str]]) -> Callable[[str], str]:
    from .provenance import redact_text

    def redact(line: str) -> str:
        try:
            return redact_text(line, patterns)[0]
        except Exception:  # pragma: no cover - a line is never lost to the scrubber
            return line

    return redact


def prepare(run_dir: str, run_id: str, settings: Any, pid: int) -> tuple[Any, dict[str, Any] | None]:
    """The trainer's side, before the agent starts: ``(ConsoleCapture or None, the agent's options or
    None)``. The capture is not engaged yet; the options hold fresh fds the agent is to own."""
    from .console import ConsoleCapture

    cap = ConsoleCapture.open(run_id, RunDir(run_dir).console_state) if settings.console else None
    interval = float(settings.system_metrics_interval) if settings.system_metrics else 0.0
    if cap is None and not interval:
        return None, None
    opts = observe_options(
        console_fds=cap.agent_fds() if cap is not None else None, sentinel=cap.sentinel if cap is not None else b"",
        pid=pid, system_interval=interval, redact_patterns=settings.redact_patterns,
        disk_path=os.path.abspath(settings.root),
    )
    return cap, opts


def option_fds(opts: Mapping[str, Any] | None) -> list[int]:
    """The fds in ``opts`` (for ``pass_fds``, and to close in the trainer once the agent has them)."""
    return [int(fd) for pair in ((opts or {}).get("console") or ()) for fd in pair]


def close_fds(fds: Sequence[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def start(run_dir: str, opts: Mapping[str, Any] | None, log: Callable[[str], None],
          write: Callable[[str], None]) -> Observers | None:
    """The thread agent's observers, writing with the trainer's ``write`` (None: no options, or they
    could not start; said in agent.log)."""
    if opts is None:
        return None
    try:
        return Observers(run_dir, opts, log, write)
    except Exception as exc:
        log(f"console/system metrics: not started: {exc!r}")
        close_fds(option_fds(opts))
        return None


def then_close(target: Callable[..., Any], observers: Observers | None) -> Callable[..., Any]:
    """The thread agent's loop, then its observers' journal writer closed."""

    def run(*args: Any) -> Any:
        try:
            return target(*args)
        finally:
            if observers is not None:
                observers.close()

    return run
