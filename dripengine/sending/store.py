"""The dispatcher's storage: claim due enrollments, load what deciding needs, record outcomes.

Claiming is one statement: ``UPDATE enrollment SET lease … WHERE id IN (SELECT … WHERE status =
'active' AND next_due_at <= now AND lease free ORDER BY next_due_at LIMIT n FOR UPDATE SKIP
LOCKED) RETURNING id``. On PostgreSQL, SKIP LOCKED lets any number of workers claim disjoint
batches at once; SQLite ignores the locking clause and serialises writers itself. The composite
index ``(status, next_due_at)`` keeps the inner select fast however much finished history there is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from dripengine.campaigns.sequence import CONDITION_FOR_EVENT
from dripengine.sending.pauses import paused_ids
from dripengine.sending.policy import CAP_PERIOD
from dripengine.storage import suppression, upsert
from dripengine.storage.arrays import any_of, unnest, uses_arrays
from dripengine.storage.models import Enrollment, Event, Lead, Message, RecycleRecord, Suppression

ENROLLMENT: Table = Enrollment.__table__  # type: ignore[attr-defined]
LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
EVENT: Table = Event.__table__  # type: ignore[attr-defined]
SUPPRESSION: Table = Suppression.__table__  # type: ignore[attr-defined]
RECYCLE: Table = RecycleRecord.__table__  # type: ignore[attr-defined]

DONE = frozenset({"sending", "sent", "skipped", "failed", "unknown"})  # a step that is behind us
DELIVERED = frozenset({"sending", "sent", "unknown"})  # counts as an email the lead got


def _claimable(now: datetime, only: Collection[str] | None = None) -> list[Any]:
    conditions = [
        ENROLLMENT.c.status == "active",
        ENROLLMENT.c.next_due_at <= now,
        or_(ENROLLMENT.c.lease_until.is_(None), ENROLLMENT.c.lease_until < now),
        ENROLLMENT.c.campaign_id.not_in(paused_ids()),  # the complaint breaker's pauses
    ]
    if only is not None:  # a campaign file is broken: its campaign's enrollments wait
        conditions.append(ENROLLMENT.c.campaign_id.in_(sorted(only)))
    return conditions


def count_due(connection: Connection, now: datetime, only: Collection[str] | None = None) -> int:
    """How many enrollments :func:`claim` could take now (due, not leased): a progress bar's total."""
    query = select(func.count()).select_from(ENROLLMENT).where(*_claimable(now, only))
    return int(connection.execute(query).scalar_one())


def claim(
    connection: Connection,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    only: Collection[str] | None = None,
) -> list[int]:
    """Lease up to ``limit`` due enrollments to ``worker``; their ids, most overdue first. With
    ``only``, enrollments of other campaigns are left alone."""
    due = (
        select(ENROLLMENT.c.id)
        .where(*_claimable(now, only))
        .order_by(ENROLLMENT.c.next_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(ENROLLMENT)
        .where(ENROLLMENT.c.id.in_(due))
        .values(lease_owner=worker, lease_until=now + lease)
        .returning(ENROLLMENT.c.id)
    )
    return sorted(connection.execute(statement).scalars())


@dataclass
class MessageRow:
    id: int
    uid: str
    enrollment_id: int | None
    round: int
    step_id: str
    status: str
    attempts: int
    created_at: datetime
    provider: str | None


MESSAGE_ROW_COLUMNS = [
    MESSAGE.c[name]
    for name in (
        "id",
        "uid",
        "enrollment_id",
        "round",
        "step_id",
        "status",
        "attempts",
        "created_at",
        "provider",
    )
]  # in MessageRow's field order


@dataclass
class Batch:
    """Everything the decisions of one claimed batch read, loaded with one query a table."""

    enrollments: list[dict[str, Any]]
    leads: dict[int, dict[str, Any]]
    suppressed: dict[str, str]
    messages: dict[int, list[MessageRow]]  # by enrollment, this round only
    engaged: dict[int, set[tuple[str, str]]]  # by enrollment: (step id, opened/clicked/replied)
    recent: dict[int, list[datetime]] = field(default_factory=dict)  # by lead: emails in 7 days
    recycles: dict[int, dict[str, Any]] = field(default_factory=dict)  # by lead: the latest


def load(connection: Connection, ids: Sequence[int], now: datetime) -> Batch:
    enrollments = [
        dict(r._mapping)
        for r in connection.execute(
            select(ENROLLMENT).where(any_of(connection, ENROLLMENT.c.id, ids))
        )
    ]
    lead_ids = sorted({e["lead_id"] for e in enrollments})
    leads = {
        r.id: dict(r._mapping)
        for r in connection.execute(select(LEAD).where(any_of(connection, LEAD.c.id, lead_ids)))
    }
    emails = [lead["email"] for lead in leads.values()]
    suppressed = {  # plain and hashed (erased) entries alike
        email: f"{e.reason} on {e.created_at:%d %b %Y}"
        for email, e in suppression.suppressed(connection, emails).items()
    }
    rounds = {e["id"]: e["round"] for e in enrollments}
    messages: dict[int, list[MessageRow]] = defaultdict(list)
    by_id: dict[int, MessageRow] = {}
    query = select(*MESSAGE_ROW_COLUMNS).where(any_of(connection, MESSAGE.c.enrollment_id, rounds))
    for r in connection.execute(query):
        if r.round == rounds[r.enrollment_id]:
            row = MessageRow(*r)
            messages[r.enrollment_id].append(row)
            by_id[row.id] = row
    engaged: dict[int, set[tuple[str, str]]] = defaultdict(set)
    if by_id:
        events = select(EVENT.c.message_id, EVENT.c.type).where(
            any_of(connection, EVENT.c.message_id, by_id),
            EVENT.c.type.in_(list(CONDITION_FOR_EVENT)),
            EVENT.c.machine.is_(False),
        )
        for message_id, kind in connection.execute(events):
            row = by_id[message_id]
            assert row.enrollment_id is not None
            engaged[row.enrollment_id].add((row.step_id, CONDITION_FOR_EVENT[kind]))
    recent: dict[int, list[datetime]] = defaultdict(list)
    sends = select(MESSAGE.c.lead_id, MESSAGE.c.created_at).where(
        any_of(connection, MESSAGE.c.lead_id, lead_ids),
        MESSAGE.c.created_at > now - CAP_PERIOD,
        MESSAGE.c.status.in_(list(DELIVERED)),
    )
    for lead_id, at in connection.execute(sends):
        recent[lead_id].append(at)
    recycles: dict[int, dict[str, Any]] = {}
    latest = select(
        RECYCLE.c.lead_id, RECYCLE.c.from_stage, RECYCLE.c.reason, RECYCLE.c.at, RECYCLE.c.id
    ).where(any_of(connection, RECYCLE.c.lead_id, lead_ids))
    for record in connection.execute(latest):
        known = recycles.get(record.lead_id)
        if known is None or (record.at, record.id) > (known["at"], known["id"]):
            recycles[record.lead_id] = dict(record._mapping)
    return Batch(enrollments, leads, suppressed, messages, engaged, recent, recycles)


def insert_messages(
    connection: Connection, rows: list[dict[str, Any]]
) -> dict[tuple[int, int, str], int]:
    """Insert 'sending' rows; a row whose (enrollment, round, step) exists already is left out.

    That unique key is the last guard against a double send: only the ids returned here are sent.
    """
    if not rows:
        return {}
    insert = upsert.insert(connection, MESSAGE)
    params: list[dict[str, Any]] | None = rows
    if uses_arrays(connection):
        # ``INSERT … SELECT unnest(…), …``: one statement, one array a column (:mod:`.arrays`)
        columns = list(rows[0])
        insert, params = insert.from_select(columns, unnest(MESSAGE, columns, rows)), None
    # Otherwise one executemany: SQLAlchemy's "insertmanyvalues" turns it into multi-row
    # ``INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING …`` statements (SQLite ≥ 3.35),
    # paged to stay under the bound-parameter limit. A row skipped by the conflict returns
    # nothing; the rows that did go in are matched by their key, not by their position.
    statement = insert.on_conflict_do_nothing(
        index_elements=["enrollment_id", "round", "step_id"]
    ).returning(MESSAGE.c.id, MESSAGE.c.enrollment_id, MESSAGE.c.round, MESSAGE.c.step_id)
    result = connection.execute(statement, params)
    return {(r.enrollment_id, r.round, r.step_id): r.id for r in result}


def update_rows(
    connection: Connection,
    table: Table,
    rows: Collection[dict[str, Any]],
    *,
    where_status: str | None = None,
) -> None:
    """``UPDATE table SET … WHERE id = :id`` for each row (grouped by the columns they set).

    ``where_status`` also requires the row's current status (a guard against a concurrent change).
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(k for k in row if k != "id"))].append(row)
    guard = [] if where_status is None else [table.c.status == where_status]
    for columns, group in groups.items():
        if uses_arrays(connection) and len({r["id"] for r in group}) == len(group):
            # ``UPDATE table SET c = v.c … FROM (SELECT unnest(:ids) AS id, …) v WHERE id = v.id``:
            # the whole group in one statement (see :mod:`dripengine.storage.arrays`). A row named twice
            # takes the per-row path below: there the second update sees the first one's result.
            values = unnest(table, ["id", *columns], group).subquery("v")
            statement = (
                update(table)
                .where(table.c.id == values.c.id, *guard)
                .values({c: values.c[c] for c in columns})
            )
            connection.execute(statement)
            continue
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"), *guard)
            .values({c: bindparam(c) for c in columns})
        )
        connection.execute(
            statement, [{**{c: r[c] for c in columns}, "_id": r["id"]} for r in group]
        )


def stale_sending(connection: Connection, now: datetime) -> list[MessageRow]:
    """Messages recorded as 'sending' whose worker no longer holds the enrollment (it died).

    A worker keeps the lease on an enrollment from the claim until the provider's result is
    recorded, so a live send is never taken for a crashed one.
    """
    query = (
        select(*MESSAGE_ROW_COLUMNS)
        .select_from(MESSAGE.outerjoin(ENROLLMENT, MESSAGE.c.enrollment_id == ENROLLMENT.c.id))
        .where(
            MESSAGE.c.status == "sending",
            or_(ENROLLMENT.c.lease_until.is_(None), ENROLLMENT.c.lease_until < now),
        )
    )
    return [MessageRow(*r) for r in connection.execute(query)]


__all__ = [
    "DELIVERED",
    "DONE",
    "ENROLLMENT",
    "MESSAGE",
    "Batch",
    "MessageRow",
    "claim",
    "count_due",
    "insert_messages",
    "load",
    "stale_sending",
    "update_rows",
]
