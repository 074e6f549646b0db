"""Copy runs between backends (Reader -> Sink) and prove the copy by reading it back.

::

    from trackkit.migrate import migrate, migrate_all

    report = migrate("a1b2c3", "tensorboard:./runs", "mlflow:./mlflow.db")
    print(report.summary())          # points, artifacts, every mismatch
    assert report.ok

What happens (``docs/reading-back.md``):

1. the run is read through the source backend's Reader in bounded chunks (its ``stream_run``
   where it has one), so memory stays flat whatever the run's size;
2. when the target already holds a run with that id, nothing is replayed (a second
   replay would duplicate points in TensorBoard and W&B): the report says so and the
   existing copy is verified;
3. otherwise its events are replayed into the target's Sink, ``RunStarted`` first, in
   batches; artifacts whose stored file is local are handed to the sink (which copies
   them), others are skipped with the reason; the sink is closed;
4. verification reads the run back through the target's Reader and compares every
   metric point (per-key digests of step and value, then point by point for a key whose
   digests differ: float32 tolerance when TensorBoard is on either side; NaN equals NaN,
   ±inf equals itself), the flattened config, the tags, the status and its reason, the
   name/project/group, every media value by what it shows (pixels, counts, cells, samples)
   and every copied artifact's sha256 (recorded, and recomputed from the file when the
   target's copy is a local file). Every difference is one ``Mismatch`` in the report.

``dry_run=True`` reads and plans only. The package: ``report`` (``Report``, ``Mismatch``),
``copy`` (the streaming copy), ``compare`` (verification).

The run keeps its trackkit run id, so the target's own resume key finds it again; the
source is recorded in the copy's run metadata as ``migrated_from``.
"""

from __future__ import annotations

from ..util import sha256_of
from .compare import verify
from .copy import Progress, migrate, migrate_all, migrate_many
from .report import Mismatch, Report, SkippedArtifact

__all__ = ["Mismatch", "Progress", "Report", "SkippedArtifact", "migrate", "migrate_all", "migrate_many", "sha256_of",
           "verify"]
