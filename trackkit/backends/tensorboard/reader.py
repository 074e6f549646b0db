"""``TensorBoardReader``: runs read back through tensorboard's own ``EventAccumulator``.

Every point (``size_guidance`` 0, no reservoir sampling), out-of-order steps kept
(``purge_orphaned_data=False``); trackkit's JSON text summaries restore the run, its config,
tags, status and artifacts; image/histogram/text/audio summaries become ``Media`` events
(``media_in``), for runs trackkit wrote and for logdirs other tools wrote.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ...backend import BackendSpec
from ...errors import ConfigError
from ...events import (
    Artifact,
    Event,
    Media,
    Metrics,
    RunFinished,
    RunInfo,
    RunRecord,
    RunResumed,
    RunStarted,
    Status,
    StatusChange,
)
from .layout import (
    MARKER,
    TEXT_ARTIFACT,
    TEXT_CONFIG,
    TEXT_MEDIA,
    TEXT_RUN,
    TEXT_STATUS,
    TEXT_TAGS,
    TRACKKIT_TEXTS,
    root_of,
)
from .media_in import MEDIA_PLUGINS, MediaRecords, hash_only, read_media

__all__ = ["TensorBoardReader"]


class TensorBoardReader:
    """Reads runs back through tensorboard's own EventAccumulator (every point, no reservoir sampling).
    Reading creates nothing: a logdir that does not exist is a ``ConfigError`` (``must_exist=False``,
    a migration target: it reads as empty until the sink creates it)."""

    def __init__(self, spec: BackendSpec, *, must_exist: bool = True) -> None:
        self.root = root_of(spec)
        self.spec = spec
        if must_exist and not os.path.isdir(self.root):
            what = "is a file, not a directory" if os.path.exists(self.root) else "does not exist"
            raise ConfigError(
                f"backend {str(spec)!r}: no TensorBoard logdir at {self.root} (it {what}). "
                "Fix: give the directory the runs were logged to, e.g. tensorboard:./runs"
            )

    def _run_dirs(self) -> list[str]:
        out = []
        for d, _dirs, files in os.walk(self.root):
            if MARKER in files or any(f.startswith("events.out.tfevents") for f in files):
                if os.path.basename(d) != "native":
                    out.append(d)
        return sorted(out)

    def list_runs(self, project: str | None = None) -> list[RunInfo]:
        runs = [self._load(d, payloads=False).info for d in self._run_dirs()]
        return [r for r in runs if project is None or r.project == project]

    def read_run(self, run_id: str) -> RunRecord:
        for d in self._run_dirs():
            try:
                with open(os.path.join(d, MARKER)) as fh:
                    rid = fh.read().strip()
            except OSError:
                rid = os.path.relpath(d, self.root)
            if rid == run_id or os.path.relpath(d, self.root) == run_id:
                return self._load(d)
        raise KeyError(f"no tensorboard run {run_id!r} under {self.root}")

    def _load(self, d: str, *, payloads: bool = True) -> RunRecord:
        """One run; ``payloads=False`` (listing runs) counts media without writing their files."""
        from tensorboard.backend.event_processing import plugin_event_accumulator as pea
        from tensorboard.plugins.hparams import metadata as hp_meta
        from tensorboard.plugins.hparams import plugin_data_pb2
        from tensorboard.util import tensor_util

        # purge_orphaned_data=False: keep out-of-order steps and every status text (the default purges them)
        acc = pea.EventAccumulator(
            d, size_guidance={pea.TENSORS: 0}, purge_orphaned_data=False
        )
        acc.Reload()
        rel = os.path.relpath(d, self.root)
        parts = rel.split(os.sep)
        info = RunInfo(run_id=rel, project=parts[0], name=parts[-1], backend=f"tensorboard:{self.root}", location=d)
        events: list[Event] = []
        texts: dict[str, list[tuple[float, int, str]]] = {}
        points: dict[tuple[int, float], dict[str, float]] = {}
        media_tags: list[tuple[str, str]] = []
        for tag in acc.Tags().get("tensors", []):
            plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
            if plugin in MEDIA_PLUGINS and tag not in TRACKKIT_TEXTS:
                media_tags.append((tag, plugin))  # read once the trackkit/media records are in
                continue
            for te in acc.Tensors(tag):
                arr = tensor_util.make_ndarray(te.tensor_proto)
                if tag in TRACKKIT_TEXTS:
                    raw = arr.item() if arr.shape == () else arr.reshape(-1)[0]
                    texts.setdefault(tag, []).append(
                        (te.wall_time, te.step, raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
                    )
                elif plugin in ("scalars", "") and arr.size == 1 and arr.dtype.kind == "f":
                    points.setdefault((te.step, te.wall_time), {})[tag] = float(arr.item())
        records = MediaRecords() if payloads else MediaRecords(hash_only)
        for wall, step, text in texts.get(TEXT_MEDIA, []):
            records.add(step, wall, text)
        media: list[Media] = []
        for tag, plugin in media_tags:
            media.extend(read_media(tag, plugin, acc.Tensors(tag), records, tensor_util.make_ndarray))
        start: dict[str, Any] = {}
        if TEXT_RUN in texts:
            start = json.loads(texts[TEXT_RUN][-1][2])
            info.run_id = start.get("run_id", info.run_id)
            info.project = start.get("project", info.project)
            info.name = start.get("name", info.name)
            info.group = start.get("group")
            info.start_time = start.get("start_time")
        if TEXT_CONFIG in texts:
            info.config = json.loads(texts[TEXT_CONFIG][-1][2])
        else:
            info.config = self._hparams(acc, hp_meta, plugin_data_pb2)
        if TEXT_TAGS in texts:
            info.tags = json.loads(texts[TEXT_TAGS][-1][2])
        events.append(
            RunStarted(
                run_id=info.run_id, project=info.project, name=info.name, start_time=info.start_time or 0.0,
                group=info.group, tags=dict(info.tags), config=dict(info.config), meta=start.get("meta", {}),
            )
        )
        for (step, wall), vals in sorted(points.items()):
            events.append(Metrics(step=step, time=wall, values=vals))
            info.last_metrics.update(vals)
            info.last_step = step if info.last_step is None else max(step, info.last_step)
        for m in sorted(media, key=lambda m: (m.step, m.time, m.key)):
            events.append(m)
            info.apply(m)
        for wall, _step, text in sorted(texts.get(TEXT_ARTIFACT, [])):
            a = json.loads(text)
            events.append(
                Artifact(path=a["path"], name=a["name"], kind=a["kind"], sha256=a["sha256"], size=a["size"],
                         version=a.get("version", 0), aliases=tuple(a.get("aliases", ())),
                         metadata=a.get("metadata", {}), source=a.get("source", ""), time=wall)
            )
        statuses = [(wall, step, json.loads(text)) for wall, step, text in texts.get(TEXT_STATUS, [])]
        statuses.sort(key=lambda x: (x[0], bool((x[2].get("details") or {}).get("final"))))
        for wall, _step, s in statuses:
            st = Status(s["status"])
            details = s.get("details") or {}
            if details.get("final"):
                events.append(RunFinished(status=st, time=wall, reason=s.get("reason", ""),
                                          exit_code=details.get("exit_code")))
                info.end_time = wall
            elif details.get("resumed"):
                prev = details.get("previous_status")
                events.append(RunResumed(time=wall, segment=int(details["resumed"]), step=s.get("step"),
                                         previous_status=Status(prev) if prev in Status._value2member_map_ else None))
                info.resumed += 1
                info.end_time = None
            else:
                events.append(StatusChange(status=st, reason=s.get("reason", ""), step=s.get("step"), time=wall,
                                           details=details))
            info.status, info.reason = st, s.get("reason", "")
        if TEXT_STATUS not in texts:
            end = self._session_end(acc, hp_meta, plugin_data_pb2)
            if end is not None:
                info.status, info.end_time = end
        return RunRecord(info, events)

    @staticmethod
    def _hparams(acc: Any, hp_meta: Any, pd: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _tag, content in _plugin_content(acc, hp_meta.PLUGIN_NAME).items():
            data = pd.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                for k, v in data.session_start_info.hparams.items():
                    kind = v.WhichOneof("kind")
                    out[k] = getattr(v, kind) if kind else None
        return out

    @staticmethod
    def _session_end(acc: Any, hp_meta: Any, pd: Any) -> tuple[Status, float] | None:
        content = _plugin_content(acc, hp_meta.PLUGIN_NAME).get(hp_meta.SESSION_END_INFO_TAG)
        if content is None:
            return None
        end = pd.HParamsPluginData.FromString(content).session_end_info
        from tensorboard.plugins.hparams import api_pb2

        st = Status.COMPLETED if end.status == api_pb2.STATUS_SUCCESS else Status.CRASHED
        return st, end.end_time_secs


def _plugin_content(acc: Any, plugin: str) -> dict[str, bytes]:
    """``PluginTagToContent``, empty for a plugin the run has no data of (it raises ``KeyError`` then)."""
    try:
        return dict(acc.PluginTagToContent(plugin))
    except KeyError:
        return {}
