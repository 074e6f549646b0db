"""Console capture: the trainer's stdout and stderr at the file-descriptor level, kept by the agent.

``capture`` is the trainer's side (the pipes on fds 1 and 2, the watchdog, the end), ``pump``
the agent's (show, keep, journal), ``lines`` turns bytes into stored lines. docs/console-and-system.md
"""

from __future__ import annotations

from .capture import ConsoleCapture, ConsoleEnd, sentinel_for
from .lines import LineAssembler, clean_line
from .pump import ConsolePump

__all__ = ["ConsoleCapture", "ConsoleEnd", "ConsolePump", "LineAssembler", "clean_line", "sentinel_for"]
