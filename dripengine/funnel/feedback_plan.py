"""Sales' word on a lead dripengine handed back, the rules: what each outcome does. Pure.

:func:`decide` takes the lead, its latest hand-back and the feedback already given on it, and
returns the plan (the stage move, a recycle to run, the Feedback row, or a no-op), or refuses with
what to do instead. :func:`dripengine.funnel.feedback.record` loads those and writes the plan.

What each outcome does:

- ``accepted``: MQL -> SAL. A lead the CRM already moved further (SQL, opportunity) keeps its stage.
- ``rejected`` + a reason the SLA allows from MQL: MQL -> recycled through the recycle path, into
  the campaign that fits (or denied by its re-entry rules, with the reason). A suppressed lead is
  recycled without a campaign: it is never mailed again.
- ``won``: -> customer (from MQL or SAL: sales' steps in between are the CRM's business).
- ``lost``: only after ``accepted``. Without a reason the lead keeps its stage (the SLA needs a
  reason to recycle); with one it is recycled from its stage (or the stage sales names) like
  ``drip recycle``.

Per hand-back: ``accepted`` may be followed by ``won`` or ``lost``; ``rejected``, ``won`` and
``lost`` are final. The same outcome twice changes nothing (a no-op, said so); anything else is
refused with what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from dripengine.exceptions import FeedbackConflict, FeedbackError
from dripengine.funnel.recycle_request import RecycleRequest
from dripengine.funnel.sla import SLA
from dripengine.stages import check_move, label
from dripengine.storage.funnel import FEEDBACK_LIMITS
from dripengine.storage.textlimits import text_problem

Outcome = Literal["accepted", "rejected", "won", "lost"]

OUTCOMES: tuple[str, ...] = ("accepted", "rejected", "won", "lost")
# what may follow what on one hand-back (the same outcome again is a no-op, not listed)
FOLLOWS: Mapping[str | None, frozenset[str]] = {
    None: frozenset({"accepted", "rejected", "won"}),
    "accepted": frozenset({"won", "lost"}),
    "rejected": frozenset(),
    "won": frozenset(),
    "lost": frozenset(),
}
# stages at or past the one an outcome moves to: the CRM got there first, the stage is kept
AHEAD = {
    "accepted": ("sal", "sql", "opportunity", "customer", "evangelist"),
    "won": ("customer", "evangelist"),
}
TARGET = {"accepted": "sal", "won": "customer"}


@dataclass(frozen=True)
class FeedbackRequest:
    email: str
    outcome: str
    reason: str | None = None
    note: str | None = None
    actor: str | None = None
    from_stage: str | None = None  # with lost + reason: the stage sales had the deal in

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("email", self.email, 320),
            ("reason", self.reason, FEEDBACK_LIMITS["reason"]),
            ("actor", self.actor, FEEDBACK_LIMITS["actor"]),
            ("from", self.from_stage, 32),
        ):
            problem = text_problem(name, value, limit) if value else None
            if problem:
                raise FeedbackError(problem)
        problem = text_problem("note", self.note) if self.note else None
        if problem:
            raise FeedbackError(problem)


@dataclass(frozen=True)
class LeadState:
    id: int
    email: str
    stage: str
    suppressed: str | None = None  # why, as a refusal names it (None: not suppressed)


@dataclass(frozen=True)
class HandoffState:
    id: int
    at: datetime
    campaign_id: str | None
    score: float
    fit_grade: str
    recycle_reason: str | None


@dataclass(frozen=True)
class Given:
    """Feedback already recorded on the hand-back."""

    outcome: str
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class FeedbackPlan:
    """What :func:`record` writes: nothing (``noop``), or the row, a stage move and/or a recycle."""

    email: str
    outcome: str
    noop: bool
    message: str
    row: Mapping[str, Any] | None = None
    stage_move: tuple[str, str, str] | None = None  # (from, to, why) outside the recycle path
    recycle: RecycleRequest | None = None  # run through the recycle path


# --- the decision (pure) -------------------------------------------------------------------------


def check_outcome(outcome: str) -> str:
    value = outcome.strip().lower()
    if value not in OUTCOMES:
        raise FeedbackError(
            f'"{outcome}" is not a feedback outcome (use one of: {", ".join(OUTCOMES)})'
        )
    return value


def rejection_reasons(sla: SLA) -> list[str]:
    """The reason codes sales may reject a handed-back MQL for: the SLA's reasons valid from MQL."""
    return [code for code, stages in sla.reason_stages.items() if "mql" in stages]


def check_reason(reason: str | None, sla: SLA, stage: str) -> str:
    """``reason`` normalised when the SLA gives it for ``stage``; FeedbackError listing those it does."""
    valid = [code for code, stages in sla.reason_stages.items() if stage in stages]
    if not reason or not reason.strip():
        raise FeedbackError(f"a reason is required (one of: {', '.join(valid)})")
    code = reason.strip().lower()
    if code not in valid:
        what = (
            "not a recycle reason in the SLA"
            if code not in sla.reason_stages
            else (f"not one the SLA gives for {label(stage)}")
        )
        raise FeedbackError(f'"{reason}" is {what} (use one of: {", ".join(valid)})')
    return code


def decide(
    request: FeedbackRequest,
    lead: LeadState,
    handoff: HandoffState | None,
    given: Sequence[Given],
    sla: SLA,
    now: datetime,
) -> FeedbackPlan:
    """The plan for one piece of feedback; FeedbackError (one line, what to do) when it is refused."""
    email = lead.email
    outcome = check_outcome(request.outcome)
    if handoff is None:
        raise FeedbackConflict(
            f"{email} was never handed back by dripengine: feedback is for requalified leads "
            "(`drip leads list --requalified` lists them)"
        )
    last = given[-1] if given else None
    if last is not None and last.outcome == outcome:
        why = f" ({last.reason})" if last.reason else ""
        return FeedbackPlan(
            email,
            outcome,
            noop=True,
            message=f"{email}: already {outcome}{why} on {last.at:%Y-%m-%d}; nothing changed",
        )
    if outcome not in FOLLOWS[last.outcome if last else None]:
        raise FeedbackConflict(_contradiction(email, outcome, last))
    reason = None
    stage_move = None
    recycle = None
    if outcome == "rejected":
        if request.from_stage:
            raise FeedbackError("a rejection is always from MQL: leave out the stage")
        reason = check_reason(request.reason, sla, "mql")
        if lead.stage != "mql":
            raise FeedbackConflict(
                f"{email} is {label(lead.stage)} now, not MQL as dripengine handed it back: a "
                "rejection answers the hand-back (a lead sales worked and dropped is --lost)"
            )
        if lead.suppressed:
            stage_move = ("mql", "recycled", reason)
        else:
            recycle = RecycleRequest(
                email=email, reason=reason, from_stage="mql", note=request.note, actor=request.actor
            )
    elif outcome == "lost":
        if request.reason:
            stage = (request.from_stage or lead.stage).strip().lower()
            reason = check_reason(request.reason, sla, stage)
            if lead.suppressed:
                raise FeedbackConflict(
                    f"{email} is suppressed ({lead.suppressed}): record the loss without a "
                    "reason; it is never mailed again, so it is not recycled"
                )
            recycle = RecycleRequest(
                email=email,
                reason=reason,
                from_stage=request.from_stage,
                note=request.note,
                actor=request.actor,
            )
        elif request.from_stage:
            raise FeedbackError("the stage goes with a reason (--lost --reason R --from STAGE)")
    else:
        if request.reason:
            raise FeedbackError(f"a reason goes with --rejected or --lost, not with {outcome}")
        target = TARGET[outcome]
        if lead.stage not in AHEAD[outcome]:
            check_move(lead.stage, target)
            stage_move = (lead.stage, target, f"{outcome} by sales")
    row = {
        "lead_id": lead.id,
        "handoff_id": handoff.id,
        "outcome": outcome,
        "reason": reason,
        "note": request.note,
        "actor": request.actor,
        "campaign_id": handoff.campaign_id,
        "recycle_reason": handoff.recycle_reason,
        "score_at_handoff": handoff.score,
        "fit_at_handoff": handoff.fit_grade,
        "at": now,
    }
    message = f"{email}: {outcome}" + (f" ({reason})" if reason else "") + " recorded"
    if stage_move is not None:
        message += f"; {label(stage_move[0])} -> {label(stage_move[1])}"
        if lead.suppressed:
            message += f"; not enrolled: suppressed ({lead.suppressed})"
    elif recycle is None:
        message += f"; stays {label(lead.stage)}"
        if outcome == "lost":
            message += " (--lost --reason CODE would recycle it into a campaign)"
    return FeedbackPlan(email, outcome, False, message, row, stage_move, recycle)


def _contradiction(email: str, outcome: str, last: Given | None) -> str:
    if last is None:  # only lost comes here
        return (
            f"{email} was not accepted: report --accepted first, or --rejected --reason R "
            "if sales did not take it"
        )
    when = f"on {last.at:%Y-%m-%d}"
    if last.outcome == "accepted":
        return (
            f"{email} was accepted {when}: an accepted lead is --won or --lost "
            "(--lost --reason R recycles it)"
        )
    if last.outcome == "rejected":
        return (
            f"{email} was rejected ({last.reason}) {when} and went back to recycled: feedback "
            "is for its next hand-back"
        )
    return f"{email} was {last.outcome} {when}: that is final for this hand-back"


__all__ = [
    "OUTCOMES",
    "FeedbackPlan",
    "FeedbackRequest",
    "Given",
    "HandoffState",
    "LeadState",
    "check_outcome",
    "check_reason",
    "decide",
    "rejection_reasons",
]
