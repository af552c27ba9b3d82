"""The one path every event takes into the database (webhooks, tracking, unsubscribe, API, files).

BEING WRITTEN — the interface below is the contract; the body lands shortly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.engagement.vocabulary import IncomingEvent
from dripengine.sla import SLA


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0  # new events written
    duplicates: int = 0  # already had them (by provider event id or dedupe key)
    unmatched: int = 0  # no message and no lead found: stored without a lead, no effect
    suppressed: list[str] = field(default_factory=list)  # addresses newly suppressed
    requalified: list[str] = field(default_factory=list)  # leads handed back to sales


class Engagement:
    """Stores events and applies their effects in one transaction per call: the message left
    ``unknown`` by a crash is resolved, opt-outs suppress and exit every enrollment, engagement
    rescoring (ScoreChange rows), requalification and the CRM handoff row."""

    def __init__(self, engine: Engine, settings: Settings, sla: SLA, clock: Clock) -> None:
        self.engine = engine
        self.settings = settings
        self.sla = sla
        self.clock = clock

    def ingest(self, events: Sequence[IncomingEvent]) -> IngestResult:
        raise NotImplementedError
