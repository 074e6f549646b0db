"""``TensorBoardReader``: runs of any TensorBoard logdir read back as trackkit events.

Which directories are one run: ``discover`` (docs/backends/tensorboard.md, "Reading logdirs other tools wrote").
A run is read record by record, its files merged by step, in bounded chunks (``stream.RunStream``):
every point (no reservoir sampling), legacy and v2 summaries, trackkit's JSON text records (run,
config, tags, status, artifacts, summary), HParams sessions (config, summary values, status) and
image/histogram/text/audio summaries as ``Media`` (``media_in``). A cut or damaged event file is
read up to the damage and a note says which file and where (``RunInfo.notes``, the stream's notes;
``RunInfo.damage``: the same in one short line per file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ...backend import BackendSpec, payload_file
from ...errors import ConfigError
from ...events import Event, RunInfo, RunRecord
from .discover import RunDir, find_runs
from .layout import root_of
from .media_in import hash_only
from .records import EVENT_PREFIX
from .stream import RunStream

__all__ = ["TensorBoardReader"]


class TensorBoardReader:
    """Reads any TensorBoard logdir (trackkit's, torch's ``SummaryWriter``, tensorboardX, Keras).
    Reading creates nothing: a logdir that does not exist is a ``ConfigError`` (``must_exist=False``,
    a migration target: it reads as empty until the sink creates it)."""

    def __init__(self, spec: BackendSpec, *, must_exist: bool = True) -> None:
        self.root = root_of(spec)
        self.spec = spec
        #: run directory -> (the files' sizes and mtimes, the listing row): a listing reads a run once
        self._listed: dict[str, tuple[tuple[tuple[str, int, int], ...], RunInfo]] = {}
        if must_exist and not os.path.isdir(self.root):
            what = "is a file, not a directory" if os.path.exists(self.root) else "does not exist"
            raise ConfigError(
                f"backend {str(spec)!r}: no TensorBoard logdir at {self.root} (it {what}). "
                "Fix: give the directory the runs were logged to, e.g. tensorboard:./runs"
            )

    def _runs(self) -> list[RunDir]:
        return find_runs(self.root)

    def why_empty(self) -> str:
        """One line on a logdir with no runs: what it holds and the fix ("" when it has runs)."""
        if self._runs():
            return ""
        return (f"{self.spec}: no TensorBoard runs under {self.root}: no event files ({EVENT_PREFIX}*) in it or in "
                "any directory below it. Fix: name the directory your SummaryWriter / tensorboardX / Keras "
                "TensorBoard callback logged to (its log_dir), e.g. tensorboard:./runs")

    # ------------------------------------------------------------------ listing

    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        """A row per run. Each run's files are read once (one pass, no media payload written) and the row
        is kept while the files' sizes and mtimes stay the same."""
        out = []
        for run in self._runs():
            if project is not None and run.marker is None and run.names(self.root)[0] != project:
                continue
            info = self._row(run)
            if project is None or info.project == project:
                out.append(info)
        return out

    def _row(self, run: RunDir) -> RunInfo:
        stamp = tuple(_stamp(f) for _p, f in run.files())
        hit = self._listed.get(run.dir)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        info = self._info(run)
        stream = RunStream(run, self.root, hash_only)
        stream.points_only_last = True  # a row needs the last value of each key, not every point
        for events, _done, notes in stream.chunks():
            for ev in events:
                info.apply(ev)
            info.notes.extend(n for n in notes if n not in info.notes)
        info.damage = list(stream.damage)
        info.metrics.update(stream.points.metrics)
        info.last_metrics.update(stream.points.last_metrics)
        if stream.last_step is not None:
            info.last_step = stream.last_step if info.last_step is None else max(info.last_step, stream.last_step)
        self._listed[run.dir] = (stamp, info)
        return info

    def _info(self, run: RunDir) -> RunInfo:
        project, name, group = run.names(self.root)
        return RunInfo(run_id=run.run_id, project=project, name=name, group=group,
                       backend=f"tensorboard:{self.root}", location=run.dir)

    # ------------------------------------------------------------------ reading

    def _find(self, run_id: str) -> RunDir:
        runs = self._runs()
        for run in runs:
            if run.run_id == run_id:
                return run
        for run in runs:
            if run.rel == run_id:
                return run
        if not runs:
            raise KeyError(self.why_empty())
        raise KeyError(f"no tensorboard run {run_id!r} under {self.root} (`trackkit runs --backend {self.spec}` "
                       "lists them)")

    def stream_run(self, run_id: str) -> Iterator[tuple[list[Event], float | None, list[str]]]:
        """The run's events in chunks of at most ``stream.CHUNK``: ``(events, fraction of its bytes read,
        notes on damage found in this chunk)``. The first chunk starts with ``RunStarted``; points come
        in step order where the files allow. Raises ``KeyError`` (before yielding) for an unknown run."""
        run = self._find(run_id)
        return RunStream(run, self.root, payload_file).chunks()

    def read_run(self, run_id: str) -> RunRecord:
        run = self._find(run_id)
        info = self._info(run)
        events: list[Event] = []
        stream = RunStream(run, self.root, payload_file)
        for chunk, _done, notes in stream.chunks():
            for ev in chunk:
                info.apply(ev)
            events.extend(chunk)
            info.notes.extend(n for n in notes if n not in info.notes)
        info.damage = list(stream.damage)
        return RunRecord(info, events)


def _stamp(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return path, -1, -1
    return path, st.st_size, st.st_mtime_ns
