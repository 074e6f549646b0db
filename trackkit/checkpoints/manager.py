"""``run.checkpoints(...)``: the checkpoint manager of one run (docs/checkpoints.md).

``save`` writes the user's state with the user's format (``torch.save``, or ``save_fn``) atomically
under a new informative name, journals a :class:`~trackkit.events.Checkpoint` record (no hash: the
agent hashes, links and delivers), appends it to the index beside the files, then applies the
retention rules: what they drop is removed and journaled (:class:`~trackkit.events.CheckpointPruned`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..events import Checkpoint, CheckpointPruned
from ..rundir import RunDir
from ..util import jsonable, safe_repr
from ..version import __version__
from .deliver import CheckpointFiles
from .files import file_name, mark_immutable, write_atomic
from .index import Entry, append_record, read_index
from .retention import Rules, best_of, kept, ranked

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["CheckpointManager"]

MODES = ("max", "min")


def _torch_save(obj: Any, path: str) -> None:
    try:
        import torch
    except ImportError as exc:
        raise ConfigError("checkpoints: torch is not installed, so there is no default format. Fix: pass "
                          "save_fn=(obj, path) -> None (and load_fn=path -> obj) to run.checkpoints()") from exc
    torch.save(obj, path)


def _torch_load(path: str) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _count(name: str, v: int | None) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"checkpoints: {name}={safe_repr(v)} is not a count. Fix: pass an int >= 0 (or None)")
    return v


class CheckpointManager:
    """Versioned checkpoints of one run. Create with :meth:`trackkit.Run.checkpoints`."""

    def __init__(self, run: Run, rundir: RunDir, write: Callable[[Any, str], bool],
                 problem: Callable[[str, str], None], *,
                 name: str = "checkpoint", monitor: str | None = None, mode: str = "max",
                 keep_best: int | None = None, keep_last: int | None = None, every_n_epochs: int | None = None,
                 every_n_steps: int | None = None, dirpath: str | os.PathLike[str] | None = None,
                 extension: str = ".pt", save_fn: Callable[[Any, str], Any] | None = None,
                 load_fn: Callable[[str], Any] | None = None, fsync: bool = True) -> None:
        if mode not in MODES:
            raise ConfigError(f"checkpoints: mode={mode!r} is not one of {MODES}. Fix: mode='max' or mode='min'")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"checkpoints: name={safe_repr(name)} is empty. Fix: name='checkpoint'")
        if (keep_best or 0) > 0 and not monitor:
            raise ConfigError("checkpoints: keep_best needs a metric to rank by. Fix: pass monitor='val/loss' "
                              "(and mode='min'), or drop keep_best")
        for n in ("every_n_epochs", "every_n_steps"):
            v = every_n_epochs if n == "every_n_epochs" else every_n_steps
            if v is not None and (_count(n, v) or 0) == 0:
                raise ConfigError(f"checkpoints: {n}=0 keeps nothing periodically. Fix: pass n >= 1, or None")
        self.rules = Rules(monitor=monitor, mode=mode, keep_best=_count("keep_best", keep_best),
                           keep_last=_count("keep_last", keep_last), every_n_epochs=every_n_epochs,
                           every_n_steps=every_n_steps)
        self.name = name
        self.run_id = run.id
        self._run = run
        self._rundir = rundir
        self._write = write
        self._problem = problem
        self.dirpath = os.path.abspath(os.fspath(dirpath)) if dirpath is not None else rundir.checkpoint_dir(name)
        os.makedirs(self.dirpath, exist_ok=True)
        self.index = RunDir.checkpoint_index(self.dirpath)
        self.extension = extension if extension.startswith(".") or not extension else "." + extension
        self._save_fn = save_fn or _torch_save
        self._load_fn = load_fn or (_torch_load if save_fn is None else None)
        self._fsync = fsync
        # a resumed run (or a second manager of the same name) continues where the index stands
        self._kept, self._pruned = read_index(self.index, self.run_id, name)
        for e in self._kept:
            mark_immutable(e.path)
        self._next = 1 + max((e.version for e in [*self._kept, *self._pruned]), default=-1)

    # ------------------------------------------------------------------ saving

    def save(self, state: Any, *, step: int | None = None, epoch: int | None = None,
             metrics: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None) -> Entry | None:
        """Save ``state`` as a new checkpoint and apply the retention rules. Returns its entry, or None
        when it could not be saved (warned once, counted in ``run.problems["checkpoint"]``; ``strict``
        raises): a failed save never throws a traceback into the training loop.

        Costs the save itself (``torch.save``/``save_fn``, an fsync) plus a few small writes; the agent
        hashes and delivers the file."""
        return self._guarded(lambda tmp: self._save_fn(state, tmp), None, step, epoch, metrics, metadata)

    def adopt(self, path: str | os.PathLike[str], *, step: int | None = None, epoch: int | None = None,
              metrics: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None) -> Entry | None:
        """Record a checkpoint file another library wrote (Lightning, the HF Trainer) where it is: no
        copy. The journal keeps it by a hard link; :meth:`forget` records the library's deletion."""
        src = os.path.abspath(os.fspath(path))
        return self._guarded(None, src, step, epoch, metrics, metadata)

    def _guarded(self, write: Callable[[str], Any] | None, src: str | None, step: Any, epoch: Any,
                 metrics: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None) -> Entry | None:
        try:
            if src is not None and not os.path.exists(src):
                raise ConfigError(f"{src} does not exist. Fix: adopt a file after it was saved")
            return self._add(write, src, _int_or_none("step", step), _int_or_none("epoch", epoch), metrics, metadata)
        except Exception as exc:
            self._problem("checkpoint", f"checkpoints: save at step {safe_repr(step)} of {self.name!r} failed: "
                          f"{type(exc).__name__}: {str(exc)[:300]}; no checkpoint was recorded")
            return None

    def _add(self, write: Callable[[str], Any] | None, src: str | None, step: int | None, epoch: int | None,
             metrics: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None) -> Entry:
        if step is None:
            step = self._run.step if self._run.step is not None else 0
        values = self._metrics(metrics or {})
        mon = self.rules.monitor
        if mon and mon not in values and src is None:  # an adopted file (last.ckpt) may have no score
            self._problem(f"checkpoint:{mon}", f"checkpoints: save() at step {step} has no {mon!r} in "
                                   f"metrics=; it cannot rank as best. Fix: pass metrics={{{mon!r}: value}}")
        if src is None:
            assert write is not None
            fname = file_name(self.name, self.extension, epoch=epoch, step=step, monitor=mon, metrics=values)
            path = write_atomic(self.dirpath, fname, write, fsync=self._fsync)
        else:
            path = src
        size = _size(path)
        version = self._next
        self._next += 1
        now = time.time()
        meta = self._metadata(metadata, os.path.basename(path))
        entry = Entry(path=path, name=self.name, version=version, step=step, epoch=epoch, metrics=values,
                      size=size, time=now, metadata=meta, run_id=self.run_id)
        candidates = [*self._kept, entry]
        aliases = self._aliases(entry, candidates)
        entry = replace(entry, aliases=aliases)
        self._record({"op": "save", **entry.to_dict()})
        ck = Checkpoint(path=path, name=self.name, version=version, step=step, epoch=epoch, metrics=values,
                        size=size, aliases=aliases, metadata=meta, time=now)
        if src is not None:
            self._keep_now(ck)
        self._write(ck, "checkpoint")
        self._kept.append(entry)
        self._retain(now)
        return self._with_aliases(entry)

    def _keep_now(self, ck: Checkpoint) -> None:
        """An adopted file or folder lives where its library put it, and the library may delete it at its
        next save (Lightning's top-k, the HF Trainer's ``save_total_limit``), sooner than a busy agent gets
        to it: the journal's hard links are made here, one ``link(2)`` per file whatever the size, so the
        record keeps its bytes. Where a link cannot be made (another filesystem) nothing is left half
        done: the agent links or copies it."""
        stored = CheckpointFiles(self._rundir, lambda _msg: None).stored_path(ck)
        if stored == ck.path or os.path.exists(stored):
            return
        try:
            if os.path.isfile(ck.path):
                os.makedirs(os.path.dirname(stored), exist_ok=True)
                os.link(ck.path, stored)
            elif os.path.isdir(ck.path):
                shutil.copytree(ck.path, stored, copy_function=os.link)
        except OSError:
            if os.path.isdir(stored):
                shutil.rmtree(stored, ignore_errors=True)

    def _metrics(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for k, v in metrics.items():
            try:
                item = getattr(v, "item", None)
                out[str(k)] = float(item() if callable(item) else v)
            except (TypeError, ValueError) as exc:
                self._problem(f"checkpoint:{k}", f"checkpoints: metric {k!r}={safe_repr(v, 60)} is not a "
                                       f"number ({exc}); left out of the checkpoint's metrics. Fix: pass floats")
        return out

    def _metadata(self, extra: Mapping[str, Any] | None, fname: str) -> dict[str, Any]:
        meta = self._run.meta
        git = meta.get("git") if isinstance(meta.get("git"), dict) else (meta.get("provenance") or {}).get("git")
        git = git if isinstance(git, dict) else {}
        out: dict[str, Any] = {
            "file": fname, "index": self.index, "monitor": self.rules.monitor, "mode": self.rules.mode,
            "run_id": self.run_id,
            "trackkit_version": __version__, "git_commit": git.get("commit"), "git_dirty": git.get("dirty"),
            "config": dict(self._run.config),
        }
        if extra:
            out["user"] = jsonable(dict(extra))
        return out

    def _aliases(self, entry: Entry, entries: list[Entry]) -> tuple[str, ...]:
        out = ["latest"]
        if self.rules.monitor:
            b = best_of(entries, self.rules.monitor, self.rules.mode)
            if b is not None and b.version == entry.version:
                out.insert(0, "best")
        return tuple(out)

    def _record(self, rec: Mapping[str, Any]) -> None:
        try:
            append_record(self.index, rec, fsync=self._fsync)
        except OSError as exc:
            self._problem("checkpoint-index", f"checkpoints: could not write the index {self.index} ({exc}); "
                                   "the journal still holds every checkpoint record")

    def _retain(self, now: float) -> None:
        keep = kept(self._kept, self.rules)
        drop = [e for e in self._kept if e.version not in keep]
        if not drop:
            return
        self._kept = [e for e in self._kept if e.version in keep]
        for e in drop:
            self._prune(e, "retention", now)

    def _prune(self, e: Entry, reason: str, now: float) -> None:
        if os.path.dirname(e.path) == self.dirpath:  # only files this manager wrote (adopted: the library's)
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._problem("checkpoint-prune", f"checkpoints: could not remove {e.path} ({exc})")
        self._pruned.append(e)
        self._record({"op": "prune", "run_id": self.run_id, "name": self.name, "version": e.version,
                      "reason": reason, "time": now})
        self._write(CheckpointPruned(name=self.name, version=e.version, path=e.path, reason=reason,
                                     aliases=self._alias_versions(), time=now), "checkpoint prune")

    def forget(self, path: str | os.PathLike[str], reason: str = "deleted by its library") -> bool:
        """Record that an adopted file is gone (Lightning removed it from its top-k); True when one was."""
        p = os.path.abspath(os.fspath(path))
        hit = [e for e in self._kept if e.path == p]
        self._kept = [e for e in self._kept if e.path != p]
        for e in hit:
            self._prune(e, reason, time.time())
        return bool(hit)

    def _alias_versions(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self._kept:
            out["latest"] = max(e.version for e in self._kept)
        b = best_of(self._kept, self.rules.monitor, self.rules.mode) if self.rules.monitor else None
        if b is not None:
            out["best"] = b.version
        return out

    # ------------------------------------------------------------------ reading

    def list(self) -> list[Entry]:
        """The kept checkpoints, oldest first (with the agent's sha256 once it hashed them)."""
        hashed = {e.version: e.sha256 for e in read_index(self.index, self.run_id, self.name)[0]}
        return [self._with_aliases(replace(e, sha256=e.sha256 or hashed.get(e.version, ""))) for e in self._kept]

    def _with_aliases(self, e: Entry) -> Entry:
        names = [a for a, v in self._alias_versions().items() if v == e.version]
        return replace(e, aliases=tuple(sorted(names)))

    def latest(self) -> Entry | None:
        """The newest kept checkpoint (a resumed run: the last one an earlier segment saved)."""
        entries = self.list()
        return entries[-1] if entries else None

    def best(self, metric: str | None = None, mode: str | None = None) -> Entry | None:
        """The kept checkpoint best by ``metric`` (default: the monitor) and ``mode``; re-rank after
        the fact with another metric (the evaluation-bug case). ``None`` when none holds it."""
        metric = metric or self.rules.monitor
        if not metric:
            raise ConfigError("checkpoints.best(): no metric. Fix: best(metric='val/loss', mode='min'), or "
                              "create the manager with monitor=")
        mode = mode or (self.rules.mode if metric == self.rules.monitor else _goal(metric))
        if mode not in MODES:
            raise ConfigError(f"checkpoints.best(): mode={mode!r} is not one of {MODES}")
        r = ranked(self.list(), metric, mode)
        return r[0] if r else None

    def load(self, entry: Entry | None = None) -> Any:
        """Load a checkpoint (default: the latest) with ``load_fn`` (``torch.load`` when torch saved it)."""
        e = entry or self.latest()
        if e is None:
            raise ConfigError(f"checkpoints: {self.name!r} has no checkpoint yet. Fix: save() one first")
        if self._load_fn is None:
            raise ConfigError("checkpoints: no load_fn. Fix: pass load_fn=path -> obj to run.checkpoints()")
        return self._load_fn(e.path)

    def __repr__(self) -> str:
        return f"<CheckpointManager {self.name!r} of run {self.run_id}: {len(self._kept)} kept in {self.dirpath}>"


def _int_or_none(name: str, v: Any) -> int | None:
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    try:
        return int(v)  # a numpy / torch integer
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={safe_repr(v)} is not an integer. Fix: pass {name}=int(...)") from None


def _goal(metric: str) -> str:
    from ..events import guess_goal

    return guess_goal(metric)


def _size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


