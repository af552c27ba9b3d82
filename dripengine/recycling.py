"""Recycling: a lead sales gave back goes to ``recycled`` and into the campaign that fits it.

The decisions are the pure ones of :mod:`dripengine.funnel` (may it be recycled, re-entry policy)
and :mod:`dripengine.campaigns` (routing, send window); this module reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from dripengine.campaigns import Campaign, LeadFacts, explain_no_match, route
from dripengine.campaigns.window import first_due, next_opening, resolve_timezone
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import FunnelError
from dripengine.funnel import ExistingEnrollment, decide_reentry, label, plan_recycle
from dripengine.models import Enrollment, Lead, RecycleRecord, StageChange, Suppression
from dripengine.sla import SLA

LEAD_FIELDS = ("first_name", "last_name", "company", "title", "phone", "country", "timezone")
# Leads moved to the start of a send window are spread over its first half hour, so a recycle
# wave does not reach the provider (and the recipients' servers) in the same second.
WINDOW_SPREAD = timedelta(minutes=30)
OUTCOMES = {
    "enroll": "enrolled",
    "restart": "restarted",
    "resume": "resumed",
    "keep": "kept",
    "deny": "denied",
}


@dataclass(frozen=True)
class RecycleRequest:
    """What sales says: who, from which stage, why."""

    email: str
    reason: str
    from_stage: str | None = None
    note: str | None = None
    actor: str | None = None
    lead_fields: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecycleContext:
    campaigns: Sequence[Campaign]
    sla: SLA
    now: datetime


@dataclass(frozen=True)
class RecycleOutcome:
    email: str
    from_stage: str
    reason: str
    outcome: str  # enrolled | restarted | resumed | kept | denied | unmatched
    detail: str
    campaign_id: str | None = None
    campaign_name: str | None = None
    track: str | None = None
    step_id: str | None = None
    due_at: datetime | None = None
    timezone: str | None = None
    created: bool = False

    def describe(self) -> str:
        """One line for the person who ran the command."""
        head = f"{self.email} recycled from {label(self.from_stage)} ({self.reason})"
        if self.outcome == "unmatched":
            return f"{head}; not enrolled: {self.detail}"
        if self.outcome == "denied":
            return f'{head}; not enrolled in "{self.campaign_name}": {self.detail}'
        verb = {
            "enrolled": "into",
            "restarted": "into (restarted)",
            "resumed": "into (resumed)",
            "kept": "; stays in",
        }[self.outcome]
        joiner = "" if verb.startswith(";") else " "
        text = f'{head}{joiner}{verb} "{self.campaign_name}" (track {self.track})'
        if self.due_at is not None and self.step_id is not None:
            text += f'; {"first " if self.outcome == "enrolled" else "next "}email "{self.step_id}" due {format_local(self.due_at, self.timezone)}'
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "from_stage": self.from_stage,
            "reason": self.reason,
            "outcome": self.outcome,
            "detail": self.detail,
            "campaign_id": self.campaign_id,
            "track": self.track,
            "step": self.step_id,
            "next_due_at": self.due_at.isoformat() if self.due_at else None,
            "timezone": self.timezone,
            "created": self.created,
        }


def format_local(when: datetime, tz_name: str | None) -> str:
    """``Tue 24 Nov 09:00 Europe/Berlin``."""
    tz = ZoneInfo(tz_name or "UTC")
    local = when.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %H:%M} {tz.key}"


def recycle(session: Session, request: RecycleRequest, ctx: RecycleContext) -> RecycleOutcome:
    """Recycle one lead and enroll it where it fits. Raises FunnelError when it may not be."""
    try:
        email = normalise_email(request.email)
    except InvalidEmail as exc:
        raise FunnelError(f"{request.email!r} is not a valid email address: {exc}") from None
    now = ctx.now
    suppressed = session.exec(select(Suppression).where(Suppression.email == email)).first()
    lead = session.exec(select(Lead).where(Lead.email == email)).first()
    plan = plan_recycle(
        email=email,
        current_stage=lead.stage if lead else None,
        declared_from=request.from_stage,
        reason=request.reason.strip().lower(),
        reason_stages=ctx.sla.reason_stages,
        suppressed_because=(
            f"{suppressed.reason} on {suppressed.created_at:%d %b %Y}" if suppressed else None
        ),
    )
    created = lead is None
    if lead is None:
        lead = Lead(email=email, stage=plan.from_stage, created_at=now, updated_at=now)
        session.add(lead)
    _apply_fields(lead, request)
    session.flush()
    assert lead.id is not None
    history = []
    if lead.stage not in (plan.from_stage, "recycled"):
        history.append((lead.stage, plan.from_stage, "stage reported by sales"))
    history.append(
        (plan.from_stage if lead.stage != "recycled" else "recycled", "recycled", plan.reason)
    )
    for from_stage, to_stage, why in history:
        session.add(
            StageChange(
                lead_id=lead.id,
                from_stage=from_stage,
                to_stage=to_stage,
                reason=why,
                actor=request.actor,
                at=now,
            )
        )
    previous_recycles = lead.recycle_count
    lead.stage = "recycled"
    lead.recycle_count = previous_recycles + 1
    lead.updated_at = now

    facts = LeadFacts(from_stage=plan.from_stage, reason=plan.reason, fields=_facts(lead))
    campaign = route(ctx.campaigns, facts)
    outcome = (
        _enroll(session, lead, campaign, previous_recycles, now) if campaign is not None else None
    )
    record = RecycleRecord(
        lead_id=lead.id,
        from_stage=plan.from_stage,
        reason=plan.reason,
        note=request.note,
        actor=request.actor,
        at=now,
        recycle_count=lead.recycle_count,
        campaign_id=campaign.id if campaign else None,
        outcome=outcome.outcome if outcome else "unmatched",
        detail=outcome.detail if outcome else explain_no_match(ctx.campaigns, facts),
    )
    session.add(record)
    session.flush()
    return RecycleOutcome(
        email=email,
        from_stage=plan.from_stage,
        reason=plan.reason,
        outcome=record.outcome,
        detail=record.detail or "",
        campaign_id=campaign.id if campaign else None,
        campaign_name=campaign.name if campaign else None,
        track=outcome.track if outcome else None,
        step_id=outcome.step_id if outcome else None,
        due_at=outcome.due_at if outcome else None,
        timezone=outcome.timezone if outcome else None,
        created=created,
    )


@dataclass(frozen=True)
class _Enrolled:
    outcome: str
    detail: str
    track: str | None
    step_id: str | None
    due_at: datetime | None
    timezone: str


def _enroll(
    session: Session, lead: Lead, campaign: Campaign, previous_recycles: int, now: datetime
) -> _Enrolled:
    assert lead.id is not None
    tz = resolve_timezone(lead.timezone, campaign.send.timezone)
    enrollments = session.exec(select(Enrollment).where(Enrollment.lead_id == lead.id)).all()
    existing = next((e for e in enrollments if e.campaign_id == campaign.id), None)
    decision = decide_reentry(
        policy=campaign.reentry.policy,
        cooldown_days=campaign.reentry.cooldown_days,
        max_recycles=campaign.reentry.max_recycles,
        previous_recycles=previous_recycles,
        existing=(
            ExistingEnrollment(existing.status, existing.enrolled_at, existing.current_step)
            if existing
            else None
        ),
        now=now,
    )
    outcome = OUTCOMES[decision.action]
    if decision.action == "deny":
        return _Enrolled(
            outcome, decision.why, existing.track if existing else None, None, None, tz.key
        )
    if decision.action == "keep":
        assert existing is not None
        return _Enrolled(
            outcome,
            decision.why,
            existing.track,
            existing.current_step,
            existing.next_due_at,
            tz.key,
        )
    # A lead follows one recycle campaign at a time: the newest reason is the one that counts.
    for other in enrollments:
        if other is not existing and other.status == "active":
            other.status = "exited"
            other.exit_reason = f"recycled into {campaign.id}"
            other.ended_at = now
            other.updated_at = now
            other.next_due_at = None
    if decision.action == "resume":
        assert existing is not None and existing.current_step is not None
        existing.status = "active"
        existing.exit_reason = None
        existing.ended_at = None
        existing.next_due_at = next_opening(
            now, campaign.send.window, tz, spread_key=lead.email, spread=WINDOW_SPREAD
        )
        existing.updated_at = now
        return _Enrolled(
            outcome,
            decision.why,
            existing.track,
            existing.current_step,
            existing.next_due_at,
            tz.key,
        )
    track_name, track = campaign.track_for_score(lead.score)
    step = track.steps[0]
    due = first_due(
        now, step.wait, campaign.send.window, tz, spread_key=lead.email, spread=WINDOW_SPREAD
    )
    if existing is None:
        session.add(
            Enrollment(
                lead_id=lead.id,
                campaign_id=campaign.id,
                campaign_version=campaign.version,
                status="active",
                track=track_name,
                current_step=step.id,
                step_index=0,
                round=1,
                next_due_at=due,
                enrolled_at=now,
                updated_at=now,
            )
        )
    else:
        existing.campaign_version = campaign.version
        existing.status = "active"
        existing.track = track_name
        existing.current_step = step.id
        existing.step_index = 0
        existing.round += 1
        existing.next_due_at = due
        existing.exit_reason = None
        existing.enrolled_at = now
        existing.ended_at = None
        existing.updated_at = now
    return _Enrolled(outcome, decision.why, track_name, step.id, due, tz.key)


def _apply_fields(lead: Lead, request: RecycleRequest) -> None:
    for name, value in request.lead_fields.items():
        if name in LEAD_FIELDS and value not in (None, ""):
            setattr(lead, name, value)
    if request.attributes:
        merged = dict(lead.attributes or {})
        merged.update({k: v for k, v in request.attributes.items() if v not in (None, "")})
        lead.attributes = merged


def _facts(lead: Lead) -> dict[str, Any]:
    fields: dict[str, Any] = dict(lead.attributes or {})
    for name in ("country", "company", "title", "timezone", "source"):
        value = getattr(lead, name)
        if value is not None:
            fields[name] = value
    return fields
