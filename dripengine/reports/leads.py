"""One lead, as a person reads it: ``drip leads show`` (fields, stage history, recycles,
enrollments, the score now and why), ``drip scoring explain``, the lead a preview renders for.

An address that is not stored is refused with the nearest known ones (did you mean …?). The rows
come from :mod:`dripengine.storage.queries`; the score is decayed and explained by
:mod:`dripengine.scoring`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dripengine.config import Settings
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import LeadNotFound
from dripengine.funnel.sla import SLA
from dripengine.leads.nearest import nearest_addresses
from dripengine.scoring.explain import Change, Explanation, explain
from dripengine.scoring.rules import decayed, fit_grade
from dripengine.storage import Engine, Session, queries
from dripengine.storage.funnel import latest_recycle
from dripengine.storage.models import Lead
from dripengine.storage.touches import lead_touches
from dripengine.suggest import did_you_mean_any


def find_lead(session: Session, email: str) -> Lead:
    """The lead stored under ``email``; LeadNotFound with the nearest known addresses."""
    try:
        normalised = normalise_email(email)
    except InvalidEmail as exc:
        raise LeadNotFound(f"{email!r} is not a valid email address: {exc}") from None
    lead = queries.lead_by_email(session, normalised)
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
    """Everything about one lead: fields, stage history, recycle records, enrollments, sales
    touches (newest first); with
    ``settings`` and ``now`` also the score now, the fit grade, the suppression and the latest
    score changes with their reasons."""
    with Session(engine) as session:
        lead = find_lead(session, email)
        extra = _scoring_facts(session, lead, settings, now) if settings and now else {}
        history, recycles, enrollments = queries.lead_history(session, lead)
        return {
            **queries.lead_row(lead),
            "stage_history": [c.model_dump(exclude={"id", "lead_id"}) for c in history],
            "recycles": [r.model_dump(exclude={"id", "lead_id"}) for r in recycles],
            "enrollments": [
                e.model_dump(exclude={"id", "lead_id", "lease_owner", "lease_until"})
                for e in enrollments
            ],
            "sales_touches": lead_touches(session.connection(), _id(lead)),  # newest first
            **extra,
        }


def _scoring_facts(
    session: Session, lead: Lead, settings: Settings, now: datetime
) -> dict[str, Any]:
    fit = fit_grade(lead.model_dump(), settings.scoring.fit_rules)
    entry = queries.suppression_of(session, lead.email)
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
            for c in reversed(queries.score_changes(session, lead, SCORE_CHANGES_SHOWN))
        ],
    }


def lead_with_recycle(
    engine: Engine, email: str
) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """The lead's fields, and its latest recycle record (None when it was never recycled)."""
    with Session(engine) as session:
        lead = find_lead(session, email)
        return lead.model_dump(), latest_recycle(session.connection(), _id(lead))


def explain_score(
    engine: Engine, email: str, settings: Settings, sla: SLA, now: datetime
) -> tuple[Lead, Explanation]:
    """The lead and :func:`dripengine.scoring.explain.explain` of its score at ``now``."""
    with Session(engine) as session:
        lead = find_lead(session, email)
        latest = latest_recycle(session.connection(), _id(lead))
        reason = sla.recycle_reasons.get(latest["reason"]) if latest else None
        rule = sla.requalification
        return lead, explain(
            [Change(*row) for row in queries.score_changes(session, lead)],
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


def _id(lead: Lead) -> int:
    assert lead.id is not None  # a stored lead
    return lead.id
