"""A dispatch round's storage: claim due enrollments with a lease, load what deciding them reads.

Claiming is one statement: ``UPDATE enrollment SET lease … WHERE id IN (SELECT … WHERE status =
'active' AND next_due_at <= now AND lease free ORDER BY next_due_at LIMIT n FOR UPDATE SKIP
LOCKED) RETURNING id``. On PostgreSQL, SKIP LOCKED lets any number of workers claim disjoint
batches at once; SQLite ignores the locking clause and serialises writers itself. The composite
index ``(status, next_due_at)`` keeps the inner select fast however much finished history there is.
A paused campaign's enrollments are never claimed (:mod:`dripengine.storage.pauses`).

Loading is one query a table (PostgreSQL: ``id = ANY(:array)``, one parameter; :mod:`.arrays`):
the enrollments and their leads (:func:`load_claimed`), then, after the caller looked up the
suppressions, this round's messages, their engagement, the leads' recent sends and their latest
recycle (:func:`load_history`). Rows come back as small frozen dataclasses.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from dripengine.storage import dialect
from dripengine.storage.dialect import any_of
from dripengine.storage.messages import (
    DELIVERED,
    ENROLLMENT,
    MESSAGE,
    MESSAGE_ROW_COLUMNS,
    MessageRow,
)
from dripengine.storage.models import (
    EVENT,
    LEAD,
    RECYCLE_RECORD,
    WORKER,
)
from dripengine.storage.pauses import paused_ids

# SQLite allows one writer; a read transaction that later writes fails at once (SQLITE_BUSY_SNAPSHOT,
# not retried by busy_timeout) when another connection committed meanwhile. The dispatcher's
# transactions therefore run one at a time within the process; never held around the provider.
_SQLITE_WRITES = threading.RLock()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction of the dispatcher's; on SQLite one at a time within the process."""
    if engine.dialect.name == "sqlite":
        with _SQLITE_WRITES, engine.begin() as connection:
            yield connection
    else:
        with engine.begin() as connection:
            yield connection


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


@dataclass(frozen=True, slots=True)
class EnrollmentRow:
    """What deciding reads of a claimed enrollment."""

    id: int
    lead_id: int
    campaign_id: str
    round: int
    step_index: int
    enrolled_at: datetime
    track: str = ""
    current_step: str | None = None
    holdout: bool = False  # the campaign's holdout group: never sent anything


@dataclass(frozen=True, slots=True)
class LeadRow:
    """What deciding and composing read of a claimed enrollment's lead (the fields a template may
    use among them: :func:`dripengine.templates.context.lead_context` reads them by name)."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    phone: str | None
    country: str | None
    timezone: str | None
    source: str | None
    attributes: dict[str, Any]
    stage: str
    score: float
    score_updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class RecycleRow:
    """A lead's latest recycle: what its emails may say about it."""

    lead_id: int
    from_stage: str
    reason: str
    at: datetime
    id: int


@dataclass
class History:
    """What a round's decisions read besides the rows themselves."""

    messages: dict[int, list[MessageRow]]  # by enrollment, this round only
    engaged: dict[int, set[tuple[str, str]]]  # by enrollment: (step id, condition it meets)
    recent: dict[int, list[datetime]]  # by lead: sends since ``sends_since``
    recycles: dict[int, RecycleRow]  # by lead: the latest


def load_claimed(
    connection: Connection, ids: Sequence[int]
) -> tuple[list[EnrollmentRow], dict[int, LeadRow]]:
    """The enrollments ``ids`` and their leads (by id): one query each."""
    enrollments = [
        EnrollmentRow(
            r.id,
            r.lead_id,
            r.campaign_id,
            r.round,
            r.step_index,
            r.enrolled_at,
            r.track,
            r.current_step,
            bool(r.holdout),
        )
        for r in connection.execute(
            select(ENROLLMENT).where(any_of(connection, ENROLLMENT.c.id, ids))
        )
    ]
    lead_ids = sorted({e.lead_id for e in enrollments})
    leads = {
        r.id: LeadRow(
            r.id,
            r.email,
            r.first_name,
            r.last_name,
            r.company,
            r.title,
            r.phone,
            r.country,
            r.timezone,
            r.source,
            r.attributes,
            r.stage,
            r.score,
            r.score_updated_at,
        )
        for r in connection.execute(select(LEAD).where(any_of(connection, LEAD.c.id, lead_ids)))
    }
    return enrollments, leads


def load_history(
    connection: Connection,
    enrollments: Iterable[EnrollmentRow],
    lead_ids: Sequence[int],
    *,
    sends_since: datetime,
    conditions: Mapping[str, str],
) -> History:
    """This round's messages of ``enrollments``, the engagement with them (events whose type is a
    key of ``conditions``, recorded as the condition it meets; machine events left out), the leads'
    sends since ``sends_since`` and each lead's latest recycle: one query each."""
    rounds = {e.id: e.round for e in enrollments}
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
            EVENT.c.type.in_(list(conditions)),
            EVENT.c.machine.is_(False),
        )
        for message_id, kind in connection.execute(events):
            row = by_id[message_id]
            assert row.enrollment_id is not None
            engaged[row.enrollment_id].add((row.step_id, conditions[kind]))
    recent: dict[int, list[datetime]] = defaultdict(list)
    sends = select(MESSAGE.c.lead_id, MESSAGE.c.created_at).where(
        any_of(connection, MESSAGE.c.lead_id, lead_ids),
        MESSAGE.c.created_at > sends_since,
        MESSAGE.c.status.in_(list(DELIVERED)),
    )
    for lead_id, at in connection.execute(sends):
        recent[lead_id].append(at)
    recycles: dict[int, RecycleRow] = {}
    latest = select(
        RECYCLE_RECORD.c.lead_id,
        RECYCLE_RECORD.c.from_stage,
        RECYCLE_RECORD.c.reason,
        RECYCLE_RECORD.c.at,
        RECYCLE_RECORD.c.id,
    ).where(any_of(connection, RECYCLE_RECORD.c.lead_id, lead_ids))
    for record in connection.execute(latest):
        known = recycles.get(record.lead_id)
        if known is None or (record.at, record.id) > (known.at, known.id):
            recycles[record.lead_id] = RecycleRow(*record)
    return History(messages, engaged, recent, recycles)


__all__ = [
    "LEAD",
    "EnrollmentRow",
    "History",
    "LeadRow",
    "RecycleRow",
    "claim",
    "count_due",
    "load_claimed",
    "load_history",
    "write_transaction",
]


def write_heartbeat(
    engine: Engine,
    values: dict[str, Any],
    changes: dict[str, Any],
    started: bool,
) -> None:
    """A process's row in ``worker`` (a `drip run` worker, a `drip serve` process): inserted when
    it starts (kept if it exists), else ``changes``."""
    with engine.begin() as connection:
        if started:
            connection.execute(
                dialect.insert(connection, WORKER).values(values).on_conflict_do_nothing()
            )
            return
        connection.execute(update(WORKER).where(WORKER.c.id == values["id"]).values(changes))
