"""Requalification: a recycled lead whose engagement and fit meet the SLA goes back to sales.

The one function that returns a lead to sales, :func:`requalify`, runs inside the transaction of
the ingest batch that raised the lead's score. The decision is pure and in two parts, so the common
case costs no query: :func:`qualifies` (a recycled lead, not suppressed, its decayed score at the
SLA's threshold for its recycle count, its fit grade at least the SLA's) and, only then,
:func:`reason_allows` (the reason of its latest recycle may requalify). The move: stage
``recycled -> mql`` (legal: :func:`dripengine.funnel.rules.check_move`) with its history row,
every active enrollment exited, and a Handoff row for the CRM (:mod:`dripengine.funnel.handback`),
the outbox :mod:`dripengine.handoff.delivery` delivers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dripengine.funnel import handback
from dripengine.funnel.sla import SLA
from dripengine.scoring.rules import ScoringRules, decayed, fit_grade, requalifies
from dripengine.stages import Stage, check_move
from dripengine.storage import Connection
from dripengine.storage import funnel as store
from dripengine.storage.leads import exit_enrollments

if TYPE_CHECKING:
    from dripengine.config import FitRule

ACTOR = "dripengine"


@dataclass(frozen=True)
class Qualified:
    """A recycled lead whose engagement and fit meet the SLA, with the figures that say so."""

    score: float  # decayed to now
    threshold: float
    fit: str


def qualifies(
    lead: Mapping[str, Any],
    *,
    suppressed: bool,
    sla: SLA,
    rules: ScoringRules,
    fit_rules: Sequence[FitRule],
    now: datetime,
) -> Qualified | None:
    """Whether ``lead`` (stage, score and its time, recycle count, the fields fit is graded on)
    meets the SLA's requalification rule at ``now``; None when it does not."""
    if lead["stage"] != Stage.RECYCLED or suppressed:
        return None
    rule = sla.requalification
    threshold = rule.threshold(lead["recycle_count"])
    score = decayed(lead["score"], lead["score_updated_at"], now, rules.half_life_days)
    if score < threshold:  # the common case: no query needed to know
        return None
    fit = fit_grade(lead, fit_rules)
    if not requalifies(
        score, threshold, reason_may_requalify=True, fit=fit.grade, min_fit=rule.min_fit
    ):
        return None
    return Qualified(score, threshold, fit.grade)


def reason_allows(sla: SLA, record: Mapping[str, Any] | None) -> bool:
    """False when the reason of the lead's latest recycle never requalifies (``may_requalify``)."""
    reason = sla.recycle_reasons.get(record["reason"]) if record else None
    return reason is None or reason.may_requalify


def requalify(
    connection: Connection,
    lead: dict[str, Any],
    campaign_id: str | None,
    *,
    suppressed: bool,
    sla: SLA,
    rules: ScoringRules,
    fit_rules: Sequence[FitRule],
    now: datetime,
) -> bool:
    """Return ``lead`` to sales if it qualifies (see the module); True when it did.

    ``lead`` is the caller's row of the lead (:func:`dripengine.storage.events.event_leads`);
    its ``stage`` and ``requalified_at`` are set here and written by the caller's batch update of
    its leads, in the statement that writes their scores. ``campaign_id`` is the campaign of the
    engagement that raised the score (None: the one of the latest recycle)."""
    qualified = qualifies(
        lead, suppressed=suppressed, sla=sla, rules=rules, fit_rules=fit_rules, now=now
    )
    if qualified is None:
        return False
    record = store.latest_recycle(connection, lead["id"])
    if not reason_allows(sla, record):
        return False
    check_move(lead["stage"], Stage.MQL)
    campaign_id = campaign_id or (record["campaign_id"] if record else None)
    why = f"requalified by {campaign_id}" if campaign_id else "requalified"
    lead.update(stage=Stage.MQL.value, requalified_at=now)
    store.insert_stage_change(
        connection,
        {
            "lead_id": lead["id"],
            "from_stage": Stage.RECYCLED.value,
            "to_stage": Stage.MQL.value,
            "reason": why[:64],
            "actor": ACTOR,
            "at": now,
        },
    )
    exit_enrollments(connection, lead["id"], "requalified", now)
    since = record["at"] if record else None
    evidence = store.earning_events(connection, lead["id"], since, handback.EVIDENCE_LIMIT)
    store.insert_handoff(
        connection,
        {
            "uid": uuid.uuid4().hex,
            "lead_id": lead["id"],
            "campaign_id": campaign_id,
            "score": round(qualified.score, 2),
            "fit_grade": qualified.fit,
            "payload": handback.payload(
                lead,
                record,
                campaign_id,
                qualified.score,
                qualified.fit,
                qualified.threshold,
                evidence,
                now,
            ),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    return True


__all__ = ["Qualified", "qualifies", "reason_allows", "requalify"]
