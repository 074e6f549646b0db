"""What a run's backends cannot hold, said when it applies to this run's data: a key that had to
be mapped, a config value that is shortened, an infinity a backend clamps. Once per backend and
kind, in one line, as an advisory (``advisories = false`` / ``TRACKKIT_ADVISORIES=0`` silences
them). Nothing is lost either way: the mapped key, the full value and the true infinity are kept
and restored when the run is read back (docs/configuration.md). See docs/architecture.md."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .backend import BackendSpec, Capabilities, capabilities_of

__all__ = ["Limits"]

_PLURAL = {"audio": "audio clips", "text": "texts"}


class Limits:
    def __init__(self, backends: Sequence[tuple[str, Capabilities]], warn: Callable[[str], None]) -> None:
        #: (backend string fit to show, what it can hold), only those with a gap
        self._backends = [(name, caps) for name, caps in backends if caps.gaps()]
        self._warn = warn
        self._said: set[tuple[str, str]] = set()

    @classmethod
    def of(cls, specs: Sequence[BackendSpec], warn: Callable[[str], None]) -> Limits:
        from .registry import display_backend, sink_class

        out = []
        for spec in specs:
            try:
                out.append((display_backend(spec), capabilities_of(sink_class(spec))))
            except Exception:  # a plug-in that cannot be loaded here: its agent reports it
                continue
        return cls(out, warn)

    def __bool__(self) -> bool:
        return bool(self._backends)

    def _say(self, backend: str, kind: str, text: str) -> None:
        if (backend, kind) not in self._said:
            self._said.add((backend, kind))
            self._warn(f"trackkit: {backend}: {text} (said once per backend)")

    def key(self, key: str, what: str = "metric") -> None:
        """A key this run uses for the first time. Never raises (it runs inside ``log()``)."""
        for name, caps in self._backends:
            try:
                stored = caps.key_rule(key) if caps.key_rule is not None else key
            except Exception:
                continue
            if stored != key:
                self._say(name, "key", f"the {what} key {key!r} cannot be stored as it is; it is stored as "
                          f"{stored!r} and read back under its own name")

    def value(self, key: str, value: float) -> None:
        """A non-finite value logged under ``key``."""
        for name, caps in self._backends:
            if math.isinf(value) and not caps.stores_inf:
                self._say(name, "inf", f"{key}={value} is clamped to ±1.8e308 by the backend; the true value "
                          "is kept as a tag and restored when read")
            elif math.isnan(value) and not caps.stores_nan:
                self._say(name, "nan", f"{key}=nan cannot be stored; it is kept as a tag")

    def config(self, flat: Mapping[str, Any]) -> None:
        """Config values (flattened by the config rule) this run records."""
        if not self._backends:
            return
        for key, value in flat.items():
            self.key(key, "config")
            text = value if isinstance(value, str) else repr(value)
            for name, caps in self._backends:
                if caps.max_param_length is not None and len(text) > caps.max_param_length:
                    self._say(name, "param", f"config value {key!r} ({len(text)} characters) is longer than "
                              f"the backend holds ({caps.max_param_length}); it is shortened there, the full "
                              "config is kept as the config.json artifact")

    def media(self, kind: str) -> None:
        """The first media value of ``kind`` this run logs: say which backends keep it in another form."""
        for name, caps in self._backends:
            instead = caps.media.get(kind)
            if instead:
                what = _PLURAL.get(kind, kind + "s")
                self._say(name, f"media:{kind}", f"has no native {kind} type; trackkit stores {what} there as "
                          f"{instead} (docs/media.md)")
