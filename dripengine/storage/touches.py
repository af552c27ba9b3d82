"""Sales touches (``sales_touch``): a rep's call, email or meeting with a lead, as the CRM reported it.

- :func:`insert_touch`: one touch, ``INSERT … ON CONFLICT (lead_id, kind, at) DO NOTHING
  RETURNING id``: the same touch reported twice is stored once, and the caller learns which it was
  (a race between two reports of one touch included).
- :func:`recent_touches`: the touches of a dispatch round's leads since a time, one query for the
  whole batch (PostgreSQL: one array parameter): the send policy's quiet period and the weekly cap
  read them.
- :func:`lead_touches`: one lead's touches, newest first (``drip leads show``).
- :func:`held_count`: active enrollments whose lead had a touch within the quiet period
  (``drip status``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.engine import Connection

from dripengine.storage import dialect
from dripengine.storage.dialect import any_of
from dripengine.storage.models import ENROLLMENT, SALES_TOUCH
from dripengine.storage.textlimits import column_limits

TOUCH_LIMITS = column_limits(SALES_TOUCH)  # {column: length} of the VARCHAR columns


@dataclass(frozen=True, slots=True)
class TouchRow:
    """What the send policy reads of a touch."""

    lead_id: int
    kind: str
    at: datetime


def insert_touch(connection: Connection, values: dict[str, Any]) -> int | None:
    """Store one touch (``lead_id``, ``kind``, ``at``, ``actor``, ``source``, ``note``,
    ``created_at``); its id, or None when that lead already has that touch (same kind and time)."""
    statement = (
        dialect.insert(connection, SALES_TOUCH)
        .values(values)
        .on_conflict_do_nothing(index_elements=["lead_id", "kind", "at"])
        .returning(SALES_TOUCH.c.id)
    )
    return connection.execute(statement).scalar_one_or_none()


def recent_touches(
    connection: Connection, lead_ids: Sequence[int], since: datetime, until: datetime
) -> dict[int, list[TouchRow]]:
    """By lead: its touches with ``since < at <= until``, oldest first; one query."""
    if not lead_ids:
        return {}
    query = (
        select(SALES_TOUCH.c.lead_id, SALES_TOUCH.c.kind, SALES_TOUCH.c.at)
        .where(
            any_of(connection, SALES_TOUCH.c.lead_id, lead_ids),
            SALES_TOUCH.c.at > since,
            SALES_TOUCH.c.at <= until,
        )
        .order_by(SALES_TOUCH.c.at)
    )
    found: dict[int, list[TouchRow]] = defaultdict(list)
    for row in connection.execute(query):
        found[row.lead_id].append(TouchRow(row.lead_id, row.kind, row.at))
    return dict(found)


def lead_touches(
    connection: Connection, lead_id: int, limit: int | None = None
) -> list[dict[str, Any]]:
    """One lead's touches, newest first (at most ``limit``)."""
    query = (
        select(
            SALES_TOUCH.c.at,
            SALES_TOUCH.c.kind,
            SALES_TOUCH.c.actor,
            SALES_TOUCH.c.source,
            SALES_TOUCH.c.note,
            SALES_TOUCH.c.created_at,
        )
        .where(SALES_TOUCH.c.lead_id == lead_id)
        .order_by(SALES_TOUCH.c.at.desc(), SALES_TOUCH.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def held_count(connection: Connection, now: datetime, quiet: timedelta) -> int:
    """Active enrollments whose lead had a sales touch in ``(now - quiet, now]``: held by the
    quiet period right now (0 when ``quiet`` is zero)."""
    if quiet <= timedelta(0):
        return 0
    touched = select(SALES_TOUCH.c.lead_id).where(
        SALES_TOUCH.c.at > now - quiet, SALES_TOUCH.c.at <= now
    )
    query = select(func.count(distinct(ENROLLMENT.c.id))).where(
        ENROLLMENT.c.status == "active", ENROLLMENT.c.lead_id.in_(touched)
    )
    return int(connection.execute(query).scalar_one())


__all__ = [
    "TOUCH_LIMITS",
    "TouchRow",
    "held_count",
    "insert_touch",
    "lead_touches",
    "recent_touches",
]
