"""The recycle decision, pure: a lead's snapshot in, the outcome and the rows to write out.

:func:`decide` is the one place the rules of a recycle are applied (through :mod:`dripengine.funnel.stages`
and :mod:`dripengine.campaigns`): it takes what the database holds about one address as plain
snapshots and returns the outcome with the lead and its enrollments as they are afterwards, plus the
stage changes and the recycle record to insert. It raises :class:`FunnelError` when the lead may not
be recycled, before anything is decided.

:class:`Pending` chains decisions over the snapshots of a batch of addresses, so a later request for
an address sees what an earlier one did, and says what to insert and update.
:mod:`dripengine.funnel.recycle` loads the snapshots and writes the rows, for one lead or a batch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dripengine.campaigns import Campaign, LeadFacts, explain_no_match, route
from dripengine.campaigns.window import WINDOW_SPREAD, first_due, next_opening, resolve_timezone
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import FunnelError, LeadNotFound
from dripengine.funnel.sla import SLA
from dripengine.funnel.stages import (
    ExistingEnrollment,
    check_reason,
    decide_reentry,
    label,
    plan_recycle,
)
from dripengine.storage.models import CONTACT_FIELDS, Lead, RecycleRecord
from dripengine.storage.textlimits import column_limits, json_problem, text_problem
from dripengine.suggest import did_you_mean_any

LEAD_FIELDS = CONTACT_FIELDS
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

    def __post_init__(self) -> None:
        problem = request_problem(self)
        if problem is not None:
            raise FunnelError(problem)


_LEAD_LIMITS = column_limits(Lead.__table__)  # type: ignore[attr-defined]
_RECYCLE_LIMITS = column_limits(RecycleRecord.__table__)  # type: ignore[attr-defined]


def request_problem(request: RecycleRequest) -> str | None:
    """What the database would refuse in ``request`` (on PostgreSQL; SQLite would store it), named
    by field: every way a recycle arrives (CLI, CSV, API, sales feedback) is checked here."""
    for name, value, limit in (
        ("email", request.email, _LEAD_LIMITS["email"]),
        ("reason", request.reason, _RECYCLE_LIMITS["reason"]),
        ("from", request.from_stage, _RECYCLE_LIMITS["from_stage"]),
        ("actor", request.actor, _RECYCLE_LIMITS["actor"]),
    ):
        problem = text_problem(name, value, limit) if isinstance(value, str) else None
        if problem:
            return problem
    if request.note is not None:
        problem = text_problem("note", request.note)
        if problem:
            return problem
    for name, value in request.lead_fields.items():
        if isinstance(value, str):
            problem = text_problem(name, value, _LEAD_LIMITS.get(name))
            if problem:
                return problem
    return json_problem("an attribute", dict(request.attributes))


@dataclass(frozen=True)
class RecycleContext:
    campaigns: Sequence[Campaign]
    sla: SLA
    now: datetime
    # start the engagement score again at 0 (scoring.reset_on_recycle), so the lead is not handed
    # straight back on the clicks that got it to sales the last time
    reset_score: bool = True
    # an address no lead has: create the lead (the CRM API, ``drip recycle --create``) or refuse
    # it with the nearest stored addresses (``drip recycle``: a typo must not enrol a ghost lead)
    create_leads: bool = True


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


def request_email(request: RecycleRequest) -> str:
    """The request's address normalised; :class:`FunnelError` when it is not an address."""
    try:
        return normalise_email(request.email)
    except InvalidEmail as exc:
        raise FunnelError(f"{request.email!r} is not a valid email address: {exc}") from None


def suppression_text(reason: str, created_at: datetime) -> str:
    """Why an address is suppressed, as a refusal names it: ``unsubscribe on 23 Nov 2026``."""
    return f"{reason} on {created_at:%d %b %Y}"


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
        reason_stages=ctx.sla.reason_stages,
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
        due = next_opening(
            now, campaign.send.window, tz, spread_key=lead.email, spread=WINDOW_SPREAD
        )
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
            _Enrolled(outcome, decision.why, existing.track, existing.current_step, due, tz.key),
            tuple(after),
        )
    track_name, track = campaign.track_for_score(lead.score)
    step = track.steps[0]
    due = first_due(
        now, step.wait, campaign.send.window, tz, spread_key=lead.email, spread=WINDOW_SPREAD
    )
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
    return _Enrolled(outcome, decision.why, track_name, step.id, due, tz.key), tuple(after)


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


# --- a batch of decisions ------------------------------------------------------------------------

# The columns a recycle may change, compared to tell which rows to update.
LEAD_WRITES = ("stage", "recycle_count", "score", "attributes", "updated_at", *LEAD_FIELDS)
ENROLLMENT_WRITES = tuple(f.name for f in fields(EnrollmentSnapshot) if f.name != "id")


class Pending:
    """Decisions over the snapshots of a set of addresses, and the rows they add up to.

    Each :meth:`recycle` sees the leads and enrollments as the decisions before it left them. The
    writes compare the end state with the snapshots as loaded: a row inserted, or only the columns
    that changed updated.
    """

    def __init__(
        self,
        emails: Collection[str],
        leads: Mapping[str, LeadSnapshot],
        suppressed: Mapping[str, str],
        enrollments: Mapping[str, Sequence[EnrollmentSnapshot]],
    ) -> None:
        self.emails = frozenset(emails)
        self.loaded_leads = dict(leads)
        self.loaded_enrollments = {email: tuple(rows) for email, rows in enrollments.items()}
        self.suppressed = dict(suppressed)
        self.leads = dict(self.loaded_leads)
        self.enrollments = dict(self.loaded_enrollments)
        self.stage_changes: list[StageChangeRow] = []
        self.records: list[RecycleRecordRow] = []
        self.score_resets: list[tuple[str, float, datetime]] = []  # (email, old score, when)
        self.nearest: dict[str, list[str]] = {}  # unknown address -> nearest stored ones

    def recycle(self, request: RecycleRequest, ctx: RecycleContext) -> RecycleOutcome:
        """Decide one request; nothing changes when it is refused (FunnelError)."""
        email = request_email(request)
        if email not in self.emails:
            raise KeyError(f"{email} was not loaded with this batch")
        if not ctx.create_leads and email not in self.leads and email not in self.suppressed:
            check_reason(request.reason.strip().lower(), ctx.sla.reason_stages)  # that first
            raise LeadNotFound(
                f"no lead {email}{did_you_mean_any(self.nearest.get(email, ()))}; "
                "to add it as a new lead, recycle it with --create"
            )
        decision = decide(
            self.leads.get(email),
            self.suppressed.get(email),
            self.enrollments.get(email, ()),
            request,
            ctx,
        )
        before = self.leads.get(email)
        if before is not None and before.score > 0 and decision.lead.score == 0:
            self.score_resets.append((email, before.score, decision.lead.updated_at))
        self.leads[email] = decision.lead
        self.enrollments[email] = decision.enrollments
        self.stage_changes.extend(decision.stage_changes)
        self.records.append(decision.record)
        return decision.outcome

    def new_leads(self) -> list[LeadSnapshot]:
        return [lead for email, lead in self.leads.items() if email not in self.loaded_leads]

    def lead_updates(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(id, changed columns)`` of each stored lead a decision changed."""
        for email, before in self.loaded_leads.items():
            after = self.leads[email]
            if after is not before and before.id is not None:
                changed = _changed(before, after, LEAD_WRITES)
                if changed:
                    yield before.id, changed

    def new_enrollments(self) -> Iterator[tuple[str, EnrollmentSnapshot]]:
        """``(lead email, enrollment)`` of each enrollment to insert."""
        for email, rows in self.enrollments.items():
            for row in rows:
                if row.id is None:
                    yield email, row

    def enrollment_updates(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for email, rows in self.enrollments.items():
            loaded = {row.id: row for row in self.loaded_enrollments.get(email, ())}
            for row in rows:
                before = loaded.get(row.id) if row.id is not None else None
                if before is not None and row is not before and row.id is not None:
                    changed = _changed(before, row, ENROLLMENT_WRITES)
                    if changed:
                        yield row.id, changed


def _changed(before: Any, after: Any, names: Sequence[str]) -> dict[str, Any]:
    return {
        name: getattr(after, name)
        for name in names
        if getattr(after, name) != getattr(before, name)
    }
