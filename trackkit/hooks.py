"""Process hooks that give a run the status its process ended with: SIGTERM/SIGINT handlers,
``sys.excepthook``, the ``sys.exit`` wrapper (``SystemExit`` never reaches an excepthook) and
``atexit``. Installed by ``Run`` at start, removed at finish; each chains to what was there
before. See docs/status.md and docs/architecture.md."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from .errors import DivergedError
from .events import Status

__all__ = ["ProcessHooks", "exception_ending"]


def exception_ending(exc: BaseException, tb: TracebackType | None,
                     step: int) -> tuple[Status | None, str, int | None, dict[str, Any] | None]:
    """``(status, reason, exit_code, details)`` of a run whose process ends with ``exc``:
    ``sys.exit(0)`` gives ``None`` (the run's own ending: completed, or diverged if it did),
    ``sys.exit(n)`` crashed, ``KeyboardInterrupt`` killed, ``DivergedError`` diverged, anything
    else crashed with its traceback."""
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None or code == 0:
            return None, "", None, None
        return Status.CRASHED, f"sys.exit({code!r})", code if isinstance(code, int) else 1, None
    if isinstance(exc, KeyboardInterrupt):
        return Status.KILLED, "SIGINT (KeyboardInterrupt)", 130, None
    if isinstance(exc, DivergedError):
        return Status.DIVERGED, str(exc), 1, None
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return (Status.CRASHED, f"{type(exc).__name__}: {exc}"[:1000], 1,
            {"exception": type(exc).__qualname__, "traceback": text[-20000:], "last_step": step})


class ProcessHooks:
    """``finish(status, reason, exit_code)`` ends the run; ``finish_from_exception(exc, tb)`` ends
    it as an exception means. Only the process that started the run (``pid``) finishes it: a
    forked child (a DataLoader worker) only chains to the previous handlers."""

    def __init__(
        self,
        pid: int,
        finish: Callable[..., None],
        finish_from_exception: Callable[[BaseException, TracebackType | None], None],
    ) -> None:
        self._pid = pid
        self._finish = finish
        self._finish_from_exception = finish_from_exception
        self._prev_handlers: dict[int, Any] = {}
        self._prev_excepthook = sys.excepthook
        self._prev_exit = sys.exit
        self._exit_code: Any = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    self._prev_handlers[sig] = signal.getsignal(sig)
                    signal.signal(sig, self._on_signal)
                except (ValueError, OSError):
                    pass
        self._prev_excepthook = sys.excepthook
        sys.excepthook = self._excepthook
        # SystemExit never reaches an excepthook: remember sys.exit()'s code for atexit
        self._exit_code = None
        self._prev_exit = sys.exit
        setattr(sys, "exit", self._sys_exit)  # noqa: B010
        atexit.register(self._atexit)

    def uninstall(self) -> None:
        for sig, prev in self._prev_handlers.items():
            try:
                if signal.getsignal(sig) == self._on_signal:
                    signal.signal(sig, prev)
            except (ValueError, OSError, TypeError):
                pass
        self._prev_handlers = {}
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._prev_excepthook
        if getattr(sys, "exit", None) == self._sys_exit:
            setattr(sys, "exit", self._prev_exit)  # noqa: B010
        atexit.unregister(self._atexit)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        prev = self._prev_handlers.get(signum, signal.SIG_DFL)
        if os.getpid() == self._pid and signum != signal.SIGINT:
            self._finish(Status.KILLED, signal.Signals(signum).name, exit_code=128 + signum)
        # SIGINT: KeyboardInterrupt (or the user's handler) decides; __exit__/excepthook record "killed".
        # A forked child (DataLoader worker) only chains: the run belongs to its parent.
        if callable(prev):
            prev(signum, frame)
        elif prev == signal.SIG_DFL:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def _excepthook(self, et: type[BaseException], ev: BaseException, tb: TracebackType | None) -> None:
        # the traceback first: printed while the console is still captured, it is in the run's
        # console and in the last lines a crashed run's reason carries
        try:
            self._prev_excepthook(et, ev, tb)
        finally:
            self._finish_from_exception(ev, tb)

    def _sys_exit(self, code: Any = None) -> Any:
        self._exit_code = code
        return self._prev_exit(code)

    def _atexit(self) -> None:
        code = self._exit_code
        if code is not None and code != 0:
            self._finish_from_exception(SystemExit(code), None)
        else:
            self._finish()
