"""The ``message`` table for the sending pipeline: insert a round's rows, update them, find the
ones a dead worker left, count what a provider was handed today and what drew complaints.

Every batch statement takes PostgreSQL's array forms (:mod:`dripengine.storage.dialect`): one
parameter a column, so the statement text is the same for every batch; SQLite keeps ``IN (…)`` and
executemany. The enrollment updates of a round go through :func:`update_enrollments`, the same
statement shape.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from dripengine.storage import dialect
from dripengine.storage.dialect import unnest, uses_arrays
from dripengine.storage.models import ENROLLMENT, EVENT, MESSAGE
from dripengine.storage.pauses import PAUSE, RESUMED

DONE = frozenset({"sending", "sent", "skipped", "failed", "unknown"})  # a step that is behind us
DELIVERED = frozenset({"sending", "sent", "unknown"})  # counts as an email the lead got


@dataclass(frozen=True)
class MessageRow:
    """What the pipeline reads of a message of the current round."""

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


def insert_messages(
    connection: Connection, rows: list[dict[str, Any]]
) -> dict[tuple[int, int, str], int]:
    """Insert message rows; a row whose (enrollment, round, step) exists already is left out.

    That unique key is the last guard against a double send: only the ids returned here are sent.
    """
    if not rows:
        return {}
    insert = dialect.insert(connection, MESSAGE)
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
            # the whole group in one statement (see :mod:`dripengine.storage.dialect`). A row named twice
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


def update_messages(
    connection: Connection, rows: Collection[dict[str, Any]], *, where_status: str | None = None
) -> None:
    """:func:`update_rows` on ``message``: each dict holds the row's ``id`` and the new values."""
    update_rows(connection, MESSAGE, rows, where_status=where_status)


def update_enrollments(
    connection: Connection, rows: Collection[dict[str, Any]], *, where_status: str | None = None
) -> None:
    """:func:`update_rows` on ``enrollment``: each dict holds the row's ``id`` and new values."""
    update_rows(connection, ENROLLMENT, rows, where_status=where_status)


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


def count_handed(
    engine: Engine, provider_name: str, start: datetime, floor: datetime, exclude: Collection[str]
) -> int:
    """How many emails ``provider_name`` was handed since ``start``, not counting the messages
    ``exclude``: ``sent`` rows by ``sent_at``, ``unknown`` rows by ``created_at``, every
    ``sending`` row; only rows created since ``floor`` (so the (status, created_at) index serves
    it). One aggregate; see :func:`dripengine.providers.ratelimit.count_sent_today`."""
    m = MESSAGE.c
    query = (
        select(func.count())
        .select_from(MESSAGE)
        .where(
            m.provider == provider_name,
            m.status.in_(("sent", "sending", "unknown")),
            m.created_at >= floor,
            or_(
                and_(m.status == "sent", m.sent_at >= start),
                and_(m.status == "unknown", m.created_at >= start),
                m.status == "sending",
            ),
        )
    )
    if exclude:
        query = query.where(m.uid.not_in(list(exclude)))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def sent_and_flagged(
    connection: Connection, now: datetime, window: timedelta, *, complaint: str, bounce: str
) -> dict[str, tuple[int, int, int]]:
    """Per campaign, its emails sent in ``window`` before ``now`` (after a resume only those sent
    since): how many, how many drew a ``complaint`` event, how many a ``bounce`` event. One
    aggregate query (per-message flags from ``event``)."""
    flags = (
        select(
            EVENT.c.message_id,
            func.max(case((EVENT.c.type == complaint, 1), else_=0)).label("complained"),
            func.max(case((EVENT.c.type == bounce, 1), else_=0)).label("bounced"),
        )
        .where(EVENT.c.type.in_([complaint, bounce]), EVENT.c.message_id.is_not(None))
        .group_by(EVENT.c.message_id)
        .subquery()
    )
    query = (
        select(
            MESSAGE.c.campaign_id,
            func.count().label("sent"),
            func.coalesce(func.sum(flags.c.complained), 0).label("complaints"),
            func.coalesce(func.sum(flags.c.bounced), 0).label("bounces"),
        )
        .select_from(
            MESSAGE.outerjoin(flags, flags.c.message_id == MESSAGE.c.id).outerjoin(
                PAUSE,
                (PAUSE.c.campaign_id == MESSAGE.c.campaign_id) & (PAUSE.c.reason == RESUMED),
            )
        )
        .where(
            MESSAGE.c.campaign_id.is_not(None),
            MESSAGE.c.status == "sent",
            MESSAGE.c.created_at > now - window,
            MESSAGE.c.created_at <= now,
            or_(PAUSE.c.paused_at.is_(None), MESSAGE.c.created_at > PAUSE.c.paused_at),
        )
        .group_by(MESSAGE.c.campaign_id)
    )
    return {
        r.campaign_id: (int(r.sent), int(r.complaints), int(r.bounces))
        for r in connection.execute(query)
    }


__all__ = [
    "DELIVERED",
    "DONE",
    "ENROLLMENT",
    "MESSAGE",
    "MessageRow",
    "count_handed",
    "insert_messages",
    "sent_and_flagged",
    "stale_sending",
    "update_enrollments",
    "update_messages",
    "update_rows",
]


def known_uid(engine: Engine, candidates: list[str]) -> str | None:
    """The first of ``candidates`` that is one of our messages."""
    if not candidates:
        return None
    uid_column = MESSAGE.c.uid
    with engine.connect() as connection:
        found = set(connection.scalars(select(uid_column).where(uid_column.in_(candidates))))
    return next((uid for uid in candidates if uid in found), None)


# Send outcomes a crash hid: the query that fails `unknown` messages their provider never had
# (the policy is the provider's: Provider.settle_unknown).


def fail_unheard_unknown(
    engine: Engine, provider: str, created_before: datetime, error: str
) -> int:
    """Fail ``provider``'s ``unknown`` messages created before ``created_before`` that have no event
    of their own while some event of ``provider`` was received after each was created (its webhook
    works); ``error`` says why. How many. One transaction: the ids, then the update."""
    own_event = exists().where(EVENT.c.message_id == MESSAGE.c.id)
    webhook_alive = exists().where(
        EVENT.c.provider == provider, EVENT.c.received_at > MESSAGE.c.created_at
    )
    with engine.begin() as connection:
        ids = list(
            connection.scalars(
                select(MESSAGE.c.id).where(
                    MESSAGE.c.status == "unknown",
                    MESSAGE.c.provider == provider,
                    MESSAGE.c.created_at < created_before,
                    ~own_event,
                    webhook_alive,
                )
            )
        )
        if ids:
            connection.execute(
                update(MESSAGE)
                .where(MESSAGE.c.id.in_(ids), MESSAGE.c.status == "unknown")
                .values(status="failed", error=error)
            )
    return len(ids)


__all__ = ["fail_unheard_unknown"]
