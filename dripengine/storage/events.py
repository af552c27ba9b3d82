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
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from dripengine.storage import dialect
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


def messages_by_uid(connection: Connection, uids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The messages with our ``uids``, by uid: id, uid, lead_id, campaign_id, step_id, status,
    sent_at, provider_message_id."""
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(uids):
        for row in connection.execute(select(*_MESSAGE_COLUMNS).where(MESSAGE.c.uid.in_(chunk))):
            found[row[1]] = dict(zip(_MESSAGE_NAMES, row, strict=True))
    return found


def messages_by_provider_id(
    connection: Connection, provider_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The messages with the provider's message ids, by that id (columns as :func:`messages_by_uid`)."""
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(provider_ids):
        query = select(*_MESSAGE_COLUMNS).where(MESSAGE.c.provider_message_id.in_(chunk))
        for row in connection.execute(query):
            found[row[-1]] = dict(zip(_MESSAGE_NAMES, row, strict=True))
    return found


def lead_ids_by_email(connection: Connection, emails: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(emails):
        query = select(LEAD.c.id, LEAD.c.email).where(LEAD.c.email.in_(chunk))
        found.update({row.email: row.id for row in connection.execute(query)})
    return found


# --- storing -------------------------------------------------------------------------------------


def stored_dedupe_keys(connection: Connection, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` an event already has."""
    seen: set[str] = set()
    for chunk in _chunks(keys):
        query = select(EVENT.c.dedupe_key).where(EVENT.c.dedupe_key.in_(chunk))
        seen.update(connection.scalars(query))
    return seen


def stored_provider_event_ids(
    connection: Connection, provider: str, event_ids: Sequence[str]
) -> set[str]:
    """Those of ``provider``'s ``event_ids`` an event already has."""
    seen: set[str] = set()
    for chunk in _chunks(event_ids):
        query = select(EVENT.c.provider_event_id).where(
            EVENT.c.provider == provider, EVENT.c.provider_event_id.in_(chunk)
        )
        seen.update(connection.scalars(query))
    return seen


def insert_new_events(
    connection: Connection, rows: Sequence[Mapping[str, Any]]
) -> list[tuple[int, str]]:
    """Insert event rows, skipping any another transaction stored meanwhile (``ON CONFLICT DO
    NOTHING``); ``(id, dedupe_key)`` of each row inserted.

    On PostgreSQL the rows go in ordered by dedupe key: an insert that meets a key another
    transaction has inserted and not yet committed waits for it, so two ingests of the same events
    in different orders (the pixel of one email hit on two servers, each in its own batch of hits)
    would each wait for the other — a deadlock, and PostgreSQL aborts one batch. In one order they
    queue. SQLite has one writer at a time, so no such wait: it keeps the order given (sorted,
    bench_ingest's SQLite rate was ~8 % lower; PostgreSQL's did not move beyond the noise)."""
    statement = (
        dialect.insert(connection, EVENT)
        .on_conflict_do_nothing()
        .returning(EVENT.c.id, EVENT.c.dedupe_key)
    )
    if connection.dialect.name == "postgresql":
        rows = sorted(rows, key=lambda row: row["dedupe_key"])
    inserted: list[tuple[int, str]] = []
    for chunk in _chunks(rows, INSERT_CHUNK):
        for event_id, key in connection.execute(statement, chunk):
            inserted.append((event_id, key))
    return inserted


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
    """The leads events change, by id: stage, score and its time, recycle count, whether scoring
    stopped, soft bounces in a row, the contact fields a hand-back carries, attributes.

    Locked until the ingest commits (PostgreSQL ``FOR NO KEY UPDATE``; SQLite has one writer): an
    ingest in another process or thread that changes the same lead waits here, then reads the
    score, stage and the day's points the first one left, instead of both adding to the same old
    score and the last commit wiping out the other's points (or both granting a daily cap's rest,
    or both handing the lead back). ``lead_ids`` come sorted and are locked in that order, so two
    ingests never wait for each other's leads. ``NO KEY``: the event and score-change rows being
    inserted for these leads (their foreign keys' ``KEY SHARE``) do not wait for it."""
    leads: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(sorted(lead_ids)):
        query = (
            select(*_LEAD_COLUMNS)
            .where(LEAD.c.id.in_(chunk))
            .order_by(LEAD.c.id)
            .with_for_update(key_share=True)
        )
        for row in connection.execute(query):
            leads[row[0]] = dict(zip(_LEAD_NAMES, row, strict=True))
    return leads


def update_event_leads(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """One executemany: ``row_id``, ``score``, ``score_updated_at``, ``soft_bounces``, ``stage``,
    ``updated_at`` and ``requalified_at`` (None keeps the stored one)."""
    statement = (
        update(LEAD)
        .where(LEAD.c.id == bindparam("row_id"))
        .values(requalified_at=func.coalesce(bindparam("requalified_at"), LEAD.c.requalified_at))
    )
    connection.execute(statement, rows)


def points_earned(
    connection: Connection,
    lead_ids: Sequence[int],
    types: Sequence[str],
    start: datetime,
    end: datetime,
) -> Iterator[Any]:
    """``(lead id, event type, at, delta)`` of the score changes of events of ``types`` in
    ``[start, end)``."""
    for chunk in _chunks(lead_ids):
        query = (
            select(SCORE_CHANGE.c.lead_id, EVENT.c.type, SCORE_CHANGE.c.at, SCORE_CHANGE.c.delta)
            .join(EVENT, EVENT.c.id == SCORE_CHANGE.c.event_id)
            .where(
                SCORE_CHANGE.c.lead_id.in_(chunk),
                SCORE_CHANGE.c.at >= start,
                SCORE_CHANGE.c.at < end,
                EVENT.c.type.in_(types),
            )
        )
        yield from connection.execute(query)


def insert_score_changes(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """ScoreChange rows, one executemany: ``lead_id``, ``event_id``, ``delta``, ``score_after``,
    ``reason``, ``at``."""
    connection.execute(SCORE_CHANGE.insert(), rows)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
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
