"""Name rules of the W&B adapter: run ids, project names, reserved keys, tag and artifact names.

Every mapping is deterministic (the key rule: ``-h`` + 8 hex digits of the SHA-1 of the
original) so a resumed run re-attaches and the reader can map names back.
"""

from __future__ import annotations

import re

from ...backend import map_key, short_hash

__all__ = [
    "ART_NAME_CHARS",
    "HISTORY_INTERNAL",
    "INTERNAL",
    "LATE_KEY",
    "MAX_TAG",
    "MEDIA_DIR",
    "MEDIA_FILES",
    "MEDIA_KEY",
    "RESERVED_CONFIG_KEYS",
    "RESERVED_METRIC_KEYS",
    "STATUS_TAG",
    "TIME_KEY",
    "alias_name",
    "artifact_kind",
    "artifact_name",
    "mapped_tag",
    "own_run_file",
    "parse_tag",
    "project_name",
    "reserved",
    "stored_metric_key",
    "tag_text",
    "wandb_run_id",
]

#: top-level config key holding trackkit's own bookkeeping (hidden in the W&B UI: leading ``_``)
INTERNAL = "_trackkit"
#: history column holding points whose step was below the current W&B step (JSON list)
LATE_KEY = "trackkit/late"
#: history column holding the event time when delivery lagged (replay, sync)
TIME_KEY = "trackkit/time"
#: history column holding, per row, what W&B's media types do not keep (JSON, see ``media.py``)
MEDIA_KEY = "trackkit/media"
#: folder of the run's files holding media kept as plain run files (late steps, no native form)
MEDIA_DIR = "trackkit-media"
#: where a history row's media files lie in the run's files (W&B's ``media/``; trackkit's kept media)
MEDIA_FILES = ("media/", MEDIA_DIR + "/")
#: run files W&B (or trackkit's sink) writes itself: a server's file list holds them beside the
#: user's ``wandb.save`` files (an offline run's ``files`` record tells them apart by type)
_OWN_FILES = frozenset({"config.yaml", "wandb-summary.json", "wandb-metadata.json", "requirements.txt",
                        "output.log", "diff.patch", "conda-environment.yaml", "wandb-events.jsonl"})
_OWN_PREFIXES = (*MEDIA_FILES, "code/", "upstream_diff_", "artifact/")
#: the tag that carries the final status, as on every backend
STATUS_TAG = "trackkit.status"
#: metric keys W&B would lose or confuse; they are mapped (and mapped back by the reader)
RESERVED_METRIC_KEYS = frozenset({"", "_step", "_timestamp", "_runtime", "_wandb", LATE_KEY, TIME_KEY, MEDIA_KEY})
RESERVED_CONFIG_KEYS = frozenset({"_wandb", INTERNAL})
#: history columns that are W&B's or trackkit's bookkeeping, never metrics
HISTORY_INTERNAL = frozenset({"_step", "_timestamp", "_runtime", "_wandb", LATE_KEY, TIME_KEY, MEDIA_KEY})
#: W&B's longest tag
MAX_TAG = 64
ART_NAME_CHARS = r"a-zA-Z0-9_\-."
_PROJECT_BAD = r"[/\\#?%:]"


def own_run_file(rel: str) -> bool:
    """True for a run file W&B or trackkit's sink wrote (not one a user saved)."""
    return rel in _OWN_FILES or rel.startswith(_OWN_PREFIXES)


def wandb_run_id(run_id: str) -> str:
    """The W&B run id of a trackkit run id: deterministic, so a resumed run re-attaches.

    Ids of lowercase letters, digits, ``_`` and ``-`` (at most 64) are used unchanged;
    any other id is mapped by the key rule (``-h`` + 8 hex digits of its SHA-1).
    """
    return map_key(run_id, allowed=r"a-z0-9_\-", max_length=64, separator_rules=False)


def project_name(project: str) -> str:
    """W&B project names: at most 128 characters, none of ``/ \\ # ? % :`` (mapped by the key rule)."""
    name = project or "trackkit"
    if len(name) <= 128 and not re.search(_PROJECT_BAD, name):
        return name
    suffix = f"-h{short_hash(name)}"
    return re.sub(_PROJECT_BAD, "_", name)[: 128 - len(suffix)] + suffix


def reserved(name: str) -> str:
    """The stored name of a metric or config key W&B reserves."""
    return f"{name or 'key'}-h{short_hash(name)}"


def stored_metric_key(key: str) -> str:
    """The key W&B stores for a metric key: W&B's own names (``_step``, ``_runtime`` ...) are mapped."""
    return reserved(key) if key in RESERVED_METRIC_KEYS else key


def tag_text(key: str, value: str) -> str:
    """The W&B tag of a trackkit tag: ``key`` (a label) or ``key:value``."""
    return key if not value else f"{key}:{value}"


def parse_tag(text: str) -> tuple[str, str]:
    """The trackkit tag of a W&B tag that was stored unmapped."""
    key, _, value = text.partition(":")
    return key, value


def mapped_tag(key: str, value: str) -> str | None:
    """The mapped W&B tag of a pair W&B cannot hold as ``tag_text`` (too long, empty, ``:`` in
    the key), or None when ``tag_text`` is stored as is."""
    text = tag_text(key, value)
    if text and len(text) <= MAX_TAG and ":" not in key:
        return None
    body = re.sub(r"\s+", " ", text)[: MAX_TAG - 10] or "tag"
    return f"{body}-h{short_hash(key + chr(0) + value)}"


def artifact_name(name: str) -> str:
    """W&B artifact names: ``[A-Za-z0-9_.-]``, at most 128 characters (else the key rule)."""
    return map_key(name, allowed=ART_NAME_CHARS, max_length=128, separator_rules=False)


def artifact_kind(kind: str) -> str:
    """W&B reserves the types ``job`` and ``wandb-*``: they are stored as ``trackkit-<kind>``."""
    kind = kind or "artifact"
    return f"trackkit-{kind}" if kind == "job" or kind.startswith("wandb-") else kind


def alias_name(alias: str) -> str:
    """W&B aliases cannot be empty or hold ``/`` or ``:``: those are mapped by the key rule."""
    if alias and "/" not in alias and ":" not in alias:
        return alias
    return f"{re.sub('[/:]', '_', alias) or 'alias'}-h{short_hash(alias)}"
