"""Read-side queries for the CLI and the API: one lead's rows, the hand-back list, listings.

What the CLI calls takes the :data:`~dripengine.storage.Engine` and opens its own session; the
lead's story for people (did-you-mean, the score explained) is :mod:`dripengine.reports.leads`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dripengine.storage import suppression
from dripengine.storage.models import (
    EVENT,
    SCORE_CHANGE,
    Enrollment,
    Handoff,
    Lead,
    RecycleRecord,
    StageChange,
    Suppression,
)


class ScoreChangeRow(NamedTuple):
    at: datetime
    delta: float
    score_after: float
    reason: str
    event_type: str | None
    machine: bool


LEAD_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "country",
    "timezone",
    "stage",
    "score",
    "recycle_count",
    "updated_at",
)


def lead_row(lead: Lead) -> dict[str, Any]:
    return lead.model_dump(exclude={"id"})


def lead_by_email(session: Session, email: str) -> Lead | None:
    """The lead stored under the normalised ``email``, or None."""
    return session.exec(select(Lead).where(Lead.email == email)).first()


def lead_history(
    session: Session, lead: Lead
) -> tuple[list[StageChange], list[RecycleRecord], list[Enrollment]]:
    """The lead's stage changes and recycle records (oldest first) and its enrollments."""
    history = session.exec(
        select(StageChange)
        .where(StageChange.lead_id == lead.id)
        .order_by(col(StageChange.at), col(StageChange.id))
    ).all()
    recycles = session.exec(
        select(RecycleRecord)
        .where(RecycleRecord.lead_id == lead.id)
        .order_by(col(RecycleRecord.at), col(RecycleRecord.id))
    ).all()
    enrollments = session.exec(
        select(Enrollment)
        .where(Enrollment.lead_id == lead.id)
        .order_by(col(Enrollment.enrolled_at))
    ).all()
    return list(history), list(recycles), list(enrollments)


def suppression_of(session: Session, email: str) -> suppression.Entry | None:
    """The address's suppression entry (plain or hashed), or None."""
    return suppression.suppressed(session.connection(), [email]).get(email)


def score_changes(session: Session, lead: Lead, limit: int | None = None) -> list[ScoreChangeRow]:
    """The lead's ScoreChange rows (the newest ``limit`` of them), oldest first, with event types."""
    changes, events = SCORE_CHANGE, EVENT
    query = (
        sa_select(
            changes.c.at,
            changes.c.delta,
            changes.c.score_after,
            changes.c.reason,
            events.c.type,
            events.c.machine,
        )
        .select_from(changes.outerjoin(events, events.c.id == changes.c.event_id))
        .where(changes.c.lead_id == lead.id)
        .order_by(changes.c.at.desc(), changes.c.id.desc())
    )
    if limit:
        query = query.limit(limit)
    rows = session.connection().execute(query).all()
    return [
        ScoreChangeRow(r.at, r.delta, r.score_after, r.reason, r.type, bool(r.machine))
        for r in reversed(rows)
    ]


REQUALIFIED_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "requalified_at",
    "score",
    "fit_grade",
    "campaign_id",
    "recycle_reason",
    "days_in_nurture",
    "handoff_status",
)


def requalified(
    engine: Engine, *, since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The hand-back list: each handoff of a requalified lead, newest first (erased leads left
    out); the score and fit grade are the ones at the handoff."""
    with Session(engine) as session:
        query = (
            select(Handoff, Lead)
            .join(Lead, col(Lead.id) == col(Handoff.lead_id))
            .where(col(Handoff.status).in_(["pending", "delivered"]))
            .order_by(col(Handoff.created_at).desc(), col(Handoff.id).desc())
        )
        if since is not None:
            query = query.where(Handoff.created_at >= since)
        if limit:
            query = query.limit(limit)
        out = []
        for handoff, lead in session.exec(query).all():
            payload = handoff.payload or {}
            recycle = payload.get("recycle") or {}
            out.append(
                {
                    "email": lead.email,
                    "first_name": lead.first_name,
                    "last_name": lead.last_name,
                    "company": lead.company,
                    "requalified_at": handoff.created_at,
                    "score": handoff.score,
                    "fit_grade": handoff.fit_grade,
                    "campaign_id": handoff.campaign_id,
                    "recycle_reason": recycle.get("reason") if isinstance(recycle, dict) else None,
                    "days_in_nurture": payload.get("days_in_nurture"),
                    "handoff_status": handoff.status,
                    "handoff_id": handoff.uid,
                }
            )
        return out


SUPPRESSION_COLUMNS = ("email", "reason", "source", "note", "created_at")


def list_suppressions(
    engine: Engine, *, reason: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The suppression list, newest first (erased people appear by their hash only)."""
    with Session(engine) as session:
        query = select(Suppression).order_by(
            col(Suppression.created_at).desc(), col(Suppression.id).desc()
        )
        if reason:
            query = query.where(Suppression.reason == reason)
        if limit:
            query = query.limit(limit)
        return [row.model_dump(exclude={"id"}) for row in session.exec(query).all()]


def list_leads(
    engine: Engine,
    *,
    stage: str | None = None,
    campaign: str | None = None,
    search: str | None = None,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The leads that match, newest change first (at most ``limit``), and how many match in all.

    ``search`` is a case-insensitive part of the address, first or last name or company.
    """
    with Session(engine) as session:
        query = select(Lead)
        if stage:
            query = query.where(Lead.stage == stage)
        if campaign:
            query = query.where(
                col(Lead.id).in_(
                    select(Enrollment.lead_id).where(
                        Enrollment.campaign_id == campaign, Enrollment.status == "active"
                    )
                )
            )
        if search:
            pattern = (
                "%"
                + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            query = query.where(
                or_(
                    *(
                        func.lower(column).like(pattern, escape="\\")
                        for column in (
                            col(Lead.email),
                            col(Lead.first_name),
                            col(Lead.last_name),
                            col(Lead.company),
                        )
                    )
                )
            )
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        query = query.order_by(col(Lead.updated_at).desc(), col(Lead.id).desc())
        if limit:
            query = query.limit(limit)
        return [lead_row(lead) for lead in session.exec(query).all()], total
