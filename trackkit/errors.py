"""One exception tree. Standard library only."""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendNotFound",
    "ConfigError",
    "DivergedError",
    "MissingDependency",
    "TrackkitError",
    "TrackkitWarning",
]


class TrackkitError(Exception):
    """Base of every error trackkit raises."""


class ConfigError(TrackkitError, ValueError):
    """Bad settings or arguments. The message names the field, its source and the fix."""


class BackendNotFound(ConfigError):
    """A backend string names a scheme nobody registered."""


class MissingDependency(TrackkitError, ImportError):
    """A backend's SDK is not installed; the message names the extra to install."""


class BackendError(TrackkitError):
    """A backend SDK failed; raised from the SDK's own exception at the adapter seam."""


class DivergedError(TrackkitError, FloatingPointError):
    """Raised by ``log()`` under ``on_nan="stop"`` when a value is NaN or infinite."""

    def __init__(self, key: str, value: float, step: int) -> None:
        super().__init__(f"{key}={value} at step {step}: training diverged (on_nan='stop')")
        self.key = key
        self.value = value
        self.step = step


class TrackkitWarning(UserWarning):
    """A problem trackkit handled for you (counted, warned once, data kept)."""
