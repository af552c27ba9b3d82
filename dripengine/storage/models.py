"""The tables. Every datetime is aware UTC (see :class:`dripengine.storage.types.UTCDateTime`).

Indexes are chosen for the queries they serve; the comment beside each names the query.
Later issues add columns through Alembic migrations, never by editing a shipped revision.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Table, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from dripengine.storage.types import JSONDict, UTCDateTime

# The lead's contact fields: what a CSV column, a recycle request or the CRM may fill in.
CONTACT_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "timezone",
    "source",
)


def _uuid() -> str:
    return uuid.uuid4().hex


class Lead(SQLModel, table=True):
    __tablename__ = "lead"
    __table_args__ = (
        # drip leads list --stage X (newest first)
        Index("ix_lead_stage_updated", "stage", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # normalised: see dripengine.emails
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=300)
    title: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, max_length=64)
    timezone: str | None = Field(default=None, max_length=64)  # IANA name
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False)
    )
    stage: str = Field(default="lead", max_length=32)
    score: float = Field(default=0.0)
    score_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recycle_count: int = Field(default=0)
    source: str | None = Field(default=None, max_length=200)
    consent: str | None = Field(default=None, max_length=64)  # e.g. opt_in, legitimate_interest
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    requalified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # last hand-back
    scoring_stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # GDPR Art. 21
    soft_bounces: int = Field(default=0)  # in a row; suppressed at engagement.soft_bounce_limit
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class StageChange(SQLModel, table=True):
    __tablename__ = "stage_change"
    __table_args__ = (Index("ix_stage_change_lead_at", "lead_id", "at"),)  # a lead's history

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", ondelete="CASCADE")
    from_stage: str | None = Field(default=None, max_length=32)
    to_stage: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=64)
    actor: str | None = Field(default=None, max_length=200)
    at: datetime = Field(sa_type=UTCDateTime)


class RecycleRecord(SQLModel, table=True):
    __tablename__ = "recycle_record"
    __table_args__ = (
        Index("ix_recycle_record_lead_at", "lead_id", "at"),  # a lead's recycles
        Index("ix_recycle_record_reason_at", "reason", "at"),  # stats by reason (closed loop)
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", ondelete="CASCADE")
    from_stage: str = Field(max_length=32)
    reason: str = Field(max_length=64)
    note: str | None = Field(default=None)
    actor: str | None = Field(default=None, max_length=200)
    at: datetime = Field(sa_type=UTCDateTime)
    recycle_count: int = Field(default=1)  # this was the lead's Nth recycle
    campaign_id: str | None = Field(default=None, max_length=100)
    # enrolled | restarted | resumed | kept | denied | unmatched
    outcome: str = Field(max_length=32)
    detail: str | None = Field(default=None)


class Enrollment(SQLModel, table=True):
    __tablename__ = "enrollment"
    __table_args__ = (
        UniqueConstraint("lead_id", "campaign_id", name="uq_enrollment_lead_campaign"),
        # the dispatcher's due-work query: WHERE status='active' AND next_due_at <= :now
        Index("ix_enrollment_status_due", "status", "next_due_at"),
        Index("ix_enrollment_campaign_status", "campaign_id", "status"),  # stats per campaign
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", ondelete="CASCADE")
    campaign_id: str = Field(max_length=100)
    campaign_version: int = Field(default=1)
    status: str = Field(default="active", max_length=16)  # active | completed | exited
    track: str = Field(max_length=64)
    current_step: str | None = Field(default=None, max_length=100)  # the next step to send
    step_index: int = Field(default=0)
    round: int = Field(default=1)  # 1 + number of restarts
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    exit_reason: str | None = Field(default=None, max_length=64)
    enrolled_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # in the campaign's holdout group: enrolled, counted, never sent anything (docs/holdout.md)
    holdout: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        # the last guard against a double send
        UniqueConstraint("enrollment_id", "round", "step_id", name="uq_message_enrollment_step"),
        Index("ix_message_lead_created", "lead_id", "created_at"),  # frequency cap per lead
        Index("ix_message_provider_id", "provider_message_id"),  # webhook matching
        Index("ix_message_campaign_created", "campaign_id", "created_at"),  # stats
        Index("ix_message_status_created", "status", "created_at"),  # recovery, drip status
        # drip stats: the emails sent in a window per campaign / step / day, from the index alone
        Index("ix_message_status_sent", "status", "sent_at", "campaign_id", "track", "step_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(default_factory=_uuid, max_length=32, unique=True)  # public id, never a row id
    enrollment_id: int | None = Field(
        default=None, foreign_key="enrollment.id", ondelete="SET NULL"
    )
    lead_id: int = Field(foreign_key="lead.id", ondelete="CASCADE")
    campaign_id: str | None = Field(default=None, max_length=100)
    round: int = Field(default=1)
    step_id: str = Field(max_length=100)
    track: str | None = Field(default=None, max_length=64)
    template: str | None = Field(default=None, max_length=300)
    subject: str | None = Field(default=None)
    provider: str | None = Field(default=None, max_length=32)
    provider_message_id: str | None = Field(default=None, max_length=200)
    # sending (recorded before the provider call) | sent | retry | failed | skipped
    status: str = Field(default="sending", max_length=16)
    error: str | None = Field(default=None)
    attempts: int = Field(default=0)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    variant: str | None = Field(default=None, max_length=64)  # the step's A/B variant, if any


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id", name="uq_event_provider_event"),
        # the second duplicate guard: (provider message id, event, timestamp[, url]) hashed, for
        # copies of one event that arrive under a different sg_event_id
        UniqueConstraint("dedupe_key", name="uq_event_dedupe_key"),
        Index("ix_event_lead_occurred", "lead_id", "occurred_at"),  # scoring explain, leads show
        # step conditions; drip stats reads each email's outcomes from the index alone
        Index("ix_event_message_type_machine", "message_id", "type", "machine"),
        Index("ix_event_type_occurred", "type", "occurred_at"),  # stats over time
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", ondelete="SET NULL")
    lead_id: int | None = Field(default=None, foreign_key="lead.id", ondelete="CASCADE")
    type: str = Field(max_length=32)  # delivered, open, click, reply, bounce, unsubscribe, ...
    provider: str = Field(default="drip", max_length=32)
    provider_event_id: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)
    url: str | None = Field(default=None)
    tag: str | None = Field(default=None, max_length=100)
    machine: bool = Field(default=False)  # privacy-proxy open or link-scanner click
    dedupe_key: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None)  # bounce reason, reply subject, ...
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONDict, nullable=False))


class ScoreChange(SQLModel, table=True):
    __tablename__ = "score_change"
    __table_args__ = (Index("ix_score_change_lead_at", "lead_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", ondelete="CASCADE")
    event_id: int | None = Field(default=None, foreign_key="event.id", ondelete="SET NULL")
    delta: float
    score_after: float
    reason: str = Field(max_length=200)
    at: datetime = Field(sa_type=UTCDateTime)


class Suppression(SQLModel, table=True):
    __tablename__ = "suppression"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # checked at recycle and at every send
    reason: str = Field(max_length=32)  # unsubscribe | hard_bounce | spam_report | manual
    source: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Worker(SQLModel, table=True):
    """A `drip run` (kind ``run``) or `drip serve` (kind ``serve``, one row per uvicorn worker
    process) process: its heartbeat, for `drip status`, /metrics and for spotting dead ones."""

    __tablename__ = "worker"

    id: str = Field(primary_key=True, max_length=100)  # host:pid:random
    kind: str = Field(default="run", max_length=16, sa_column_kwargs={"server_default": "run"})
    host: str = Field(max_length=200)
    pid: int
    provider: str | None = Field(default=None, max_length=32)  # None: a serve process
    started_at: datetime = Field(sa_type=UTCDateTime)
    heartbeat_at: datetime = Field(sa_type=UTCDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent: int = Field(default=0)
    failed: int = Field(default=0)


class Handoff(SQLModel, table=True):
    """A requalified lead on its way to the CRM: written with the requalification, delivered by the
    daemon until the CRM answers 2xx (an outbox: never lost, and one row per requalification so
    never sent twice as two)."""

    __tablename__ = "handoff"
    __table_args__ = (
        Index("ix_handoff_status_next", "status", "next_attempt_at"),
        Index("ix_handoff_lead_created", "lead_id", "created_at"),  # drip stats --by reason
    )

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(default_factory=_uuid, max_length=32, unique=True)  # the CRM's idempotency key
    lead_id: int = Field(foreign_key="lead.id", ondelete="CASCADE")
    campaign_id: str | None = Field(default=None, max_length=100)
    score: float
    fit_grade: str = Field(max_length=1)
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False)
    )
    status: str = Field(default="pending", max_length=16)  # pending | delivered | unconfigured
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None)
    created_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CampaignPause(SQLModel, table=True):
    """A campaign paused by the complaint breaker (or by hand): the dispatcher sends none of it."""

    __tablename__ = "campaign_pause"

    campaign_id: str = Field(primary_key=True, max_length=100)
    reason: str = Field()
    paused_at: datetime = Field(sa_type=UTCDateTime)


class Feedback(SQLModel, table=True):
    """What sales says became of a lead dripengine handed back: the closed loop."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_lead_at", "lead_id", "at"),
        Index("ix_feedback_outcome_at", "outcome", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", ondelete="CASCADE")
    handoff_id: int | None = Field(default=None, foreign_key="handoff.id", ondelete="SET NULL")
    outcome: str = Field(max_length=16)  # accepted | rejected | won | lost
    reason: str | None = Field(default=None, max_length=64)  # a recycle reason when rejected
    note: str | None = Field(default=None)
    actor: str | None = Field(default=None, max_length=200)
    # as the lead stood at the hand-back, copied so the review survives later rescoring
    campaign_id: str | None = Field(default=None, max_length=100)
    recycle_reason: str | None = Field(default=None, max_length=64)
    score_at_handoff: float | None = Field(default=None)
    fit_at_handoff: str | None = Field(default=None, max_length=1)
    at: datetime = Field(sa_type=UTCDateTime)


class SalesTouch(SQLModel, table=True):
    """A rep's call, email or meeting with a lead, as the CRM reported it (``POST /api/touches``,
    ``drip touches import``). It stops the SLA's first-touch clock and holds marketing email for
    ``sending.quiet_after_sales_touch``; a sales email counts toward the weekly cap."""

    __tablename__ = "sales_touch"
    __table_args__ = (
        # the same touch reported twice is one touch
        UniqueConstraint("lead_id", "kind", "at", name="uq_sales_touch_lead_kind_at"),
        Index("ix_sales_touch_at", "at"),  # SLA clocks, drip status
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", ondelete="CASCADE")
    kind: str = Field(max_length=16)  # call | email | meeting
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str | None = Field(default=None, max_length=200)  # the rep, if the CRM said
    source: str = Field(default="api", max_length=32)  # api | csv
    note: str | None = Field(default=None)
    created_at: datetime = Field(sa_type=UTCDateTime)


class SlaAlert(SQLModel, table=True):
    """An SLA clock that passed on a hand-back: the reminder to the CRM (an outbox like
    :class:`Handoff`) and, for the decision clock, what was done about it."""

    __tablename__ = "sla_alert"
    __table_args__ = (
        UniqueConstraint("handoff_id", "clock", name="uq_sla_alert_handoff_clock"),
        Index("ix_sla_alert_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(default_factory=_uuid, max_length=32, unique=True)  # the CRM's idempotency key
    handoff_id: int = Field(foreign_key="handoff.id", ondelete="CASCADE")
    lead_id: int = Field(foreign_key="lead.id", ondelete="CASCADE")
    clock: str = Field(max_length=16)  # first_touch | decision
    due_at: datetime = Field(sa_type=UTCDateTime)
    # pending | delivered | unconfigured (no reminder URL) | failed
    status: str = Field(default="pending", max_length=16)
    action: str | None = Field(default=None, max_length=32)  # e.g. renurtured
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None)
    created_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class VariantWinner(SQLModel, table=True):
    """The variant a step with ``pick_winner`` settled on: when, by which metric, and the figures
    that decided it. From then on the step sends only this variant."""

    __tablename__ = "variant_winner"
    __table_args__ = (
        UniqueConstraint("campaign_id", "step_id", name="uq_variant_winner_campaign_step"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str = Field(max_length=100)
    step_id: str = Field(max_length=100)
    variant: str = Field(max_length=64)
    metric: str = Field(max_length=32)
    decided_at: datetime = Field(sa_type=UTCDateTime)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONDict, nullable=False))


# The Core tables, for the statements of storage/ (SQLModel types ``__table__`` loosely).
LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
ENROLLMENT: Table = Enrollment.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
EVENT: Table = Event.__table__  # type: ignore[attr-defined]
HANDOFF: Table = Handoff.__table__  # type: ignore[attr-defined]
FEEDBACK: Table = Feedback.__table__  # type: ignore[attr-defined]
SCORE_CHANGE: Table = ScoreChange.__table__  # type: ignore[attr-defined]
SUPPRESSION: Table = Suppression.__table__  # type: ignore[attr-defined]
RECYCLE_RECORD: Table = RecycleRecord.__table__  # type: ignore[attr-defined]
WORKER: Table = Worker.__table__  # type: ignore[attr-defined]
STAGE_CHANGE: Table = StageChange.__table__  # type: ignore[attr-defined]
PAUSE: Table = CampaignPause.__table__  # type: ignore[attr-defined]
SALES_TOUCH: Table = SalesTouch.__table__  # type: ignore[attr-defined]
SLA_ALERT: Table = SlaAlert.__table__  # type: ignore[attr-defined]
VARIANT_WINNER: Table = VariantWinner.__table__  # type: ignore[attr-defined]
