"""Rows written straight into the tables, for tests that need a state without its whole history
(a requalified lead's Handoff without going through ingest, a campaign's sends and complaints)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from dripengine.storage.models import (
    CampaignPause,
    Enrollment,
    Event,
    Feedback,
    Handoff,
    Lead,
    Message,
    RecycleRecord,
    ScoreChange,
    Suppression,
)

LEAD = Lead.__table__  # type: ignore[attr-defined]
HANDOFF = Handoff.__table__  # type: ignore[attr-defined]
ENROLLMENT = Enrollment.__table__  # type: ignore[attr-defined]
MESSAGE = Message.__table__  # type: ignore[attr-defined]
EVENT = Event.__table__  # type: ignore[attr-defined]
SCORE_CHANGE = ScoreChange.__table__  # type: ignore[attr-defined]
RECYCLE = RecycleRecord.__table__  # type: ignore[attr-defined]
SUPPRESSION = Suppression.__table__  # type: ignore[attr-defined]
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
PAUSE = CampaignPause.__table__  # type: ignore[attr-defined]


def _insert(engine: Engine, table: Any, values: dict[str, Any]) -> int:
    with engine.begin() as connection:
        result = connection.execute(insert(table).values(values).returning(table.c[_key(table)]))
        return result.scalar_one()


def _key(table: Any) -> str:
    return "campaign_id" if table is PAUSE else "id"


def lead(engine: Engine, email: str, at: datetime, **values: Any) -> int:
    return _insert(
        engine,
        LEAD,
        {
            "email": email,
            "attributes": {},
            "stage": "recycled",
            "score": 0.0,
            "recycle_count": 1,
            "soft_bounces": 0,
            "created_at": at,
            "updated_at": at,
            **values,
        },
    )


def recycle_record(engine: Engine, lead_id: int, at: datetime, **values: Any) -> int:
    return _insert(
        engine,
        RECYCLE,
        {
            "lead_id": lead_id,
            "from_stage": "sql",
            "reason": "no_budget",
            "at": at,
            "recycle_count": 1,
            "campaign_id": "lost-sql-winback",
            "outcome": "enrolled",
            **values,
        },
    )


def enrollment(engine: Engine, lead_id: int, campaign_id: str, at: datetime, **values: Any) -> int:
    return _insert(
        engine,
        ENROLLMENT,
        {
            "lead_id": lead_id,
            "campaign_id": campaign_id,
            "status": "active",
            "track": "cold",
            "current_step": "checkin",
            "next_due_at": at,
            "enrolled_at": at,
            "updated_at": at,
            **values,
        },
    )


def handoff(
    engine: Engine,
    lead_id: int,
    at: datetime,
    *,
    payload: dict[str, Any] | None = None,
    **values: Any,
) -> tuple[int, str]:
    """A pending Handoff as ingest writes it when a lead requalifies; (id, uid)."""
    uid = uuid.uuid4().hex
    row_id = _insert(
        engine,
        HANDOFF,
        {
            "uid": uid,
            "lead_id": lead_id,
            "campaign_id": "lost-sql-winback",
            "score": 64.0,
            "fit_grade": "B",
            "payload": payload
            if payload is not None
            else {  # the shape ingest writes (see engagement/ingest.py _handoff_payload)
                "event": "lead.requalified",
                "lead": {"email": "jane@acme.example", "first_name": "Jane"},
                "score": 64.0,
                "fit_grade": "B",
                "campaign": "lost-sql-winback",
                "recycle": {"from_stage": "sql", "reason": "no_budget", "recycle_count": 1},
                "days_in_nurture": 41,
                "requalified_at": at.isoformat(),
                "evidence": [
                    {"type": "click", "tag": "pricing", "at": at.isoformat(), "points": 20}
                ],
            },
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            **values,
        },
    )
    return row_id, uid


def message(engine: Engine, lead_id: int, campaign_id: str, at: datetime, **values: Any) -> int:
    return _insert(
        engine,
        MESSAGE,
        {
            "uid": uuid.uuid4().hex,
            "lead_id": lead_id,
            "campaign_id": campaign_id,
            "round": 1,
            "step_id": "checkin",
            "status": "sent",
            "attempts": 1,
            "created_at": at,
            "sent_at": at,
            **values,
        },
    )


def event(engine: Engine, kind: str, at: datetime, **values: Any) -> int:
    return _insert(
        engine,
        EVENT,
        {
            "type": kind,
            "provider": "drip",
            "occurred_at": at,
            "received_at": at,
            "machine": False,
            "raw": {},
            **values,
        },
    )


def score_change(
    engine: Engine, lead_id: int, delta: float, score_after: float, at: datetime, **values: Any
) -> int:
    return _insert(
        engine,
        SCORE_CHANGE,
        {
            "lead_id": lead_id,
            "delta": delta,
            "score_after": score_after,
            "reason": values.pop("reason", "click"),
            "at": at,
            **values,
        },
    )
