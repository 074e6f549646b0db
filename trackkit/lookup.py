"""Find one run by what a user typed: the one rule behind every ``RUN`` argument (``show``,
``sync``, ``compare``, ``doctor``, ``reproduce``, ``migrate``) and every function that takes a
run reference (``query.load_runs``, ``reproduce.find_record``, ``migrate.migrate``).

The rule, in order: the **exact run id**; else the one run whose id **starts with** the
reference; else the one run whose **name** is the reference. When no step finds exactly one
run, :class:`RunLookupError` says so: the runs it could mean (several) or the runs there are
(none), and the fix. Standard library and trackkit's neutral model only.
"""

from __future__ import annotations

import inspect
import os
import shlex
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .events import RunInfo, RunRecord

if TYPE_CHECKING:
    from .index import IndexEntry

__all__ = [
    "RunLookupError", "find_entry", "find_in_journal", "find_in_readers", "journal_entries", "journal_root",
    "journal_runs", "pick",
]

#: how many candidates a message names
_SHOWN = 10


class RunLookupError(ConfigError, KeyError):
    """No run, or more than one, answers to a run reference. A ``ConfigError`` (a bad argument,
    the message names the fix) and a ``KeyError`` (as a Reader's ``read_run`` raises for a
    missing run)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _listed(pairs: Sequence[tuple[str, str]]) -> str:
    shown = [f"{rid} ({name})" if name and name != rid else rid for rid, name in pairs[:_SHOWN]]
    more = f" and {len(pairs) - _SHOWN} more" if len(pairs) > _SHOWN else ""
    return ", ".join(shown) + more


def _resolve(ref: str, pairs: Sequence[tuple[str, str]]) -> tuple[str | None, list[str]]:
    """``(the run id ref names, [])``, or ``(None, the ids it could mean)`` (none: it is not there)."""
    ids = list(dict.fromkeys(rid for rid, _ in pairs))
    if not ref:
        return None, []
    if ref in ids:
        return ref, []
    by_prefix = [rid for rid in ids if rid.startswith(ref)]
    if len(by_prefix) == 1:
        return by_prefix[0], []
    by_name = list(dict.fromkeys(rid for rid, name in pairs if name == ref))
    if len(by_name) == 1:
        return by_name[0], []
    return None, list(dict.fromkeys(by_prefix + by_name))


def _several(ref: str, hits: Sequence[str], pairs: Sequence[tuple[str, str]], where: str) -> RunLookupError:
    names = dict(pairs)
    return RunLookupError(f"{ref!r} matches several runs in {where}: {_listed([(h, names.get(h, '')) for h in hits])}. "
                          "Fix: give the full run id")


def _none(ref: str, pairs: Sequence[tuple[str, str]], where: str, fix: str) -> RunLookupError:
    there = f"runs there: {_listed(pairs)}" if pairs else "no runs there"
    return RunLookupError(f"no run {ref!r} in {where} ({there}). Fix: {fix} lists them")


def pick(ref: str, candidates: Iterable[tuple[str, str]], where: str, fix: str) -> str:
    """The one run id among ``(run_id, name)`` pairs that ``ref`` names, by the rule above.

    ``where`` names the place searched (``"the journal under /x"``, a backend string), ``fix``
    the command that lists its runs. Raises :class:`RunLookupError`."""
    pairs = list(dict.fromkeys(candidates))
    rid, hits = _resolve(ref, pairs)
    if rid is not None:
        return rid
    raise _several(ref, hits, pairs, where) if hits else _none(ref, pairs, where, fix)


# ---------------------------------------------------------------- the local journal


def journal_root(root: str | None = None) -> str:
    """The journal root, absolute: ``root``, else the settings' ``root`` (``./.trackkit``)."""
    if root:
        return os.path.abspath(root)
    from .settings import load_settings

    return os.path.abspath(load_settings().root)


def journal_entries(root: str, project: str | None = None) -> list[IndexEntry]:
    """The run index of a journal root (of one ``project``), oldest first: each run's summary, up to
    date with its journal, without reading whole journals (``trackkit.index``)."""
    from .index import index_runs

    return index_runs(root, project)


def journal_runs(root: str, project: str | None = None) -> list[RunRecord]:
    """Every run under a journal root (of one ``project``), oldest first, each journal read whole
    (what ``trackkit sync`` needs; a listing takes :func:`journal_entries`)."""
    from .journal import load_run

    return [load_run(e.run_dir) for e in journal_entries(root, project)]


def _journal_fix(root: str) -> str:
    return f"`trackkit runs --root {shlex.quote(root)}`"


def find_entry(ref: str, root: str, entries: Sequence[IndexEntry] | None = None) -> IndexEntry:
    """The index entry of the run under journal root ``root`` that ``ref`` names (``entries``: the
    index, when already read)."""
    found = journal_entries(root) if entries is None else entries
    rid = pick(ref, [(e.run_id, e.name) for e in found], f"the journal under {root}", _journal_fix(root))
    return next(e for e in found if e.run_id == rid)


def find_in_journal(ref: str, root: str, runs: Sequence[RunRecord] | None = None) -> RunRecord:
    """The run under journal root ``root`` that ``ref`` names, read whole (``runs``: those already
    loaded; otherwise the index finds it and only its journal is read)."""
    if runs is None:
        from .journal import load_run

        rec: RunRecord = load_run(find_entry(ref, root).run_dir)
        return rec
    rid = pick(ref, [(r.info.run_id, r.info.name) for r in runs], f"the journal under {root}", _journal_fix(root))
    return next(r for r in runs if r.info.run_id == rid)


# ---------------------------------------------------------------- backends


def find_in_readers(
    ref: str,
    readers: Sequence[tuple[str, Any]],
    project: str | None = None,
    listings: dict[int, list[RunInfo]] | None = None,
    metrics: bool = True,
) -> tuple[int, RunRecord]:
    """The run ``ref`` names in the first backend that holds it: ``(index into readers, record)``.

    ``readers`` are ``(backend label, Reader)`` pairs searched in order: an exact id in any of
    them first (one ``read_run`` each, no listing), then each backend's listing (of ``project``)
    by the rule; several matches in one backend raise. ``listings`` caches the listings across
    calls. ``metrics=False``: a Reader that can (``read_run(..., metrics=False)``) leaves out the metric
    histories (the summary keeps the last values). Raises :class:`RunLookupError`."""
    def read(reader: Any, rid: str) -> RunRecord:
        if not metrics and "metrics" in inspect.signature(reader.read_run).parameters:
            rec: RunRecord = reader.read_run(rid, metrics=False)
            return rec
        whole: RunRecord = reader.read_run(rid)
        return whole

    for i, (_, reader) in enumerate(readers):
        try:
            return i, read(reader, ref)
        except KeyError:
            continue
    cache = {} if listings is None else listings
    every: list[tuple[str, str]] = []
    for i, (label, reader) in enumerate(readers):
        if i not in cache:
            cache[i] = list(reader.list_runs(project))
        pairs = list(dict.fromkeys((r.run_id, r.name) for r in cache[i]))
        rid, hits = _resolve(ref, pairs)
        if rid is not None:
            return i, read(reader, rid)
        if hits:
            raise _several(ref, hits, pairs, label)
        every += pairs
    labels = [label for label, _ in readers]
    raise _none(ref, list(dict.fromkeys(every)), ", ".join(labels), _backend_fix(labels))


def _backend_fix(labels: Sequence[str]) -> str:
    return "`trackkit runs " + " ".join(f"--backend {shlex.quote(label)}" for label in labels) + "`"
