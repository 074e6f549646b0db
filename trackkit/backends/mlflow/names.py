"""What MLflow can hold and the names trackkit gives things in it: key, param and tag rules,
trackkit's own tag and artifact names, and the status mapping."""

from __future__ import annotations

import json
import re
from typing import Any

from ...backend import map_key, short_hash
from ...events import Artifact, Status

#: MLflow's key alphabet (POSIX): ``^[/\w.\- :]*$``
KEY_CHARS = r"/\w.\- :"
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
#: ``log_batch`` limits per request
BATCH_METRICS = 1000
BATCH_PARAMS = 100
BATCH_TAGS = 100
BATCH_ENTITIES = 1000
#: stay well below MLflow's 1 MB request limit
BATCH_BYTES = 800_000
#: MLflow clamps ±inf to ±sys.float_info.max
FMAX = 1.7976931348623157e308

# ---- internal tag names (all under the ``trackkit.`` prefix, hidden from user tags by the reader)
T_RUN_ID = "trackkit.run_id"
T_GROUP = "trackkit.group"
T_STATUS = "trackkit.status"
T_REASON = "trackkit.reason"
T_STATUS_STEP = "trackkit.status_step"
T_STATUS_CHANGE = "trackkit.status_change"
T_EXIT_CODE = "trackkit.exit_code"
T_START_TAGS = "trackkit.start_tags"
T_RESUMED = "trackkit.resumed"
#: the parent's trackkit run id (``RunStarted.parent``; MLflow's ``mlflow.parentRunId`` holds its MLflow id)
T_PARENT = "trackkit.parent"
#: + the key: a scalar summary value (JSON), shown in MLflow's UI; ``trackkit/summaries/`` holds them exactly
T_SUMMARY = "trackkit.summary."
T_KEY = "trackkit.key."  # + tag_digest(original) -> original key
#: + tag_digest(key): a metric's min/max with their steps and its goal (JSON; ``best.py``)
T_STATS = "trackkit.stats."
#: + the MLflow key: the best value of a metric whose goal was declared (for MLflow's UI)
T_BEST = "trackkit.best."
T_INF = "trackkit.inf."  # + tag_digest(mapped) -> mapped metric key that had ±inf
RESERVED = {
    T_RUN_ID,
    T_GROUP,
    T_STATUS,
    T_REASON,
    T_STATUS_STEP,
    T_STATUS_CHANGE,
    T_EXIT_CODE,
    T_START_TAGS,
    T_RESUMED,
    T_PARENT,
}
A_CONFIG = "config.json"
A_META = "trackkit_meta.json"
A_CONFIG_UPDATES = "trackkit/config_updates"
A_ARTIFACTS = "trackkit/artifacts"
A_RESUMES = "trackkit/resumes"
A_SUMMARIES = "trackkit/summaries"
#: one JSON record per checkpoint retention removed (``CheckpointPruned``)
A_CKPT_PRUNES = "trackkit/checkpoint_prunes"
#: tags naming the artifact path of a checkpoint manager's ``latest`` / ``best`` checkpoint
T_CHECKPOINT = "trackkit.checkpoint."

TO_MLFLOW = {
    Status.RUNNING: "RUNNING",
    Status.COMPLETED: "FINISHED",
    Status.DIVERGED: "FAILED",
    Status.CRASHED: "FAILED",
    Status.KILLED: "KILLED",
}
FROM_MLFLOW = {
    "RUNNING": Status.RUNNING,
    "SCHEDULED": Status.RUNNING,
    "FINISHED": Status.COMPLETED,
    "FAILED": Status.CRASHED,
    "KILLED": Status.KILLED,
}


def mlflow_key(key: str) -> str:
    """The key MLflow stores for ``key`` (the one key rule of ``backend.map_key``)."""
    return map_key(key, allowed=KEY_CHARS, max_length=MAX_KEY_LENGTH)


#: tag namespaces the reader keeps for itself: a user's tag there is stored under a mapped key
RESERVED_TAG_PREFIXES = ("trackkit.", "mlflow.")


def user_tag_key(key: str) -> str:
    """The key MLflow stores for a user's tag ``key``: the key rule, and a key in a reserved
    namespace (``trackkit.``, ``mlflow.``: MLflow's own and trackkit's bookkeeping) moved out of
    it (``_`` in front, ``-h`` + 8 hex digits of the original), so it is never mistaken for either."""
    if not key.startswith(RESERVED_TAG_PREFIXES):
        return mlflow_key(key)
    suffix = "-h" + short_hash(key)
    return mlflow_key("_" + key)[: MAX_KEY_LENGTH - len(suffix)] + suffix


def tag_digest(text: str) -> str:
    """The 16 hex digits that name a ``trackkit.key.*`` / ``trackkit.inf.*`` tag for ``text``."""
    return short_hash(text, 16)


def value_str(value: Any) -> str:
    """Param/tag value: strings as they are, everything else as JSON (``true``, ``null``, ``[1, 2]``)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def value_back(text: str) -> Any:
    """Inverse of :func:`value_str` where it can tell (used only when config.json is missing)."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def to_json(obj: Any) -> str:
    """An artifact's JSON text (ASCII-escaped only when it would not encode)."""
    text = json.dumps(obj, default=str, ensure_ascii=False, indent=2)
    return text if encodable(text) else json.dumps(obj, default=str, ensure_ascii=True, indent=2)


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from a filename, a bad decode): no store takes them
        return False
    return True


def storable(text: str) -> str:
    """``text``, or its JSON form (ASCII, quoted) when it holds lone surrogates, which MLflow's stores
    cannot encode: one such value would fail the whole batch on every retry."""
    return text if encodable(text) else json.dumps(text)


def unstorable(text: str) -> str:
    """Inverse of :func:`storable`."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            back = json.loads(text)
        except ValueError:
            return text
        if isinstance(back, str) and not encodable(back):
            return back
    return text


_SEGMENT_BAD = re.compile(r"[^\w.\- ]")


def safe_segment(text: str) -> str:
    """``text`` as one artifact path segment."""
    seg = _SEGMENT_BAD.sub("_", text).strip()
    return "_" if seg in ("", ".", "..") else seg


def artifact_dir(ev: Artifact) -> str:
    """``<kind>/<name>/v<version>``: where an artifact's files go in the run."""
    kind = "/".join(safe_segment(s) for s in (ev.kind or "artifact").split("/") if s)
    name = "/".join(safe_segment(s) for s in (ev.name or "artifact").split("/") if s)
    return f"{kind or 'artifact'}/{name or 'artifact'}/v{int(ev.version)}"
