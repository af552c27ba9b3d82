"""What a recycle is asked and what it answers: the request, its context, the outcome. Pure.

Every way a recycle arrives (``drip recycle``, a CSV row, ``POST /api/recycle``, sales' feedback)
builds a :class:`RecycleRequest`, which refuses what the database could not store
(:func:`request_problem`); :class:`RecycleContext` holds the campaigns, the SLA and the time it is
decided against; :class:`RecycleOutcome` says what happened, for a person or as JSON.
The decision itself is :func:`dripengine.funnel.recycle_plan.decide`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dripengine.campaigns import Campaign
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import FunnelError
from dripengine.funnel.sla import SLA
from dripengine.stages import label
from dripengine.storage.funnel import LEAD_LIMITS, RECYCLE_LIMITS
from dripengine.storage.models import CONTACT_FIELDS
from dripengine.storage.textlimits import json_problem, text_problem

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


def request_problem(request: RecycleRequest) -> str | None:
    """What the database would refuse in ``request`` (on PostgreSQL; SQLite would store it), named
    by field: every way a recycle arrives (CLI, CSV, API, sales feedback) is checked here."""
    for name, value, limit in (
        ("email", request.email, LEAD_LIMITS["email"]),
        ("reason", request.reason, RECYCLE_LIMITS["reason"]),
        ("from", request.from_stage, RECYCLE_LIMITS["from_stage"]),
        ("actor", request.actor, RECYCLE_LIMITS["actor"]),
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
            problem = text_problem(name, value, LEAD_LIMITS.get(name))
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
    # the SLA's own reasons (sla_no_decision) accepted too: set only by the SLA's renurture
    sla_reasons: bool = False

    @property
    def reason_stages(self) -> dict[str, tuple[str, ...]]:
        """The reasons this recycle may carry, with the stages each is given for."""
        if self.sla_reasons:
            return {**self.sla.reason_stages, **self.sla.own_reasons}
        return self.sla.reason_stages


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
    holdout: bool = False  # in the campaign's holdout group: enrolled, sent nothing

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
        if self.holdout:
            return f"{text}; in its holdout group: enrolled, sent nothing (docs/holdout.md)"
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
            "holdout": self.holdout,
        }


def format_local(when: datetime, tz_name: str | None) -> str:
    """``Tue 24 Nov 09:00 Europe/Berlin``."""
    tz = ZoneInfo(tz_name or "UTC")
    local = when.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %H:%M} {tz.key}"


def request_email(request: RecycleRequest) -> str:
    """The request's address normalised; :class:`FunnelError` when it is not an address."""
    try:
        return normalise_email(request.email)
    except InvalidEmail as exc:
        raise FunnelError(f"{request.email!r} is not a valid email address: {exc}") from None


def suppression_text(reason: str, created_at: datetime) -> str:
    """Why an address is suppressed, as a refusal names it: ``unsubscribe on 23 Nov 2026``."""
    return f"{reason} on {created_at:%d %b %Y}"
