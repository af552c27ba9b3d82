"""The SLA's queries: each hand-back with what stopped its clocks, and the reminder outbox.

- :func:`handbacks`: Handoff rows with the lead, the first sales touch, the first feedback and the
  first recycle after each (up to ``now``: time travel sees no later row), the latest rep the CRM
  named, and which clocks already alerted. ``open_only``: the hand-backs whose clocks may still
  run at ``now``: no feedback and no recycle of the lead since (either stops both clocks, and a
  lead is recycled before it can be handed back again); ``since``: those made since then.
- the ``sla_alert`` outbox: :func:`insert_alert` (once per hand-back and clock: ``ON CONFLICT DO
  NOTHING``), :func:`set_action`, :func:`claim` due reminders with a lease (like
  :mod:`dripengine.storage.handoffs`), :func:`settle` an attempt behind the fence.

The clocks themselves are :mod:`dripengine.funnel.sla_breaches`'s (pure).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.engine import Connection

from dripengine.storage.dialect import insert
from dripengine.storage.handoffs import lease_due
from dripengine.storage.models import (
    FEEDBACK,
    HANDOFF,
    LEAD,
    RECYCLE_RECORD,
    SALES_TOUCH,
    SLA_ALERT,
)

__all__ = ["claim", "handbacks", "insert_alert", "set_action", "settle"]


def _first_after(table: Any, column: str, now: datetime) -> Any:
    at = table.c[column]
    return (
        select(func.min(at))
        .where(table.c.lead_id == HANDOFF.c.lead_id, at > HANDOFF.c.created_at, at <= now)
        .scalar_subquery()
    )


def _after(table: Any, now: datetime) -> Any:
    at = table.c.at
    return exists().where(
        table.c.lead_id == HANDOFF.c.lead_id, at > HANDOFF.c.created_at, at <= now
    )


def _latest_actor(table: Any, now: datetime, what: str) -> Any:
    return (
        select(table.c[what])
        .where(table.c.lead_id == HANDOFF.c.lead_id, table.c.actor.is_not(None), table.c.at <= now)
        .order_by(table.c.at.desc(), table.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _alerted(clock: str) -> Any:
    return exists().where(SLA_ALERT.c.handoff_id == HANDOFF.c.id, SLA_ALERT.c.clock == clock)


def handbacks(
    connection: Connection,
    now: datetime,
    *,
    open_only: bool = False,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """The hand-backs made up to ``now`` with what their clocks need, oldest first."""
    query = (
        select(
            HANDOFF.c.id,
            HANDOFF.c.uid,
            HANDOFF.c.lead_id,
            HANDOFF.c.created_at,
            HANDOFF.c.payload,
            HANDOFF.c.campaign_id,
            LEAD.c.email,
            LEAD.c.stage,
            LEAD.c.attributes,
            _first_after(SALES_TOUCH, "at", now).label("touched_at"),
            _first_after(FEEDBACK, "at", now).label("word_at"),
            _first_after(RECYCLE_RECORD, "at", now).label("recycled_at"),
            _latest_actor(SALES_TOUCH, now, "actor").label("touch_actor"),
            _latest_actor(SALES_TOUCH, now, "at").label("touch_actor_at"),
            _latest_actor(FEEDBACK, now, "actor").label("word_actor"),
            _latest_actor(FEEDBACK, now, "at").label("word_actor_at"),
            _alerted("first_touch").label("alerted_first_touch"),
            _alerted("decision").label("alerted_decision"),
        )
        .select_from(HANDOFF)
        .join(LEAD, LEAD.c.id == HANDOFF.c.lead_id)
        .where(HANDOFF.c.created_at <= now)
        .order_by(HANDOFF.c.created_at, HANDOFF.c.id)
    )
    if open_only:  # no word from sales and no recycle since (by ``now``: time travel too)
        for table in (FEEDBACK, RECYCLE_RECORD):
            query = query.where(~_after(table, now))
    if since is not None:
        query = query.where(HANDOFF.c.created_at >= since)
    return [dict(row._mapping) for row in connection.execute(query)]


def insert_alert(connection: Connection, row: dict[str, Any]) -> int | None:
    """The alert's id, or None when this hand-back's clock has alerted already (another worker)."""
    statement = (
        insert(connection, SLA_ALERT)
        .values(row)
        .on_conflict_do_nothing(index_elements=["handoff_id", "clock"])
        .returning(SLA_ALERT.c.id)
    )
    return connection.execute(statement).scalar_one_or_none()


def set_action(connection: Connection, alert_id: int, action: str) -> None:
    connection.execute(update(SLA_ALERT).where(SLA_ALERT.c.id == alert_id).values(action=action))


def claim(
    connection: Connection, now: datetime, lease: timedelta, limit: int
) -> list[dict[str, Any]]:
    """Lease up to ``limit`` due pending reminders (oldest first), with their hand-back and lead."""
    ids = [row["id"] for row in lease_due(connection, SLA_ALERT, now, lease, limit)]
    if not ids:
        return []
    query = (
        select(
            SLA_ALERT,
            HANDOFF.c.uid.label("handoff_uid"),
            HANDOFF.c.created_at.label("handed_back_at"),
            LEAD.c.email,
            LEAD.c.first_name,
            LEAD.c.last_name,
            LEAD.c.company,
            LEAD.c.attributes,
        )
        .join(HANDOFF, HANDOFF.c.id == SLA_ALERT.c.handoff_id)
        .join(LEAD, LEAD.c.id == SLA_ALERT.c.lead_id)
        .where(SLA_ALERT.c.id.in_(ids))
        .order_by(SLA_ALERT.c.id)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def settle(connection: Connection, row: dict[str, Any], changes: dict[str, Any]) -> None:
    """Record the outcome of the claimed ``row``'s attempt, if the claim still holds (the fence:
    the attempt count it was claimed with, and the row still pending)."""
    fence = and_(
        SLA_ALERT.c.id == row["id"],
        SLA_ALERT.c.attempts == row["attempts"],
        SLA_ALERT.c.status == "pending",
    )
    connection.execute(update(SLA_ALERT).where(fence).values(changes))
