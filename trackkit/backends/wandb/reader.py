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
from typing import Any

from ...backend import BackendSpec, sdk_errors
from ...errors import ConfigError
from ...events import RunInfo, RunRecord
from .decode import Decoded, Decoder, Skipped
from .media_read import Fetch
from .names import INTERNAL, wandb_run_id
from .sdk import LABEL, default_root, import_wandb
from .segments import Segment, decode_segments, find_files, read_segment

__all__ = ["WandbReader", "api_files", "decode_api_run"]

log = logging.getLogger("trackkit.wandb")


class WandbReader:
    """Reads W&B runs back as trackkit events.

    Offline (and local copies of online runs): scans ``dir`` (option), else ``WANDB_DIR``,
    else the cwd for ``wandb/*run-*/run-*.wandb``; a directory that does not exist or holds no
    W&B runs is a ``ConfigError`` naming it (``must_exist=False``, a migration target: empty).
    Online, with ``mode=online`` or an API key in the environment and W&B not in offline mode:
    ``wandb.Api()`` (untested here).
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
        self.skipped: dict[str, list[Skipped]] = {}

    def _check_root(self, opts: dict[str, str]) -> None:
        """A W&B directory that does not exist, or holds no W&B runs at all, is a missing source."""
        given = "option dir" if opts.get("dir") else ("WANDB_DIR" if os.environ.get("WANDB_DIR") else "the cwd")
        if not os.path.isdir(self._root):
            cause = "does not exist"
        elif not os.path.isdir(os.path.join(self._root, "wandb")) and not find_files(self._root):
            cause = "holds no W&B runs (no wandb/ directory, no run-*.wandb file)"
        else:
            return
        raise ConfigError(
            f"backend {str(self.spec)!r}: the W&B directory {self._root} ({given}) {cause}. "
            "Fix: name the directory that holds wandb/, e.g. wandb:PROJECT?dir=DIR (or run from it)"
        )

    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        project = project or self._project
        if self._online:
            return [decode_api_run(r, history=False).info for r in self._online_runs(project)]
        runs = [r.info for r in self._local_runs() if self._matches(r, project)]
        return sorted(runs, key=lambda i: (i.start_time or 0.0, i.run_id))

    def read_run(self, run_id: str) -> RunRecord:
        run = self._online_run(run_id) if self._online else self._local_run(run_id)
        self._say_skipped(run)
        return RunRecord(info=run.info, events=run.events)

    def _say_skipped(self, run: Decoded) -> None:
        """Say once per run and W&B type which values were left out (they are never metrics)."""
        if run.run_id in self.skipped or not run.skipped:
            self.skipped[run.run_id] = run.skipped
            return
        self.skipped[run.run_id] = run.skipped
        by_type: dict[str, list[Skipped]] = {}
        for item in run.skipped:
            by_type.setdefault(item.wandb_type, []).append(item)
        for wtype, items in by_type.items():
            keys = sorted({i.key for i in items})
            log.warning("wandb: run %s: %d value(s) of W&B type %r (keys %s) not read: %s. They are not metrics; "
                        "WandbReader.skipped[%r] lists them", run.run_id, len(items), wtype,
                        ", ".join(repr(k) for k in keys[:5]) + (" ..." if len(keys) > 5 else ""), items[0].note,
                        run.run_id)

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
            seg = read_segment(path)
            if seg is not None:
                self._cache[path] = (st.st_mtime, st.st_size, seg)
                out.append(seg)
        return out

    def _local_runs(self) -> list[Decoded]:
        groups: dict[tuple[str, str], list[Segment]] = {}
        for seg in self._segments():
            groups.setdefault((seg.project, seg.wid), []).append(seg)
        return [decode_segments(segs) for segs in groups.values()]

    @staticmethod
    def _matches(run: Decoded, project: str | None) -> bool:
        if project is None:
            return True
        return project in (run.project, run.info.backend.partition(":")[2])

    def _local_run(self, run_id: str) -> Decoded:
        wid = wandb_run_id(run_id)
        hits = [
            r
            for r in self._local_runs()
            if r.run_id == run_id or (r.wid in (run_id, wid) and not r.internal.get("run_id"))
        ]
        if self._project:
            hits = [r for r in hits if self._matches(r, self._project)] or hits
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
    its history rows and logged artifacts (``history``; else the summary's last values), its
    summary, and the server's run state in place of the exit record."""
    config = dict(run.config)
    tk = config.get(INTERNAL)
    decoder = Decoder(tk if isinstance(tk, dict) else {}, str(run.id), str(run.project))
    decoder.files = api_files(run)
    decoder.run(project=str(run.project), name=str(run.name or run.id), group=str(run.group or ""),
                tags=[str(t) for t in run.tags], config=config, start=0.0)
    summary = dict(run.summary)
    if history:
        for row in run.scan_history():
            decoder.history(row)
        for art in run.logged_artifacts():
            decoder.artifact(name=str(art.name), kind=str(art.type), aliases=[str(a) for a in art.aliases],
                             metadata=dict(art.metadata or {}), size=int(art.size or 0))
    else:
        decoder.last_values(summary)
    decoder.summary(summary)
    decoder.state(str(getattr(run, "state", "")))
    decoder.end_segment(decides=True)
    return decoder.result(location=str(getattr(run, "url", "")), backend=f"wandb:{run.project}")


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
