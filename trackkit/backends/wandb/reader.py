"""``WandbReader``: W&B runs back as trackkit events.

Offline runs (and local copies of online ones) are read from W&B's own ``run-<id>.wandb``
files; runs that live only on a W&B server through ``wandb.Api()``. Both go through the
one ``Decoder`` (``decode.py``): offline it is fed the files' protobuf records, online
what the API returns for the same records (config, history rows, summary, artifacts).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from ...backend import BackendSpec, sdk_errors
from ...errors import ConfigError
from ...events import Event, RunInfo, RunRecord
from .decode import Decoded, Decoder, Skipped, merge_internal
from .media_read import Fetch
from .names import INTERNAL, own_run_file, project_name, wandb_run_id
from .sdk import LABEL, default_root, import_wandb
from .segments import CHUNK, Segment, decoder_for, find_files, list_segments, scan, stream_segments

__all__ = ["WandbReader", "api_files", "decode_api_run"]

log = logging.getLogger("trackkit.wandb")


class WandbReader:
    """Reads W&B runs back as trackkit events.

    Offline (and local copies of online runs): scans ``dir`` (option), else ``WANDB_DIR``,
    else the cwd for ``wandb/*run-*/run-*.wandb``; a directory that does not exist or holds no
    W&B runs is a ``ConfigError`` naming it (``must_exist=False``, a migration target: empty).
    Online, with ``mode=online`` or an API key in the environment and W&B not in offline mode:
    ``wandb.Api()`` (untested here). ``stream_run`` reads a run file by file in bounded chunks.
    """

    def __init__(self, spec: BackendSpec, *, must_exist: bool = True) -> None:
        self.spec = spec
        opts = dict(spec.options)
        self._root = default_root(opts)
        self._project = spec.location or None
        self._entity = opts.get("entity") or None
        mode = opts.get("mode") or os.environ.get("WANDB_MODE", "")
        self._online = mode == "online" or (
            mode not in ("offline", "dryrun", "disabled") and bool(os.environ.get("WANDB_API_KEY"))
        )
        if must_exist and not self._online:
            self._check_root(opts)
        self._wandb = import_wandb()
        self._cache: dict[str, tuple[float, int, Segment]] = {}
        #: per trackkit run id read: the history values that are neither metrics nor mapped media
        #: (kept for callers of the media release; ``RunInfo.notes`` says the same in one line per type)
        self.skipped: dict[str, list[Skipped]] = {}

    def _check_root(self, opts: dict[str, str]) -> None:
        """A W&B directory that does not exist, or holds no W&B runs at all, is a missing source."""
        given = "option dir" if opts.get("dir") else ("WANDB_DIR" if os.environ.get("WANDB_DIR") else "the cwd")
        if not os.path.isdir(self._root):
            cause = "does not exist"
        elif not find_files(self._root):
            has = os.path.isdir(os.path.join(self._root, "wandb"))
            cause = ("holds no W&B runs (its wandb/ directory has no offline-run-*/run-*.wandb file)" if has
                     else "holds no W&B runs (no wandb/ directory, no run-*.wandb file)")
        else:
            return
        raise ConfigError(
            f"backend {str(self.spec)!r}: the W&B directory {self._root} ({given}) {cause}. "
            "Fix: name the directory that holds wandb/, e.g. wandb:PROJECT?dir=DIR (or run from it)"
        )

    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        """The runs of the W&B project the backend string names (``wandb:PROJECT``; none: every
        project in the directory) whose trackkit project (``RunInfo.project``) is ``project``
        (None: any). The two differ for a run a sink wrote into a project the string gave."""
        if self._online:
            infos = [decode_api_run(r, history=False).info for r in self._online_runs(self._project or project)]
            return [i for i in infos if project is None or not self._project or i.project == project]
        groups = self._groups()
        runs = []
        for (wproject, _), segs in groups.items():
            if not self._in_project(wproject):
                continue
            run = list_segments(segs, self._parent_of(segs, groups))
            if project is None or run.info.project == project:
                runs.append(run.info)
        return sorted(runs, key=lambda i: (i.start_time or 0.0, i.run_id))

    def why_empty(self) -> str:
        """One line on a directory that holds W&B runs, but none of the project the backend string names:
        the projects it does hold and the fix ("" otherwise; online: "")."""
        if self._online or not self._project:
            return ""
        held = sorted({wproject for wproject, _ in self._groups()})
        if not held or any(self._in_project(p) for p in held):
            return ""
        shown = ", ".join(held[:8]) + (f" and {len(held) - 8} more" if len(held) > 8 else "")
        return (f"{self.spec}: the W&B directory {self._root} holds no runs of W&B project "
                f"{project_name(self._project)}; it holds project(s) {shown}. Fix: name one of them, e.g. "
                f"wandb:{held[0]}?dir={self._root}, or leave the project out (wandb:?dir={self._root}) for all")

    def _in_project(self, wproject: str) -> bool:
        """The run file's W&B project is the one the backend string names (as the sink maps it)."""
        return not self._project or wproject == project_name(self._project)

    def read_run(self, run_id: str) -> RunRecord:
        if self._online:
            run = self._online_run(run_id)
            self._say_skipped(run)
            return RunRecord(info=run.info, events=run.events)
        segs, decoder = self._open(run_id)
        events: list[Event] = []
        for chunk, _, _ in self._stream(segs, decoder):
            events.extend(chunk)
        assert decoder.decoded is not None
        return RunRecord(info=decoder.decoded.info, events=events)

    def stream_run(self, run_id: str) -> Iterator[tuple[list[Event], float | None, list[str]]]:
        """The run in chunks of at most about 20,000 events (``segments.CHUNK``), each with the
        fraction of its run files' bytes read and the notes on damage found in that chunk. Metrics
        come in W&B's row order, which is step order within a run file. The points are not folded into
        the decoder's ``RunInfo`` (its metric figures): the stream's reader has them. ``KeyError``: no
        such run (raised by this call, before the first chunk)."""
        if self._online:
            rec = self.read_run(run_id)
            n = max(len(rec.events), 1)
            return iter([(rec.events[i:i + CHUNK], min(1.0, (i + CHUNK) / n), list(rec.info.notes) if i == 0 else [])
                         for i in range(0, n, CHUNK)])
        segs, decoder = self._open(run_id)
        decoder.fold_metrics = False  # the stream's reader folds the points it needs (migrate: digests)
        return self._stream(segs, decoder)

    def _open(self, run_id: str) -> tuple[list[Segment], Decoder]:
        groups = self._groups()
        segs = self._find(run_id, groups)
        return segs, decoder_for(segs, self._parent_of(segs, groups))

    def _stream(self, segs: list[Segment], decoder: Decoder) -> Iterator[tuple[list[Event], float | None, list[str]]]:
        for chunk in stream_segments(segs, decoder):
            if decoder.decoded is not None:
                self._say_skipped(decoder.decoded)
            yield chunk

    def _say_skipped(self, run: Decoded) -> None:
        """Say once per run and W&B type which values were left out (they are never metrics)."""
        first = run.run_id not in self.skipped
        self.skipped[run.run_id] = run.skipped
        if not first:
            return
        for line in run.info.notes:
            if "history value(s) of W&B type" in line:
                log.warning("wandb: run %s: %s. They are not metrics; RunInfo.notes lists them", run.run_id, line)

    # ------------------------------------------------------------------ offline

    def _segments(self) -> list[Segment]:
        out = []
        for path in find_files(self._root):
            try:
                st = os.stat(path)
            except OSError:
                continue
            hit = self._cache.get(path)
            if hit is not None and hit[0] == st.st_mtime and hit[1] == st.st_size:
                out.append(hit[2])
                continue
            seg = scan(path)
            if seg is not None:
                self._cache[path] = (st.st_mtime, st.st_size, seg)
                out.append(seg)
        return out

    def _groups(self) -> dict[tuple[str, str], list[Segment]]:
        groups: dict[tuple[str, str], list[Segment]] = {}
        for seg in self._segments():
            groups.setdefault((seg.project, seg.wid), []).append(seg)
        return groups

    @staticmethod
    def _parent_of(segs: list[Segment], groups: dict[tuple[str, str], list[Segment]]) -> str | None:
        """A run wandb wrote whose group is the W&B id of another run of its project is that run's
        child (the rule trackkit's sink writes: a child's group is its parent's id)."""
        group = next((str(rec.run.run_group) for s in segs for _, rec in s.head
                      if rec.WhichOneof("record_type") == "run" and rec.run.run_group), "")
        if not group or group == segs[0].wid:
            return None
        parent = groups.get((segs[0].project, group))
        if not parent:
            return None
        internal: dict[str, Any] = {}
        for s in parent:
            merge_internal(internal, s.internal)
        return str(internal.get("run_id") or group)

    def _find(self, run_id: str, groups: dict[tuple[str, str], list[Segment]]) -> list[Segment]:
        wid = wandb_run_id(run_id)
        hits = []
        for (project, gwid), segs in groups.items():
            internal: dict[str, Any] = {}
            for s in segs:
                merge_internal(internal, s.internal)
            own = internal.get("run_id")
            if self._in_project(project) and (own == run_id or (gwid in (run_id, wid) and not own)):
                hits.append(segs)
        if not hits:
            raise KeyError(run_id)
        return hits[0]

    # ------------------------------------------------------------------ online (needs an API key)

    def _api(self) -> Any:
        with sdk_errors(LABEL, "Api"):
            return self._wandb.Api()

    def _online_runs(self, project: str | None) -> list[Any]:
        api = self._api()
        if not project:
            raise ConfigError("wandb reader: online listing needs a project (wandb:PROJECT)")
        path = f"{self._entity}/{project}" if self._entity else project
        with sdk_errors(LABEL, "Api.runs"):
            return list(api.runs(path))

    def _online_run(self, run_id: str) -> Decoded:
        api = self._api()
        if not self._project:
            raise ConfigError("wandb reader: online reading needs a project (wandb:PROJECT)")
        base = f"{self._entity}/{self._project}" if self._entity else self._project
        try:
            run = api.run(f"{base}/{wandb_run_id(run_id)}")
        except Exception as exc:
            raise KeyError(run_id) from exc
        with sdk_errors(LABEL, "scan_history"):
            return decode_api_run(run, history=True)


def decode_api_run(run: Any, history: bool) -> Decoded:
    """A ``wandb.Api()`` run through the one ``Decoder``: its config and tags as the run record,
    its history rows and logged artifacts (``history``; downloaded into a temporary directory for a
    local path; else the summary's last values), its summary, and the server's run state in place
    of the exit record."""
    config = dict(run.config)
    tk = config.get(INTERNAL)
    decoder = Decoder(tk if isinstance(tk, dict) else {}, str(run.id), str(run.project))
    decoder.files = api_files(run)
    wandb = {"job_type": str(getattr(run, "job_type", "") or ""), "notes": str(getattr(run, "notes", "") or ""),
             "entity": str(getattr(run, "entity", "") or ""), "sweep_id": str(getattr(run, "sweep_name", "") or "")}
    decoder.run(project=str(run.project), name=str(run.name or run.id), group=str(run.group or ""),
                tags=[str(t) for t in run.tags], config=config, start=_created(run), wandb=wandb)
    summary = dict(run.summary)
    if history:
        for row in run.scan_history():
            decoder.history(row)
        for art in run.logged_artifacts():
            decoder.artifact(name=str(art.name).partition(":")[0], kind=str(art.type),
                             aliases=[str(a) for a in art.aliases], metadata=dict(art.metadata or {}),
                             size=int(art.size or 0), entries=_downloaded(art), ref=str(art.name))
        names = _run_files(run, decoder)
        if "output.log" in names:
            decoder.console("output.log")
        decoder.saved(n for n in names if not own_run_file(n))
    decoder.summary(summary)
    decoder.state(str(getattr(run, "state", "")))
    decoder.end_segment(decides=True)
    decoder.final_summary(summary, listing=not history)
    return decoder.result(location=str(getattr(run, "url", "")), backend=f"wandb:{run.project}")


def _run_files(run: Any, decoder: Decoder) -> list[str]:
    """The names of a server run's files (``run.files()``); none, with a note, when it cannot list them."""
    try:
        return sorted(str(f.name) for f in run.files())
    except Exception as exc:  # no network, no access: the run's files are listed as not read
        decoder.info.notes.append(f"the run's files could not be listed ({type(exc).__name__}: {exc}); "
                                  "files saved with wandb.save and output.log are not read")
        return []


def _created(run: Any) -> float:
    from datetime import datetime, timezone

    text = str(getattr(run, "created_at", "") or "")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _downloaded(art: Any) -> list[tuple[str, str, str, int]]:
    """The files of a server's artifact, downloaded into a temporary directory (removed at exit):
    ``(path, local path, "", size)``; none when it cannot be downloaded (then it is listed)."""
    root = tempfile.mkdtemp(prefix="trackkit-wandb-art-")
    atexit.register(shutil.rmtree, root, True)
    try:
        got = str(art.download(root=root))
    except Exception as exc:  # no network, no access: the artifact is listed as not copied
        log.debug("wandb: cannot download artifact %s: %s", getattr(art, "name", "?"), exc)
        return []
    out = []
    for base, _dirs, files in os.walk(got):
        for f in files:
            p = os.path.join(base, f)
            out.append((os.path.relpath(p, got).replace(os.sep, "/"), p, "", os.path.getsize(p)))
    return sorted(out)


def api_files(run: Any) -> Fetch:
    """Run files of a ``wandb.Api()`` run, downloaded on first use into a temporary directory
    (removed at exit): what media values point at (``media/images/...``, ``trackkit-media/...``)."""
    cache: list[str] = []

    def fetch(rel: str) -> str | None:
        if not rel or rel.startswith("/") or ".." in rel.split("/"):
            return None
        if not cache:
            cache.append(tempfile.mkdtemp(prefix="trackkit-wandb-files-"))
            atexit.register(shutil.rmtree, cache[0], True)
        local = os.path.join(cache[0], *rel.split("/"))
        if not os.path.isfile(local):
            try:
                run.file(rel).download(root=cache[0], replace=True)
            except Exception as exc:  # not there, no network: the value is listed as skipped
                log.debug("wandb: cannot download %s of run %s: %s", rel, getattr(run, "id", "?"), exc)
                return None
        return local if os.path.isfile(local) else None

    return fetch
