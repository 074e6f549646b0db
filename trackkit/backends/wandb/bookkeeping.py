"""trackkit's bookkeeping inside a W&B run: the ``_trackkit`` config value and the tag set.

``_trackkit`` (hidden in the W&B UI by its leading ``_``) holds the run's provenance and
the maps of the names W&B could not hold (metric keys, config keys, tags), so the reader
can map them back. A resumed run restores it from its earlier segments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...events import RunStarted
from .decode import Decoded
from .names import (
    RESERVED_CONFIG_KEYS,
    STATUS_TAG,
    mapped_tag,
    parse_tag,
    reserved,
    stored_metric_key,
    tag_text,
)

__all__ = ["Bookkeeping"]


class Bookkeeping:
    """The ``_trackkit`` value of one run (``internal``) and its current W&B tags (``tags``).

    ``dirty`` says that ``internal`` changed since the sink last sent it to W&B.
    """

    def __init__(self, ev: RunStarted, prior: Decoded | None) -> None:
        self.internal: dict[str, Any] = {
            "v": 1,
            "run_id": ev.run_id,
            "project": ev.project,
            "name": ev.name,
            "start_time": ev.start_time,
            "meta": dict(ev.meta),
            "keys": {},
            "config_keys": {},
            "tags": {},
        }
        #: W&B tag text -> trackkit key (for replacement)
        self.tags: dict[str, str] = {}
        #: the trackkit config of the run: the first event's, or what earlier segments ended with
        self.config: dict[str, Any] = {str(k): v for k, v in (ev.config if prior is None else prior.config).items()}
        if prior is None:
            for k, v in ev.tags.items():
                self.add_tag(str(k), str(v))
        else:  # re-attach: keep what earlier segments learned (config updates, mapped keys, tags)
            for part in ("keys", "config_keys", "tags"):
                self.internal[part].update(prior.internal.get(part, {}))
            for text in prior.wandb_tags:  # on a resume the earlier segments' tags are the current ones
                pair = self.internal["tags"].get(text)
                self.tags[text] = str(pair[0]) if isinstance(pair, list) and pair else parse_tag(text)[0]
        #: the W&B config to open the run with
        self.start_config = self.wandb_config(self.config)
        self.dirty = False

    def take_dirty(self) -> bool:
        """True (once) when ``internal`` changed since the last call."""
        dirty, self.dirty = self.dirty, False
        return dirty

    def metric_key(self, key: str) -> str:
        """The W&B history column of a metric key (reserved names are mapped)."""
        mapped = stored_metric_key(key)
        if mapped == key:
            return key
        if self.internal["keys"].get(mapped) != key:
            self.internal["keys"][mapped] = key
            self.dirty = True
        return mapped

    def wandb_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A config (update) with W&B's reserved top-level keys mapped."""
        out: dict[str, Any] = {}
        for k, v in config.items():
            key = str(k)
            if key in RESERVED_CONFIG_KEYS:
                mapped = reserved(key)
                if self.internal["config_keys"].get(mapped) != key:
                    self.internal["config_keys"][mapped] = key
                    self.dirty = True
                key = mapped
            out[key] = v
        return out

    def add_tag(self, key: str, value: str) -> None:
        """Set the tag ``key`` (replacing its earlier value); long or ambiguous tags are mapped."""
        text = tag_text(key, value)
        mapped = mapped_tag(key, value)
        if mapped is not None:
            if self.internal["tags"].get(mapped) != [key, value]:
                self.internal["tags"][mapped] = [key, value]
                self.dirty = True
            text = mapped
        for old, old_key in list(self.tags.items()):
            if old_key == key and old != text:
                del self.tags[old]
        self.tags[text] = key

    def set_status(self, status: str | None) -> None:
        """The ``trackkit.status`` tag: the final status, or none while the run is running."""
        for text, key in list(self.tags.items()):
            if key == STATUS_TAG:
                del self.tags[text]
        if status is not None:
            self.tags[tag_text(STATUS_TAG, status)] = STATUS_TAG

    def wandb_tags(self) -> tuple[str, ...]:
        return tuple(sorted(self.tags))
