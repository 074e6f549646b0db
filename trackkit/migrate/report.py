"""What a migration did: ``Report`` (per run), ``Mismatch`` (one difference), ``SkippedArtifact``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..util import jsonable

__all__ = ["BATCH", "STATUS_TAG", "Mismatch", "Report", "SkippedArtifact"]


#: the status tag every sink writes by its own rule: not replayed, not compared as a user tag
STATUS_TAG = "trackkit.status"
#: events per ``emit`` call
BATCH = 500


@dataclass(frozen=True)
class Mismatch:
    """One difference between the source run and what the target holds."""

    #: run, config, tag, status, metric, artifact
    kind: str
    key: str
    expected: Any
    got: Any

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: expected {show(self.expected)}, got {show(self.got)}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "expected": jsonable(self.expected), "got": jsonable(self.got)}


@dataclass(frozen=True)
class SkippedArtifact:
    name: str
    version: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} v{self.version}: {self.reason}"


@dataclass
class Report:
    """The outcome of migrating one run."""

    run_id: str
    source: str
    target: str
    name: str = ""
    #: events were replayed into the target by this call
    copied: bool = False
    #: the target held the run before this call (nothing was replayed)
    already_present: bool = False
    #: verification ran (``verify=True``)
    verified: bool = False
    #: nothing was written: the report says what a migration would copy and skip
    dry_run: bool = False
    events: int = 0
    points: int = 0
    metric_keys: int = 0
    artifacts: list[str] = field(default_factory=list)
    skipped: list[SkippedArtifact] = field(default_factory=list)
    #: media values copied, by kind (``{"image": 5, "histogram": 5}``)
    media: dict[str, int] = field(default_factory=dict)
    #: media values not copied, each ``"<kind> <key>@<step>: <why>"``
    skipped_media: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the source's damaged files (``RunInfo.damage``: "FILE cut at byte N of M"): only the readable part
    #: was there to copy. Not a failure (``ok`` stays true: the readable part is copied and verified)
    damage: list[str] = field(default_factory=list)
    #: where the target keeps the copy (read back), when verified
    target_location: str = ""
    #: set when the migration itself failed (the run could not be read or written)
    error: str = ""
    seconds: float = 0.0
    #: where ``seconds`` went: ``read`` (the source's reader), ``write`` (the target's sink, its close
    #: included), ``verify`` (the copy read back and compared); the rest is planning and listing
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No error and no mismatch (skipped artifacts are listed, not failures)."""
        return not self.error and not self.mismatches

    @property
    def source_damaged(self) -> bool:
        """The source run's files are damaged: what was copied (and verified) is their readable part."""
        return bool(self.damage)

    def summary(self, max_mismatches: int = 20) -> str:
        head = f"{self.run_id} ({self.name}) {self.source} -> {self.target}: "
        if self.error:
            return head + f"FAILED: {self.error}"
        what = "copied" if self.copied else ("already there, not copied again" if self.already_present else "")
        if self.dry_run:
            what = "dry run, nothing written: would copy" if not self.already_present else what
        if self.damage and not self.already_present:
            what += " the readable part (the source is damaged)"
        lines = [head + f"{what}; {self.points} points in {self.metric_keys} metrics, "
                 f"{len(self.artifacts)} artifacts, {len(self.skipped)} skipped, {media_text(self.media)}"
                 + (f", {len(self.skipped_media)} media skipped" if self.skipped_media else "")]
        lines += [f"  damaged source: {d}" for d in self.damage]
        lines += [f"  skipped artifact {s}" for s in self.skipped]
        lines += [f"  skipped media {s}" for s in self.skipped_media]
        lines += [f"  note: {n}" for n in self.notes]
        if self.verified:
            lines.append(f"  verified: {'OK' if not self.mismatches else f'{len(self.mismatches)} mismatches'}")
        lines += [f"  mismatch: {m}" for m in self.mismatches[:max_mismatches]]
        if len(self.mismatches) > max_mismatches:
            lines.append(f"  ... and {len(self.mismatches) - max_mismatches} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "name": self.name, "source": self.source, "target": self.target,
            "ok": self.ok, "copied": self.copied, "already_present": self.already_present,
            "verified": self.verified, "dry_run": self.dry_run, "events": self.events, "points": self.points,
            "metric_keys": self.metric_keys, "artifacts": list(self.artifacts), "media": dict(self.media),
            "skipped_media": list(self.skipped_media),
            "skipped": [{"name": s.name, "version": s.version, "path": s.path, "reason": s.reason}
                        for s in self.skipped],
            "mismatches": [m.to_dict() for m in self.mismatches], "notes": list(self.notes),
            "source_damaged": self.source_damaged, "damage": list(self.damage),
            "target_location": self.target_location, "error": self.error, "seconds": round(self.seconds, 3),
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
        }


def media_text(counts: dict[str, int]) -> str:
    if not counts:
        return "0 media"
    return f"{sum(counts.values())} media (" + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ")"


def show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 200 else text[:197] + "..."
