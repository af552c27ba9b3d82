"""What a requalified lead's hand-back tells the CRM: the Handoff row's payload. Pure.

The lead's contact fields and attributes, the score against the threshold it crossed, the fit
grade, the campaign that earned it, the recycle it came back from (reason, note, count) with the
days spent in nurture, and the evidence: the latest engagement that raised the score since that
recycle (at most :data:`EVIDENCE_LIMIT` events, oldest first). :mod:`dripengine.handoff` delivers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

EVIDENCE_LIMIT = 20  # human events listed in a handoff
CONTACT = ("email", "first_name", "last_name", "company", "title", "phone", "country")


def payload(
    lead: Mapping[str, Any],
    record: Mapping[str, Any] | None,
    campaign_id: str | None,
    score: float,
    fit: str,
    threshold: float,
    evidence: Sequence[Any],
    now: datetime,
) -> dict[str, Any]:
    """The payload for ``lead``; ``record`` its latest recycle record, ``evidence`` the score
    increases since then, newest first (:func:`dripengine.storage.funnel.earning_events`)."""
    since = record["at"] if record else None
    listed = [
        {
            "type": row.type,
            "at": row.occurred_at.isoformat(),
            "points": round(row.delta, 2),
            "campaign": row.campaign_id,
            "step": row.step_id,
            "subject": row.subject,
            "url": row.url,
            "tag": row.tag,
        }
        for row in evidence
    ]
    listed.reverse()
    return {
        "event": "lead.requalified",
        "lead": {name: lead.get(name) for name in CONTACT},
        "attributes": dict(lead.get("attributes") or {}),
        "score": round(score, 2),
        "threshold": threshold,
        "fit_grade": fit,
        "campaign": campaign_id,
        "recycle": {
            "from_stage": record["from_stage"],
            "reason": record["reason"],
            "note": record["note"],
            "recycled_at": record["at"].isoformat(),
            "recycle_count": record["recycle_count"],
        }
        if record
        else None,
        "days_in_nurture": (now - since).days if since else None,
        "requalified_at": now.isoformat(),
        "evidence": listed,
    }


__all__ = ["EVIDENCE_LIMIT", "payload"]
