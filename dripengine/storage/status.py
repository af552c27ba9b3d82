"""The queries behind ``drip status`` and ``GET /metrics``: what the sending side is doing,
counted at ``now``.

Every figure is an aggregate computed by the database (``count``, ``sum(case …)``, ``group by``),
one query per table and question, each filtering on the columns the indexes lead with
(``enrollment(status, next_due_at)``, ``message(status, created_at)``). Windows are half-open on
the left and closed at ``now`` (rows from after ``now`` are not counted). What the figures mean, and
the hints drawn from them, are :mod:`dripengine.reports.status`'s; the results here are plain values.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from dripengine.storage.models import (
    ENROLLMENT,
    EVENT,
    HANDOFF,
    LEAD,
    MESSAGE,
    WORKER,
)

DAY = timedelta(hours=24)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def due_counts(connection: Connection, now: datetime) -> tuple[int, int]:
    """Active enrolments due now, and due later in the next 24 hours."""
    due = ENROLLMENT.c.next_due_at
    row = connection.execute(
        select(
            _count_if(due <= now).label("due_now"),
            _count_if(due > now).label("scheduled_24h"),
        ).where(ENROLLMENT.c.status == "active", due <= now + DAY)
    ).one()
    return int(row.due_now), int(row.scheduled_24h)


def active_groups(
    connection: Connection, now: datetime
) -> list[tuple[str, str | None, int, int, datetime | None]]:
    """Active enrolments by campaign and lead time zone: campaign id, time zone, how many, due
    now, the next due after ``now``."""
    due = ENROLLMENT.c.next_due_at
    zone = LEAD.c.timezone
    rows = connection.execute(
        select(
            ENROLLMENT.c.campaign_id,
            zone,
            func.count().label("active"),
            _count_if(due <= now).label("due_now"),
            func.min(case((due > now, due))).label("next_due_at"),
        )
        .select_from(ENROLLMENT.join(LEAD, LEAD.c.id == ENROLLMENT.c.lead_id))
        .where(ENROLLMENT.c.status == "active")
        .group_by(ENROLLMENT.c.campaign_id, zone)
    ).all()
    return [(r.campaign_id, r.timezone, int(r.active), int(r.due_now), r.next_due_at) for r in rows]


def message_states(connection: Connection) -> dict[str, int]:
    """How many messages are sending, waiting to retry, or of unknown outcome, by status."""
    by_status = (
        select(MESSAGE.c.status, func.count())
        .where(MESSAGE.c.status.in_(["sending", "retry", "unknown"]))
        .group_by(MESSAGE.c.status)
    )
    return {r[0]: r[1] for r in connection.execute(by_status)}


def failures(connection: Connection, now: datetime, top: int) -> tuple[list[tuple[str, int]], int]:
    """The ``top`` reasons of the messages that failed in the 24 hours up to ``now``, most
    frequent first, with their counts; and how many failed (failed messages recorded then)."""
    recent_failure = and_(
        MESSAGE.c.status == "failed",
        MESSAGE.c.created_at > now - DAY,
        MESSAGE.c.created_at <= now,
    )
    reason = func.coalesce(MESSAGE.c.error, literal("(no reason recorded)"))
    reasons = connection.execute(
        select(reason.label("reason"), func.count().label("n"))
        .where(recent_failure)
        .group_by(reason)
        .order_by(func.count().desc(), reason)
        .limit(top)
    ).all()
    failed = connection.execute(select(func.count()).select_from(MESSAGE).where(recent_failure))
    return [(r.reason, int(r.n)) for r in reasons], int(failed.scalar() or 0)


def sent_by_provider(
    connection: Connection, now: datetime, recent: timedelta
) -> list[dict[str, Any]]:
    """Per provider, the emails sent in the last ``recent``, hour and 24 hours up to ``now``:
    ``provider``, ``sent_5m`` (the ``recent`` one), ``sent_1h``, ``sent_24h``, by provider."""
    sent_at = MESSAGE.c.sent_at
    provider = func.coalesce(MESSAGE.c.provider, literal("?"))
    rows = connection.execute(
        select(
            provider.label("provider"),
            _count_if(sent_at > now - recent).label("sent_5m"),
            _count_if(sent_at > now - timedelta(hours=1)).label("sent_1h"),
            func.count().label("sent_24h"),
        )
        .where(
            MESSAGE.c.status == "sent",
            sent_at > now - DAY,
            sent_at <= now,
        )
        .group_by(provider)
        .order_by(provider)
    ).all()
    return [dict(r._mapping) for r in rows]


def _worker_state(now: datetime, alive_within: timedelta) -> Any:
    return case(
        (WORKER.c.stopped_at.is_not(None), literal("stopped")),
        (WORKER.c.heartbeat_at >= now - alive_within, literal("alive")),
        else_=literal("dead"),
    ).label("state")


def worker_counts(
    connection: Connection, now: datetime, alive_within: timedelta, kind: str = "run"
) -> dict[str, int]:
    """How many worker rows of ``kind`` (``run``: `drip run`; ``serve``: `drip serve`) are
    ``alive`` (a heartbeat within ``alive_within``), ``dead`` or ``stopped``."""
    state = _worker_state(now, alive_within)
    query = select(state, func.count()).where(WORKER.c.kind == kind).group_by(state)
    return {r[0]: r[1] for r in connection.execute(query)}


def workers(
    connection: Connection,
    now: datetime,
    alive_within: timedelta,
    stopped_shown_for: timedelta,
    limit: int,
    kind: str = "run",
) -> list[dict[str, Any]]:
    """The worker rows of ``kind`` (with their ``state``) not stopped longer than
    ``stopped_shown_for`` ago: alive first, then dead, then stopped, the latest heartbeat first;
    at most ``limit``."""
    state = _worker_state(now, alive_within)
    order = case((state == "alive", 0), (state == "dead", 1), else_=2)
    rows = connection.execute(
        select(
            WORKER.c.id,
            WORKER.c.host,
            WORKER.c.pid,
            WORKER.c.provider,
            state,
            WORKER.c.started_at,
            WORKER.c.heartbeat_at,
            WORKER.c.stopped_at,
            WORKER.c.sent,
            WORKER.c.failed,
        )
        .where(
            WORKER.c.kind == kind,
            or_(
                WORKER.c.stopped_at.is_(None),
                WORKER.c.stopped_at > now - stopped_shown_for,
            ),
        )
        .order_by(order, WORKER.c.heartbeat_at.desc(), WORKER.c.id)
        .limit(limit)
    ).all()
    return [dict(r._mapping) for r in rows]


def handoff_counts(connection: Connection, now: datetime) -> tuple[int, int, int]:
    """Hand-offs to the CRM pending, pending whose last attempt failed, and delivered in the 24
    hours up to ``now``."""
    row = connection.execute(
        select(
            _count_if(HANDOFF.c.status == "pending").label("pending"),
            _count_if((HANDOFF.c.status == "pending") & HANDOFF.c.last_error.is_not(None)).label(
                "failing"
            ),
            _count_if(
                (HANDOFF.c.status == "delivered")
                & (HANDOFF.c.delivered_at > now - DAY)
                & (HANDOFF.c.delivered_at <= now)
            ).label("delivered"),
        ).where(or_(HANDOFF.c.status == "pending", HANDOFF.c.delivered_at > now - DAY))
    ).one()
    return int(row.pending), int(row.failing), int(row.delivered)


def latest_handoff_error(connection: Connection) -> str | None:
    """The error of the pending hand-off whose next attempt is the latest."""
    error: str | None = connection.execute(
        select(HANDOFF.c.last_error)
        .where(HANDOFF.c.status == "pending", HANDOFF.c.last_error.is_not(None))
        .order_by(HANDOFF.c.next_attempt_at.desc())
        .limit(1)
    ).scalar()
    return error


# /metrics: a few cheap aggregates a scrape, each over an index (docs/operations.md)


def message_totals(connection: Connection) -> tuple[dict[str, int], int]:
    """Every message by status, and how many ever had a ``sent_at`` (accepted by the provider,
    including those it dropped later, which turn ``failed``); both only grow with ``failed``, so
    /metrics can call them counters. One pass over ``ix_message_status_sent`` (status, sent_at, …)."""
    query = select(MESSAGE.c.status, func.count(), func.count(MESSAGE.c.sent_at)).group_by(
        MESSAGE.c.status
    )
    rows = connection.execute(query).all()
    return {status: int(n) for status, n, _ in rows}, sum(int(sent) for _, _, sent in rows)


def oldest_due(connection: Connection, now: datetime) -> tuple[int, datetime | None]:
    """Active enrolments due at ``now`` and the earliest ``next_due_at`` among them (the range
    ``status = 'active' AND next_due_at <= now`` of ``ix_enrollment_status_due``)."""
    due = ENROLLMENT.c.next_due_at
    row = connection.execute(
        select(func.count(), func.min(due)).where(ENROLLMENT.c.status == "active", due <= now)
    ).one()
    return int(row[0]), row[1]


def newest_event(connection: Connection, event_type: str) -> tuple[datetime, datetime] | None:
    """``(occurred_at, received_at)`` of the newest ``event_type`` event (``ix_event_type_occurred``
    read backwards, one row); None without one."""
    row = connection.execute(
        select(EVENT.c.occurred_at, EVENT.c.received_at)
        .where(EVENT.c.type == event_type)
        .order_by(EVENT.c.occurred_at.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def alive_by_kind(connection: Connection, now: datetime, alive_within: timedelta) -> dict[str, int]:
    """Processes (``run``, ``serve``) not stopped whose heartbeat is within ``alive_within``."""
    query = (
        select(WORKER.c.kind, func.count())
        .where(WORKER.c.stopped_at.is_(None), WORKER.c.heartbeat_at >= now - alive_within)
        .group_by(WORKER.c.kind)
    )
    return {kind: int(n) for kind, n in connection.execute(query)}


def pending_handoffs(connection: Connection) -> tuple[int, int]:
    """Hand-offs pending, and of those the ones whose last attempt failed."""
    row = connection.execute(
        select(func.count(), _count_if(HANDOFF.c.last_error.is_not(None))).where(
            HANDOFF.c.status == "pending"
        )
    ).one()
    return int(row[0]), int(row[1])


__all__ = [
    "active_groups",
    "alive_by_kind",
    "due_counts",
    "failures",
    "handoff_counts",
    "latest_handoff_error",
    "message_states",
    "message_totals",
    "newest_event",
    "oldest_due",
    "pending_handoffs",
    "sent_by_provider",
    "worker_counts",
    "workers",
]
