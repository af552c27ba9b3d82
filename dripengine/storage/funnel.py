"""The funnel's queries: what moving a lead reads and writes (``dripengine.funnel`` calls them).

- a recycle: the snapshots of a batch of addresses (leads, enrollments: one query a table) and its
  rows (new leads with ``RETURNING id``, then one executemany a statement shape);
- a stage change outside the recycle path (sales' feedback): the lead's stage and its history row;
- a requalification: the lead's latest recycle record, the engagement that earned it (the
  hand-back's evidence), the stage change and the Handoff row for the CRM;
- sales' feedback: the lead, its latest hand-back, the feedback already given, the Feedback row.

Rows go in and come out as plain dicts (or tuples); the decisions about them are the funnel's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from dripengine.storage.models import (
    CONTACT_FIELDS,
    ENROLLMENT,
    EVENT,
    FEEDBACK,
    HANDOFF,
    LEAD,
    MESSAGE,
    RECYCLE_RECORD,
    SCORE_CHANGE,
    STAGE_CHANGE,
)
from dripengine.storage.textlimits import column_limits

# what the database takes in each text column a recycle request or a feedback fills
LEAD_LIMITS = column_limits(LEAD)
RECYCLE_LIMITS = column_limits(RECYCLE_RECORD)
FEEDBACK_LIMITS = column_limits(FEEDBACK)

# --- a recycle -----------------------------------------------------------------------------------

_LEAD_READS = ("id", "email", "stage", "score", "recycle_count", "attributes", "created_at")
_LEAD_COLUMNS = [LEAD.c[name] for name in (*_LEAD_READS, "updated_at", *CONTACT_FIELDS)]
_ENROLLMENT_COLUMNS = [
    ENROLLMENT.c[name]
    for name in (
        "id",
        "lead_id",
        "campaign_id",
        "campaign_version",
        "status",
        "track",
        "current_step",
        "step_index",
        "round",
        "next_due_at",
        "exit_reason",
        "enrolled_at",
        "updated_at",
        "ended_at",
        "holdout",
    )
]
# the columns a new row is inserted with (the id comes back; an enrollment's lead_id is added)
LEAD_INSERT_COLUMNS = tuple(column.name for column in _LEAD_COLUMNS[1:])
ENROLLMENT_INSERT_COLUMNS = tuple(column.name for column in _ENROLLMENT_COLUMNS[2:])


def recycle_leads(connection: Connection, emails: list[str]) -> Iterator[dict[str, Any]]:
    """The rows of the leads with ``emails``: the columns a recycle reads or writes (``attributes``
    a plain dict)."""
    for row in connection.execute(select(*_LEAD_COLUMNS).where(LEAD.c.email.in_(emails))):
        values = row._asdict()
        values["attributes"] = dict(values["attributes"] or {})
        yield values


def recycle_enrollments(connection: Connection, lead_ids: list[Any]) -> Iterator[dict[str, Any]]:
    """Every enrollment of the leads ``lead_ids``, by id, with its ``lead_id``."""
    query = (
        select(*_ENROLLMENT_COLUMNS)
        .where(ENROLLMENT.c.lead_id.in_(lead_ids))
        .order_by(ENROLLMENT.c.id)
    )
    for row in connection.execute(query):
        yield row._asdict()


def insert_leads(connection: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert new leads (``LEAD_INSERT_COLUMNS``); the id of each, by address."""
    inserted = connection.execute(insert(LEAD).returning(LEAD.c.id, LEAD.c.email), rows)
    return {email: lead_id for lead_id, email in inserted}


def update_leads(connection: Connection, changes: Iterable[tuple[int, dict[str, Any]]]) -> None:
    """``(lead id, changed columns)``: one executemany per set of changed columns."""
    _update(connection, LEAD, changes)


def update_enrollments(
    connection: Connection, changes: Iterable[tuple[int, dict[str, Any]]]
) -> None:
    """``(enrollment id, changed columns)``: one executemany per set of changed columns."""
    _update(connection, ENROLLMENT, changes)


def insert_stage_changes(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Stage history rows: ``lead_id``, ``from_stage``, ``to_stage``, ``reason``, ``actor``, ``at``."""
    connection.execute(insert(STAGE_CHANGE), rows)


def insert_enrollments(connection: Connection, rows: list[dict[str, Any]]) -> None:
    connection.execute(insert(ENROLLMENT), rows)


def insert_recycle_records(connection: Connection, rows: list[dict[str, Any]]) -> None:
    connection.execute(insert(RECYCLE_RECORD), rows)


def _update(
    connection: Connection, table: Table, changes: Iterable[tuple[int, dict[str, Any]]]
) -> None:
    """One executemany per set of changed columns: ``UPDATE … SET <them> WHERE id = :row_id``."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row_id, changed in changes:
        if "attributes" in changed:
            changed["attributes"] = dict(changed["attributes"])
        groups[tuple(sorted(changed))].append({"row_id": row_id, **changed})
    statement = update(table).where(table.c.id == bindparam("row_id"))
    for rows in groups.values():
        connection.execute(statement, rows)  # SET takes the columns the rows name


# --- a stage change outside the recycle path -----------------------------------------------------


def move_stage(
    connection: Connection,
    lead_id: int,
    from_stage: str,
    to_stage: str,
    reason: str,
    actor: str | None,
    at: datetime,
) -> None:
    """The lead's stage and its history row, two statements."""
    connection.execute(
        update(LEAD).where(LEAD.c.id == lead_id).values(stage=to_stage, updated_at=at)
    )
    connection.execute(
        insert(STAGE_CHANGE).values(
            lead_id=lead_id,
            from_stage=from_stage,
            to_stage=to_stage,
            reason=reason,
            actor=actor,
            at=at,
        )
    )


# --- a requalification ---------------------------------------------------------------------------


def latest_recycle(connection: Connection, lead_id: int) -> Mapping[str, Any] | None:
    """The lead's latest recycle record (every column), or None."""
    row = connection.execute(
        select(RECYCLE_RECORD)
        .where(RECYCLE_RECORD.c.lead_id == lead_id)
        .order_by(RECYCLE_RECORD.c.at.desc(), RECYCLE_RECORD.c.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def insert_stage_change(connection: Connection, row: Mapping[str, Any]) -> None:
    """One stage history row (see :func:`insert_stage_changes`)."""
    connection.execute(STAGE_CHANGE.insert(), row)


def earning_events(
    connection: Connection, lead_id: int, since: datetime | None, limit: int
) -> list[Any]:
    """The lead's latest ``limit`` score increases (since ``since``), newest first: the event's
    ``type``, ``occurred_at``, ``url``, ``tag``, the ``delta`` and the message's ``campaign_id``,
    ``step_id`` and ``subject``."""
    query = (
        select(
            EVENT.c.type,
            EVENT.c.occurred_at,
            EVENT.c.url,
            EVENT.c.tag,
            SCORE_CHANGE.c.delta,
            MESSAGE.c.campaign_id,
            MESSAGE.c.step_id,
            MESSAGE.c.subject,
        )
        .select_from(SCORE_CHANGE)
        .join(EVENT, EVENT.c.id == SCORE_CHANGE.c.event_id)
        .outerjoin(MESSAGE, MESSAGE.c.id == EVENT.c.message_id)
        .where(SCORE_CHANGE.c.lead_id == lead_id, SCORE_CHANGE.c.delta > 0)
        .order_by(SCORE_CHANGE.c.at.desc(), SCORE_CHANGE.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(SCORE_CHANGE.c.at >= since)
    return list(connection.execute(query))


def insert_handoff(connection: Connection, row: Mapping[str, Any]) -> None:
    """A Handoff row for the CRM (the outbox :mod:`dripengine.handoff.delivery` delivers)."""
    connection.execute(HANDOFF.insert(), row)


# --- sales' feedback -----------------------------------------------------------------------------


def lead_stage(connection: Connection, email: str) -> tuple[int, str, str] | None:
    """``(id, email, stage)`` of the lead with ``email``, or None."""
    row = connection.execute(
        select(LEAD.c.id, LEAD.c.email, LEAD.c.stage).where(LEAD.c.email == email)
    ).first()
    return (row.id, row.email, row.stage) if row is not None else None


def latest_handoff(connection: Connection, lead_id: int) -> Mapping[str, Any] | None:
    """The lead's latest Handoff row (every column), or None."""
    row = connection.execute(
        select(HANDOFF)
        .where(HANDOFF.c.lead_id == lead_id)
        .order_by(HANDOFF.c.created_at.desc(), HANDOFF.c.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def feedback_on(connection: Connection, handoff_id: int) -> list[tuple[str, str | None, datetime]]:
    """``(outcome, reason, at)`` of the feedback recorded on a hand-back, oldest first."""
    query = (
        select(FEEDBACK.c.outcome, FEEDBACK.c.reason, FEEDBACK.c.at)
        .where(FEEDBACK.c.handoff_id == handoff_id)
        .order_by(FEEDBACK.c.at, FEEDBACK.c.id)
    )
    return [(r.outcome, r.reason, r.at) for r in connection.execute(query)]


def insert_feedback(connection: Connection, row: Mapping[str, Any]) -> None:
    connection.execute(insert(FEEDBACK).values(**row))


__all__ = [
    "ENROLLMENT_INSERT_COLUMNS",
    "FEEDBACK_LIMITS",
    "LEAD_INSERT_COLUMNS",
    "LEAD_LIMITS",
    "RECYCLE_LIMITS",
    "earning_events",
    "feedback_on",
    "insert_enrollments",
    "insert_feedback",
    "insert_handoff",
    "insert_leads",
    "insert_recycle_records",
    "insert_stage_change",
    "insert_stage_changes",
    "latest_handoff",
    "latest_recycle",
    "lead_stage",
    "move_stage",
    "recycle_enrollments",
    "recycle_leads",
    "update_enrollments",
    "update_leads",
]
