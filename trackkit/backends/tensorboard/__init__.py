"""TensorBoard, the default backend — written with the ``tensorboard`` package alone (no torch, no TensorFlow).

Layout: ``<location>/<project>/[<group>/]<run name>/`` holds the event files,
``config.json`` and ``artifacts/<name>/v<N>/``. A marker file
``.trackkit_run_id`` ties the directory to its run; a second run with the same
name gets ``<run name>-<run id>``.

Modules: ``layout`` (the directory's names, trackkit's text tags), ``sink`` (``TensorBoardSink``),
``reader`` (``TensorBoardReader``), ``discover`` (which directories of any logdir are one run),
``stream`` (a run's event files as bounded chunks of events), ``records`` (event files at the
record level: the sink's writer, the damage-tolerant reader), ``crc`` (the C CRC32C),
``media_out``/``media_in`` (media values as summaries and back). See docs/backends/tensorboard.md
for the mapping. Importing this package is cheap: ``tensorboard`` is imported when a sink or
reader is used.
"""

from __future__ import annotations

from .layout import MARKER, TAGS_FILE, check_location, run_dir_for
from .reader import TensorBoardReader
from .sink import MEDIA_CAPABILITIES, TensorBoardSink

__all__ = ["MARKER", "MEDIA_CAPABILITIES", "TAGS_FILE", "TensorBoardReader", "TensorBoardSink", "check_location",
           "run_dir_for"]
