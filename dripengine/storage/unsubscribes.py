"""What the unsubscribe and preferences pages read and change (``dripengine.engagement``'s
``preferences`` and ``undo`` call these): the message a link came from, leaving one campaign, and
what the undo of a mistaken unsubscribe looks up, gives back (the suppression, the exited
enrollments) and records (one ``resubscribe`` event per unsubscribe, by its unique dedupe key).
The unsubscribe itself is an event like any other (:mod:`dripengine.storage.events`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from dripengine.storage import dialect
from dripengine.storage.models import (
    ENROLLMENT,
    EVENT,
    LEAD,
    MESSAGE,
    SUPPRESSION,
)


def message_page(connection: Connection, uid: str) -> Any:
    """The message with our ``uid`` as the pages show it (None: no such message): its ``uid``,
    the lead's ``email``, ``campaign_id``, ``subject``, the enrollment's ``status`` and the
    address's ``suppression_id`` (None: not suppressed)."""
    query = (
        select(
            MESSAGE.c.uid,
            LEAD.c.email,
            MESSAGE.c.campaign_id,
            MESSAGE.c.subject,
            ENROLLMENT.c.status,
            SUPPRESSION.c.id.label("suppression_id"),
        )
        .select_from(
            MESSAGE.join(LEAD, LEAD.c.id == MESSAGE.c.lead_id)
            .outerjoin(ENROLLMENT, ENROLLMENT.c.id == MESSAGE.c.enrollment_id)
            .outerjoin(SUPPRESSION, SUPPRESSION.c.email == LEAD.c.email)
        )
        .where(MESSAGE.c.uid == uid)
    )
    return connection.execute(query).first()


def exit_enrollment_of(connection: Connection, uid: str, reason: str, now: datetime) -> bool:
    """Exit the active enrollment message ``uid`` belongs to; False when there was none."""
    enrollment = select(MESSAGE.c.enrollment_id).where(MESSAGE.c.uid == uid).scalar_subquery()
    statement = (
        update(ENROLLMENT)
        .where(ENROLLMENT.c.id == enrollment, ENROLLMENT.c.status == "active")
        .values(
            status="exited",
            exit_reason=reason,
            ended_at=now,
            next_due_at=None,
            updated_at=now,
        )
    )
    return connection.execute(statement).rowcount > 0


def active_enrollments_of(connection: Connection, uid: str) -> list[Any]:
    """``id``, ``round``, ``current_step``, ``next_due_at`` of the active enrollments of the lead
    of message ``uid``."""
    lead = select(MESSAGE.c.lead_id).where(MESSAGE.c.uid == uid).scalar_subquery()
    query = select(
        ENROLLMENT.c.id, ENROLLMENT.c.round, ENROLLMENT.c.current_step, ENROLLMENT.c.next_due_at
    ).where(ENROLLMENT.c.lead_id == lead, ENROLLMENT.c.status == "active")
    return list(connection.execute(query))


def message_lead(connection: Connection, uid: str) -> dict[str, Any] | None:
    """``id`` and ``lead_id`` of the message with our ``uid``."""
    return _one(connection, select(MESSAGE.c.id, MESSAGE.c.lead_id).where(MESSAGE.c.uid == uid))


def lead_address(connection: Connection, lead_id: int) -> dict[str, Any] | None:
    """``id`` and ``email`` of the lead."""
    return _one(connection, select(LEAD.c.id, LEAD.c.email).where(LEAD.c.id == lead_id))


def last_event_of(
    connection: Connection, message_id: int, type_: str, provider: str
) -> dict[str, Any] | None:
    """``id``, ``received_at`` and ``raw`` of the message's latest event of that type from
    ``provider``."""
    return _one(
        connection,
        select(EVENT.c.id, EVENT.c.received_at, EVENT.c.raw)
        .where(
            EVENT.c.message_id == message_id,
            EVENT.c.type == type_,
            EVENT.c.provider == provider,
        )
        .order_by(EVENT.c.id.desc())
        .limit(1),
    )


def has_event_keyed(connection: Connection, dedupe_key: str) -> bool:
    undone = select(EVENT.c.id).where(EVENT.c.dedupe_key == dedupe_key)
    return connection.execute(undone).first() is not None


def has_event_after(
    connection: Connection, lead_id: int, types: Sequence[str], event_id: int
) -> bool:
    """Whether the lead has an event of ``types`` stored after event ``event_id``."""
    later = select(EVENT.c.id).where(
        EVENT.c.lead_id == lead_id,
        EVENT.c.type.in_(types),
        EVENT.c.id > event_id,
    )
    return connection.execute(later.limit(1)).first() is not None


def insert_event_once(connection: Connection, values: Mapping[str, Any]) -> int | None:
    """Insert one event; its id, or None when its dedupe key is stored already."""
    event = (
        dialect.insert(connection, EVENT)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(EVENT.c.id)
    )
    return connection.execute(event).scalar()


def set_event_detail(connection: Connection, event_id: int, detail: str, raw: Any) -> None:
    connection.execute(update(EVENT).where(EVENT.c.id == event_id).values(detail=detail, raw=raw))


def lift_suppression(connection: Connection, email: str, reason: str) -> int:
    """Delete the suppression of the plain address ``email`` if it has ``reason``; rows deleted."""
    return int(
        connection.execute(
            delete(SUPPRESSION).where(SUPPRESSION.c.email == email, SUPPRESSION.c.reason == reason)
        ).rowcount
    )


def exited_enrollments(connection: Connection, lead_id: int, reason: str) -> list[Any]:
    """``id``, ``round``, ``current_step``, ``ended_at`` of the lead's enrollments exited with
    ``reason``."""
    return list(
        connection.execute(
            select(
                ENROLLMENT.c.id,
                ENROLLMENT.c.round,
                ENROLLMENT.c.current_step,
                ENROLLMENT.c.ended_at,
            ).where(
                ENROLLMENT.c.lead_id == lead_id,
                ENROLLMENT.c.status == "exited",
                ENROLLMENT.c.exit_reason == reason,
            )
        )
    )


def reactivate_enrollment(
    connection: Connection, enrollment_id: int, due: datetime, now: datetime
) -> None:
    """An exited enrollment active again, due at ``due``."""
    connection.execute(
        update(ENROLLMENT)
        .where(ENROLLMENT.c.id == enrollment_id, ENROLLMENT.c.status == "exited")
        .values(status="active", exit_reason=None, ended_at=None, next_due_at=due, updated_at=now)
    )


def _one(connection: Connection, query: Any) -> dict[str, Any] | None:
    row = connection.execute(query).first()
    return dict(row._mapping) if row is not None else None


__all__ = [
    "active_enrollments_of",
    "exit_enrollment_of",
    "exited_enrollments",
    "has_event_after",
    "has_event_keyed",
    "insert_event_once",
    "last_event_of",
    "lead_address",
    "lift_suppression",
    "message_lead",
    "message_page",
    "reactivate_enrollment",
    "set_event_detail",
]
