"""The run directory's one owner: ``<root>/<project>/<run id>/``.

Every name in it, the two locks, the finish note, the cursors and the closing of a segment
whose trainer died live here; ``run``, ``agent``, ``resume``, ``sync`` and ``cli`` call this
module and nothing else spells those names or opens those locks. See docs/architecture.md
(the layout) and docs/journal.md (the files).

* ``lock`` — the **trainer lock**: an ``flock`` the training process holds for its lifetime.
  The kernel drops it however the process dies (SIGKILL, OOM killer), so "is the trainer alive"
  is one non-blocking probe.
* ``agent.lock`` — the **delivery lock**: one deliverer per run (the agent or ``trackkit sync``),
  so nothing is sent twice.
* ``finish.json`` — the **finish note**: the trainer's final status when the journal could not
  hold its finish record (disk full, file too large).
* ``cursors/<sink key>.json`` — per backend, the byte offset of the last delivered record.
* ``console.log`` — the trainer's console output as kept (written by the agent; docs/console-and-system.md),
  ``console.json`` — the agent's word that it has all of it (the last lines, the count kept).
* ``delivery.json`` — the **delivery state**: per backend, the deliverer's last word on why it
  is not delivering (the start-up reachability check, the last failure; ``""`` once it delivers).
* ``index.json`` — the run's **index entry** (``trackkit.index``): its summary, and how far into the
  journal it reaches; ``<root>/.index.json`` holds every run's, for listings.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .backend import BackendSpec, safe_name
from .events import RunFinished, Status, StatusChange
from .journal import JOURNAL_NAME, JournalWriter, path_end
from .util import write_json_atomic

__all__ = [
    "AGENT_LOCK", "AGENT_LOG", "AGENT_STATS", "CHECKPOINT_INDEX", "CONSOLE_LOG", "CONSOLE_STATE", "DELIVERY_STATE",
    "FINISH_NOTE", "INDEX", "ROOT_INDEX", "TRAINER_LOCK", "Ending", "RunDir", "ending_events",
    "journal_dirs", "root_index_path", "sink_key",
]

TRAINER_LOCK = "lock"
AGENT_LOCK = "agent.lock"
FINISH_NOTE = "finish.json"
AGENT_LOG = "agent.log"
DELIVERY_STATE = "delivery.json"
#: the agent's own CPU account
AGENT_STATS = "agent-stats.json"
#: the run's index entry, and every run's under a journal root (a dot name: never a project's directory)
INDEX = "index.json"
ROOT_INDEX = ".index.json"
CONSOLE_LOG = "console.log"
CONSOLE_STATE = "console.json"
CURSORS = "cursors"
ARTIFACTS = "artifacts"
#: the trainer's media payloads (append-only) and the agent's delivered media files
PAYLOADS = "payloads.bin"
MEDIA = "media"
#: checkpoints written by ``run.checkpoints()`` (or the journal's hard links to them), per manager name
CHECKPOINTS = "checkpoints"
#: the append-only index beside a manager's checkpoint files (docs/checkpoints.md)
CHECKPOINT_INDEX = "checkpoints.jsonl"
#: where init's provenance files (requirements, the git patch ...) are snapshotted
PROVENANCE_ARTIFACTS = "_provenance"
#: the reason recorded for a trainer that ended without a finish record or a finish note
KILLED_REASON = "the training process ended without finishing (SIGKILL, OOM or hard crash)"


#: the name in a journal's start record (``{"k":"start","run_id":...,"project":...,"name":...``)
_STR = rb'"(?:[^"\\]|\\.)*"'
_START_NAME = re.compile(rb'"k":"start","run_id":' + _STR + rb',"project":' + _STR + rb',"name":"((?:[^"\\]|\\.)*)"')


def sink_key(spec: BackendSpec) -> str:
    """The name of a backend's cursor: the scheme and a digest of where it delivers to."""
    text = f"{spec.scheme}|{spec.location}|{sorted(spec.options.items())}"
    return f"{spec.scheme}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Ending:
    """How a segment whose trainer is gone ended: from its finish note, else killed."""

    status: Status
    reason: str
    step: int | None
    exit_code: int | None
    #: True when the finish note said so (the trainer ended the run; its journal was full)
    from_note: bool
    #: records the journal could not hold, as the note counted them
    journal_lost: int = 0


def ending_events(
    status: Status, reason: str, step: int | None, exit_code: int | None, *, now: float | None = None,
    details: Mapping[str, Any] | None = None, with_status: bool = True,
) -> list[StatusChange | RunFinished]:
    """The records that end a segment: the status (unless it was recorded already) and the finish."""
    t = time.time() if now is None else now
    out: list[StatusChange | RunFinished] = []
    if with_status:
        out.append(StatusChange(status=status, reason=reason, step=step, time=t, details=dict(details or {})))
    out.append(RunFinished(status=status, time=t, reason=reason, exit_code=exit_code))
    return out


class RunDir:
    """One run's directory. Cheap to construct; touches the disk only when asked."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"RunDir({self.path!r})"

    # ------------------------------------------------------------ creating

    @staticmethod
    def project_dir(root: str, project: str) -> str:
        return os.path.join(os.path.abspath(root), safe_name(project))

    @classmethod
    def claim(cls, parent: str, new_id: Callable[[], str], first: str) -> tuple[RunDir, str]:
        """Create a new run's directory atomically under ``parent``: a run started by another
        process in the same millisecond that drew the same id never shares it (a new id is
        drawn). Returns the directory and the id it holds."""
        os.makedirs(parent, exist_ok=True)
        run_id = first
        for _ in range(100):
            d = os.path.join(parent, run_id)
            try:
                os.mkdir(d)
                return cls(d), run_id
            except FileExistsError:
                run_id = new_id()
        raise FileExistsError(f"no free run id under {parent}")

    @staticmethod
    def names_in(parent: str, since: float | None = None) -> set[str]:
        """The names of the runs under a project directory, read from their journals' start records;
        ``since``: only runs whose directory changed at or after that time (a live or recent run)."""
        out: set[str] = set()
        try:
            entries = list(os.scandir(parent))
        except OSError:
            return out
        for entry in entries:
            try:
                if not entry.is_dir() or (since is not None and entry.stat().st_mtime < since):
                    continue
                with open(os.path.join(entry.path, JOURNAL_NAME), "rb") as fh:
                    head = fh.read(8192)  # the start record's name comes early (its fields' order)
            except OSError:
                continue
            m = _START_NAME.search(head)
            if m is not None:
                try:
                    out.add(json.loads(b'"' + m.group(1) + b'"'))
                except ValueError:
                    continue
        return out

    # ------------------------------------------------------------ names

    @property
    def journal(self) -> str:
        return os.path.join(self.path, JOURNAL_NAME)

    @property
    def trainer_lock(self) -> str:
        return os.path.join(self.path, TRAINER_LOCK)

    @property
    def agent_log(self) -> str:
        return os.path.join(self.path, AGENT_LOG)

    @property
    def console_log(self) -> str:
        return os.path.join(self.path, CONSOLE_LOG)

    @property
    def console_state(self) -> str:
        return os.path.join(self.path, CONSOLE_STATE)

    @property
    def finish_note(self) -> str:
        return os.path.join(self.path, FINISH_NOTE)

    @property
    def index(self) -> str:
        """The run's index entry (``trackkit.index``)."""
        return os.path.join(self.path, INDEX)

    def has_journal(self) -> bool:
        """True when the journal holds anything (a run was started here)."""
        try:
            return os.path.getsize(self.journal) > 0
        except OSError:
            return False

    def artifact_dir(self, name: str, version: int, *, create: bool = True) -> str:
        """Where version ``version`` of artifact ``name`` is snapshotted (created unless ``create=False``)."""
        d = os.path.join(self.path, ARTIFACTS, safe_name(name), f"v{version}")
        if create:
            os.makedirs(d, exist_ok=True)
        return d

    def payloads(self) -> str:
        """The append-only file the trainer writes media payloads into (docs/media.md)."""
        return os.path.join(self.path, PAYLOADS)

    def media_dir(self) -> str:
        """Where the agent keeps media in their delivered formats (``<key>/<step>-<hash>.<ext>``)."""
        return os.path.join(self.path, MEDIA)

    def checkpoint_dir(self, name: str, *, create: bool = True) -> str:
        """Where the checkpoints of manager ``name`` live by default, and where the journal keeps its
        hard link to each checkpoint written elsewhere (``run.checkpoints(dirpath=...)``)."""
        d = os.path.join(self.path, CHECKPOINTS, safe_name(name))
        if create:
            os.makedirs(d, exist_ok=True)
        return d

    @staticmethod
    def checkpoint_index(dirpath: str) -> str:
        """The index file beside the checkpoints in ``dirpath``."""
        return os.path.join(dirpath, CHECKPOINT_INDEX)

    def provenance_dir(self) -> str:
        d = os.path.join(self.path, ARTIFACTS, PROVENANCE_ARTIFACTS)
        os.makedirs(d, exist_ok=True)
        return d

    def stored_artifact(self, name: str, version: int, base: str) -> str:
        """The path the snapshot of ``base`` (the source's file name) has in this directory (a run
        directory that moved: the path its record holds is elsewhere now)."""
        return os.path.join(self.artifact_dir(name, version, create=False), base)

    # ------------------------------------------------------------ the trainer lock

    def lock_trainer(self, patience: float = 0.0) -> int | None:
        """Take the trainer lock for this process (the fd to keep open), retrying for ``patience``
        seconds (a lingering agent or ``trackkit sync`` probes it, taking it for an instant); None
        when another trainer holds it."""
        fd = os.open(self.trainer_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(0.05)

    def take_trainer_lock(self) -> int | None:
        """For a deliverer that will mark the run ended: the trainer lock's fd, taken (release it
        with :func:`release`); None when a trainer holds it; -1 when it cannot be opened at all
        (then nobody can hold it either)."""
        try:
            fd = os.open(self.trainer_lock, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return -1
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd

    def trainer_alive(self) -> bool:
        """True while the training process that owns this run holds its lock."""
        return self._held(TRAINER_LOCK)

    # ------------------------------------------------------------ the delivery lock

    def hold_agent_lock(self) -> int | None:
        """Take the delivery lock (one deliverer per run, so nothing is sent twice); returns the fd
        to keep open, or None when another agent or ``trackkit sync`` holds it."""
        fd = os.open(os.path.join(self.path, AGENT_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def wait_agent_lock(self, stop: Any, log: Callable[[str], None], poll: float = 0.1) -> int | None:
        """For the agent of a resumed run: wait while the agent of an earlier segment (still
        draining it, or already delivering the new segment) holds the delivery lock; None when
        ``stop`` (a ``threading.Event``) is set first."""
        logged = False
        while True:
            fd = self.hold_agent_lock()
            if fd is not None:
                return fd
            if not logged:
                log("the agent of an earlier segment is still delivering this run; waiting for it")
                logged = True
            if stop.is_set():
                return None
            time.sleep(poll)

    def delivering(self) -> bool:
        """True while an agent or ``trackkit sync`` delivers this run."""
        return self._held(AGENT_LOCK)

    def _held(self, name: str) -> bool:
        try:
            fd = os.open(os.path.join(self.path, name), os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops our lock too
        return False

    # ------------------------------------------------------------ the finish note

    def write_finish_note(self, status: Status, reason: str, step: int | None, exit_code: int | None,
                          journal_lost: int) -> None:
        """Leave the true final status beside a journal that could not hold its finish record."""
        note = {"k": "finish", "status": status.value, "time": time.time(), "reason": reason,
                "exit_code": exit_code, "step": step, "journal_lost": journal_lost}
        try:
            write_json_atomic(self.finish_note, note)
        except OSError:
            pass  # then the deliverer records "killed": the journal is all it has

    def drop_finish_note(self) -> None:
        """An earlier segment's note must not decide a later one's status."""
        try:
            os.unlink(self.finish_note)
        except OSError:
            pass

    def ending(self, last_step: int | None, killed_reason: str = KILLED_REASON) -> Ending:
        """How the segment whose trainer is gone ended: the status its finish note holds, else killed."""
        try:
            with open(self.finish_note) as fh:
                note = json.load(fh)
            status = Status(str(note["status"]))
            code = note.get("exit_code")
            lost = note.get("journal_lost", 0)
            return Ending(status, str(note.get("reason") or ""), note.get("step", last_step),
                          code if isinstance(code, int) else None, True, lost if isinstance(lost, int) else 0)
        except (OSError, ValueError, KeyError, TypeError):
            return Ending(Status.KILLED, killed_reason, last_step, None, False)

    @staticmethod
    def ending_reason(end: Ending) -> str:
        """The reason to record: a finish note's reason also says what the journal lost."""
        if not end.from_note:
            return end.reason
        return (f"{end.reason}; " if end.reason else "") + \
            f"the journal lost {end.journal_lost} record(s) (disk full or file too large)"

    def close_segment(self, run_id: str, last_step: int | None, tail: str = "") -> Ending:
        """Append status + finish for a segment whose trainer is gone without a finish record:
        from its finish note, else killed. The note is dropped once the journal holds them.
        ``tail``: the last console lines, added to the reason."""
        from .journal import encode

        end = self.ending(last_step)
        reason = self.ending_reason(end) + (f"\nlast output:\n{tail}" if tail else "")
        w = JournalWriter(self.journal, run_id, time.time())
        try:
            for ev in ending_events(end.status, reason, end.step, end.exit_code):
                w.write_line(encode(ev))
        finally:
            w.close()
        self.drop_finish_note()
        return end

    # ------------------------------------------------------------ cursors

    def cursor_path(self, key: str) -> str:
        return os.path.join(self.path, CURSORS, key + ".json")

    def load_cursor(self, key: str) -> int:
        """The byte offset delivered to the backend with cursor ``key`` (0: nothing yet)."""
        try:
            with open(self.cursor_path(key)) as fh:
                return int(json.load(fh)["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def save_cursor(self, key: str, offset: int, backend: str, delivered: int) -> None:
        try:
            write_json_atomic(self.cursor_path(key), {"offset": offset, "backend": backend, "delivered": delivered})
        except FileNotFoundError:  # the first cursor of the run: its directory is made once
            os.makedirs(os.path.join(self.path, CURSORS), exist_ok=True)
            write_json_atomic(self.cursor_path(key), {"offset": offset, "backend": backend, "delivered": delivered})

    def move_cursors(self, specs: Sequence[BackendSpec], offset: int) -> None:
        """Point every backend's cursor at ``offset`` (``trackkit gc`` rewrote a fully delivered journal:
        its end moved), keeping the count of records it delivered."""
        for s in specs:
            key = sink_key(s)
            try:
                with open(self.cursor_path(key)) as fh:
                    delivered = int(json.load(fh).get("delivered", 0))
            except (OSError, ValueError, TypeError, AttributeError):
                delivered = 0
            self.save_cursor(key, offset, s.scheme, delivered)

    def replace_journal(self, data: bytes) -> None:
        """Replace the journal with ``data`` atomically and durably (a new file, fsynced, renamed over
        it, the directory fsynced): a reader sees the old journal or the new one, never a mix. Only
        ``trackkit gc``, holding the trainer and delivery locks."""
        tmp = self.journal + ".gc.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.journal)
        except BaseException:
            try:
                os.unlink(tmp)  # a full disk: the old journal stays, whole
            except OSError:
                pass
            raise
        dfd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def pending(self, specs: Sequence[BackendSpec]) -> list[BackendSpec]:
        """The backends whose cursor is behind the end of the journal."""
        size = path_end(self.journal)  # a live trainer's journal ends where its records end, not its filler
        if not size:
            return []
        return [s for s in specs if self.load_cursor(sink_key(s)) < size]

    # ------------------------------------------------------------ the agent's CPU account

    def save_agent_stats(self, stats: Mapping[str, Any]) -> None:
        """The deliverer's CPU account (docs/journal.md, "What the agent costs"), replaced whole."""
        write_json_atomic(os.path.join(self.path, AGENT_STATS), stats)

    def load_agent_stats(self) -> dict[str, Any]:
        try:
            with open(os.path.join(self.path, AGENT_STATS)) as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # ------------------------------------------------------------ the delivery state

    @property
    def delivery_state(self) -> str:
        return os.path.join(self.path, DELIVERY_STATE)

    def save_delivery_state(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """The deliverer's word on each backend (sink key -> ``backend``, ``error``, ``probe``, ``time``),
        replaced whole. Only the one deliverer of the run (it holds the delivery lock) writes it."""
        write_json_atomic(self.delivery_state, state)

    def load_delivery_state(self) -> dict[str, dict[str, Any]]:
        """What :meth:`save_delivery_state` left; ``{}`` when there is nothing (readable)."""
        try:
            with open(self.delivery_state) as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}


def root_index_path(root: str) -> str:
    """Every run's index entry under a journal root, in one file (``trackkit.index``)."""
    return os.path.join(root, ROOT_INDEX)


def journal_dirs(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(project dir/run id, run directory, the journal's stat)`` of every run directory with a journal
    under a journal root, in no particular order: one ``stat`` per run."""
    try:
        projects = list(os.scandir(root))
    except OSError:
        return
    for p in projects:
        try:
            if not p.is_dir():
                continue
            runs = list(os.scandir(p.path))
        except OSError:
            continue
        for r in runs:
            try:
                st = os.stat(os.path.join(r.path, JOURNAL_NAME))
            except OSError:
                continue
            yield f"{p.name}/{r.name}", r.path, st


def release(fd: int) -> None:
    """Let go of a lock taken here (closing its fd drops it)."""
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
