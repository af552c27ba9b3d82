"""The second stage of a round: :func:`dripengine.sending.policy.decide` applied to each claimed
enrollment, giving the round's work list (:class:`Send`), its enrollment updates and its skipped
steps.

No I/O: the round is loaded (:mod:`.claim`), the rows are written by :mod:`.record`. A skipped
step is recorded and the next one decided at once, up to :data:`MAX_SKIPS` in a row; the cap sees
this round's sends to the same lead.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dripengine.campaigns import Campaign, Step
from dripengine.campaigns.sequence import Progress
from dripengine.campaigns.variants import Variant, chosen, template_of
from dripengine.campaigns.window import resolve_timezone
from dripengine.funnel.sla import SLA
from dripengine.mail.message import OutgoingEmail
from dripengine.scoring.rules import decayed
from dripengine.sending.claim import Round
from dripengine.sending.holdout import hold_back
from dripengine.sending.policy import DueLead, decide
from dripengine.sending.tally import Tally
from dripengine.storage.messages import DELIVERED, DONE, MessageRow
from dripengine.storage.rounds import EnrollmentRow, LeadRow, RecycleRow

MAX_SKIPS = 50  # steps skipped in a row before the enrollment is looked at again next tick


@dataclass
class Send:
    """One email of the round: decided here, its message id, email or error filled in later."""

    enrollment: EnrollmentRow
    lead: LeadRow
    campaign: Campaign
    track: str
    step: Step
    progress: Progress
    score: float
    uid: str
    recycle: dict[str, Any] = field(default_factory=dict)
    message_id: int | None = None  # a retry's row, or the 'sending' row inserted for it
    email: OutgoingEmail | None = None  # rendered
    error: str | None = None  # could not be rendered
    attempts: int = 1
    variant: Variant | None = None  # the step's A/B variant this lead gets

    @property
    def template(self) -> str:
        """The template this email renders: the variant's, else the step's."""
        return template_of(self.step, self.variant)


@dataclass(frozen=True)
class Decided:
    """A round's decisions: the emails to send, the enrollments' new values, the skipped steps."""

    sends: list[Send]
    enrollment_updates: list[dict[str, Any]]  # ``id`` and the columns to set
    skipped_rows: list[dict[str, Any]]  # 'skipped' message rows to insert


def decide_round(
    batch: Round,
    campaigns: Mapping[str, Campaign],
    sla: SLA,
    now: datetime,
    tally: Tally,
    *,
    cap: int,
    half_life_days: float,
    quiet: timedelta = timedelta(0),
    winners: Mapping[tuple[str, str], str] | None = None,
) -> Decided:
    """Decide every enrollment of ``batch`` at ``now``; ``tally`` counts skips, waits, exits,
    completions. ``cap`` is the most emails a lead may get in 7 days (reps' emails counted);
    ``quiet`` how long a sales touch holds a lead's marketing email. ``winners``: the recorded
    A/B winner by (campaign, step); a step with variants sends it, or the lead's own variant."""
    winners = winners or {}
    sends: list[Send] = []
    enrollment_updates: list[dict[str, Any]] = []
    skipped_rows: list[dict[str, Any]] = []
    for enrollment in batch.enrollments:
        lead = batch.leads[enrollment.lead_id]
        campaign = campaigns.get(enrollment.campaign_id)
        release = {
            "id": enrollment.id,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
        }
        if campaign is None:
            tally.exited += 1
            enrollment_updates.append(
                {
                    **release,
                    "status": "exited",
                    "exit_reason": f"campaign {enrollment.campaign_id} no longer exists",
                    "ended_at": now,
                    "next_due_at": None,
                }
            )
            continue
        rows = batch.messages.get(enrollment.id, [])
        progress = progress_of(
            rows, batch.engaged.get(enrollment.id, set()), enrollment.enrolled_at
        )
        score = decayed(lead.score, lead.score_updated_at, now, half_life_days)
        due_lead = DueLead(
            email=lead.email,
            score=score,
            timezone=resolve_timezone(lead.timezone, campaign.send.timezone),
            suppressed=batch.suppressed.get(lead.email),
            last_touch=batch.last_touch(lead.id),
        )
        sales_emails = batch.sales_emails(lead.id)
        recent = batch.recent.get(lead.id, [])
        if enrollment.holdout:  # never sent anything: its step is held back, not decided
            decision = hold_back(
                campaign,
                enrollment.track,
                enrollment.current_step,
                due_lead,
                entered_at=enrollment.enrolled_at,
                now=now,
            )
            tally.held_back += decision.kind != "exit"
        for _ in range(0 if enrollment.holdout else MAX_SKIPS):
            decision = decide(
                campaign,
                due_lead,
                progress,
                entered_at=enrollment.enrolled_at,
                recent_sends=recent,
                cap=cap,
                now=now,
                sales_emails=sales_emails,
                quiet=quiet,
            )
            if decision.kind != "skip":
                break
            assert decision.step is not None
            tally.skipped += 1
            skipped_rows.append(
                message_row(
                    enrollment,
                    lead,
                    campaign,
                    decision.track,
                    decision.step,
                    now,
                    status="skipped",
                    error=decision.reason,
                )
            )
            progress = progress.after(decision.step.id, now, sent=False)
        if decision.kind == "send":
            assert decision.step is not None and decision.track is not None
            retry = next(
                (r for r in rows if r.step_id == decision.step.id and r.status == "retry"), None
            )
            variant = chosen(
                lead.email,
                campaign.id,
                decision.step,
                winners.get((campaign.id, decision.step.id)),
            )
            sends.append(
                Send(
                    enrollment,
                    lead,
                    campaign,
                    decision.track,
                    decision.step,
                    progress,
                    score,
                    uid=retry.uid if retry else uuid.uuid4().hex,
                    recycle=recycle_context(sla, batch.recycles.get(lead.id)),
                    message_id=retry.id if retry else None,
                    attempts=(retry.attempts + 1) if retry else 1,
                    variant=variant,
                )
            )
            recent = [*recent, now]
            batch.recent[lead.id] = recent  # the cap sees this batch's sends to the same lead
            # the lease is kept until the result is recorded: while the provider works, no
            # other worker may claim this enrollment or take its message for a crashed one
            enrollment_updates.append(
                {
                    "id": enrollment.id,
                    "updated_at": now,
                    "track": decision.track,
                    "current_step": decision.step.id,
                }
            )
        elif decision.kind == "wait":
            tally.waiting += not enrollment.holdout
            enrollment_updates.append(
                {
                    **release,
                    "next_due_at": decision.until,
                    **(
                        {"current_step": decision.step.id, "track": decision.track}
                        if decision.step
                        else {}
                    ),
                }
            )
        elif decision.kind == "exit":
            tally.exited += 1
            enrollment_updates.append(
                {
                    **release,
                    "status": "exited",
                    "exit_reason": decision.reason,
                    "ended_at": now,
                    "next_due_at": None,
                }
            )
        elif decision.kind == "complete":
            tally.completed += 1
            enrollment_updates.append(
                {
                    **release,
                    "status": "completed",
                    "exit_reason": None,
                    "ended_at": now,
                    "next_due_at": None,
                    "current_step": None,
                }
            )
        else:  # still skipping after MAX_SKIPS: look again next tick
            enrollment_updates.append({**release, "next_due_at": now + timedelta(minutes=1)})
    return Decided(sends, enrollment_updates, skipped_rows)


def message_row(
    enrollment: EnrollmentRow,
    lead: LeadRow,
    campaign: Campaign,
    track: str | None,
    step: Step,
    now: datetime,
    *,
    status: str,
    provider: str | None = None,
    error: str | None = None,
    uid: str | None = None,
    variant: Variant | None = None,
) -> dict[str, Any]:
    """A new ``message`` row: ``skipped``, or ``sending`` through ``provider``."""
    return {
        "uid": uid or uuid.uuid4().hex,
        "enrollment_id": enrollment.id,
        "lead_id": lead.id,
        "campaign_id": campaign.id,
        "round": enrollment.round,
        "step_id": step.id,
        "track": track,
        "template": template_of(step, variant),
        "subject": None,
        "provider": provider if status == "sending" else None,
        "provider_message_id": None,
        "status": status,
        "error": error,
        "attempts": 1 if status == "sending" else 0,
        "created_at": now,
        "sent_at": None,
        "variant": variant.id if variant else None,
    }


def recycle_context(sla: SLA, record: RecycleRow | None) -> dict[str, Any]:
    """The ``recycle`` a template sees: the stage and reason of the lead's latest recycle."""
    if not record:
        return {}
    reason = sla.recycle_reasons.get(record.reason)
    return {
        "from_stage": record.from_stage,
        "reason": record.reason,
        "reason_label": reason.label if reason else record.reason,
    }


def progress_of(
    rows: Sequence[MessageRow], engaged: set[tuple[str, str]], entered_at: datetime
) -> Progress:
    """Where an enrollment is in its round: the steps behind it, those sent, its engagement."""
    done = frozenset(r.step_id for r in rows if r.status in DONE)
    ordered = sorted(rows, key=lambda r: r.created_at)
    sent = tuple(r.step_id for r in ordered if r.status in DELIVERED)
    last = max((r.created_at for r in rows if r.status in DONE), default=entered_at)
    return Progress(last_at=max(last, entered_at), done=done, sent=sent, engaged=frozenset(engaged))


__all__ = ["MAX_SKIPS", "Decided", "Send", "decide_round", "message_row", "progress_of"]
