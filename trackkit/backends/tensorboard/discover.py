"""Which directories of a logdir are one run (docs/backends/tensorboard.md#reading-logdirs-other-tools-wrote).

The rule, applied top-down from the logdir:

1. A directory holding trackkit's marker ``.trackkit_run_id`` is one run (trackkit wrote it), with the
   marker's run id. A directory with a marker below it is another run: a child run (its parent is the
   run whose directory holds it). ``native/`` (``Run.native()``'s own writer) is not read.
2. Otherwise the **topmost** directory holding event files (``*tfevents*``) is one run. Every directory
   below it that holds event files is a **part** of that run (torch's ``add_scalars`` and ``add_hparams``
   subdirectories, a restarted writer's subdirectory): its tags are read with its relative path in front
   (``loss_train/loss``), except an HParams session part (its files begin with an HParams session
   start, what ``add_hparams`` writes) whose hparams are the run's config and whose scalars are the
   run's summary values.
3. Keras' callback layout: a directory holding no event files whose event-holding subdirectories are
   all named ``train``/``validation`` is one run; ``train/`` and ``validation/`` are its parts
   (``train/epoch_loss``, ``validation/epoch_loss``).

A run trackkit did not write is identified by its path relative to the logdir (``/``-separated;
the logdir itself: its own name); its project is the first component of that path (the logdir's name
when there is one component), its name the last, its group the components between.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .layout import MARKER
from .records import is_event_file

__all__ = ["KERAS_PARTS", "Part", "RunDir", "find_runs"]

#: the subdirectories of Keras' ``TensorBoard`` callback
KERAS_PARTS = frozenset({"train", "validation"})


@dataclass
class Part:
    """A directory of a run holding event files: its files (oldest first) and the key prefix of its tags."""

    dir: str
    #: ``""`` for the run's own directory, else the relative path with ``/`` and a trailing ``/``
    prefix: str
    files: list[str] = field(default_factory=list)


@dataclass
class RunDir:
    dir: str
    #: the path relative to the logdir, ``/``-separated (``.``: the logdir itself)
    rel: str
    #: the marker's run id (trackkit wrote the run), else ``None``
    marker: str | None = None
    #: the run id of the trackkit run whose directory holds this one
    parent: str | None = None
    parts: list[Part] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        if self.marker:
            return self.marker
        return self.rel if self.rel != "." else os.path.basename(os.path.abspath(self.dir)) or "run"

    def names(self, root: str) -> tuple[str, str, str | None]:
        """(project, name, group) by the path rule above."""
        parts = [] if self.rel == "." else self.rel.split("/")
        if len(parts) <= 1:
            base = os.path.basename(os.path.abspath(root)) or "runs"
            return base, parts[0] if parts else base, None
        return parts[0], parts[-1], "/".join(parts[1:-1]) or None

    def files(self) -> list[tuple[Part, str]]:
        return [(p, f) for p in self.parts for f in p.files]


def _events(files: list[str]) -> list[str]:
    # event file names start with a 10-digit timestamp: by name is oldest first (restarts in order)
    return sorted(f for f in files if is_event_file(f))


def _read_marker(d: str) -> str:
    try:
        with open(os.path.join(d, MARKER)) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def find_runs(root: str) -> list[RunDir]:
    """Every run under ``root`` by the rule above, in path order. Reads directory listings and markers only."""
    tree: dict[str, tuple[list[str], list[str]]] = {}
    for d, dirs, files in os.walk(root):
        dirs.sort()
        tree[d] = (dirs, files)
    runs: list[RunDir] = []

    def rel(d: str) -> str:
        r = os.path.relpath(d, root)
        return r.replace(os.sep, "/")

    def has_events(d: str) -> bool:
        return any(is_event_file(f) for f in tree.get(d, ([], []))[1])

    def visit(d: str, owner: RunDir | None, trackkit_owner: RunDir | None) -> None:
        dirs, files = tree.get(d, ([], []))
        events = _events(files)
        run: RunDir | None = None
        if MARKER in files:
            run = RunDir(d, rel(d), marker=_read_marker(d) or rel(d),
                         parent=trackkit_owner.run_id if trackkit_owner else None)
            run.parts.append(Part(d, "", [os.path.join(d, f) for f in events]))
            trackkit_owner = run
        elif owner is not None:
            if owner.marker and os.path.basename(d) == "native" and os.path.dirname(d) == owner.dir:
                return  # Run.native()'s writer: not trackkit's record of the run
            if events:
                prefix = os.path.relpath(d, owner.dir).replace(os.sep, "/") + "/"
                owner.parts.append(Part(d, prefix, [os.path.join(d, f) for f in events]))
        elif events:
            run = RunDir(d, rel(d))
            run.parts.append(Part(d, "", [os.path.join(d, f) for f in events]))
        else:
            keras = [s for s in dirs if has_events(os.path.join(d, s))]
            if keras and set(keras) <= KERAS_PARTS:
                run = RunDir(d, rel(d))
        if run is not None:
            runs.append(run)
            owner = run
        for s in dirs:
            visit(os.path.join(d, s), owner, trackkit_owner)

    if os.path.isdir(root):
        visit(root, None, None)
    return runs
