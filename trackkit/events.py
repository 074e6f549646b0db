"""The neutral run model: what a run *is*, independent of any backend.

Standard library only. Every backend adapter turns these events into its own
calls (Sink) and every Reader turns a stored run back into them, so ``migrate``,
``sync`` and ``compare`` all speak this one vocabulary.

The events are frozen dataclasses. ``to_record``/``from_record`` convert them
to and from the plain-JSON records of the journal (see ``journal.py`` for the
framing and ``docs/journal.md`` for the format).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "CANONICAL_FORMATS",
    "MEDIA_KINDS",
    "Artifact",
    "Checkpoint",
    "CheckpointPruned",
    "ConfigUpdate",
    "Console",
    "Event",
    "Media",
    "MetricGoal",
    "MetricStats",
    "Metrics",
    "RunFinished",
    "RunInfo",
    "RunRecord",
    "RunResumed",
    "RunStarted",
    "Status",
    "StatusChange",
    "Summary",
    "SystemMetrics",
    "Tags",
    "checkpoint_of",
    "event_from_record",
    "event_to_record",
    "flatten_config",
]


class Status(str, enum.Enum):
    """One status vocabulary for every backend."""

    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"
    CRASHED = "crashed"
    KILLED = "killed"

    @property
    def terminal(self) -> bool:
        return self is not Status.RUNNING

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    project: str
    name: str
    start_time: float
    group: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    #: free-form run metadata (provenance, trackkit version, backends ...)
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: the run this one is a child of (a sweep's trial, an MLflow nested run), by trackkit run id
    parent: str | None = None


@dataclass(slots=True)
class Metrics:
    """One ``log()`` call's values at a step. Not frozen, unlike the other events: the delivery agent
    makes one per metric record it reads, and a frozen dataclass's ``__init__`` costs twice as much
    (``object.__setattr__`` per field). Treat it as immutable all the same."""

    step: int
    time: float
    values: Mapping[str, float]


@dataclass(frozen=True)
class Summary:
    """Summary values of a run (W&B's ``run.summary``, a final test score): not a series, the last
    word per key. Merged into ``RunInfo.summary``."""

    values: Mapping[str, Any]
    time: float = 0.0


@dataclass(frozen=True)
class MetricGoal:
    """A metric's declared goal (``run.define_metric(key, goal="max")``): which way is better, so its
    best value and step are known. Folded into ``RunInfo.goals``."""

    key: str
    goal: str  # "max" or "min"
    time: float = 0.0


@dataclass(frozen=True)
class ConfigUpdate:
    config: Mapping[str, Any]
    time: float = 0.0


@dataclass(frozen=True)
class Tags:
    """Key/value tags. A plain label is a key with the value ``""``."""

    tags: Mapping[str, str]
    time: float = 0.0


@dataclass(frozen=True)
class Artifact:
    #: absolute path of the snapshot trackkit took (inside the run's journal dir)
    path: str
    name: str
    kind: str
    sha256: str
    size: int
    version: int = 0
    aliases: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: the path the user gave, for the record
    source: str = ""
    time: float = 0.0
    #: where the backend that was read keeps it, for people: a path that outlives the reading process
    #: or the backend's own address (``mlflow-artifacts:/...``, ``artifact NAME:ALIAS/file`` of W&B);
    #: ``""``: ``path`` is that place. A Reader's view: never written to a record (``trackkit show``)
    location: str = ""


#: the media kinds; a matplotlib figure is an ``image`` (``meta["figure"]``)
MEDIA_KINDS = ("image", "histogram", "text", "table", "audio")

#: the formats a media payload is delivered in (to sinks) and read back in (from readers);
#: docs/media.md gives each one's shape. The trainer may journal a ``raw`` payload (array
#: bytes, ``meta`` has ``dtype`` and ``shape``) that the agent turns into one of these.
CANONICAL_FORMATS = {
    "image": ("png", "jpeg", "gif"),
    "histogram": ("json",),  # {"counts": [n], "edges": [n+1], "min", "max", "num", "sum", "sum_squares"}
    "text": ("txt",),        # UTF-8
    "table": ("json",),      # {"columns": [...], "rows": [[...], ...]}
    "audio": ("wav",),       # meta["sample_rate"]
}


@dataclass(frozen=True)
class Media:
    """A media value logged at a step: an image, a histogram, a text, a table or an audio clip.

    The payload is a file, never the journal line: bytes ``[offset, offset + size)`` of ``path``
    (``offset == -1``: the whole file). ``sha256`` is the payload's hash. See docs/media.md."""

    key: str
    step: int
    kind: str
    path: str
    sha256: str
    size: int
    #: ``png``/``jpeg``/``gif``, ``json``, ``txt``, ``wav`` (canonical) or ``raw``/``pickle`` (journal only)
    format: str
    time: float = 0.0
    caption: str = ""
    offset: int = -1
    #: width/height/channels (image), sample_rate (audio), bins (histogram), figure (image), dtype/shape (raw)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def canonical(self) -> bool:
        """The payload is in a delivered format (a whole file a sink can hand its SDK)."""
        return self.offset < 0 and self.format in CANONICAL_FORMATS.get(self.kind, ())

    def read_bytes(self) -> bytes:
        with open(self.path, "rb") as fh:
            if self.offset < 0:
                return fh.read()
            fh.seek(self.offset)
            return fh.read(self.size)


@dataclass(frozen=True)
class StatusChange:
    status: Status
    reason: str = ""
    step: int | None = None
    time: float = 0.0
    #: traceback text for ``crashed``; exit code / signal where known
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFinished:
    status: Status
    time: float
    reason: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class RunResumed:
    """A later segment of the same run begins: ``trackkit.init(id=..., resume="allow"|"must")``
    continued a run that had ended (or whose trainer died). The run is ``running`` again; the
    next ``RunFinished`` is its final status. Sinks re-open the backend's run they closed."""

    time: float
    #: 1 for the first resume, 2 for the second ...
    segment: int = 1
    #: the status the run had before this resume (``None``: the journal did not say)
    previous_status: Status | None = None
    #: the highest step logged by the earlier segments (``None``: nothing logged)
    step: int | None = None
    #: provenance of the new invocation (command line, host, git ...) where captured
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint written by ``run.checkpoints(...).save`` (docs/checkpoints.md). The file is
    immutable: the journal directory keeps it by a hard link, local backends link to it.

    ``sha256`` is ``""`` in the trainer's record (the training thread never reads the file back);
    the agent hashes it before any sink sees it."""

    #: absolute path of the file (delivered: the journal directory's link to it)
    path: str
    #: the manager's name (one W&B artifact / MLflow folder per name), e.g. ``checkpoint``
    name: str
    #: 0, 1, 2 ... per name, over every segment of the run
    version: int
    step: int
    epoch: int | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    sha256: str = ""
    size: int = 0
    #: ``latest`` and, when it is the best by the monitored metric, ``best``
    aliases: tuple[str, ...] = ()
    #: monitor, mode, config, git commit + dirty, run id, trackkit version, file name
    metadata: Mapping[str, Any] = field(default_factory=dict)
    time: float = 0.0

    def as_artifact(self) -> Artifact:
        """This checkpoint in the form a backend stores artifacts in (kind ``checkpoint``; the
        checkpoint's own fields under ``metadata["checkpoint"]``); :func:`checkpoint_of` inverts it."""
        own = {"epoch": self.epoch, "step": self.step, "metrics": dict(self.metrics)}
        return Artifact(path=self.path, name=self.name, kind="checkpoint", sha256=self.sha256, size=self.size,
                        version=self.version, aliases=self.aliases,
                        metadata={**dict(self.metadata), "checkpoint": own}, source=self.path, time=self.time)


@dataclass(frozen=True)
class CheckpointPruned:
    """Retention removed a checkpoint (after the newer one was safely in place). Backends that hold
    a copy or a link remove it; ``aliases`` says which version each alias names now."""

    name: str
    version: int
    path: str
    reason: str = ""
    aliases: Mapping[str, int] = field(default_factory=dict)
    time: float = 0.0


def checkpoint_of(ev: Artifact) -> Artifact | Checkpoint:
    """A backend's artifact record back as the ``Checkpoint`` it was delivered from (readers call
    it on every artifact they read); any other artifact is returned as it is."""
    own = ev.metadata.get("checkpoint") if ev.kind == "checkpoint" else None
    if not isinstance(own, Mapping):
        return ev
    meta = {k: v for k, v in ev.metadata.items() if k != "checkpoint"}
    epoch = own.get("epoch")
    got = own.get("metrics")
    metrics: Mapping[str, Any] = got if isinstance(got, Mapping) else {}
    return Checkpoint(path=ev.path, name=ev.name, version=ev.version, step=int(own.get("step") or 0),
                      epoch=int(epoch) if isinstance(epoch, (int, float)) else None,
                      metrics={str(k): _num(v) for k, v in metrics.items()}, sha256=ev.sha256, size=ev.size,
                      aliases=ev.aliases, metadata=meta, time=ev.time)


@dataclass(frozen=True)
class Console:
    """A chunk of the trainer's console output (stdout and stderr, whole lines, secrets redacted,
    progress-bar rewrites collapsed to their final line), recorded by the agent (docs/console-and-system.md).
    ``line`` is the number of console lines before this chunk; ``lost`` counts bytes shown on the
    terminal but not kept (the agent was not reading)."""

    text: str
    time: float
    line: int = 0
    lost: int = 0


@dataclass(frozen=True)
class SystemMetrics:
    """One sample of the machine and the trainer's process tree, taken by the agent: ``system/...``
    values on a time axis (``seq`` counts the samples of the run)."""

    time: float
    values: Mapping[str, float]
    seq: int = 0


Event = Union[  # noqa: UP007
    RunStarted, Metrics, ConfigUpdate, Tags, Artifact, Media, Summary, StatusChange, RunFinished, RunResumed,
    MetricGoal,
    Checkpoint, CheckpointPruned,
    Console, SystemMetrics,
]


#: the goal of a metric whose name says it (``define_metric`` overrides): a loss or an error
#: falls, anything else (accuracy, F1, reward) rises
_MIN_WORDS = ("loss", "error", "err", "perplexity", "ppl", "mse", "mae", "rmse", "wer", "cer", "nll", "distance")


def guess_goal(key: str) -> str:
    """``"min"`` for a key that names a loss/error (``val/loss``, ``train_mse``), else ``"max"``."""
    words = re.split(r"[^a-z0-9]+", key.lower())
    return "min" if any(w in _MIN_WORDS for w in words) else "max"


@dataclass
class MetricStats:
    """One metric's figures over a whole run: last, min, max (NaN is skipped by min/max), count."""

    last: float
    last_step: int
    min: float = math.nan
    min_step: int | None = None
    max: float = math.nan
    max_step: int | None = None
    count: int = 0

    @classmethod
    def first(cls, step: int, value: float) -> MetricStats:
        st = cls(last=value, last_step=step)
        st.add(step, value)
        return st

    def add(self, step: int, value: float) -> None:
        self.count += 1
        if step >= self.last_step:
            self.last, self.last_step = value, step
        if value != value:  # NaN
            return
        if self.min_step is None or value < self.min:
            self.min, self.min_step = value, step
        if self.max_step is None or value > self.max:
            self.max, self.max_step = value, step

    def best(self, goal: str) -> tuple[float, int | None]:
        """``(value, step)`` of the best point for ``goal`` (``"min"``/``"max"``)."""
        return (self.min, self.min_step) if goal == "min" else (self.max, self.max_step)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricStats:
        return cls(**{k: d[k] for k in ("last", "last_step", "min", "min_step", "max", "max_step", "count")
                      if k in d})


@dataclass
class RunInfo:
    """A summary row of one stored run, as any Reader returns it."""

    run_id: str
    project: str
    name: str
    backend: str
    status: Status = Status.RUNNING
    reason: str = ""
    group: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    last_metrics: dict[str, float] = field(default_factory=dict)
    last_step: int | None = None
    #: where the backend keeps it (directory, run id, URL)
    location: str = ""
    #: how many times the run was resumed (``trackkit.init(id=..., resume=...)``); 0: one segment
    resumed: int = 0
    #: how many media values of each kind the run holds (``{"image": 5}``)
    media: dict[str, int] = field(default_factory=dict)
    #: summary values (``Summary`` events, a backend's own summary)
    summary: dict[str, Any] = field(default_factory=dict)
    #: the parent run's id (a child run of a sweep, an MLflow nested run)
    parent: str | None = None
    #: what the reader could not read of this run, one line each ("event file X is cut at byte N;
    #: the 1,204 events before it were read"); migrate lists them in its report
    notes: list[str] = field(default_factory=list)
    #: the run's stored files that are damaged (cut mid-record, failing their checksum), one short line
    #: each ("FILE cut at byte N of M"); the readable part was read, ``notes`` says more. Empty: whole
    damage: list[str] = field(default_factory=list)
    #: the project the backend files the run under where that is not ``project`` (a W&B sink given
    #: ``wandb:q`` stores a run of project ``e`` in W&B project ``q``); "" when they are the same
    backend_project: str = ""
    #: per metric key: last/min/max with their steps (``best(key)`` applies the goal)
    metrics: dict[str, MetricStats] = field(default_factory=dict)
    #: declared goals (``run.define_metric(key, goal="max")``); undeclared keys: ``guess_goal``
    goals: dict[str, str] = field(default_factory=dict)

    def goal(self, key: str) -> str:
        return self.goals.get(key) or guess_goal(key)

    def best(self, key: str) -> tuple[float, int | None] | None:
        """``(value, step)`` of ``key``'s best point by its goal, ``None`` if never logged."""
        st = self.metrics.get(key)
        return None if st is None else st.best(self.goal(key))

    def add_point(self, key: str, step: int, value: float) -> None:
        """Fold one point into ``metrics`` and ``last_metrics`` (readers that list without events)."""
        st = self.metrics.get(key)
        if st is None:
            self.metrics[key] = MetricStats.first(step, value)
        else:
            st.add(step, value)
        self.last_metrics[key] = self.metrics[key].last

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (the run index, ``runs --json``); :meth:`from_dict` is its inverse."""
        d: dict[str, Any] = {}
        for name, value in vars(self).items():
            if name == "metrics":
                value = {k: st.to_dict() for k, st in value.items()}
            elif isinstance(value, Status):
                value = value.value
            elif isinstance(value, (dict, list)):
                value = type(value)(value)
            d[name] = value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunInfo:
        known = {f for f in cls.__dataclass_fields__}
        body = {k: v for k, v in d.items() if k in known}
        body["status"] = Status(body.get("status", "running"))
        body["metrics"] = {k: MetricStats.from_dict(v) for k, v in (body.get("metrics") or {}).items()}
        return cls(**body)

    def apply(self, ev: Event) -> None:
        """Fold one event into this summary (readers build ``RunInfo`` this way)."""
        if isinstance(ev, RunStarted):
            self.run_id, self.project, self.name, self.group = ev.run_id, ev.project, ev.name, ev.group
            self.start_time = ev.start_time
            self.parent = ev.parent or self.parent
            self.tags.update(ev.tags)
            self.config.update(ev.config)
        elif isinstance(ev, Metrics):
            self.apply_metrics((ev,))
        elif isinstance(ev, Media):
            self.media[ev.kind] = self.media.get(ev.kind, 0) + 1
            self.last_step = ev.step if self.last_step is None else max(self.last_step, ev.step)
        elif isinstance(ev, Summary):
            self.summary.update(ev.values)
        elif isinstance(ev, MetricGoal):
            self.goals[ev.key] = ev.goal
        elif isinstance(ev, ConfigUpdate):
            self.config.update(ev.config)
        elif isinstance(ev, Tags):
            self.tags.update(ev.tags)
        elif isinstance(ev, StatusChange):
            self.status, self.reason = ev.status, ev.reason
        elif isinstance(ev, RunFinished):
            self.status, self.end_time = ev.status, ev.time
            self.reason = ev.reason or self.reason
        elif isinstance(ev, RunResumed):
            # running again; the last segment's finish decides the final status
            self.status, self.reason, self.end_time = Status.RUNNING, "", None
            self.resumed = max(self.resumed + 1, ev.segment)

    def apply_metrics(self, events: Iterable[Metrics]) -> None:
        """Fold metric events (what :meth:`apply` does with each; the delivery agent's index folds a
        whole batch of them with one call)."""
        stats, last, top, first = self.metrics, self.last_metrics, self.last_step, MetricStats.first
        for ev in events:
            step = ev.step
            for k, v in ev.values.items():
                st = stats.get(k)
                if st is None:
                    st = stats[k] = first(step, v)
                else:
                    st.add(step, v)
                last[k] = st.last
            if top is None or step > top:
                top = step
        self.last_step = top

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


@dataclass
class RunRecord:
    """A whole stored run: summary plus every event, in order."""

    info: RunInfo
    events: list[Event]

    def media(self, kind: str | None = None) -> dict[str, list[Media]]:
        """Every media value, ``{key: [Media, ...]}`` sorted by step (of one ``kind`` if given)."""
        out: dict[str, list[Media]] = {}
        for ev in self.events:
            if isinstance(ev, Media) and (kind is None or ev.kind == kind):
                out.setdefault(ev.key, []).append(ev)
        for items in out.values():
            items.sort(key=lambda m: m.step)
        return out

    def metrics(self) -> dict[str, list[tuple[int, float]]]:
        """Every metric point, ``{key: [(step, value), ...]}`` sorted by step."""
        out: dict[str, list[tuple[int, float]]] = {}
        for ev in self.events:
            if isinstance(ev, Metrics):
                for k, v in ev.values.items():
                    out.setdefault(k, []).append((ev.step, v))
        for pts in out.values():
            pts.sort(key=lambda p: p[0])
        return out


# ---------------------------------------------------------------- config rule

#: separator of the one flattening rule shared by every backend
SEP = "."


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings with ``.``: ``{"optimizer": {"lr": 0.1}}`` ->
    ``{"optimizer.lr": 0.1}``. Lists and tuples stay values (backends receive
    them JSON-encoded when they cannot hold them). Keys are turned into ``str``.
    """
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{SEP}{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten_config(v, key))
        else:
            out[key] = v
    return out


# ---------------------------------------------------------------- records

_KIND = {
    RunStarted: "start",
    Metrics: "m",
    ConfigUpdate: "config",
    Tags: "tags",
    Artifact: "artifact",
    Media: "media",
    Summary: "summary",
    StatusChange: "status",
    RunFinished: "finish",
    RunResumed: "resume",
    MetricGoal: "goal",
    Checkpoint: "ckpt",
    CheckpointPruned: "ckpt_prune",
    Console: "console",
    SystemMetrics: "sys",
}


def event_to_record(ev: Event) -> dict[str, Any]:
    """The JSON-able journal record of an event."""
    if isinstance(ev, Metrics):
        return {"k": "m", "s": ev.step, "t": ev.time, "v": dict(ev.values)}
    rec: dict[str, Any] = {"k": _KIND[type(ev)]}
    for name, value in vars(ev).items():
        t = type(value)
        if t is str or t is int or t is float or value is None:  # the common case first (a media record: 6 us less)
            pass
        elif isinstance(value, Status):
            value = value.value
        elif t is tuple:
            value = list(value)
        elif t is dict or isinstance(value, Mapping):
            value = dict(value)
        rec[name] = value
    if rec.get("k") == "start" and rec.get("parent") is None:
        rec.pop("parent", None)  # written only when set: a journal an older trackkit reads stays its own
    elif rec.get("k") == "artifact":
        rec.pop("location", None)  # a Reader's view of where it lies, never stored (the copy has its own)
    return rec


def _num(v: Any) -> float:
    # the journal encodes non-finite floats as NaN/Infinity (Python's json does)
    return float(v) if not isinstance(v, float) else v


def event_from_record(rec: Mapping[str, Any]) -> Event:
    """Inverse of :func:`event_to_record`. Raises ``ValueError`` on an unknown kind."""
    kind = rec.get("k")
    if kind == "m":
        vals = rec["v"]
        return Metrics(step=int(rec["s"]), time=float(rec["t"]), values={k: _num(v) for k, v in vals.items()})
    body = {k: v for k, v in rec.items() if k != "k"}
    if kind == "start":
        return RunStarted(**body)
    if kind == "config":
        return ConfigUpdate(**body)
    if kind == "tags":
        return Tags(**body)
    if kind == "artifact":
        body["aliases"] = tuple(body.get("aliases", ()))
        return Artifact(**body)
    if kind == "media":
        return Media(**body)
    if kind == "summary":
        return Summary(**body)
    if kind == "goal":
        return MetricGoal(**body)
    if kind == "status":
        body["status"] = Status(body["status"])
        return StatusChange(**body)
    if kind == "finish":
        body["status"] = Status(body["status"])
        return RunFinished(**body)
    if kind == "resume":
        prev = body.get("previous_status")
        body["previous_status"] = Status(prev) if prev is not None else None
        return RunResumed(**body)
    if kind == "ckpt":
        body["aliases"] = tuple(body.get("aliases", ()))
        return Checkpoint(**body)
    if kind == "ckpt_prune":
        return CheckpointPruned(**body)
    if kind == "console":
        return Console(**body)
    if kind == "sys":
        return SystemMetrics(time=float(body["time"]), values={k: _num(v) for k, v in body["values"].items()},
                             seq=int(body.get("seq", 0)))
    raise ValueError(f"unknown journal record kind {kind!r}")
