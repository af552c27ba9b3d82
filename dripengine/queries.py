"""Read-side queries for the CLI and the API: plain dicts keyed by the models' field names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import LeadNotFound
from dripengine.models import Enrollment, Lead, RecycleRecord, StageChange

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


def find_lead(session: Session, email: str) -> Lead:
    try:
        normalised = normalise_email(email)
    except InvalidEmail as exc:
        raise LeadNotFound(f"{email!r} is not a valid email address: {exc}") from None
    lead = session.exec(select(Lead).where(Lead.email == normalised)).first()
    if lead is None:
        raise LeadNotFound(
            f"no lead {normalised} (import it with `drip leads import` or recycle it)"
        )
    return lead


def lead_profile(session: Session, email: str) -> dict[str, Any]:
    """Everything about one lead: fields, stage history, recycle records, enrollments."""
    lead = find_lead(session, email)
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
    return {
        **lead_row(lead),
        "stage_history": [c.model_dump(exclude={"id", "lead_id"}) for c in history],
        "recycles": [r.model_dump(exclude={"id", "lead_id"}) for r in recycles],
        "enrollments": [
            e.model_dump(exclude={"id", "lead_id", "lease_owner", "lease_until"})
            for e in enrollments
        ],
    }


def list_leads(
    session: Session,
    *,
    stage: str | None = None,
    campaign: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
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
    query = query.order_by(col(Lead.updated_at).desc(), col(Lead.id).desc())
    if limit:
        query = query.limit(limit)
    return [lead_row(lead) for lead in session.exec(query).all()]


def count_leads(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Lead)).one()
