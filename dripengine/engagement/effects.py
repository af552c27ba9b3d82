"""An ingest's last step: what a batch of newly stored events changes, in their order.

- a message left ``unknown`` by a crash becomes ``sent`` on the provider's word that it had it;
  ``dropped`` marks it failed;
- unsubscribes, hard bounces and complaints suppress the address and exit every enrollment at once
  (:mod:`dripengine.storage.suppression`, :func:`dripengine.storage.leads.exit_enrollments`); soft
  bounces after a configured count in a row;
- engagement rescores the lead (:mod:`dripengine.engagement.rescore`);
- a lead whose score went up is handed to the funnel, which may return it to sales
  (:func:`dripengine.funnel.requalify.requalify`).

The leads are read once and written back with one executemany.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from dripengine import vocabulary as v
from dripengine.config import Settings
from dripengine.engagement.matching import Matched
from dripengine.engagement.rescore import Rescore
from dripengine.engagement.result import IngestResult
from dripengine.funnel.requalify import requalify
from dripengine.funnel.sla import SLA
from dripengine.scoring.rules import ScoringRules
from dripengine.storage import Connection, suppression
from dripengine.storage import events as store
from dripengine.storage.leads import exit_enrollments


class Effects:
    """The effects of a batch of newly stored events, in one connection's transaction."""

    def __init__(
        self,
        connection: Connection,
        settings: Settings,
        sla: SLA,
        rules: ScoringRules,
        now: datetime,
        result: IngestResult,
    ) -> None:
        self.connection = connection
        self.settings = settings
        self.sla = sla
        self.rules = rules
        self.now = now
        self.result = result

    def apply(self, new: list[tuple[int, Matched]]) -> None:
        self._resolve_messages([m for _, m in new])
        with_lead = [(event_id, m) for event_id, m in new if m.lead_id is not None]
        if not with_lead:
            return
        lead_ids = sorted({m.lead_id for _, m in with_lead if m.lead_id is not None})
        leads = self._leads(lead_ids)
        # the addresses already suppressed, plain or hashed (an erased one asked too)
        suppressed = set(
            suppression.suppressed(self.connection, [x["email"] for x in leads.values()])
        )
        rescore = Rescore(self.connection, self.rules)
        rescore.load_earned(lead_ids, [m.event.occurred_at for _, m in with_lead])
        scored: dict[int, str | None] = {}  # lead -> campaign of the last scoring event
        for event_id, m in with_lead:
            assert m.lead_id is not None
            lead = leads[m.lead_id]
            kind = m.event.type
            if kind in v.SUPPRESSES:
                self._suppress(lead, v.SUPPRESSES[kind], m, suppressed)
            elif kind == v.SOFT_BOUNCE:
                lead["soft_bounces"] += 1
                lead["_dirty"] = True
                if lead["soft_bounces"] >= self.settings.scoring.soft_bounce_limit:
                    self._suppress(lead, "soft_bounce", m, suppressed)
            elif kind == v.DELIVERED and lead["soft_bounces"]:
                lead["soft_bounces"] = 0
                lead["_dirty"] = True
            if rescore.score(event_id, m, lead):
                scored[m.lead_id] = m.message["campaign_id"] if m.message is not None else None
        # the score changes go in before the requalification reads them back as its evidence
        rescore.flush()
        for lead_id, campaign_id in scored.items():
            lead = leads[lead_id]
            if requalify(
                self.connection,
                lead,
                campaign_id,
                suppressed=lead["email"] in suppressed,
                sla=self.sla,
                rules=self.rules,
                fit_rules=self.settings.scoring.fit_rules,
                now=self.now,
            ):
                lead["_dirty"] = True
                self.result.requalified.append(lead["email"])
        self._write_leads(leads.values())

    def _resolve_messages(self, matched: Iterable[Matched]) -> None:
        """A message left ``unknown`` (a crash between the provider call and our record) becomes
        ``sent`` on the provider's word that it had it; ``dropped`` marks it failed."""
        sent: dict[int, datetime] = {}
        dropped: dict[int, str] = {}
        for m in matched:
            if m.message is None:
                continue
            if m.event.type in v.ACCEPTED and m.message["status"] == "unknown":
                sent.setdefault(m.message["id"], m.event.occurred_at)
            elif m.event.type == v.DROPPED and m.message["status"] in ("unknown", "sent"):
                dropped[m.message["id"]] = m.event.detail or "no reason given"
        for message_id, at in sent.items():
            store.settle_sent(self.connection, message_id, at)
        for message_id, reason in dropped.items():
            store.settle_dropped(self.connection, message_id, reason)

    def _leads(self, lead_ids: list[int]) -> dict[int, dict[str, Any]]:
        leads = store.event_leads(self.connection, lead_ids)
        for lead in leads.values():
            lead["_dirty"] = False
        return leads

    def _write_leads(self, leads: Iterable[dict[str, Any]]) -> None:
        """One executemany for every lead this batch changed."""
        rows = [
            {
                "row_id": lead["id"],
                "score": lead["score"],
                "score_updated_at": lead["score_updated_at"],
                "soft_bounces": lead["soft_bounces"],
                "stage": lead["stage"],  # the funnel's: mql when requalify() returned it to sales
                "requalified_at": lead.get("requalified_at"),
                "updated_at": self.now,
            }
            for lead in leads
            if lead["_dirty"]
        ]
        if rows:
            store.update_event_leads(self.connection, rows)

    def _suppress(
        self, lead: dict[str, Any], reason: str, m: Matched, suppressed: set[str]
    ) -> None:
        email = lead["email"]
        if email in suppressed:
            return
        suppressed.add(email)
        where = f"{m.event.provider} {m.event.type}" + (
            f" of {m.message['campaign_id']}/{m.message['step_id']}" if m.message else ""
        )
        suppression.add(
            self.connection, email, reason, self.now, source=where[:200], note=m.event.detail
        )
        exit_enrollments(self.connection, lead["id"], f"suppressed: {reason}", self.now)
        self.result.suppressed.append(email)


__all__ = ["Effects"]
