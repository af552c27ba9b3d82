"""The recycle decision, pure: a lead's snapshot in, the outcome and the rows to write out.

:func:`decide` is the one place the rules of a recycle are applied (through :mod:`dripengine.funnel.rules`
and :mod:`dripengine.campaigns`): it takes what the database holds about one address as plain
snapshots and returns the outcome with the lead and its enrollments as they are afterwards, plus the
stage changes and the recycle record to insert. It raises :class:`FunnelError` when the lead may not
be recycled, before anything is decided. When the first (or resumed) email is due is
:func:`dripengine.campaigns.schedule.next_due`'s to say.

:class:`dripengine.funnel.recycle_batch.Pending` chains decisions over a batch of addresses;
:mod:`dripengine.funnel.recycle` loads the snapshots and writes the rows, for one lead or a batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from dripengine.campaigns import Campaign, LeadFacts, explain_no_match, route
from dripengine.campaigns.experiment import in_holdout
from dripengine.campaigns.schedule import next_due
from dripengine.campaigns.window import resolve_timezone
from dripengine.funnel.recycle_request import (
    LEAD_FIELDS,
    OUTCOMES,
    RecycleContext,
    RecycleOutcome,
    RecycleRequest,
    request_email,
)
from dripengine.funnel.rules import ExistingEnrollment, decide_reentry, plan_recycle

# --- snapshots and rows ------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadSnapshot:
    """The columns of a ``lead`` row a recycle reads or writes; ``id`` None: not inserted yet."""

    email: str
    stage: str
    created_at: datetime
    updated_at: datetime
    id: int | None = None
    score: float = 0.0
    recycle_count: int = 0
    attributes: Mapping[str, Any] = field(default_factory=dict)
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    phone: str | None = None
    country: str | None = None
    timezone: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class EnrollmentSnapshot:
    """The columns of an ``enrollment`` row a recycle reads or writes; ``id`` None: not inserted."""

    campaign_id: str
    campaign_version: int
    status: str
    track: str
    current_step: str | None
    step_index: int
    round: int
    next_due_at: datetime | None
    exit_reason: str | None
    enrolled_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    id: int | None = None
    holdout: bool = False  # in the campaign's holdout group: sent nothing (docs/holdout.md)


@dataclass(frozen=True)
class StageChangeRow:
    email: str  # the lead's address: its id may not exist before the batch is written
    from_stage: str | None
    to_stage: str
    reason: str | None
    actor: str | None
    at: datetime


@dataclass(frozen=True)
class RecycleRecordRow:
    email: str
    from_stage: str
    reason: str
    note: str | None
    actor: str | None
    at: datetime
    recycle_count: int
    campaign_id: str | None
    outcome: str
    detail: str | None


@dataclass(frozen=True)
class RecycleDecision:
    """A recycle decided: the outcome, the lead and all its enrollments afterwards, the new rows."""

    outcome: RecycleOutcome
    lead: LeadSnapshot
    enrollments: tuple[EnrollmentSnapshot, ...]
    stage_changes: tuple[StageChangeRow, ...]
    record: RecycleRecordRow


# --- the decision --------------------------------------------------------------------------------


def decide(
    lead: LeadSnapshot | None,
    suppressed: str | None,
    enrollments: Sequence[EnrollmentSnapshot],
    request: RecycleRequest,
    ctx: RecycleContext,
) -> RecycleDecision:
    """Recycle one lead and enroll it where it fits. Raises FunnelError when it may not be.

    ``lead`` is the stored lead with the request's address (None when there is none),
    ``suppressed`` why the address is suppressed (see :func:`suppression_text`), ``enrollments``
    the lead's enrollments.
    """
    email = request_email(request)
    now = ctx.now
    plan = plan_recycle(
        email=email,
        current_stage=lead.stage if lead else None,
        declared_from=request.from_stage,
        reason=request.reason.strip().lower(),
        reason_stages=ctx.reason_stages,
        suppressed_because=suppressed,
    )
    created = lead is None
    if lead is None:
        lead = LeadSnapshot(email=email, stage=plan.from_stage, created_at=now, updated_at=now)
    lead = _apply_fields(lead, request)
    history = []
    if lead.stage not in (plan.from_stage, "recycled"):
        history.append((lead.stage, plan.from_stage, "stage reported by sales"))
    history.append(
        (plan.from_stage if lead.stage != "recycled" else "recycled", "recycled", plan.reason)
    )
    stage_changes = tuple(
        StageChangeRow(email, from_stage, to_stage, why, request.actor, now)
        for from_stage, to_stage, why in history
    )
    previous_recycles = lead.recycle_count
    # the engagement score starts again (the old one stays in the ScoreChange history), so a lead
    # does not bounce straight back to sales on the clicks that got it there the last time
    lead = replace(
        lead,
        stage="recycled",
        recycle_count=previous_recycles + 1,
        score=0.0 if ctx.reset_score else lead.score,
        updated_at=now,
    )

    facts = LeadFacts(from_stage=plan.from_stage, reason=plan.reason, fields=_facts(lead))
    campaign = route(ctx.campaigns, facts)
    after = tuple(enrollments)
    enrolled = None
    if campaign is not None:
        enrolled, after = _enroll(lead, after, campaign, previous_recycles, now)
    record = RecycleRecordRow(
        email=email,
        from_stage=plan.from_stage,
        reason=plan.reason,
        note=request.note,
        actor=request.actor,
        at=now,
        recycle_count=lead.recycle_count,
        campaign_id=campaign.id if campaign else None,
        outcome=enrolled.outcome if enrolled else "unmatched",
        detail=enrolled.detail if enrolled else explain_no_match(ctx.campaigns, facts),
    )
    outcome = RecycleOutcome(
        email=email,
        from_stage=plan.from_stage,
        reason=plan.reason,
        outcome=record.outcome,
        detail=record.detail or "",
        campaign_id=campaign.id if campaign else None,
        campaign_name=campaign.name if campaign else None,
        track=enrolled.track if enrolled else None,
        step_id=enrolled.step_id if enrolled else None,
        due_at=enrolled.due_at if enrolled else None,
        timezone=enrolled.timezone if enrolled else None,
        created=created,
        holdout=enrolled.holdout if enrolled else False,
    )
    return RecycleDecision(outcome, lead, after, stage_changes, record)


@dataclass(frozen=True)
class _Enrolled:
    outcome: str
    detail: str
    track: str | None
    step_id: str | None
    due_at: datetime | None
    timezone: str
    holdout: bool = False


def _enroll(
    lead: LeadSnapshot,
    enrollments: tuple[EnrollmentSnapshot, ...],
    campaign: Campaign,
    previous_recycles: int,
    now: datetime,
) -> tuple[_Enrolled, tuple[EnrollmentSnapshot, ...]]:
    """The re-entry decision for ``campaign`` and the lead's enrollments after it."""
    tz = resolve_timezone(lead.timezone, campaign.send.timezone)
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
        denied_track = existing.track if existing else None
        return _Enrolled(outcome, decision.why, denied_track, None, None, tz.key), enrollments
    if decision.action == "keep":
        assert existing is not None
        kept = _Enrolled(
            outcome,
            decision.why,
            existing.track,
            existing.current_step,
            existing.next_due_at,
            tz.key,
            existing.holdout,
        )
        return kept, enrollments
    # A lead follows one recycle campaign at a time: the newest reason is the one that counts.
    after = [
        replace(
            other,
            status="exited",
            exit_reason=f"recycled into {campaign.id}",
            ended_at=now,
            updated_at=now,
            next_due_at=None,
        )
        if other is not existing and other.status == "active"
        else other
        for other in enrollments
    ]
    if decision.action == "resume":
        assert existing is not None and existing.current_step is not None
        due = next_due(now, campaign.send.window, tz, lead.email)
        resumed = replace(
            existing,
            status="active",
            exit_reason=None,
            ended_at=None,
            next_due_at=due,
            updated_at=now,
        )
        after[enrollments.index(existing)] = resumed
        return (
            _Enrolled(
                outcome,
                decision.why,
                existing.track,
                existing.current_step,
                due,
                tz.key,
                existing.holdout,
            ),
            tuple(after),
        )
    track_name, track = campaign.track_for_score(lead.score)
    step = track.steps[0]
    due = next_due(now + step.wait, campaign.send.window, tz, lead.email)
    if existing is None:
        after.append(
            EnrollmentSnapshot(
                campaign_id=campaign.id,
                campaign_version=campaign.version,
                status="active",
                track=track_name,
                current_step=step.id,
                step_index=0,
                round=1,
                next_due_at=due,
                exit_reason=None,
                enrolled_at=now,
                updated_at=now,
                ended_at=None,
                # decided once: a restart or a changed share keeps the enrollment's group
                holdout=in_holdout(lead.email, campaign.id, campaign.holdout_share),
            )
        )
    else:
        after[enrollments.index(existing)] = replace(
            existing,
            campaign_version=campaign.version,
            status="active",
            track=track_name,
            current_step=step.id,
            step_index=0,
            round=existing.round + 1,
            next_due_at=due,
            exit_reason=None,
            enrolled_at=now,
            ended_at=None,
            updated_at=now,
        )
    held = after[-1] if existing is None else after[enrollments.index(existing)]
    return (
        _Enrolled(outcome, decision.why, track_name, step.id, due, tz.key, held.holdout),
        tuple(after),
    )


def _apply_fields(lead: LeadSnapshot, request: RecycleRequest) -> LeadSnapshot:
    changes: dict[str, Any] = {
        name: value
        for name, value in request.lead_fields.items()
        if name in LEAD_FIELDS and value not in (None, "")
    }
    if request.attributes:
        merged = dict(lead.attributes)
        merged.update({k: v for k, v in request.attributes.items() if v not in (None, "")})
        changes["attributes"] = merged
    return replace(lead, **changes) if changes else lead


def _facts(lead: LeadSnapshot) -> dict[str, Any]:
    facts: dict[str, Any] = dict(lead.attributes)
    for name in ("country", "company", "title", "timezone", "source"):
        value = getattr(lead, name)
        if value is not None:
            facts[name] = value
    return facts
