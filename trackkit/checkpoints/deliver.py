"""The agent's part of checkpoints and artifacts: hash, link into the journal directory, clean up.

The trainer journals a ``Checkpoint`` (or a ``log_artifact`` snapshot) without its sha256: reading
a 5 GB file back would cost the training thread as much as writing it. Before any sink sees the
record, :meth:`CheckpointFiles.prepare` (called by ``agent.Delivery.read_new``)

* keeps the checkpoint in the journal directory by a hard link when it was written elsewhere
  (``dirpath=``, an adopted Lightning file): a copy only where no link can be made;
* hashes it (``util.sha256_of``), once: the hash goes into the index beside the checkpoints, where a
  restarted agent finds it again;
* for a ``CheckpointPruned``, removes the journal's own link.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace

from ..events import Artifact, Checkpoint, CheckpointPruned, Event
from ..rundir import RunDir
from ..util import sha256_of
from .files import link_or_copy
from .index import append_record, read_index

__all__ = ["CheckpointFiles"]

LINKED = "linked"


class CheckpointFiles:
    def __init__(self, rundir: RunDir, log: Callable[[str], None]) -> None:
        self.rundir = rundir
        self.log = log
        self._hashes: dict[str, dict[tuple[str, str, int], str]] = {}

    def stored_path(self, ev: Checkpoint | CheckpointPruned) -> str:
        """Where the journal directory keeps this checkpoint: the file itself when the manager wrote it
        there, else ``checkpoints/<name>/linked/v<N>/<file>``."""
        root = os.path.realpath(self.rundir.path) + os.sep
        if os.path.realpath(ev.path).startswith(root):
            return ev.path
        return os.path.join(self.rundir.checkpoint_dir(ev.name, create=False), LINKED, f"v{ev.version}",
                            os.path.basename(ev.path))

    def prepare(self, ev: Event) -> Event | None:
        """The event as sinks get it (None: skip it, its file is gone)."""
        if isinstance(ev, Checkpoint):
            return self._checkpoint(ev)
        if isinstance(ev, CheckpointPruned):
            stored = self.stored_path(ev)
            if stored != ev.path:  # the journal's own link (a file, or a folder of links)
                if os.path.isdir(stored):
                    shutil.rmtree(stored, ignore_errors=True)
                for p in (stored, os.path.dirname(stored)):
                    try:
                        os.unlink(p) if p == stored else os.rmdir(p)
                    except OSError:
                        pass
            return ev
        if isinstance(ev, Artifact) and not ev.sha256:
            try:
                return replace(ev, sha256=sha256_of(ev.path))
            except OSError as exc:
                self.log(f"artifact {ev.name!r} v{ev.version}: cannot hash {ev.path}: {exc}")
                return ev
        return ev

    def _checkpoint(self, ev: Checkpoint) -> Checkpoint | None:
        stored = self.stored_path(ev)
        try:
            if stored != ev.path and not os.path.exists(stored):
                how = link_or_copy(ev.path, stored)
                if how == "copy":
                    self.log(f"checkpoint {ev.name} v{ev.version}: copied into the journal directory (no hard "
                             "link possible: another filesystem)")
        except OSError as exc:
            if not os.path.exists(stored):
                self.log(f"checkpoint {ev.name} v{ev.version}: {ev.path} is gone before delivery ({exc}); "
                         "skipped (pruned or deleted before the agent reached it)")
                return None
        index = str(ev.metadata.get("index") or RunDir.checkpoint_index(os.path.dirname(ev.path)))
        sha = ev.sha256 or self._known(index, ev)
        if not sha:
            try:
                sha = sha256_of(stored)
            except OSError as exc:
                self.log(f"checkpoint {ev.name} v{ev.version}: cannot hash {stored}: {exc}; skipped")
                return None
            try:
                append_record(index, {"op": "hash", "run_id": ev.metadata.get("run_id", ""), "name": ev.name,
                                      "version": ev.version, "sha256": sha})
            except OSError as exc:
                self.log(f"checkpoint index {index}: cannot record the hash ({exc})")
        return replace(ev, path=stored, sha256=sha)

    def _known(self, index: str, ev: Checkpoint) -> str:
        """The hash a previous agent recorded (a restarted agent reads the journal again)."""
        if index not in self._hashes:
            kept, pruned = read_index(index)
            self._hashes[index] = {(e.run_id, e.name, e.version): e.sha256 for e in [*kept, *pruned] if e.sha256}
        return self._hashes[index].get((str(ev.metadata.get("run_id", "")), ev.name, ev.version), "")
