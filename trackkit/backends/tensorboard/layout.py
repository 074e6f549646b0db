"""The run directory's names and the text tags trackkit writes into it (docs/backends/tensorboard.md)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import partial
from typing import Any

from ...backend import BackendSpec, safe_name
from ...errors import ConfigError
from ...events import Status

__all__ = [
    "BEST_FILE", "BEST_PREFIX", "MARKER", "TAGS_FILE", "TEXT_ARTIFACT", "TEXT_CKPT_PRUNED", "TEXT_CONFIG",
    "TEXT_CONSOLE", "TEXT_GOAL", "TEXT_MEDIA", "TEXT_RUN", "TEXT_STATUS", "TEXT_SUMMARY", "TEXT_TAGS",
    "TRACKKIT_TEXTS", "check_location", "dumps", "find_run_dir", "root_of", "run_dir_for", "safe", "status_json",
]

MARKER = ".trackkit_run_id"
#: the run's current tags (TensorBoard keeps them only as text summaries): a re-attached sink reads them
TAGS_FILE = ".trackkit_tags.json"
TEXT_RUN, TEXT_CONFIG, TEXT_TAGS, TEXT_STATUS, TEXT_ARTIFACT = (
    "trackkit/run", "trackkit/config", "trackkit/tags", "trackkit/status", "trackkit/artifact"
)
#: one JSON record per media value: what the native summary cannot hold (caption, typed table, ...)
TEXT_MEDIA = "trackkit/media"
#: the run's summary values (``Summary`` events), one JSON record per event
TEXT_SUMMARY = "trackkit/summary"
#: the run's console output (``Console`` events), each line indented (a Markdown code block)
TEXT_CONSOLE = "console"
#: a metric's declared goal (``MetricGoal``): ``{"key", "goal"}``
TEXT_GOAL = "trackkit/goal"
#: a checkpoint retention removed (``CheckpointPruned``): its file is gone from ``artifacts/`` too
TEXT_CKPT_PRUNED = "trackkit/checkpoint_pruned"
TRACKKIT_TEXTS = frozenset({TEXT_RUN, TEXT_CONFIG, TEXT_TAGS, TEXT_STATUS, TEXT_ARTIFACT, TEXT_MEDIA, TEXT_SUMMARY,
                            TEXT_GOAL, TEXT_CKPT_PRUNED})
#: + a metric key: the best value of a metric whose goal was declared, one scalar at its best step written
#: when the run ends (the HParams dashboard shows it as a metric column); derived, so the reader skips it
BEST_PREFIX = "trackkit/best/"
#: the declared goals and best values so far, for a re-attached sink
BEST_FILE = ".trackkit_best.json"

#: a project, group, run or artifact name as one directory name
safe = partial(safe_name, keep="-_.=", limit=120)


def root_of(spec: BackendSpec) -> str:
    return spec.location or os.path.abspath("./runs")


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)


def status_json(status: Status, reason: str, step: int | None, details: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": status.value, "reason": reason, "step": step, "details": dict(details)}


def find_run_dir(root: str, project: str, run_id: str) -> str | None:
    """The directory of the run ``run_id`` (its marker says so) under ``<root>/<project>``, or None."""
    top = os.path.join(root, safe(project))
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if x not in ("artifacts", "native")]
        if MARKER in files:
            try:
                with open(os.path.join(d, MARKER)) as fh:
                    if fh.read().strip() == run_id:
                        return d
            except OSError:
                continue
    return None


def run_dir_for(root: str, project: str, group: str | None, name: str, run_id: str,
                parent_dir: str | None = None) -> str:
    """The directory of a run; the name gets ``-<run id>`` when another run holds it. A child run
    (``parent_dir``: its parent's directory) is a directory in its parent's.

    The name's directory is claimed with an atomic ``mkdir``: two runs of one name whose
    agents open it in the same instant never share it (a check-then-create would let both in)."""
    base = parent_dir or os.path.join(root, safe(project), *([safe(group)] if group else []))
    d = os.path.join(base, safe(name))
    os.makedirs(base, exist_ok=True)
    try:
        os.mkdir(d)
        return d  # ours
    except FileExistsError:
        pass
    try:
        with open(os.path.join(d, MARKER)) as fh:
            owner = fh.read().strip()
    except OSError:
        owner = ""  # not ours, or another run claimed it and has not written its marker yet
    if owner != run_id:
        d = os.path.join(base, f"{safe(name)}-{run_id}")
    return d


def check_location(spec: BackendSpec) -> None:
    """At init: a logdir that is a file is a setup error (the sink would fail in the agent later)."""
    root = root_of(spec)
    if os.path.exists(root) and not os.path.isdir(root):
        raise ConfigError(
            f"backend {str(spec)!r}: {root} is a file, not a TensorBoard logdir. "
            "Fix: name a directory (created when missing), e.g. tensorboard:./runs"
        )
