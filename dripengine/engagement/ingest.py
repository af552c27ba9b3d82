"""The one path every event takes into the database (webhooks, tracking, unsubscribe, API, files).

:meth:`Engagement.ingest` takes a batch of :class:`IncomingEvent` and, in one transaction, runs the
engagement pipeline:

1. admits each event (:mod:`dripengine.engagement.admit`: ids storable, NULs out of the evidence);
2. leaves out the events stored before (a provider's retry) and repeats within the batch
   (:func:`dripengine.engagement.store.unseen`);
3. matches each new one to our Message (by our uid, else the provider's message id) or to a lead
   by address, and flags link-scanner clicks as machine events
   (:mod:`dripengine.engagement.matching`);
4. stores them, each once, even when two `drip serve` processes race on the same webhook retry
   (:func:`dripengine.engagement.store.store_new`);
5. applies the effects of the new ones, in the order they happened
   (:mod:`dripengine.engagement.effects`): messages settled on the provider's evidence,
   suppressions, rescoring (:mod:`dripengine.engagement.rescore`), and the funnel's
   requalification of a recycled lead whose score and fit meet the SLA
   (:func:`dripengine.funnel.requalify.requalify`).

Nothing is half-stored: the batch commits as a whole or not at all. Ingests racing on one lead
(threads of one `drip serve`, several processes) take turns on it: the leads are locked before
their scores are read (:func:`dripengine.storage.events.event_leads`), so no point is lost and a
lead is requalified once. After a complaint or a hard
bounce the complaint breaker looks at the campaigns.
"""

from __future__ import annotations

from collections.abc import Sequence

from dripengine import vocabulary as v
from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.engagement.admit import NotStorable, admit
from dripengine.engagement.breaker import check_breakers
from dripengine.engagement.effects import Effects
from dripengine.engagement.matching import match
from dripengine.engagement.result import IngestResult
from dripengine.engagement.store import store_new, unseen
from dripengine.funnel.sla import SLA
from dripengine.scoring.rules import ScoringRules, rules_from_settings
from dripengine.storage import Engine
from dripengine.vocabulary import IncomingEvent

BREAKER_EVENTS = frozenset({v.COMPLAINT, v.BOUNCE})


class Engagement:
    """Stores events and applies their effects (see the module's docstring)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        sla: SLA,
        clock: Clock,
        *,
        rules: ScoringRules | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.sla = sla
        self.clock = clock
        self.rules = rules or rules_from_settings(settings.scoring)

    def ingest(self, events: Sequence[IncomingEvent]) -> IngestResult:
        result = IngestResult(received=len(events))
        events = _admitted(events, result)
        if not events:
            return result
        now = self.clock.now()
        with self.engine.begin() as connection:
            fresh = unseen(connection, events, result)
            matched = match(connection, fresh, self.rules) if fresh else []
            new = store_new(connection, matched, now, result)
            if new:
                effects = Effects(connection, self.settings, self.sla, self.rules, now, result)
                effects.apply(new)
        if any(m.event.type in BREAKER_EVENTS for _, m in new):
            # a complaint or a hard bounce may have pushed its campaign past the breaker
            result.paused = check_breakers(self.engine, self.settings, now)
        return result


def _admitted(events: Sequence[IncomingEvent], result: IngestResult) -> list[IncomingEvent]:
    """The events the database can take; the others counted in ``result.skipped``."""
    kept = []
    for index, event in enumerate(events):
        try:
            kept.append(admit(event))
        except NotStorable as exc:
            result.skipped.append((index, str(exc)))
    return kept


__all__ = ["Engagement"]
