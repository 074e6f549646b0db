"""The Run: lifecycle, the microsecond ``log()`` path, status, hooks.

``log()`` encodes one compact record and appends it to the journal with one
``write(2)``. No SDK call, no lock wait, no exception into the loop (unless
``strict`` or ``on_nan="stop"``). A delivery agent (``agent.py``) feeds the
backends from the journal.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import math
import os
import secrets
import shutil
import signal
import sys
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, DivergedError, TrackkitError, TrackkitWarning
from .events import Status
from .journal import JOURNAL_NAME, JournalWriter

if TYPE_CHECKING:
    from .backend import BackendSpec
    from .settings import Settings

__all__ = ["Run", "current_run", "finish", "init", "log"]

_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_isfinite = math.isfinite
_float_repr = float.__repr__
#: ints outside int64 become floats (every backend stores a double; the agent reads them with float())
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_time = time.time

_active: Run | None = None
#: settings forced on every init (trackkit.testing.capture)
_overrides: dict[str, Any] = {}
_active_lock = threading.Lock()


def current_run() -> Run | None:
    return _active


def _jsonable(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> Any:
    """Config values as JSON: non-serializable objects become their repr, cycles are cut."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):  # JSON cannot write an int of more than 4300 digits
        return int(obj) if obj.bit_length() <= 10_000 else f"<int of {obj.bit_length()} bits>"
    if isinstance(obj, float):
        return obj if _isfinite(obj) else str(obj)
    seen = _seen if _seen is not None else set()
    if id(obj) in seen or _depth > 64:
        return "<cycle>"
    if isinstance(obj, Mapping):
        seen.add(id(obj))
        out = {str(k): _jsonable(v, seen, _depth + 1) for k, v in obj.items()}
        seen.discard(id(obj))
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        seen.add(id(obj))
        items = sorted(obj, key=_safe_repr) if isinstance(obj, (set, frozenset)) else obj
        out_l = [_jsonable(v, seen, _depth + 1) for v in items]
        seen.discard(id(obj))
        return out_l
    if isinstance(obj, (bytes, bytearray)):
        return f"<{len(obj)} bytes>"
    try:
        return _jsonable_object(obj, seen, _depth)
    except Exception:  # a user object whose attribute access raises
        return _safe_repr(obj)


def _jsonable_object(obj: Any, seen: set[int], _depth: int) -> Any:
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(obj, "ndim", 1) == 0:
        try:
            return _jsonable(item(), seen, _depth + 1)
        except Exception:
            pass
    for attr in ("model_dump", "to_dict", "_asdict"):  # pydantic, omegaconf-likes, namedtuples
        fn = getattr(obj, attr, None)
        if callable(fn):
            try:
                return _jsonable(fn(), seen, _depth + 1)
            except Exception:
                pass
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        try:
            return _jsonable(dataclasses.asdict(obj), seen, _depth + 1)
        except Exception:
            pass
    if hasattr(obj, "__fspath__"):
        return os.fspath(obj)
    try:
        return repr(obj)
    except Exception:
        return f"<unrepresentable {type(obj).__name__}>"


def _safe_repr(obj: Any, limit: int = 120) -> str:
    """A short repr for warning messages that never raises (a user's ``__repr__`` may, and so does
    ``repr`` of an int with more than 4300 digits) and never builds a huge string first."""
    try:
        import reprlib

        r = reprlib.Repr()
        r.maxstring = r.maxother = r.maxlong = limit
        text = r.repr(obj)
    except Exception:
        text = f"<{type(obj).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _new_run_id() -> str:
    # time-ordered, W&B/MLflow/path-safe: 8 base-36-ish hex of ms time + 4 random hex
    return f"{int(time.time() * 1000):x}"[-8:] + secrets.token_hex(2)


class Run:
    """One tracked run. Create with :func:`trackkit.init`."""

    def __init__(
        self,
        settings: Settings,
        specs: list[BackendSpec],
        *,
        config: Mapping[str, Any] | None,
        name: str | None,
        group: str | None,
        tags: Mapping[str, str] | Iterable[str] | None,
        meta: Mapping[str, Any] | None = None,
        artifacts: Mapping[str, bytes | str] | None = None,
        run_id: str | None = None,
        resume: str = "never",
    ) -> None:
        self.settings = settings
        self.specs = specs
        self.id = run_id or _new_run_id()
        self.project = settings.project
        self.group = group
        self.start_time = _time()
        self.name = name or _default_name(settings.standard.name_template, self)
        #: the config as recorded: init() already made it JSON and redacted it
        self.config: dict[str, Any] = dict(config or {})
        self.tags: dict[str, str] = _norm_tags(tags)
        #: provenance and run facts recorded at init (the journal's start record)
        self.meta: dict[str, Any] = _jsonable(dict(meta or {}))
        self.status = Status.RUNNING
        self.reason = ""
        #: counters of problems handled (bad values, journal errors ...); never raised unless strict
        self.problems: Counter[str] = Counter()
        self.records_written = 0
        #: log() calls whose record could not be written to the journal (lost; also in problems["journal"])
        self.logs_lost = 0
        self._warned: set[str] = set()
        self._step = -1
        self._diverged: tuple[str, float, int] | None = None
        self._finished = False
        self._strict = settings.strict
        self._on_nan = settings.on_nan
        self._artifact_versions: Counter[str] = Counter()
        #: SDK objects handed out by native(), finished with the run
        self._natives: dict[str, Any] = {}
        #: metric key -> its JSON text plus ":" (keys repeat every step; encode each once)
        self._key_json: dict[Any, str] = {}
        #: the process that owns the run; forked children (DataLoader workers) never finish it
        self._pid = os.getpid()

        root = os.path.abspath(settings.root)
        #: how many times this run was resumed before this process (0: a new run)
        self.resumed = 0
        self._lock_fd = -1
        prior: Any = None
        try:
            parent = os.path.join(root, _safe(self.project))
            if run_id is None:
                self.dir = self._claim_dir(parent)
            else:
                from .resume import open_named  # with the earlier segments' record when resumed

                self.dir, prior = open_named(self, parent, run_id, resume)
            # held for the trainer's lifetime: the kernel drops it when the process dies, however it dies
            if self._lock_fd < 0:
                self._lock_fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._journal = JournalWriter(os.path.join(self.dir, JOURNAL_NAME), self.id, self.start_time)
        except ConfigError:  # resume refused after the lock was taken: never keep it held
            self._release_lock()
            raise
        except OSError as exc:  # a setup error: raise at init, naming the fix
            self._release_lock()
            raise ConfigError(
                f"root: cannot create the run's journal under {root!r} ({exc}). Fix: point root= "
                "(or TRACKKIT_ROOT, or root in trackkit.toml) at a writable directory with free space"
            ) from exc
        if prior is not None:  # a resumed run: a resume record continues the journal (docs/resume.md)
            from .resume import continue_run

            continue_run(self, prior, name=name, group=group, tags=tags)
        else:
            self._write_record(
                {
                    "k": "start",
                    "run_id": self.id,
                    "project": self.project,
                    "name": self.name,
                    "group": group,
                    "start_time": self.start_time,
                    "tags": self.tags,
                    "config": self.config,
                    "meta": self.meta,
                },
                "start",
            )
        for fname, content in (artifacts or {}).items():
            self._snapshot_bytes(fname, content)

        from .agent import start_agent

        self._agent = start_agent(self)
        self._install_hooks()

    def _claim_dir(self, parent: str) -> str:
        """Create this run's own directory atomically: a run started by another process in
        the same millisecond that drew the same id never shares it (a new id is drawn)."""
        os.makedirs(parent, exist_ok=True)
        for _ in range(100):
            d = os.path.join(parent, self.id)
            try:
                os.mkdir(d)
                return d
            except FileExistsError:
                self.id = _new_run_id()
        raise FileExistsError(f"no free run id under {parent}")

    # ------------------------------------------------------------------ logging

    def log(self, values: Mapping[str, Any], step: int | None = None) -> None:
        """Record metric values at ``step`` (default: the last step + 1). Costs a few
        microseconds; never raises into the loop unless strict or ``on_nan='stop'``."""
        try:
            if step is None:
                step = self._step + 1
            elif type(step) is not int:
                step = self._coerce_step(step)
            if step > self._step:
                self._step = step
            # the record is formatted by hand: json.dumps costs ~4 us for this, the whole call ~2 us
            parts = []
            bad = None
            keys = self._key_json
            for k, v in values.items():
                t = type(v)
                if t is not float and (t is not int or not _I64_MIN <= v <= _I64_MAX):
                    v = self._coerce_value(k, v)
                    if v is None:
                        continue
                if type(v) is float:
                    if _isfinite(v):
                        r = _float_repr(v)
                    else:
                        r = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
                        if bad is None:
                            bad = (str(k), v)
                else:
                    r = str(v)
                ek = keys.get(k)
                if ek is None:
                    if len(keys) > 10_000:  # keys made up per step must not grow memory without bound
                        keys.clear()
                    ek = keys[k] = _encode(k if type(k) is str else str(k)) + ":"
                parts.append(ek + r)
            if not parts:
                return
            self._journal.write_line(
                '{"k":"m","s":' + str(step) + ',"t":' + _float_repr(_time()) + ',"v":{' + ",".join(parts) + "}}"
            )
            self.records_written += 1
            if bad is not None:  # after the write: the diverging value itself is kept
                self._nonfinite(bad[0], bad[1], step)
        except DivergedError:
            raise
        except OSError as exc:
            if self._finished:  # not a disk problem: the caller logs into a run that has ended
                self._problem("finished", f"log() on run {self.name}, which is finished; not recorded. "
                              "Fix: log before finish(), or start a new run with trackkit.init()")
                return
            self.logs_lost += 1
            self._problem("journal", f"journal write failed ({exc}); this log() call was NOT saved")
        except Exception as exc:
            self._problem("log", f"log() could not record {_safe_repr(values, 200)}: {_safe_repr(exc)}")

    def _coerce_step(self, step: Any) -> int:
        try:
            s = int(step)
        except Exception as exc:
            raise ConfigError(f"step: {_safe_repr(step)} is not an integer. Fix: pass step=int(...)") from exc
        return s

    def _coerce_value(self, key: Any, v: Any) -> float | int | None:
        if v is None or isinstance(v, (str, bytes)):
            what = f"log(): {_safe_repr(key)} has a non-numeric value {_safe_repr(v, 60)}; skipped"
            self._problem(f"value:{key}", what)
            return None
        if isinstance(v, bool):
            return int(v)
        try:
            numel = getattr(v, "numel", None) or getattr(v, "size", None)
            n = numel() if callable(numel) else numel
            if n is not None and n != 1:
                self._problem(
                    f"value:{key}",
                    f"log(): {_safe_repr(key)} holds {n} elements; skipped. "
                    "Fix: log a scalar (e.g. tensor.mean().item())",
                )
                return None
            if hasattr(v, "item"):
                v = v.item()
            out: float | int = int(v) if isinstance(v, int) else float(v)
            if not _I64_MIN <= out <= _I64_MAX:  # beyond int64: a float, or skipped when no float holds it
                out = float(out)
        except Exception as exc:
            what = f"log(): {_safe_repr(key)}={_safe_repr(v, 60)} is not a number ({_safe_repr(exc)}); skipped"
            self._problem(f"value:{key}", what)
            return None
        return out

    def _nonfinite(self, key: str, value: float, step: int) -> None:
        if self._on_nan == "ignore" or self._diverged is not None:
            if self._on_nan == "stop":
                raise DivergedError(key, value, step)
            return
        self._diverged = (key, value, step)
        reason = f"{key}={value} at step {step}"
        self._write_record(
            {"k": "status", "status": "diverged", "reason": reason, "step": step, "time": _time(), "details": {}},
            "status",
        )
        self.status, self.reason = Status.DIVERGED, reason
        if self._on_nan == "stop":
            raise DivergedError(key, value, step)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Add or change config values (merged into the run's config)."""
        data = _jsonable(dict(config))
        self.config.update(data)
        self._write_record({"k": "config", "config": data, "time": _time()}, "config")

    def set_tags(self, tags: Mapping[str, str] | Iterable[str]) -> None:
        data = _norm_tags(tags)
        self.tags.update(data)
        self._write_record({"k": "tags", "tags": data, "time": _time()}, "tags")

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        kind: str = "file",
        aliases: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Snapshot a file or directory *now* (so a later overwrite cannot change what
        was recorded), hash it while copying, and deliver it to every backend.
        Returns the snapshot path, or None when it could not be taken (warned)."""
        try:
            src = os.fspath(path)
            name = name or os.path.basename(src.rstrip(os.sep))
            version = self._artifact_versions[name]
            self._artifact_versions[name] += 1
            dest_dir = os.path.join(self.dir, "artifacts", _safe(name), f"v{version}")
            os.makedirs(dest_dir, exist_ok=True)
            dest = os.path.join(dest_dir, os.path.basename(src.rstrip(os.sep)) or name)
            sha, size = _copy_hashed(src, dest)
            self._write_record(
                {
                    "k": "artifact",
                    "path": dest,
                    "name": name,
                    "kind": kind,
                    "sha256": sha,
                    "size": size,
                    "version": version,
                    "aliases": list(dict.fromkeys(aliases)),
                    "metadata": _jsonable(dict(metadata or {})),
                    "source": os.path.abspath(src),
                    "time": _time(),
                },
                "artifact",
            )
            return dest
        except OSError as exc:
            self._problem("artifact", f"log_artifact({path!r}) failed: {exc}")
            return None

    def _snapshot_bytes(self, fname: str, content: bytes | str) -> None:
        d = os.path.join(self.dir, "artifacts", "_provenance")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, fname)
        with open(p, "wb") as fh:
            fh.write(content.encode() if isinstance(content, str) else content)
        self.log_artifact(p, fname, kind="provenance")

    # ------------------------------------------------------------------ status

    def finish(
        self,
        status: Status | str | None = None,
        reason: str = "",
        *,
        exit_code: int | None = None,
        details: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        """End the run: record the final status, then wait (at most ``drain_timeout``)
        for the backends; what is not delivered by then stays in the journal for
        ``trackkit sync``. Idempotent."""
        global _active
        if self._finished or os.getpid() != self._pid:
            return
        if status is None:
            st = Status.DIVERGED if self._diverged else Status.COMPLETED
            if self._diverged and not reason:
                reason = self.reason
        else:
            try:
                st = Status(status)
            except ValueError:
                raise ConfigError(
                    f"status: {status!r} is not a status. Fix: use one of {[s.value for s in Status]}"
                ) from None
        self._finished = True
        self._close_natives()
        try:
            now = _time()
            last_step = self._step if self._step >= 0 else None
            if st is not Status.DIVERGED or not self._diverged:
                self._write_record(
                    {
                        "k": "status",
                        "status": st.value,
                        "reason": reason,
                        "step": last_step,
                        "time": now,
                        "details": _jsonable(dict(details or {})),
                    },
                    "status",
                )
            fin = {"k": "finish", "status": st.value, "time": now, "reason": reason, "exit_code": exit_code}
            if not self._write_record(fin, "finish"):
                # the journal cannot hold it (disk full, file too large): leave the true status in a
                # small side file, and let go of the lock now, so the agent ends the run with it at
                # once instead of waiting for the drain deadline and calling it killed
                self._finish_note(fin, last_step)
                self._release_lock()
            self.status, self.reason = st, reason
            self._journal.close()
        finally:
            with _active_lock:
                if _active is self:
                    _active = None
            self._uninstall_hooks()
            self._agent.wait(self.settings.drain_timeout if timeout is None else timeout)
            self._release_lock()
            self._report()

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass

    def _finish_note(self, fin: dict[str, Any], step: int | None) -> None:
        from .agent import FINISH_NOTE

        note = {**fin, "step": step, "journal_lost": self.problems.get("journal", 0)}
        path = os.path.join(self.dir, FINISH_NOTE)
        try:
            with open(path + ".tmp", "w") as fh:
                fh.write(_encode(note))
            os.replace(path + ".tmp", path)
        except OSError:
            pass  # then the agent records "killed": the journal is all it has

    def _report(self) -> None:
        lost = self.problems.get("journal", 0)
        if lost:
            warnings.warn(
                f"trackkit run {self.name}: {lost} record(s) could not be written to the journal and are lost "
                f"({self.logs_lost} of them log() calls); the backends hold only what the journal holds",
                TrackkitWarning,
                stacklevel=3,
            )
        pending = self._agent.pending()
        if pending:
            warnings.warn(
                f"trackkit run {self.name}: not yet delivered to {', '.join(pending)}; "
                f"the journal keeps it. Deliver later with: trackkit sync {self.id}",
                TrackkitWarning,
                stacklevel=3,
            )

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if ev is None:
            self.finish()
        else:
            self._finish_from_exception(ev, tb)

    @property
    def finished(self) -> bool:
        """True once the run ended (whatever its status)."""
        return self._finished

    @property
    def step(self) -> int | None:
        """The highest step logged so far (None before the first ``log()``)."""
        return self._step if self._step >= 0 else None

    def pending(self) -> list[str]:
        """Backends that have not yet received everything the journal holds."""
        return self._agent.pending()

    def finish_from_exception(self, exc: BaseException, tb: TracebackType | None = None) -> None:
        """End the run with the status an exception means: ``SystemExit`` by its code,
        ``KeyboardInterrupt`` killed, ``DivergedError`` diverged, anything else crashed
        (with the traceback). For integrations that catch exceptions themselves."""
        self._finish_from_exception(exc, tb if tb is not None else exc.__traceback__)

    def _finish_from_exception(self, exc: BaseException, tb: TracebackType | None) -> None:
        if isinstance(exc, SystemExit):
            code = exc.code
            if code is None or code == 0:
                self.finish()
            else:
                ec = code if isinstance(code, int) else 1
                self.finish(Status.CRASHED, f"sys.exit({code!r})", exit_code=ec)
            return
        if isinstance(exc, KeyboardInterrupt):
            self.finish(Status.KILLED, "SIGINT (KeyboardInterrupt)", exit_code=130)
            return
        if isinstance(exc, DivergedError):
            self.finish(Status.DIVERGED, str(exc), exit_code=1)
            return
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        self.finish(
            Status.CRASHED,
            f"{type(exc).__name__}: {exc}"[:1000],
            exit_code=1,
            details={"exception": type(exc).__qualname__, "traceback": text[-20000:], "last_step": self._step},
        )

    # ------------------------------------------------------------------ hooks

    def _install_hooks(self) -> None:
        self._prev_handlers: dict[int, Any] = {}
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
        self._exit_code: Any = None
        self._prev_exit = sys.exit
        setattr(sys, "exit", self._sys_exit)  # noqa: B010
        atexit.register(self._atexit)

    def _uninstall_hooks(self) -> None:
        for sig, prev in getattr(self, "_prev_handlers", {}).items():
            try:
                if signal.getsignal(sig) == self._on_signal:
                    signal.signal(sig, prev)
            except (ValueError, OSError, TypeError):
                pass
        self._prev_handlers = {}
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._prev_excepthook
        if getattr(sys, "exit", None) == getattr(self, "_sys_exit", None):
            setattr(sys, "exit", self._prev_exit)  # noqa: B010
        atexit.unregister(self._atexit)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        prev = self._prev_handlers.get(signum, signal.SIG_DFL)
        if os.getpid() == self._pid and signum != signal.SIGINT:
            self.finish(Status.KILLED, signal.Signals(signum).name, exit_code=128 + signum)
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
        try:
            self._finish_from_exception(ev, tb)
        finally:
            self._prev_excepthook(et, ev, tb)

    def _sys_exit(self, code: Any = None) -> Any:
        self._exit_code = code
        return self._prev_exit(code)

    def _atexit(self) -> None:
        code = self._exit_code
        if code is not None and code != 0:
            self._finish_from_exception(SystemExit(code), None)
        else:
            self.finish()

    # ------------------------------------------------------------------ internals

    def _write_record(self, rec: dict[str, Any], what: str) -> bool:
        """True when the record is in the journal."""
        try:
            self._journal.write_line(_encode(rec))
            self.records_written += 1
            return True
        except OSError as exc:
            self._problem("journal", f"journal write failed ({exc}); the {what} record was NOT saved")
        except (TypeError, ValueError) as exc:
            self._problem(what, f"could not encode the {what} record: {exc}")
        return False

    def _problem(self, kind: str, message: str) -> None:
        self.problems[kind.split(":")[0]] += 1
        if self._strict:
            raise TrackkitError(message)
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(f"trackkit: {message} (warned once; counted in run.problems)", TrackkitWarning, stacklevel=3)

    def native(self, backend: str) -> Any:
        """The SDK's own run object for ``backend`` ("wandb", "mlflow", "tensorboard").

        This bypasses every trackkit guarantee: calls block on the SDK, can raise,
        and are not journaled."""
        from .registry import load_native

        if backend in self._natives:
            return self._natives[backend]
        for spec in self.specs:
            if spec.scheme == backend:
                obj = self._natives[backend] = load_native(spec, self)
                return obj
        raise ConfigError(
            f"native({backend!r}): this run has no {backend!r} backend. "
            f"Fix: use one of {[s.scheme for s in self.specs]}"
        )

    def _close_natives(self) -> None:
        """Finish what ``native()`` handed out (a W&B run, a TensorBoard writer) with the run."""
        for name, obj in self._natives.items():
            for method in ("finish", "close"):
                fn = getattr(obj, method, None)
                if callable(fn):
                    try:
                        fn()
                    except Exception as exc:
                        self._problem("native", f"closing the native {name} object failed: {exc!r}")
                    break
        self._natives.clear()

    def __repr__(self) -> str:
        return f"<trackkit.Run {self.name} id={self.id} status={self.status.value} dir={self.dir}>"


# ---------------------------------------------------------------------- helpers


def _safe(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return out[:100] or "_"


def _norm_tags(tags: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if isinstance(tags, str):
        return {tags: ""}
    if isinstance(tags, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in tags.items()}
    return {str(t): "" for t in tags}


def _default_name(template: str | None, run: Run) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(run.start_time))
    if template:
        try:
            return template.format(project=run.project, id=run.id, date=stamp, group=run.group or "")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"standard.name_template: {template!r} cannot be formatted ({exc}). "
                "Fix: use only {project}, {id}, {date}, {group}"
            ) from None
    return f"{stamp}-{run.id[-4:]}"


def _copy_hashed(src: str, dest: str) -> tuple[str, int]:
    """Copy a file or a directory tree, hashing the bytes as they pass. Returns (sha256, size)."""
    h = hashlib.sha256()
    size = 0
    if os.path.isdir(src):
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for f in sorted(files):
                s = os.path.join(root, f)
                rel = os.path.relpath(s, src)
                h.update(rel.encode("utf-8", "surrogatepass") + b"\0")
                _, n = _copy_file(s, os.path.join(dest, rel), h)
                size += n
        return h.hexdigest(), size
    return _copy_file(src, dest, h)


def _copy_file(src: str, dest: str, h: Any) -> tuple[str, int]:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    size = 0
    with open(src, "rb") as fi, open(dest, "wb") as fo:
        while True:
            chunk = fi.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            fo.write(chunk)
            size += len(chunk)
    shutil.copystat(src, dest)
    return h.hexdigest(), size


# ---------------------------------------------------------------------- module API


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
    capture: bool | Mapping[str, bool] | None = None,
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
    global _active
    from .registry import check_available, parse_backends, warn_capabilities
    from .resume import resolve_id
    from .settings import load_settings

    run_id, resume_mode = resolve_id(id, resume)

    settings = load_settings(
        {
            "project": project,
            "backend": backend,
            "root": root,
            "agent": agent,
            "drain_timeout": drain_timeout,
            "linger": linger,
            "flush_interval": flush_interval,
            "on_nan": on_nan,
            "strict": strict,
            "capture": capture,
            **_overrides,
        }
    )
    specs = parse_backends(settings.backend)
    for spec in specs:
        check_available(spec)
    warn_capabilities(specs)
    if config is not None and not isinstance(config, Mapping):
        config = _config_from_object(config)
    meta: dict[str, Any] = {"trackkit_version": _version(), "backends": [_public_spec(s) for s in specs]}
    if seed is not None:
        from .provenance import seed_everything

        seed_everything(seed)
    meta_p, files = _capture(settings, data)
    meta.update(meta_p)
    config = _redact(_jsonable(dict(config or {})), settings.redact_patterns)
    if reinit not in ("finish_previous", "create_new"):
        raise ConfigError(f"reinit: {reinit!r} is not an option. Fix: use 'finish_previous' or 'create_new'")
    with _active_lock:
        prev = _active
    if prev is not None and not prev._finished and reinit == "finish_previous":
        warnings.warn(
            f"trackkit.init: run {prev.name} is still active; it is finished (completed) before the new one starts",
            TrackkitWarning,
            stacklevel=2,
        )
        prev.finish()
    run = Run(settings, specs, config=config, name=name, group=group, tags=tags, meta=meta, artifacts=files,
              run_id=run_id, resume=resume_mode)
    _check_standard(run)
    with _active_lock:
        _active = run
    return run


def _config_from_object(obj: Any) -> Mapping[str, Any]:
    data = _jsonable(obj)
    if isinstance(data, Mapping):
        return data
    raise ConfigError(
        f"config: expected a mapping (dict, dataclass, pydantic model, argparse.Namespace), got {type(obj).__name__}. "
        "Fix: pass config=vars(args) or a dict"
    )


def _public_spec(spec: BackendSpec) -> str:
    from .registry import strip_credentials

    return strip_credentials(spec)


def _version() -> str:
    from . import __version__

    return __version__


def _redact(config: Mapping[str, Any], patterns: list[str] | None = None) -> Mapping[str, Any]:
    try:
        from .provenance import redact_config
    except ImportError:  # pragma: no cover - provenance is part of the package
        return config
    out = redact_config(config, patterns)
    return out if isinstance(out, Mapping) else config


_warned_no_seed = False


def _capture(settings: Settings, data: Any) -> tuple[dict[str, Any], dict[str, bytes | str]]:
    """The five pillars (minus the config, which the run holds): git, env, invocation, data, seed."""
    global _warned_no_seed
    from .provenance import capture, pillar_status

    parts = settings.capture

    def on(name: str) -> bool:
        return bool(parts.get(name, True)) if isinstance(parts, dict) else bool(parts)  # type: ignore[call-overload]

    try:
        prov = capture(
            git=on("git"), environment=on("environment"), invocation=on("invocation"),
            packages=on("packages") and on("environment"), data=data,
            extra_patterns=settings.redact_patterns or None,
        )
    except Exception as exc:  # capture never fails the run
        warnings.warn(f"trackkit: provenance capture failed ({exc!r})", TrackkitWarning, stacklevel=3)
        return {"provenance_error": repr(exc)}, {}
    if parts is not False and pillar_status(prov.meta).get("seed") == "missing" and not _warned_no_seed:
        _warned_no_seed = True
        warnings.warn(
            "trackkit: this run records no seed, so it cannot be reproduced exactly. "
            "Fix: trackkit.init(seed=42) or trackkit.seed_everything(42) before init",
            TrackkitWarning,
            stacklevel=3,
        )
    return dict(prov.meta), dict(prov.files)


def _check_standard(run: Run) -> None:
    std = run.settings.standard
    missing: list[str] = []
    missing += [f"tag {t!r}" for t in std.required_tags if t not in run.tags]
    from .events import flatten_config

    flat = flatten_config(run.config)
    missing += [f"config key {k!r}" for k in std.required_config if k not in flat and k not in run.config]
    if std.required_provenance:
        from .provenance import pillar_status

        status = pillar_status(run.meta)
        missing += [f"provenance {p!r} ({status.get(p, 'missing')})" for p in std.required_provenance
                    if status.get(p) != "ok"]
    if not missing:
        return
    msg = f"run {run.name} breaks the team standard (trackkit.toml): missing {', '.join(missing)}"
    if run.settings.strict:
        run.finish(Status.CRASHED, msg)
        raise ConfigError(msg + ". Fix: add them to init(tags=..., config=...)")
    warnings.warn("trackkit: " + msg, TrackkitWarning, stacklevel=3)


def log(values: Mapping[str, Any], step: int | None = None) -> None:
    """``log()`` on the active run (warned once and ignored when there is none)."""
    run = _active
    if run is None:
        warnings.warn("trackkit.log(): no active run; call trackkit.init() first", TrackkitWarning, stacklevel=2)
        return
    run.log(values, step)


def finish(status: Status | str | None = None, reason: str = "") -> None:
    run = _active
    if run is not None:
        run.finish(status, reason)
