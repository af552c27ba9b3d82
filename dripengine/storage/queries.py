"""Read-side queries for the CLI and the API: plain dicts keyed by the models' field names.

What the CLI calls takes the :data:`~dripengine.storage.Engine` and opens its own session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dripengine.config import Settings
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import LeadNotFound
from dripengine.funnel.sla import SLA
from dripengine.leads.nearest import nearest_addresses
from dripengine.scoring.explain import Change, Explanation, explain
from dripengine.scoring.rules import decayed, fit_grade
from dripengine.storage import suppression
from dripengine.storage.models import (
    Enrollment,
    Event,
    Handoff,
    Lead,
    RecycleRecord,
    ScoreChange,
    StageChange,
    Suppression,
)
from dripengine.suggest import did_you_mean_any

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
        nearby = nearest_addresses(session.connection(), [normalised]).get(normalised, [])
        raise LeadNotFound(
            f"no lead {normalised}{did_you_mean_any(nearby)}"
            + ("" if nearby else " (import it with `drip leads import` or recycle it)")
        )
    return lead


SCORE_CHANGES_SHOWN = 20


def lead_profile(
    engine: Engine, email: str, settings: Settings | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Everything about one lead: fields, stage history, recycle records, enrollments; with
    ``settings`` and ``now`` also the score now, the fit grade, the suppression and the latest
    score changes with their reasons."""
    with Session(engine) as session:
        lead = find_lead(session, email)
        extra = _scoring_facts(session, lead, settings, now) if settings and now else {}
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
            **extra,
        }


def _scoring_facts(
    session: Session, lead: Lead, settings: Settings, now: datetime
) -> dict[str, Any]:
    fit = fit_grade(lead.model_dump(), settings.scoring.fit_rules)
    entry = suppression.suppressed(session.connection(), [lead.email]).get(lead.email)
    return {
        "score_now": round(
            decayed(lead.score, lead.score_updated_at, now, settings.scoring.half_life_days), 2
        ),
        "fit_grade": fit.grade,
        "fit_points": fit.points,
        "fit_missing": list(fit.missing),
        "suppressed": {"reason": entry.reason, "since": entry.created_at} if entry else None,
        "score_changes": [
            {
                "at": c.at,
                "event_type": c.event_type,
                "delta": c.delta,
                "score_after": c.score_after,
                "reason": c.reason,
            }
            for c in reversed(score_changes(session, lead, SCORE_CHANGES_SHOWN))
        ],
    }


def score_changes(session: Session, lead: Lead, limit: int | None = None) -> list[Change]:
    """The lead's ScoreChange rows (the newest ``limit`` of them), oldest first, with event types."""
    changes: Table = ScoreChange.__table__  # type: ignore[attr-defined]
    events: Table = Event.__table__  # type: ignore[attr-defined]
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
        Change(r.at, r.delta, r.score_after, r.reason, r.type, bool(r.machine))
        for r in reversed(rows)
    ]


def _latest_recycle(session: Session, lead: Lead) -> RecycleRecord | None:
    return session.exec(
        select(RecycleRecord)
        .where(RecycleRecord.lead_id == lead.id)
        .order_by(col(RecycleRecord.at).desc(), col(RecycleRecord.id).desc())
    ).first()


def lead_with_recycle(engine: Engine, email: str) -> tuple[dict[str, Any], RecycleRecord | None]:
    """The lead's fields, and its latest recycle record (None when it was never recycled)."""
    with Session(engine) as session:
        lead = find_lead(session, email)
        return lead.model_dump(), _latest_recycle(session, lead)


def explain_score(
    engine: Engine, email: str, settings: Settings, sla: SLA, now: datetime
) -> tuple[Lead, Explanation]:
    """The lead and :func:`dripengine.scoring.explain.explain` of its score at ``now``."""
    with Session(engine) as session:
        lead = find_lead(session, email)
        latest = _latest_recycle(session, lead)
        reason = sla.recycle_reasons.get(latest.reason) if latest else None
        rule = sla.requalification
        return lead, explain(
            score_changes(session, lead),
            stored=lead.score,
            stored_at=lead.score_updated_at,
            now=now,
            half_life_days=settings.scoring.half_life_days,
            fit=fit_grade(lead.model_dump(), settings.scoring.fit_rules),
            min_fit=rule.min_fit,
            threshold=rule.threshold(lead.recycle_count),
            may_requalify=reason.may_requalify if reason else True,
            scoring_stopped_at=lead.scoring_stopped_at,
        )


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


def count_leads(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Lead)).one()
