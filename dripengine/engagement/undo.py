"""Undoing an unsubscribe clicked by mistake, within a grace period (``POST /u/<token>/undo``).

An unsubscribe from a message's link (the page's button or the mail client's one-click POST) is an
``unsubscribe`` event that suppressed the address and exited the lead's active enrollments. Its
event keeps, in ``raw["active_enrollments"]``, when each of those enrollments was next due
(:func:`snapshot`, read just before the unsubscribe is recorded).

The undo gives back exactly what that click took away, in one transaction:

- the suppression the click added (reason ``unsubscribe``, made at the click's time); a suppression
  that was there before the click, or has another reason, is never touched;
- the enrollments the click exited (``suppressed: unsubscribe`` at the click's time), active again
  and due when they were due before the click.

It is refused after the grace period, once a hard bounce or a spam complaint came in after the
click, and for an erased lead (``drip leads forget``). Both events stay: the ``unsubscribe`` and a
``resubscribe`` event naming what was given back, one per unsubscribe (a second undo is a no-op).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Table, delete, select, update
from sqlalchemy.engine import Connection, Engine

from dripengine.clock import ensure_utc
from dripengine.engagement import vocabulary as v
from dripengine.leads.optout import ERASED_DOMAIN
from dripengine.storage import suppression, upsert
from dripengine.storage.models import Enrollment, Event, Lead, Message

MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
ENROLLMENT: Table = Enrollment.__table__  # type: ignore[attr-defined]
EVENT: Table = Event.__table__  # type: ignore[attr-defined]

SNAPSHOT = "active_enrollments"  # the key of the unsubscribe event's raw payload
EXITED_BY_UNSUBSCRIBE = "suppressed: unsubscribe"  # optout.exit_enrollments' reason

Outcome = Literal["undone", "already", "expired", "nothing", "protected", "erased"]


@dataclass(frozen=True)
class UndoResult:
    outcome: Outcome
    unsubscribed_at: datetime | None = None
    deadline: datetime | None = None  # the last moment the undo is accepted
    resumed: int = 0  # enrollments active again


def snapshot(engine: Engine, uid: str) -> list[dict[str, Any]]:
    """The active enrollments of the lead of message ``uid``, as the undo needs them back."""
    lead = select(MESSAGE.c.lead_id).where(MESSAGE.c.uid == uid).scalar_subquery()
    query = select(
        ENROLLMENT.c.id, ENROLLMENT.c.round, ENROLLMENT.c.current_step, ENROLLMENT.c.next_due_at
    ).where(ENROLLMENT.c.lead_id == lead, ENROLLMENT.c.status == "active")
    with engine.connect() as connection:
        return [
            {
                "id": row.id,
                "round": row.round,
                "current_step": row.current_step,
                "next_due_at": row.next_due_at.isoformat() if row.next_due_at else None,
            }
            for row in connection.execute(query)
        ]


def undo_status(engine: Engine, uid: str, now: datetime, grace: timedelta) -> UndoResult:
    """What :func:`undo_unsubscribe` would do now, changing nothing (for the pages)."""
    with engine.connect() as connection:
        return _check(connection, uid, now, grace)[0]


def undo_unsubscribe(engine: Engine, uid: str, now: datetime, grace: timedelta) -> UndoResult:
    """Give back what the last unsubscribe from message ``uid`` took away (see the module)."""
    with engine.begin() as connection:
        result, found = _check(connection, uid, now, grace)
        if result.outcome != "undone" or found is None:
            return result
        message, lead, unsubscribe = found
        at = unsubscribe["received_at"]
        event = (
            upsert.insert(connection, EVENT)
            .values(
                message_id=message["id"],
                lead_id=lead["id"],
                type=v.RESUBSCRIBE,
                provider="drip",
                occurred_at=now,
                received_at=now,
                machine=False,
                dedupe_key=_undo_key(unsubscribe["id"]),
                detail="",
                raw={"undoes_event": unsubscribe["id"]},
            )
            .on_conflict_do_nothing()
            .returning(EVENT.c.id)
        )
        event_id = connection.execute(event).scalar()
        if event_id is None:  # another request undid it a moment ago
            return UndoResult("already", at, result.deadline)
        removed = connection.execute(
            delete(suppression.SUPPRESSION).where(
                suppression.SUPPRESSION.c.email == lead["email"],
                suppression.SUPPRESSION.c.reason == "unsubscribe",
            )
        ).rowcount
        resumed = _resume(connection, lead["id"], at, unsubscribe["raw"], now)
        detail = (
            f"undid the unsubscribe of {at.isoformat(timespec='seconds')} within the grace "
            f"period: {'suppression lifted' if removed else 'no suppression to lift'}, "
            f"{len(resumed)} enrollment(s) resumed"
        )
        connection.execute(
            update(EVENT)
            .where(EVENT.c.id == event_id)
            .values(detail=detail, raw={"undoes_event": unsubscribe["id"], "resumed": resumed})
        )
    return UndoResult("undone", at, result.deadline, len(resumed))


_Found = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def _check(
    connection: Connection, uid: str, now: datetime, grace: timedelta
) -> tuple[UndoResult, _Found | None]:
    message = _one(connection, select(MESSAGE.c.id, MESSAGE.c.lead_id).where(MESSAGE.c.uid == uid))
    if message is None:
        return UndoResult("nothing"), None
    lead = _one(connection, select(LEAD.c.id, LEAD.c.email).where(LEAD.c.id == message["lead_id"]))
    if lead is None or lead["email"].endswith("@" + ERASED_DOMAIN):
        return UndoResult("erased"), None
    unsubscribe = _one(
        connection,
        select(EVENT.c.id, EVENT.c.received_at, EVENT.c.raw)
        .where(
            EVENT.c.message_id == message["id"],
            EVENT.c.type == v.UNSUBSCRIBE,
            EVENT.c.provider == "drip",
        )
        .order_by(EVENT.c.id.desc())
        .limit(1),
    )
    if unsubscribe is None:
        return UndoResult("nothing"), None
    at = ensure_utc(unsubscribe["received_at"])
    unsubscribe["received_at"] = at
    deadline = at + grace
    undone = select(EVENT.c.id).where(EVENT.c.dedupe_key == _undo_key(unsubscribe["id"]))
    if connection.execute(undone).first() is not None:
        return UndoResult("already", at, deadline), None
    if now > deadline:
        return UndoResult("expired", at, deadline), None
    later = select(EVENT.c.id).where(
        EVENT.c.lead_id == lead["id"],
        EVENT.c.type.in_([v.BOUNCE, v.COMPLAINT]),
        EVENT.c.id > unsubscribe["id"],
    )
    if connection.execute(later.limit(1)).first() is not None:
        return UndoResult("protected", at, deadline), None
    entry = suppression.suppressed(connection, [lead["email"]]).get(lead["email"])
    if entry is not None and (
        entry.hashed or entry.reason != "unsubscribe" or ensure_utc(entry.created_at) != at
    ):
        # suppressed before the click (or for another reason): the click took nothing away
        return UndoResult("nothing", at, deadline), None
    return UndoResult("undone", at, deadline), (message, lead, unsubscribe)


def _resume(
    connection: Connection, lead_id: int, at: datetime, raw: Any, now: datetime
) -> list[int]:
    """Make the enrollments the click exited active again, due when they were before it."""
    before = {
        item["id"]: item
        for item in (raw.get(SNAPSHOT) if isinstance(raw, dict) else None) or []
        if isinstance(item, dict) and isinstance(item.get("id"), int)
    }
    exited = connection.execute(
        select(
            ENROLLMENT.c.id, ENROLLMENT.c.round, ENROLLMENT.c.current_step, ENROLLMENT.c.ended_at
        ).where(
            ENROLLMENT.c.lead_id == lead_id,
            ENROLLMENT.c.status == "exited",
            ENROLLMENT.c.exit_reason == EXITED_BY_UNSUBSCRIBE,
        )
    ).all()
    resumed = []
    for row in exited:
        if row.ended_at is None or ensure_utc(row.ended_at) != at:
            continue  # exited by another unsubscribe, not this click
        was = before.get(row.id)
        due = now
        if was and was.get("next_due_at") and _same_step(was, row):
            due = datetime.fromisoformat(was["next_due_at"])
        connection.execute(
            update(ENROLLMENT)
            .where(ENROLLMENT.c.id == row.id, ENROLLMENT.c.status == "exited")
            .values(
                status="active", exit_reason=None, ended_at=None, next_due_at=due, updated_at=now
            )
        )
        resumed.append(row.id)
    return resumed


def _same_step(was: dict[str, Any], row: Any) -> bool:
    return bool(was.get("round") == row.round and was.get("current_step") == row.current_step)


def _undo_key(unsubscribe_event_id: int) -> str:
    """One undo per unsubscribe event: the event table's unique dedupe key enforces it."""
    text = f"drip\x1f{v.RESUBSCRIBE}\x1f{unsubscribe_event_id}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _one(connection: Connection, query: Any) -> dict[str, Any] | None:
    row = connection.execute(query).first()
    return dict(row._mapping) if row is not None else None
