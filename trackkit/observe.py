"""What the agent watches besides the journal: the trainer's console and the machine.

The agent (process or thread) starts :class:`Observers` with the options the trainer passed
(``observe_options``): a :class:`~trackkit.console.ConsolePump` on the trainer's console pipes
and a :class:`~trackkit.sysmetrics.SystemSampler`. Both append their records (``console``,
``sys``) to the run's journal with one writer of their own (one ``write(2)`` each, ``O_APPEND``,
as the trainer's), so every backend, ``trackkit sync`` and ``migrate`` get them like any record.
The delivery loop calls :meth:`Observers.finished` at the run's finish record and
:meth:`Observers.trainer_gone` before it marks a dead trainer's run killed.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .console.pump import ConsolePump
from .journal import JournalWriter, encode
from .rundir import RunDir
from .sysmetrics import SystemSampler

__all__ = ["OBSERVE_ENV", "Observers", "close_fds", "observe_options", "option_fds", "prepare", "start", "then_close"]

#: the environment variable that carries the options to the process agent
OBSERVE_ENV = "TRACKKIT_AGENT_OBSERVE"
#: how long the agent waits for a dead trainer's console pipes to end (its children may hold them)
CONSOLE_END_S = 3.0


def observe_options(
    *, console_fds: Sequence[tuple[int, int]] | None, sentinel: bytes, pid: int, system_interval: float,
    redact_patterns: Sequence[str], disk_path: str,
) -> dict[str, Any]:
    return {"console": [list(p) for p in console_fds] if console_fds else None, "sentinel": sentinel.hex(),
            "pid": pid, "system_interval": system_interval, "redact": list(redact_patterns), "disk": disk_path}


class Observers:
    def __init__(self, run_dir: str, opts: Mapping[str, Any], log: Callable[[str], None]) -> None:
        rd = RunDir(run_dir)
        self._log = log
        self._lock = threading.Lock()
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
        """Append one record to the journal (from the pump's and the sampler's threads)."""
        line = encode(ev)
        with self._lock:
            if self._closed:
                raise OSError("the agent's journal writer is closed")
            if self._writer is None:
                self._writer = JournalWriter(self._journal, "", time.time())
            self._writer.write_line(line)

    def finished(self) -> None:
        """The run's finish record is read: nothing more to sample."""
        if self.sampler is not None:
            self.sampler.stop()

    def trainer_gone(self) -> str:
        """The trainer died without finishing: journal the rest of its console; its last lines."""
        self.finished()
        if self.pump is None:
            return ""
        return self.pump.wait_ended(CONSOLE_END_S)

    def close(self) -> None:
        self.finished()
        with self._lock:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None


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


def start(run_dir: str, opts: Mapping[str, Any] | None, log: Callable[[str], None]) -> Observers | None:
    """The thread agent's observers (None: no options, or they could not start; said in agent.log)."""
    if opts is None:
        return None
    try:
        return Observers(run_dir, opts, log)
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
