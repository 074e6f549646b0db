"""Query and compare stored runs across backends, through each backend's Reader.

``find_runs`` reads the run summaries (``RunInfo``) of one or several backends,
keeps those matching every ``where`` expression, sorts and cuts them::

    from trackkit.query import find_runs, compare, load_runs

    rows = find_runs(["tensorboard:./runs", "mlflow:./mlflow.db"], project="mnist",
                     where=["status=completed", "config.optimizer.lr<0.1", "metrics.eval/acc>=0.9"],
                     sort_by="-metrics.eval/acc", limit=5)
    table = compare(load_runs([r.run_id for r in rows[:2]], ["tensorboard:./runs", "mlflow:./mlflow.db"]))

The filter grammar (documented in ``docs/reading-back.md``)::

    EXPR   := FIELD OP VALUE | FIELD          (a FIELD alone: the key exists)
    OP     := = | == | != | < | <= | > | >= | ~     (~ : glob match, e.g. name~resnet*)
    FIELD  := status | name | project | group | run_id | backend | reason | step
            | start_time | end_time | duration | parent       (parent: the parent run's id; alone: a child run)
            | config.KEY | tag.KEY | summary.KEY
            | metrics.KEY | metrics.KEY.AGG          (AGG: last, min, max, best, best_step)

``metrics.KEY`` is the last value. A metric key may itself hold dots and slashes, so the rule is:
when the text after the last dot is an AGG word it is the aggregate, the rest is the key
(``metrics.val/acc.max``: the max of ``val/acc``); to name a metric whose own key ends in such a
word, add the aggregate (``metrics.loss.min.last``: the last value of ``loss.min``).

Every row is annotated with the backend string it came from (``RunInfo.backend``),
which is what ``load_runs``, ``trackkit compare`` and ``trackkit migrate`` accept.
Only the standard library and trackkit's neutral model are imported here; a
backend's SDK is imported when its Reader is built.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .backend import BackendSpec
from .errors import ConfigError
from .events import RunInfo, RunRecord, Status, flatten_config
from .util import same_value

__all__ = [
    "MISSING",
    "Comparison",
    "Filter",
    "MetricSummary",
    "compare",
    "filter_runs",
    "find_runs",
    "load_runs",
    "parse_filter",
]

#: plain fields of ``RunInfo`` a filter or sort may name
_PLAIN = ("status", "name", "project", "group", "run_id", "backend", "reason", "step", "start_time", "end_time",
          "duration", "parent")
_ALIASES = {"id": "run_id", "last_step": "step"}
_PREFIXES = {"config.": "config.", "cfg.": "config.", "tag.": "tag.", "tags.": "tag.", "metrics.": "metrics.",
             "metric.": "metrics.", "summary.": "summary."}
#: the aggregates a ``metrics.KEY.AGG`` field may end in (docs/reading-back.md)
AGGREGATES = ("last", "min", "max", "best", "best_step")
_OPS = (">=", "<=", "!=", "==", "=", "<", ">", "~")
_EXPR = re.compile(r"^\s*(?P<field>[^=!<>~]+?)\s*(?P<op>>=|<=|!=|==|=|<|>|~)\s*(?P<value>.*?)\s*$")
#: relative tolerance of ``=`` on numbers: TensorBoard stores float32 (about 7 significant digits)
REL_TOL = 1e-6

_FIELDS_HELP = (
    "status, name, project, group, run_id, backend, reason, step, start_time, end_time, duration, parent, "
    "config.KEY, tag.KEY, summary.KEY, metrics.KEY, metrics.KEY.last|min|max|best|best_step"
)
_EXAMPLES = ("e.g. status=completed, config.optimizer.lr<0.1, metrics.eval/acc>=0.9, metrics.eval/acc.max>=0.9, "
             "tag.team=vision, name~resnet*")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: a key a run does not have (in ``Comparison.config_differs``)
MISSING: Any = _Missing()


def _bad(expr: str, why: str, fix: str) -> ConfigError:
    return ConfigError(f"filter {expr!r}: {why}. Fix: {fix}")


def _field_name(name: str, expr: str) -> str:
    """Normalise a field name (``cfg.lr`` -> ``config.lr``); raise naming the fix when unknown."""
    name = name.strip()
    name = _ALIASES.get(name, name)
    if name in _PLAIN:
        return name
    for prefix, canon in _PREFIXES.items():
        if name.startswith(prefix):
            key = name[len(prefix):]
            if not key:
                raise _bad(expr, f"{prefix!r} needs a key after the dot", f"write e.g. {canon}lr")
            return canon + key
    guesses = f"config.{name}, metrics.{name} or tag.{name}"
    raise _bad(expr, f"unknown field {name!r}", f"use one of {_FIELDS_HELP} (did you mean {guesses}?)")


@dataclass(frozen=True)
class Filter:
    """One parsed ``where`` expression."""

    field: str
    op: str  # "=", "!=", "<", "<=", ">", ">=", "~" or "exists"
    value: str = ""
    text: str = ""

    def __call__(self, info: RunInfo) -> bool:
        return self.matches(info)

    def matches(self, info: RunInfo) -> bool:
        present, actual = field_value(info, self.field)
        if self.op == "exists":
            return present
        if not present:
            return self.op == "!="
        if self.op == "~":
            return fnmatch.fnmatchcase(_text(actual), self.value)
        if self.op in ("=", "!="):
            equal = _equals(actual, self.value)
            return equal if self.op == "=" else not equal
        num = _number(actual)
        if num is None or math.isnan(num):
            return False
        want = float(self.value)
        if self.op == "<":
            return num < want
        if self.op == "<=":
            return num <= want or math.isclose(num, want, rel_tol=REL_TOL)
        if self.op == ">":
            return num > want
        return num >= want or math.isclose(num, want, rel_tol=REL_TOL)


def parse_filter(expr: str) -> Filter:
    """Parse one expression such as ``config.optimizer.lr<0.1``; ``ConfigError`` names the fix."""
    if not isinstance(expr, str) or not expr.strip():
        raise _bad(str(expr), "empty expression", f"write FIELD OP VALUE, {_EXAMPLES}")
    m = _EXPR.match(expr)
    if m is None:
        if any(op in expr for op in _OPS):
            raise _bad(expr, "no field before the operator", f"write FIELD OP VALUE, {_EXAMPLES}")
        return Filter(_field_name(expr, expr), "exists", "", expr)
    name, op, value = m.group("field"), m.group("op"), m.group("value")
    op = "=" if op == "==" else op
    fld = _field_name(name, expr)
    if value and value[0] in "=<>~" and op in ("<", ">", "=", "!="):
        raise _bad(expr, f"operator {op + value[0]!r} is not known", f"use one of {', '.join(_OPS)}")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if op in ("<", "<=", ">", ">="):
        text = ("status", "name", "project", "group", "run_id", "backend", "reason", "parent")
        if fld in text or fld.startswith("tag."):
            raise _bad(expr, f"{op!r} compares numbers and {fld} is text", f"use = , != or ~ with {fld}")
        try:
            float(value)
        except ValueError:
            raise _bad(expr, f"{op!r} needs a number, got {value!r}",
                       f"write a number after {op!r} (e.g. {name}{op}0.1), or use = / ~ for text") from None
    if fld == "status" and op in ("=", "!="):
        if value not in Status._value2member_map_:
            raise _bad(expr, f"{value!r} is not a status",
                       f"use one of {', '.join(s.value for s in Status)}")
    return Filter(fld, op, value, expr)


def field_value(info: RunInfo, name: str) -> tuple[bool, Any]:
    """``(present, value)`` of a normalised field of a run summary."""
    if name.startswith("config."):
        flat = flatten_config(info.config)
        key = name[len("config."):]
        return (key in flat, flat.get(key))
    if name.startswith("tag."):
        key = name[len("tag."):]
        return (key in info.tags, info.tags.get(key))
    if name.startswith("metrics."):
        return metric_value(info, *metric_field(name[len("metrics."):]))
    if name.startswith("summary."):
        flat = flatten_config(info.summary)
        key = name[len("summary."):]
        return (key in flat, flat.get(key))
    if name == "status":
        return True, info.status.value
    if name == "step":
        return info.last_step is not None, info.last_step
    if name == "duration":
        return info.duration is not None, info.duration
    value = getattr(info, name)
    return value is not None, value


def metric_field(text: str) -> tuple[str, str]:
    """``(key, aggregate)`` of the text after ``metrics.``: ``val/acc.max`` -> ``("val/acc", "max")``,
    ``val/acc`` -> ``("val/acc", "last")`` (the rule in the module docstring)."""
    key, dot, agg = text.rpartition(".")
    if dot and key and agg in AGGREGATES:
        return key, agg
    return text, "last"


def metric_value(info: RunInfo, key: str, agg: str) -> tuple[bool, Any]:
    """``(present, value)`` of one aggregate of a metric of a run summary. ``last`` falls back to
    ``last_metrics`` (a reader that knows only the last value); min/max/best need ``RunInfo.metrics``."""
    st = info.metrics.get(key)
    if agg == "last":
        if st is not None:
            return True, st.last
        return (key in info.last_metrics, info.last_metrics.get(key))
    if st is None:
        return False, None
    if agg in ("min", "max"):
        step = st.min_step if agg == "min" else st.max_step
        return (step is not None, st.min if agg == "min" else st.max)
    value, step = st.best(info.goal(key))
    if step is None:
        return False, None
    return True, (value if agg == "best" else step)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v, default=str, ensure_ascii=False, separators=(",", ":"))


def _equals(actual: Any, literal: str) -> bool:
    num = _number(actual)
    if num is not None:
        try:
            want = float(literal)
        except ValueError:
            return False
        if math.isnan(num) or math.isnan(want):
            return math.isnan(num) and math.isnan(want)
        return num == want or math.isclose(num, want, rel_tol=REL_TOL)
    if isinstance(actual, bool):
        return literal.lower() in (("true", "1", "yes") if actual else ("false", "0", "no"))
    if actual is None:
        return literal.lower() in ("null", "none", "")
    if isinstance(actual, str):
        return actual == literal
    return _text(actual) == literal.replace(" ", "") or str(actual) == literal


# ---------------------------------------------------------------- filter / sort


def _filters(where: str | Sequence[str] | None) -> list[Filter]:
    if where is None:
        return []
    items = [where] if isinstance(where, str) else list(where)
    return [parse_filter(w) for w in items]


def _sort_key(sort_by: str) -> tuple[str, bool]:
    text = sort_by.strip()
    desc = text.startswith("-")
    name = text.lstrip("+-").strip()
    if not name:
        raise ConfigError(f"sort {sort_by!r}: no field. Fix: e.g. sort_by='-metrics.eval/acc' (- for descending)")
    try:
        return _field_name(name, sort_by), desc
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("filter ", "sort ", 1)) from None


def filter_runs(
    rows: Iterable[RunInfo],
    where: str | Sequence[str] | None = None,
    sort_by: str | None = None,
    limit: int | None = None,
) -> list[RunInfo]:
    """Keep the rows matching every expression, sort (``-`` prefix: descending; default: newest
    first) and keep the first ``limit``. Runs without the sort key come last. ``metrics.KEY.best``
    sorts best first by the metric's goal (``-`` reverses: worst first)."""
    filters = _filters(where)
    kept = [r for r in rows if all(f.matches(r) for f in filters)]
    fld, desc = _sort_key(sort_by) if sort_by else ("start_time", True)
    if fld.startswith("metrics."):
        key, agg = metric_field(fld[len("metrics."):])
        if agg == "best":  # best first (by the metric's goal); '-' turns it round
            goal = next((r.goal(key) for r in kept if key in r.metrics), "max")
            desc = desc != (goal == "max")
    have: list[tuple[tuple[int, float, str], RunInfo]] = []
    missing: list[RunInfo] = []
    for r in kept:
        present, v = field_value(r, fld)
        num = _number(v)
        if not present or (num is not None and math.isnan(num)):
            missing.append(r)
        elif num is not None:
            have.append(((0, num, ""), r))
        else:
            have.append(((1, 0.0, _text(v)), r))
    have.sort(key=lambda p: p[0], reverse=desc)
    out = [r for _, r in have] + missing
    if limit is not None:
        if limit < 0:
            raise ConfigError(f"limit={limit}: must be 0 or more")
        out = out[:limit]
    return out


def _specs(backends: str | BackendSpec | Sequence[str | BackendSpec]) -> list[BackendSpec]:
    from .registry import parse_backends

    specs = parse_backends(backends)
    if not specs:
        raise ConfigError("no backend to query. Fix: e.g. find_runs(['tensorboard:./runs'])")
    return specs


def backend_label(spec: BackendSpec) -> str:
    """The backend string a row is annotated with: as the user wrote it, minus any credentials."""
    from .registry import strip_credentials

    raw = spec.raw or str(spec)
    return strip_credentials(spec) if "@" in raw else raw


def find_runs(
    backends: str | BackendSpec | Sequence[str | BackendSpec],
    project: str | None = None,
    where: str | Sequence[str] | None = None,
    sort_by: str | None = None,
    limit: int | None = None,
) -> list[RunInfo]:
    """Run summaries of one or several backends that match every ``where`` expression.

    Each row is a copy of the Reader's ``RunInfo`` with ``backend`` set to the backend
    string it came from. A run that lives in two backends (fan-out) is two rows.
    Filter errors raise ``ConfigError`` before any backend is read."""
    filters = [f.text for f in _filters(where)]
    if sort_by:
        _sort_key(sort_by)
    from .registry import load_reader

    rows: list[RunInfo] = []
    for spec in _specs(backends):
        label = backend_label(spec)
        reader = load_reader(spec)
        for info in reader.list_runs(project):
            rows.append(dataclasses.replace(info, backend=label))
    return filter_runs(rows, filters, sort_by, limit)


def why_empty(backends: str | BackendSpec | Sequence[str | BackendSpec]) -> list[str]:
    """For backends that hold no run: one line each on what was found instead and the fix, where the
    Reader can say (``Reader.why_empty()``, e.g. a TensorBoard directory with no event files)."""
    from .registry import load_reader

    out = []
    for spec in _specs(backends):
        why = getattr(load_reader(spec), "why_empty", None)
        text = why() if callable(why) else ""
        if text:
            out.append(str(text))
    return out


def load_runs(
    refs: Sequence[str],
    backends: str | BackendSpec | Sequence[str | BackendSpec],
    project: str | None = None,
    *,
    metrics: bool = True,
) -> list[RunRecord]:
    """Whole runs by reference (run id, unique id prefix or unique name, see ``trackkit.lookup``),
    searched in the backends in order: the first backend holding a run wins. ``metrics=False``:
    without the metric histories where a Reader can leave them out (MLflow: one request per key
    over a server); the summaries keep every key's last value.
    ``RunLookupError`` (a ``KeyError`` and a ``ConfigError``) names a missing or ambiguous run."""
    from .lookup import find_in_readers
    from .registry import load_reader

    specs = _specs(backends)
    readers = [(backend_label(s), load_reader(s)) for s in specs]
    listings: dict[int, list[RunInfo]] = {}
    out: list[RunRecord] = []
    for ref in refs:
        i, rec = find_in_readers(ref, readers, project, listings, metrics)
        out.append(_annotated(rec, readers[i][0]))
    return out


def _annotated(rec: RunRecord, label: str) -> RunRecord:
    return RunRecord(dataclasses.replace(rec.info, backend=label), rec.events)


# ---------------------------------------------------------------- compare


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one run: the last value (at the highest step) and the lowest/highest value."""

    last: float
    min: float | None
    max: float | None
    last_step: int | None
    points: int

    def to_dict(self) -> dict[str, Any]:
        return {"last": _json_num(self.last), "min": _json_num(self.min), "max": _json_num(self.max),
                "last_step": self.last_step, "points": self.points}


@dataclass
class Comparison:
    """What ``compare`` returns: one column per run."""

    runs: list[RunInfo]
    #: flattened config keys whose values differ (``MISSING`` where a run lacks the key)
    config_differs: dict[str, list[Any]] = field(default_factory=dict)
    #: flattened config keys every run holds with the same value
    config_same: dict[str, Any] = field(default_factory=dict)
    #: metric key -> one summary per run (None where a run lacks the metric)
    metrics: dict[str, list[MetricSummary | None]] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """Column labels: run names, made unique with the run id when two runs share one."""
        names = [r.name or r.run_id for r in self.runs]
        return [f"{n} ({r.run_id})" if names.count(n) > 1 else n for n, r in zip(names, self.runs)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (``MISSING`` becomes ``null`` with the key listed under ``missing``)."""
        return {
            "runs": [
                {"run_id": r.run_id, "name": r.name, "project": r.project, "backend": r.backend,
                 "status": r.status.value, "reason": r.reason}
                for r in self.runs
            ],
            "config_differs": {
                k: {"values": [None if v is MISSING else v for v in vals],
                    "missing": [i for i, v in enumerate(vals) if v is MISSING]}
                for k, vals in self.config_differs.items()
            },
            "config_same": dict(self.config_same),
            "metrics": {k: [None if s is None else s.to_dict() for s in vals] for k, vals in self.metrics.items()},
        }


def _json_num(v: float | None) -> float | str | None:
    if v is None:
        return None
    if math.isnan(v) or math.isinf(v):
        return str(v)  # JSON has no NaN/inf
    return v


def _summaries(run: RunRecord | RunInfo) -> dict[str, MetricSummary]:
    if isinstance(run, RunInfo):
        out_info = {k: MetricSummary(v, None, None, run.last_step, 0) for k, v in run.last_metrics.items()}
        for k, st in run.metrics.items():
            out_info[k] = MetricSummary(st.last, None if st.min_step is None else st.min,
                                        None if st.max_step is None else st.max, st.last_step, st.count)
        return out_info
    out: dict[str, MetricSummary] = {}
    for key, pts in run.metrics().items():
        if not pts:
            continue
        finite = [v for _, v in pts if not math.isnan(v)]
        out[key] = MetricSummary(
            last=pts[-1][1],
            min=min(finite) if finite else math.nan,
            max=max(finite) if finite else math.nan,
            last_step=pts[-1][0],
            points=len(pts),
        )
    return out


def compare(runs: Sequence[RunRecord | RunInfo]) -> Comparison:
    """Side by side: which (flattened) config keys differ and which are the same, and each
    metric's last, min and max value per run (NaN is ignored by min/max).

    ``RunRecord`` (from ``load_runs`` or a Reader's ``read_run``) gives min/max over every
    point; a bare ``RunInfo`` gives only the last value."""
    if not runs:
        raise ConfigError("compare: no runs given. Fix: pass two or more runs (trackkit.query.load_runs)")
    infos = [r if isinstance(r, RunInfo) else r.info for r in runs]
    configs = [flatten_config(i.config) for i in infos]
    keys: list[str] = []
    for c in configs:
        keys.extend(k for k in c if k not in keys)
    result = Comparison(runs=infos)
    for k in sorted(keys):
        vals = [c.get(k, MISSING) for c in configs]
        first = vals[0]
        if all(v is not MISSING for v in vals) and all(same_value(first, v) for v in vals[1:]):
            result.config_same[k] = first
        else:
            result.config_differs[k] = vals
    per_run = [_summaries(r) for r in runs]
    mkeys = sorted({k for s in per_run for k in s})
    for k in mkeys:
        result.metrics[k] = [s.get(k) for s in per_run]
    return result
