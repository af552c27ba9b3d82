"""Engagement's queries: events in (matched, deduplicated, stored), their effects, score changes.

``dripengine.engagement`` calls these inside the one transaction of an ingest batch: the messages
and leads the events name (chunks of 500 values an ``IN``), the events already stored (by dedupe
key and by the provider's event id), the new ones inserted with ``ON CONFLICT DO NOTHING …
RETURNING`` (a racing server's copy is skipped, not an error), messages settled by the provider's
word, the leads an event changes (read once, written with one executemany) and the points earned
today (daily caps). What the unsubscribe pages read and change is in
:mod:`dripengine.storage.unsubscribes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.engine import Connection

from dripengine.storage import dialect
from dripengine.storage.dialect import (
    in_json_values,
    in_values,
    json_list,
    json_rows,
    table_rows,
    uses_arrays,
)
from dripengine.storage.models import (
    EVENT,
    LEAD,
    MESSAGE,
    SCORE_CHANGE,
)
from dripengine.storage.textlimits import column_limits

# what the database takes in the text columns an incoming event fills
EVENT_LIMITS = column_limits(EVENT)
MESSAGE_LIMITS = column_limits(MESSAGE)

CHUNK = 500  # values in one IN (…)
INSERT_CHUNK = 1000  # event rows in one executemany

_MESSAGE_COLUMNS = (
    MESSAGE.c.id,
    MESSAGE.c.uid,
    MESSAGE.c.lead_id,
    MESSAGE.c.campaign_id,
    MESSAGE.c.step_id,
    MESSAGE.c.status,
    MESSAGE.c.sent_at,
    MESSAGE.c.provider_message_id,
)
_MESSAGE_NAMES = [column.name for column in _MESSAGE_COLUMNS]
_LEAD_COLUMNS = [
    LEAD.c[name]
    for name in (
        "id",
        "email",
        "stage",
        "score",
        "score_updated_at",
        "recycle_count",
        "scoring_stopped_at",
        "soft_bounces",
        "first_name",
        "last_name",
        "company",
        "title",
        "phone",
        "country",
        "attributes",
    )
]
_LEAD_NAMES = [column.name for column in _LEAD_COLUMNS]

# --- matching ------------------------------------------------------------------------------------
# The statements an ingest runs for every batch are built once per database (``@cache``) with
# their values bound at each execution: building them anew cost ~0.3 ms each, a good part of a
# small batch (a few tracking hits) — see :func:`dripengine.storage.dialect.in_values`.


def messages_by_uid(connection: Connection, uids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The messages with our ``uids``, by uid: id, uid, lead_id, campaign_id, step_id, status,
    sent_at, provider_message_id."""
    found: dict[str, dict[str, Any]] = {}
    query = _messages_by(connection.dialect.name, "uid")
    for chunk in _chunks(connection, uids):
        for row in connection.execute(query, {"v": list(chunk)}):
            found[row[1]] = dict(zip(_MESSAGE_NAMES, row, strict=True))
    return found


def messages_by_provider_id(
    connection: Connection, provider_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The messages with the provider's message ids, by that id (columns as :func:`messages_by_uid`)."""
    found: dict[str, dict[str, Any]] = {}
    query = _messages_by(connection.dialect.name, "provider_message_id")
    for chunk in _chunks(connection, provider_ids):
        for row in connection.execute(query, {"v": list(chunk)}):
            found[row[-1]] = dict(zip(_MESSAGE_NAMES, row, strict=True))
    return found


@cache
def _messages_by(dialect_name: str, key: str) -> Select[Any]:
    return select(*_MESSAGE_COLUMNS).where(in_values(dialect_name, MESSAGE.c[key], "v"))


def lead_ids_by_email(connection: Connection, emails: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    query = _lead_ids_by_email(connection.dialect.name)
    for chunk in _chunks(connection, emails):
        found.update({row.email: row.id for row in connection.execute(query, {"v": list(chunk)})})
    return found


@cache
def _lead_ids_by_email(dialect_name: str) -> Select[Any]:
    return select(LEAD.c.id, LEAD.c.email).where(in_values(dialect_name, LEAD.c.email, "v"))


# --- storing -------------------------------------------------------------------------------------


def stored_dedupe_keys(connection: Connection, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` an event already has."""
    seen: set[str] = set()
    name = connection.dialect.name
    query = _stored_dedupe_keys(name)
    for chunk in _chunks(connection, keys):
        seen.update(connection.scalars(query, {"v": json_list(name, chunk)}))
    return seen


@cache
def _stored_dedupe_keys(dialect_name: str) -> Select[Any]:
    return select(EVENT.c.dedupe_key).where(in_json_values(dialect_name, EVENT.c.dedupe_key, "v"))


def stored_provider_event_ids(
    connection: Connection, provider: str, event_ids: Sequence[str]
) -> set[str]:
    """Those of ``provider``'s ``event_ids`` an event already has."""
    seen: set[str] = set()
    name = connection.dialect.name
    query = _stored_provider_event_ids(name)
    for chunk in _chunks(connection, event_ids):
        params = {"provider": provider, "v": json_list(name, chunk)}
        seen.update(connection.scalars(query, params))
    return seen


@cache
def _stored_provider_event_ids(dialect_name: str) -> Select[Any]:
    return select(EVENT.c.provider_event_id).where(
        EVENT.c.provider == bindparam("provider"),
        in_json_values(dialect_name, EVENT.c.provider_event_id, "v"),
    )


def insert_new_events(
    connection: Connection, rows: Sequence[Mapping[str, Any]]
) -> list[tuple[int, str]]:
    """Insert event rows, skipping any another transaction stored meanwhile (``ON CONFLICT DO
    NOTHING``); ``(id, dedupe_key)`` of each row inserted.

    On PostgreSQL the rows go in ordered by dedupe key: an insert that meets a key another
    transaction has inserted and not yet committed waits for it, so two ingests of the same events
    in different orders (the pixel of one email hit on two servers, each in its own batch of hits)
    would each wait for the other — a deadlock, and PostgreSQL aborts one batch. In one order they
    queue. SQLite has one writer at a time, so no such wait: it keeps the order given."""
    if not rows:
        return []
    inserted: list[tuple[int, str]] = []
    if uses_arrays(connection):
        rows = sorted(rows, key=lambda row: row["dedupe_key"])
        # ``INSERT … SELECT … FROM json_to_recordset(:v)``: one statement text for every batch,
        # one parameter (see :mod:`dripengine.storage.dialect`)
        columns = tuple(rows[0])
        for chunk in _chunks(connection, rows, INSERT_CHUNK):
            values, params = table_rows(EVENT, columns, chunk)
            statement = _insert_events_from(values) if not params else _insert_events_json(columns)
            inserted.extend((row[0], row[1]) for row in connection.execute(statement, params))
        return inserted
    statement = _insert_events(connection.dialect.name)
    for chunk in _chunks(connection, rows, INSERT_CHUNK):
        inserted.extend((event_id, key) for event_id, key in connection.execute(statement, chunk))
    return inserted


@cache
def _insert_events(dialect_name: str) -> Any:
    statement = dialect.insert_for(dialect_name, EVENT).on_conflict_do_nothing()
    return statement.returning(EVENT.c.id, EVENT.c.dedupe_key)


@cache
def _insert_events_json(columns: tuple[str, ...]) -> Any:
    return _insert_events_from(json_rows(EVENT, columns))


def _insert_events_from(values: Select[Any]) -> Any:
    columns = [c.name for c in values.selected_columns]
    statement = dialect.insert_for("postgresql", EVENT).from_select(columns, values)
    return statement.on_conflict_do_nothing().returning(EVENT.c.id, EVENT.c.dedupe_key)


# --- effects -------------------------------------------------------------------------------------


def settle_sent(connection: Connection, message_id: int, at: datetime) -> None:
    """An ``unknown`` message becomes ``sent`` (its send time kept if it had one, else ``at``)."""
    connection.execute(
        update(MESSAGE)
        .where(MESSAGE.c.id == message_id, MESSAGE.c.status == "unknown")
        .values(status="sent", sent_at=func.coalesce(MESSAGE.c.sent_at, at))
    )


def settle_dropped(connection: Connection, message_id: int, reason: str) -> None:
    connection.execute(
        update(MESSAGE)
        .where(MESSAGE.c.id == message_id)
        .values(status="failed", error=f"dropped by the provider: {reason}")
    )


def event_leads(connection: Connection, lead_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The leads events change, by id, locked until the transaction ends (``FOR NO KEY UPDATE``,
    in id order, so two ingests never wait on each other in a cycle): stage, score and its time,
    recycle count, whether scoring stopped, soft bounces in a row, the contact fields a
    hand-back carries, attributes. A concurrent ingest of the same lead waits here and then
    reads the score the first one wrote. (SQLite has no row locks and needs none here: the
    events' insert before this read took its one write lock for the whole transaction.)"""
    leads: dict[int, dict[str, Any]] = {}
    query = _event_leads(connection.dialect.name)
    for chunk in _chunks(connection, sorted(lead_ids)):
        for row in connection.execute(query, {"v": list(chunk)}):
            leads[row[0]] = dict(zip(_LEAD_NAMES, row, strict=True))
    return leads


@cache
def _event_leads(dialect_name: str) -> Select[Any]:
    return (
        select(*_LEAD_COLUMNS)
        .where(in_values(dialect_name, LEAD.c.id, "v"))
        .order_by(LEAD.c.id)
        # NO KEY UPDATE: the events this ingest inserted already hold KEY SHARE on their
        # leads (the foreign key), which a plain FOR UPDATE would wait for: a deadlock
        .with_for_update(key_share=True)
    )


def update_event_leads(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """One statement: ``row_id``, ``score``, ``score_updated_at``, ``soft_bounces``, ``stage``,
    ``updated_at`` and ``requalified_at`` (None keeps the stored one)."""
    if uses_arrays(connection) and len({r["row_id"] for r in rows}) == len(rows):
        # ``UPDATE lead SET … FROM (SELECT … FROM json_to_recordset(:v)) v WHERE lead.id = v.id``
        columns = tuple(c for c in rows[0] if c != "row_id")
        arrays = [{"id": r["row_id"], **{c: r[c] for c in columns}} for r in rows]
        values, params = table_rows(LEAD, ("id", *columns), arrays)
        if params:
            connection.execute(_update_leads_json(columns), params)
        else:
            connection.execute(_update_leads_from(values, columns))
        return
    connection.execute(_update_leads(), rows)


@cache
def _update_leads() -> Any:
    return (
        update(LEAD)
        .where(LEAD.c.id == bindparam("row_id"))
        .values(requalified_at=func.coalesce(bindparam("requalified_at"), LEAD.c.requalified_at))
    )


@cache
def _update_leads_json(columns: tuple[str, ...]) -> Any:
    return _update_leads_from(json_rows(LEAD, ("id", *columns)), columns)


def _update_leads_from(rows: Select[Any], columns: tuple[str, ...]) -> Any:
    v = rows.subquery("v")
    values: dict[str, Any] = {c: v.c[c] for c in columns}
    values["requalified_at"] = func.coalesce(v.c.requalified_at, LEAD.c.requalified_at)
    return update(LEAD).where(LEAD.c.id == v.c.id).values(values)


def points_earned(
    connection: Connection,
    lead_ids: Sequence[int],
    types: Sequence[str],
    start: datetime,
    end: datetime,
) -> Iterator[Any]:
    """``(lead id, event type, event time, delta)`` of the score changes of events of ``types``
    that happened in ``[start, end)``: a day's cap counts the events of that day, also one that
    arrived late and whose change is dated later (at the score's time).

    The database is asked for the changes dated from ``start`` on (a change is never dated before
    its event), through ``ix_score_change_lead_at`` and the event's primary key; the event's own
    time is checked here. (Asked of the event's time in SQL, PostgreSQL without fresh statistics
    walked the event table once per score change: 25 s a batch in the scale-out test.)"""
    query = _points_earned(connection.dialect.name)
    for chunk in _chunks(connection, lead_ids):
        params = {"v": list(chunk), "types": list(types), "start": start}
        for row in connection.execute(query, params):
            if start <= row[2] < end:
                yield row


@cache
def _points_earned(dialect_name: str) -> Select[Any]:
    return (
        select(SCORE_CHANGE.c.lead_id, EVENT.c.type, EVENT.c.occurred_at, SCORE_CHANGE.c.delta)
        .join(EVENT, EVENT.c.id == SCORE_CHANGE.c.event_id)
        .where(
            in_values(dialect_name, SCORE_CHANGE.c.lead_id, "v"),
            SCORE_CHANGE.c.at >= bindparam("start", type_=SCORE_CHANGE.c.at.type),
            in_values(dialect_name, EVENT.c.type, "types"),
        )
    )


def insert_score_changes(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """ScoreChange rows, one statement: ``lead_id``, ``event_id``, ``delta``, ``score_after``,
    ``reason``, ``at``."""
    if uses_arrays(connection):
        columns = tuple(rows[0])
        values, params = table_rows(SCORE_CHANGE, columns, rows)
        if params:
            connection.execute(_insert_score_changes_json(columns), params)
        else:
            connection.execute(SCORE_CHANGE.insert().from_select(list(columns), values))
        return
    connection.execute(SCORE_CHANGE.insert(), rows)


@cache
def _insert_score_changes_json(columns: tuple[str, ...]) -> Any:
    return SCORE_CHANGE.insert().from_select(list(columns), json_rows(SCORE_CHANGE, columns))


def _chunks(
    connection: Connection, items: Sequence[Any], size: int = CHUNK
) -> Iterable[Sequence[Any]]:
    """``items`` in slices of ``size`` (an ``IN`` list, an executemany); on PostgreSQL an array
    parameter has no such limit, so one slice of ``INSERT_CHUNK`` and up."""
    if uses_arrays(connection):
        size = max(size, 10 * INSERT_CHUNK)
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "EVENT_LIMITS",
    "MESSAGE_LIMITS",
    "event_leads",
    "insert_new_events",
    "insert_score_changes",
    "lead_ids_by_email",
    "messages_by_provider_id",
    "messages_by_uid",
    "points_earned",
    "settle_dropped",
    "settle_sent",
    "stored_dedupe_keys",
    "stored_provider_event_ids",
    "update_event_leads",
]
