"""Read a run's five pillars back, check them, and rebuild the run from its record.

* :func:`find_record` loads one run (id, id prefix or name) from the local journal or any backend's Reader.
* :func:`check_pillars` checks the five pillars and the invocation of a run (what ``trackkit doctor RUN``
  prints); :func:`check_run_against_standard` lists how a run breaks the team standard (``trackkit doctor``).
* :func:`write_script` writes ``reproduce.sh`` (+ ``config.json``, the patch, the requirements) that
  checks out the recorded commit into a fresh worktree, applies the uncommitted changes, installs the
  recorded packages into a fresh virtualenv (the local and editable ones from their recorded sources)
  and runs the recorded command line, journaled and delivered where the original was
  (``trackkit reproduce``).

Standard library only (the Readers are loaded by registry string when a backend is named).
"""

from __future__ import annotations

from ._doctor import ALL_PILLARS, PillarCheck, check_pillars, check_run_against_standard
from ._record import find_record, provenance_files, run_meta
from ._script import write_script

__all__ = [
    "ALL_PILLARS",
    "PillarCheck",
    "check_pillars",
    "check_run_against_standard",
    "find_record",
    "provenance_files",
    "run_meta",
    "write_script",
]
