"""The handoff outbox's statements: claim due rows with a lease, record the outcome of an attempt.

The flow (lease, fencing token, backoff, at-least-once) is :mod:`dripengine.handoff.delivery`'s.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, or_, select, update
from sqlalchemy.engine import Connection

from dripengine.storage.models import HANDOFF


def lease_due(
    connection: Connection,
    table: Table,
    now: datetime,
    lease: timedelta,
    limit: int,
    *returning: ColumnElement[Any],
) -> list[dict[str, Any]]:
    """An outbox's claim (the hand-offs here, the SLA reminders in :mod:`.sla`): lease up to
    ``limit`` due pending rows of ``table``, oldest first, counting the attempt (the fence a
    settlement checks); ``returning`` the claimed rows' columns, in id order."""
    due = (
        select(table.c.id)
        .where(
            table.c.status == "pending",
            or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now),
        )
        .order_by(table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(table)
        .where(table.c.id.in_(due))
        .values(next_attempt_at=now + lease, attempts=table.c.attempts + 1)
        .returning(table.c.id, *returning)
    )
    return sorted((dict(r._mapping) for r in connection.execute(statement)), key=lambda r: r["id"])


def claim(
    connection: Connection, now: datetime, lease: timedelta, limit: int
) -> list[dict[str, Any]]:
    """Lease up to ``limit`` due pending handoffs (oldest first): counts the attempt, returns them."""
    return lease_due(
        connection,
        HANDOFF,
        now,
        lease,
        limit,
        HANDOFF.c.uid,
        HANDOFF.c.attempts,
        HANDOFF.c.campaign_id,
        HANDOFF.c.score,
        HANDOFF.c.fit_grade,
        HANDOFF.c.payload,
        HANDOFF.c.created_at,
    )


def mark_delivered(connection: Connection, row: dict[str, Any], now: datetime) -> None:
    """The CRM took the claimed ``row``: delivered (if the claim still holds)."""
    _settle(
        connection,
        row,
        {"status": "delivered", "delivered_at": now, "next_attempt_at": None, "last_error": None},
    )


def retry_later(
    connection: Connection, row: dict[str, Any], next_attempt_at: datetime, error: str
) -> None:
    """The attempt on the claimed ``row`` failed: still pending, tried again at
    ``next_attempt_at`` (if the claim still holds)."""
    _settle(connection, row, {"next_attempt_at": next_attempt_at, "last_error": error})


def _settle(connection: Connection, row: dict[str, Any], changes: dict[str, Any]) -> None:
    # the fence: only the claim that counted this attempt, and only a row still pending
    fence = (HANDOFF.c.id == row["id"]) & (HANDOFF.c.attempts == row["attempts"])
    fence = fence & (HANDOFF.c.status == "pending")
    connection.execute(update(HANDOFF).where(fence).values(changes))


__all__ = ["HANDOFF", "claim", "mark_delivered", "retry_later"]
