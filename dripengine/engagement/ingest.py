"""The one path every event takes into the database (webhooks, tracking, unsubscribe, API, files).

:meth:`Engagement.ingest` takes a batch of :class:`IncomingEvent` and, in one transaction:

1. matches each to our Message (by our uid, else the provider's message id) or to a lead by address;
2. flags link-scanner clicks (too soon after the email left us) as machine events;
3. stores the events not seen before: duplicates are recognised by the provider's event id and by
   the dedupe key, both unique in the table, so two `drip serve` processes racing on the same
   SendGrid retry still store it once (``INSERT … ON CONFLICT DO NOTHING``);
4. applies the effects of the new ones, in the order they happened: a message left ``unknown`` by
   a crash becomes ``sent`` on the provider's evidence; unsubscribes, hard bounces and complaints
   suppress the address and exit every enrollment at once (soft bounces after a configured count in
   a row); engagement rescores the lead (ScoreChange rows; machine events count 0; daily caps);
   a recycled lead whose score and fit meet the SLA is requalified: stage mql, enrollments exited,
   and a Handoff row for the CRM.

Nothing is half-stored: the batch commits as a whole or not at all.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.engine import Connection, Engine

from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.engagement import vocabulary as v
from dripengine.engagement.admit import NotStorable, admit
from dripengine.engagement.vocabulary import IncomingEvent
from dripengine.funnel.sla import SLA
from dripengine.funnel.stages import Stage
from dripengine.scoring.rules import (
    ScoringRules,
    add,
    decayed,
    fit_grade,
    requalifies,
    rules_from_settings,
)
from dripengine.sending.breaker import check_breakers
from dripengine.storage import suppression, upsert
from dripengine.storage.leads import exit_enrollments
from dripengine.storage.models import (
    Event,
    Handoff,
    Lead,
    Message,
    RecycleRecord,
    ScoreChange,
    StageChange,
)

EVENT: Table = Event.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
SCORE_CHANGE: Table = ScoreChange.__table__  # type: ignore[attr-defined]
STAGE_CHANGE: Table = StageChange.__table__  # type: ignore[attr-defined]
RECYCLE_RECORD: Table = RecycleRecord.__table__  # type: ignore[attr-defined]
HANDOFF: Table = Handoff.__table__  # type: ignore[attr-defined]

EVIDENCE_LIMIT = 20  # human events listed in a handoff
BREAKER_EVENTS = frozenset({v.COMPLAINT, v.BOUNCE})


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


@dataclass
class _Matched:
    event: IncomingEvent
    key: str
    message: Mapping[str, Any] | None
    lead_id: int | None


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
        events = self._admitted(events, result)
        if not events:
            return result
        now = self.clock.now()
        with self.engine.begin() as connection:
            matched = self._match(connection, events)
            new = self._store(connection, matched, now, result)
            if new:
                _Effects(connection, self, now, result).apply(new)
        if any(m.event.type in BREAKER_EVENTS for _, m in new):
            # a complaint or a hard bounce may have pushed its campaign past the breaker
            result.paused = check_breakers(self.engine, self.settings, now)
        return result

    # --- 1. match ---------------------------------------------------------------------------------

    def _match(self, connection: Connection, events: Sequence[IncomingEvent]) -> list[_Matched]:
        uids = {e.message_uid for e in events if e.message_uid}
        provider_ids = {  # as the parser left them: the X-Message-Id our send was answered with
            e.provider_message_id for e in events if not e.message_uid and e.provider_message_id
        }
        columns = (
            MESSAGE.c.id,
            MESSAGE.c.uid,
            MESSAGE.c.lead_id,
            MESSAGE.c.campaign_id,
            MESSAGE.c.step_id,
            MESSAGE.c.status,
            MESSAGE.c.sent_at,
            MESSAGE.c.provider_message_id,
        )
        by_uid: dict[str, Mapping[str, Any]] = {}
        by_provider: dict[str, Mapping[str, Any]] = {}
        names = [column.name for column in columns]
        for chunk in _chunks(sorted(uids)):
            for row in connection.execute(select(*columns).where(MESSAGE.c.uid.in_(chunk))):
                by_uid[row[1]] = dict(zip(names, row, strict=True))
        for chunk in _chunks(sorted(provider_ids)):
            query = select(*columns).where(MESSAGE.c.provider_message_id.in_(chunk))
            for row in connection.execute(query):
                by_provider[row[-1]] = dict(zip(names, row, strict=True))
        emails: set[str] = set()
        for e in events:
            if e.email and (e.message_uid or "") not in by_uid:
                email = _normalised(e.email)
                if email:
                    emails.add(email)
        leads: dict[str, int] = {}
        for chunk in _chunks(sorted(emails)):
            query = select(LEAD.c.id, LEAD.c.email).where(LEAD.c.email.in_(chunk))
            leads.update({row.email: row.id for row in connection.execute(query)})
        matched = []
        for e in events:
            message = by_uid.get(e.message_uid) if e.message_uid else None
            if message is None and e.provider_message_id:
                message = by_provider.get(e.provider_message_id)
            lead_id = message["lead_id"] if message is not None else None
            if lead_id is None and e.email:
                lead_id = leads.get(_normalised(e.email) or "")
            if (
                e.type == v.CLICK
                and not e.machine
                and message is not None
                and self.rules.is_scanner_click(e.occurred_at, message["sent_at"])
            ):
                e = replace(e, machine=True, detail=e.detail or "clicked seconds after sending")
            matched.append(_Matched(e, e.dedupe_key(), message, lead_id))
        return matched

    @staticmethod
    def _admitted(events: Sequence[IncomingEvent], result: IngestResult) -> list[IncomingEvent]:
        """The events the database can take; the others counted in ``result.skipped``."""
        kept = []
        for index, event in enumerate(events):
            try:
                kept.append(admit(event))
            except NotStorable as exc:
                result.skipped.append((index, str(exc)))
        return kept

    # --- 2. store ---------------------------------------------------------------------------------

    def _store(
        self, connection: Connection, matched: list[_Matched], now: datetime, result: IngestResult
    ) -> list[tuple[int, _Matched]]:
        """Insert the events not stored before; ``(event id, match)`` of each new one."""
        seen_keys: set[str] = set()
        seen_ids: set[tuple[str, str]] = set()
        for chunk in _chunks(sorted({m.key for m in matched})):
            query = select(EVENT.c.dedupe_key).where(EVENT.c.dedupe_key.in_(chunk))
            seen_keys.update(connection.scalars(query))
        by_provider: dict[str, set[str]] = defaultdict(set)
        for m in matched:
            if m.event.provider_event_id:
                by_provider[m.event.provider].add(m.event.provider_event_id)
        for provider, ids in by_provider.items():
            for chunk in _chunks(sorted(ids)):
                query = select(EVENT.c.provider_event_id).where(
                    EVENT.c.provider == provider, EVENT.c.provider_event_id.in_(chunk)
                )
                seen_ids.update((provider, i) for i in connection.scalars(query))
        fresh: dict[str, _Matched] = {}
        for m in matched:
            event_id = (m.event.provider, m.event.provider_event_id or "")
            if m.key in seen_keys or (m.event.provider_event_id and event_id in seen_ids):
                result.duplicates += 1
                continue
            seen_keys.add(m.key)
            if m.event.provider_event_id:
                seen_ids.add(event_id)
            fresh[m.key] = m
        if not fresh:
            return []
        rows = [_event_row(m, now) for m in fresh.values()]
        statement = _insert_ignoring_duplicates(connection, EVENT).returning(
            EVENT.c.id, EVENT.c.dedupe_key
        )
        stored: list[tuple[int, _Matched]] = []
        for chunk in _chunks(rows, 1000):
            for event_id, key in connection.execute(statement, chunk):
                stored.append((event_id, fresh[key]))
        # a concurrent ingest may have stored some of them between our look and our insert
        result.duplicates += len(fresh) - len(stored)
        result.stored += len(stored)
        result.unmatched += sum(1 for _, m in stored if m.lead_id is None)
        stored.sort(key=lambda item: (item[1].event.occurred_at, item[0]))
        return stored


class _Effects:
    """The effects of a batch of newly stored events, in one connection's transaction."""

    def __init__(
        self, connection: Connection, engagement: Engagement, now: datetime, result: IngestResult
    ) -> None:
        self.connection = connection
        self.engagement = engagement
        self.rules = engagement.rules
        self.settings = engagement.settings
        self.now = now
        self.result = result
        self.score_changes: list[dict[str, Any]] = []

    def apply(self, new: list[tuple[int, _Matched]]) -> None:
        self._resolve_messages([m for _, m in new])
        with_lead = [(event_id, m) for event_id, m in new if m.lead_id is not None]
        if not with_lead:
            return
        lead_ids = sorted({m.lead_id for _, m in with_lead if m.lead_id is not None})
        leads = self._leads(lead_ids)
        suppressed = self._suppressed([lead["email"] for lead in leads.values()])
        earned = self._earned_today(lead_ids, [m.event.occurred_at for _, m in with_lead])
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
            if self._score(event_id, m, lead, earned):
                scored[m.lead_id] = m.message["campaign_id"] if m.message is not None else None
        # the score changes go in before the requalification reads them back as its evidence
        if self.score_changes:
            self.connection.execute(SCORE_CHANGE.insert(), self.score_changes)
        for lead_id, campaign_id in scored.items():
            self._maybe_requalify(leads[lead_id], campaign_id, suppressed)
        self._write_leads(leads.values())

    # --- messages -----------------------------------------------------------------------------------

    def _resolve_messages(self, matched: Iterable[_Matched]) -> None:
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
            self.connection.execute(
                update(MESSAGE)
                .where(MESSAGE.c.id == message_id, MESSAGE.c.status == "unknown")
                .values(status="sent", sent_at=func.coalesce(MESSAGE.c.sent_at, at))
            )
        for message_id, reason in dropped.items():
            self.connection.execute(
                update(MESSAGE)
                .where(MESSAGE.c.id == message_id)
                .values(status="failed", error=f"dropped by the provider: {reason}")
            )

    # --- leads ----------------------------------------------------------------------------------------

    def _leads(self, lead_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        columns = [
            LEAD.c[name]
            for name in (
                "id",
                "email",
                "stage",
                "score",
                "score_updated_at",
                "recycle_count",
                "scoring_stopped_at",
                "soft_bounces",
                "first_name",
                "last_name",
                "company",
                "title",
                "phone",
                "country",
                "attributes",
            )
        ]
        names = [column.name for column in columns]
        leads: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(lead_ids):
            query = select(*columns).where(LEAD.c.id.in_(chunk))
            for row in self.connection.execute(query):
                lead = dict(zip(names, row, strict=True))
                lead["_dirty"] = False
                leads[row[0]] = lead
        return leads

    def _write_leads(self, leads: Iterable[dict[str, Any]]) -> None:
        """One executemany for every lead this batch changed."""
        rows = [
            {
                "row_id": lead["id"],
                "score": lead["score"],
                "score_updated_at": lead["score_updated_at"],
                "soft_bounces": lead["soft_bounces"],
                "stage": lead["stage"],
                "requalified_at": lead.get("requalified_at"),
                "updated_at": self.now,
            }
            for lead in leads
            if lead["_dirty"]
        ]
        if rows:
            statement = (
                update(LEAD)
                .where(LEAD.c.id == bindparam("row_id"))
                .values(
                    requalified_at=func.coalesce(bindparam("requalified_at"), LEAD.c.requalified_at)
                )
            )
            self.connection.execute(statement, rows)

    # --- suppression -----------------------------------------------------------------------------

    def _suppressed(self, emails: Sequence[str]) -> set[str]:
        """The addresses already suppressed, plain or hashed (an erased one asked too)."""
        return set(suppression.suppressed(self.connection, emails))

    def _suppress(
        self, lead: dict[str, Any], reason: str, m: _Matched, suppressed: set[str]
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

    # --- scoring -----------------------------------------------------------------------------------

    def _earned_today(
        self, lead_ids: Sequence[int], times: Sequence[datetime]
    ) -> dict[tuple[int, str, datetime], float]:
        """Points already earned per (lead, event type, UTC day) on the days of this batch."""
        capped = set(self.rules.daily_caps)
        earned: dict[tuple[int, str, datetime], float] = defaultdict(float)
        if not capped:
            return earned
        start = _day(min(times))
        end = _day(max(times)) + timedelta(days=1)
        for chunk in _chunks(lead_ids):
            query = (
                select(
                    SCORE_CHANGE.c.lead_id, EVENT.c.type, SCORE_CHANGE.c.at, SCORE_CHANGE.c.delta
                )
                .join(EVENT, EVENT.c.id == SCORE_CHANGE.c.event_id)
                .where(
                    SCORE_CHANGE.c.lead_id.in_(chunk),
                    SCORE_CHANGE.c.at >= start,
                    SCORE_CHANGE.c.at < end,
                    EVENT.c.type.in_(sorted(capped)),
                )
            )
            for lead_id, kind, at, delta in self.connection.execute(query):
                earned[(lead_id, kind, _day(at))] += delta
        return earned

    def _score(
        self,
        event_id: int,
        m: _Matched,
        lead: dict[str, Any],
        earned: dict[tuple[int, str, datetime], float],
    ) -> bool:
        """Rescore ``lead`` for one event; True when its score went up."""
        e = m.event
        if lead["scoring_stopped_at"] is not None:  # an objection (GDPR Art. 21): no profiling
            return False
        points = self.rules.points(e.type, tag=e.tag, machine=e.machine)
        if points == 0:
            return False
        day_key = (lead["id"], e.type, _day(e.occurred_at))
        allowed = self.rules.cap(e.type, points, earned[day_key])
        if allowed == 0:
            return False
        earned[day_key] += allowed
        at = max(e.occurred_at, lead["score_updated_at"] or e.occurred_at)
        before = decayed(lead["score"], lead["score_updated_at"], at, self.rules.half_life_days)
        after = add(lead["score"], lead["score_updated_at"], at, allowed, self.rules)
        lead.update(score=after, score_updated_at=at, _dirty=True)
        self.score_changes.append(
            {
                "lead_id": lead["id"],
                "event_id": event_id,
                "delta": after - before,
                "score_after": after,
                "reason": _reason(m, allowed, points)[:200],
                "at": at,
            }
        )
        return after > before

    # --- requalification ----------------------------------------------------------------------------

    def _maybe_requalify(
        self, lead: dict[str, Any], campaign_id: str | None, suppressed: set[str]
    ) -> None:
        if lead["stage"] != Stage.RECYCLED or lead["email"] in suppressed:
            return
        rule = self.engagement.sla.requalification
        threshold = rule.threshold(lead["recycle_count"])
        score = decayed(
            lead["score"], lead["score_updated_at"], self.now, self.rules.half_life_days
        )
        if score < threshold:  # the common case: no query needed to know
            return
        fit = fit_grade(lead, self.settings.scoring.fit_rules)
        if not requalifies(
            score, threshold, reason_may_requalify=True, fit=fit.grade, min_fit=rule.min_fit
        ):
            return
        record = self.connection.execute(
            select(RECYCLE_RECORD)
            .where(RECYCLE_RECORD.c.lead_id == lead["id"])
            .order_by(RECYCLE_RECORD.c.at.desc(), RECYCLE_RECORD.c.id.desc())
            .limit(1)
        ).first()
        reason = self.engagement.sla.recycle_reasons.get(record.reason) if record else None
        if reason is not None and not reason.may_requalify:
            return
        campaign_id = campaign_id or (record.campaign_id if record else None)
        why = f"requalified by {campaign_id}" if campaign_id else "requalified"
        lead.update(stage=Stage.MQL.value, requalified_at=self.now, _dirty=True)
        self.connection.execute(
            STAGE_CHANGE.insert(),
            {
                "lead_id": lead["id"],
                "from_stage": Stage.RECYCLED.value,
                "to_stage": Stage.MQL.value,
                "reason": why[:64],
                "actor": "dripengine",
                "at": self.now,
            },
        )
        exit_enrollments(self.connection, lead["id"], "requalified", self.now)
        payload = self._handoff_payload(lead, record, campaign_id, score, fit.grade, threshold)
        self.connection.execute(
            HANDOFF.insert(),
            {
                "uid": uuid.uuid4().hex,
                "lead_id": lead["id"],
                "campaign_id": campaign_id,
                "score": round(score, 2),
                "fit_grade": fit.grade,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": self.now,
                "created_at": self.now,
            },
        )
        self.result.requalified.append(lead["email"])

    def _handoff_payload(
        self,
        lead: Mapping[str, Any],
        record: Any,
        campaign_id: str | None,
        score: float,
        fit: str,
        threshold: float,
    ) -> dict[str, Any]:
        since = record.at if record else None
        evidence_query = (
            select(
                EVENT.c.type,
                EVENT.c.occurred_at,
                EVENT.c.url,
                EVENT.c.tag,
                SCORE_CHANGE.c.delta,
                MESSAGE.c.campaign_id,
                MESSAGE.c.step_id,
                MESSAGE.c.subject,
            )
            .select_from(SCORE_CHANGE)
            .join(EVENT, EVENT.c.id == SCORE_CHANGE.c.event_id)
            .outerjoin(MESSAGE, MESSAGE.c.id == EVENT.c.message_id)
            .where(SCORE_CHANGE.c.lead_id == lead["id"], SCORE_CHANGE.c.delta > 0)
            .order_by(SCORE_CHANGE.c.at.desc(), SCORE_CHANGE.c.id.desc())
            .limit(EVIDENCE_LIMIT)
        )
        if since is not None:
            evidence_query = evidence_query.where(SCORE_CHANGE.c.at >= since)
        evidence = [
            {
                "type": row.type,
                "at": row.occurred_at.isoformat(),
                "points": round(row.delta, 2),
                "campaign": row.campaign_id,
                "step": row.step_id,
                "subject": row.subject,
                "url": row.url,
                "tag": row.tag,
            }
            for row in self.connection.execute(evidence_query)
        ]
        evidence.reverse()
        return {
            "event": "lead.requalified",
            "lead": {
                name: lead.get(name)
                for name in (
                    "email",
                    "first_name",
                    "last_name",
                    "company",
                    "title",
                    "phone",
                    "country",
                )
            },
            "attributes": dict(lead.get("attributes") or {}),
            "score": round(score, 2),
            "threshold": threshold,
            "fit_grade": fit,
            "campaign": campaign_id,
            "recycle": {
                "from_stage": record.from_stage,
                "reason": record.reason,
                "note": record.note,
                "recycled_at": record.at.isoformat(),
                "recycle_count": record.recycle_count,
            }
            if record
            else None,
            "days_in_nurture": (self.now - since).days if since else None,
            "requalified_at": self.now.isoformat(),
            "evidence": evidence,
        }


# --- helpers ----------------------------------------------------------------------------------------


def _reason(m: _Matched, allowed: float, points: float) -> str:
    e = m.event
    what = e.type + (f" [{e.tag}]" if e.tag else "")
    if m.message is not None:
        what += f" in {m.message['campaign_id']}/{m.message['step_id']}"
    elif e.provider == "api":
        what += " (API)"
    if allowed < points:
        what += f" (daily cap: {allowed:g} of {points:g})"
    return what


def _event_row(m: _Matched, now: datetime) -> dict[str, Any]:
    e = m.event
    return {
        "message_id": m.message["id"] if m.message is not None else None,
        "lead_id": m.lead_id,
        "type": e.type,
        "provider": e.provider,
        "provider_event_id": e.provider_event_id,
        "occurred_at": e.occurred_at,
        "received_at": now,
        "url": e.url,
        "tag": e.tag,
        "machine": e.machine,
        "dedupe_key": m.key,
        "detail": e.detail,
        "raw": dict(e.raw),
    }


def _insert_ignoring_duplicates(connection: Connection, table: Table) -> Any:
    return upsert.insert(connection, table).on_conflict_do_nothing()


def _normalised(email: str) -> str | None:
    try:
        return normalise_email(email)
    except InvalidEmail:  # an unusable address matches no lead
        return None


def _day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = ["Engagement", "IngestResult"]
