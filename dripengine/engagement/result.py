"""What one ingest did, counted: events received, stored, duplicates, and their effects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0  # new events written
    duplicates: int = 0  # already had them (by provider event id or dedupe key)
    unmatched: int = 0  # no message and no lead found: stored without a lead, no effect
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (index, why): not storable
    suppressed: list[str] = field(default_factory=list)  # addresses newly suppressed
    requalified: list[str] = field(default_factory=list)  # leads handed back to sales
    paused: list[str] = field(default_factory=list)  # campaigns the complaint breaker paused

    def add(self, other: IngestResult) -> None:
        self.received += other.received
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.unmatched += other.unmatched
        self.skipped += other.skipped
        self.suppressed += other.suppressed
        self.requalified += other.requalified
        self.paused += other.paused

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "unmatched": self.unmatched,
            "skipped": len(self.skipped),
            "suppressed": len(self.suppressed),
            "requalified": len(self.requalified),
            "paused": len(self.paused),
        }


__all__ = ["IngestResult"]
