"""Sales' word on a lead dripengine handed back, recorded: the one function that moves a lead on
sales' feedback (accepted, rejected with a reason, won, lost).

The closed loop. :func:`record` loads the lead, its latest hand-back and the feedback already given
on it (:func:`load`), asks :func:`dripengine.funnel.feedback_plan.decide` (pure) for the plan and
writes it in one transaction: the Feedback row, and the stage move it makes. A rejection (and a
loss with a reason) goes through the same recycle path as ``drip recycle``
(:func:`dripengine.funnel.recycle.recycle_in`), so routing, re-entry, cool-down and max-recycles
apply as they do there; the other moves (MQL -> SAL, -> customer, a suppressed lead's MQL ->
recycled) are one stage change each (:func:`dripengine.storage.funnel.move_stage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import FeedbackError, LeadNotFound
from dripengine.funnel.feedback_plan import (
    FeedbackRequest,
    Given,
    HandoffState,
    LeadState,
    decide,
)
from dripengine.funnel.recycle import recycle_in
from dripengine.funnel.recycle_request import RecycleContext, RecycleOutcome, suppression_text
from dripengine.leads.nearest import nearest_addresses
from dripengine.storage import Connection, Engine, suppression
from dripengine.storage import funnel as store
from dripengine.suggest import did_you_mean_any


@dataclass(frozen=True)
class FeedbackResult:
    email: str
    outcome: str
    noop: bool
    message: str
    stage: str  # the lead's stage afterwards
    recycle: RecycleOutcome | None = None

    def describe(self) -> str:
        if self.recycle is None:
            return self.message
        return f"{self.message}; {self.recycle.describe()}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "outcome": self.outcome,
            "noop": self.noop,
            "stage": self.stage,
            "message": self.describe(),
            "recycle": self.recycle.as_dict() if self.recycle else None,
        }


def record(engine: Engine, request: FeedbackRequest, ctx: RecycleContext) -> FeedbackResult:
    """Record ``request`` in one transaction; FeedbackError / LeadNotFound / FunnelError when refused
    (nothing is written then)."""
    try:
        email = normalise_email(request.email)
    except InvalidEmail as exc:
        raise FeedbackError(f"{request.email!r} is not a valid email address: {exc}") from None
    with engine.begin() as connection:
        lead, handoff, given = load(connection, email)
        plan = decide(request, lead, handoff, given, ctx.sla, ctx.now)
        if plan.noop:
            return FeedbackResult(email, plan.outcome, True, plan.message, lead.stage)
        stage = lead.stage
        outcome = None
        if plan.recycle is not None:
            outcome = recycle_in(connection, plan.recycle, ctx)
            stage = "recycled"
        if plan.stage_move is not None:
            from_stage, stage, why = plan.stage_move
            store.move_stage(
                connection, lead.id, from_stage, stage, why[:64], request.actor, ctx.now
            )
        assert plan.row is not None
        store.insert_feedback(connection, plan.row)
    return FeedbackResult(email, plan.outcome, False, plan.message, stage, outcome)


def load(connection: Connection, email: str) -> tuple[LeadState, HandoffState | None, list[Given]]:
    """The lead, its latest hand-back and the feedback on that hand-back, oldest first."""
    row = store.lead_stage(connection, email)
    if row is None:
        nearby = nearest_addresses(connection, [email]).get(email, [])
        raise LeadNotFound(
            f"no lead {email}{did_you_mean_any(nearby)}"
            + ("" if nearby else " (`drip leads list` shows them)")
        )
    entry = suppression.suppressed(connection, [email]).get(email)
    lead = LeadState(*row, suppression_text(entry.reason, entry.created_at) if entry else None)
    latest = store.latest_handoff(connection, lead.id)
    if latest is None:
        return lead, None, []
    recycle = (latest["payload"] or {}).get("recycle") or {}
    handoff = HandoffState(
        id=latest["id"],
        at=latest["created_at"],
        campaign_id=latest["campaign_id"],
        score=latest["score"],
        fit_grade=latest["fit_grade"],
        recycle_reason=recycle.get("reason"),
    )
    given = [Given(*r) for r in store.feedback_on(connection, handoff.id)]
    return lead, handoff, given


__all__ = ["FeedbackResult", "load", "record"]
