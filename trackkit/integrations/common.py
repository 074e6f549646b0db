"""What the framework integrations share: checking the ``trackkit.init`` keywords they are given
at construction, and choosing the run they record into."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..run import Run, current_run
from ..session import init

__all__ = ["check_init_kwargs", "check_run_or_init_kwargs", "open_run"]


def check_init_kwargs(owner: str, kwargs: Mapping[str, Any]) -> None:
    """Raise at construction (not mid-training) when a keyword is not one ``trackkit.init`` takes."""
    accepted = set(inspect.signature(init).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"{owner}: unknown keyword(s) {unknown}. Fix: use the keywords of trackkit.init: {sorted(accepted)}"
        )


def check_run_or_init_kwargs(owner: str, run: Run | None, kwargs: Mapping[str, Any]) -> None:
    """An integration takes a run *or* ``trackkit.init`` keywords (checked now), not both."""
    if run is not None and kwargs:
        raise ConfigError(
            f"{owner}: pass either run= or trackkit.init keywords, not both (got {sorted(kwargs)}). "
            "Fix: set them on trackkit.init(...) and pass the run"
        )
    check_init_kwargs(owner, kwargs)


def open_run(given: Run | None, init_kwargs: Mapping[str, Any]) -> tuple[Run, bool]:
    """The run to record into and whether the integration owns it (and so finishes it): the run it
    was given, else the active run when it was given no keywords, else a new ``trackkit.init``."""
    if given is not None:
        return given, False
    active = current_run()
    if not init_kwargs and active is not None:
        return active, False
    return init(**init_kwargs), True
