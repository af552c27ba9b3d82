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

from dripengine import vocabulary as v
from dripengine.campaigns.schedule import returned_due
from dripengine.clock import ensure_utc
from dripengine.leads.optout import ERASED_DOMAIN
from dripengine.storage import Connection, Engine, suppression
from dripengine.storage import unsubscribes as store

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
    with engine.connect() as connection:
        return [
            {
                "id": row.id,
                "round": row.round,
                "current_step": row.current_step,
                "next_due_at": row.next_due_at.isoformat() if row.next_due_at else None,
            }
            for row in store.active_enrollments_of(connection, uid)
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
        event_id = store.insert_event_once(
            connection,
            {
                "message_id": message["id"],
                "lead_id": lead["id"],
                "type": v.RESUBSCRIBE,
                "provider": "drip",
                "occurred_at": now,
                "received_at": now,
                "machine": False,
                "dedupe_key": _undo_key(unsubscribe["id"]),
                "detail": "",
                "raw": {"undoes_event": unsubscribe["id"]},
            },
        )
        if event_id is None:  # another request undid it a moment ago
            return UndoResult("already", at, result.deadline)
        removed = store.lift_suppression(connection, lead["email"], "unsubscribe")
        resumed = _resume(connection, lead["id"], at, unsubscribe["raw"], now)
        detail = (
            f"undid the unsubscribe of {at.isoformat(timespec='seconds')} within the grace "
            f"period: {'suppression lifted' if removed else 'no suppression to lift'}, "
            f"{len(resumed)} enrollment(s) resumed"
        )
        store.set_event_detail(
            connection, event_id, detail, {"undoes_event": unsubscribe["id"], "resumed": resumed}
        )
    return UndoResult("undone", at, result.deadline, len(resumed))


_Found = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def _check(
    connection: Connection, uid: str, now: datetime, grace: timedelta
) -> tuple[UndoResult, _Found | None]:
    message = store.message_lead(connection, uid)
    if message is None:
        return UndoResult("nothing"), None
    lead = store.lead_address(connection, message["lead_id"])
    if lead is None or lead["email"].endswith("@" + ERASED_DOMAIN):
        return UndoResult("erased"), None
    unsubscribe = store.last_event_of(connection, message["id"], v.UNSUBSCRIBE, "drip")
    if unsubscribe is None:
        return UndoResult("nothing"), None
    at = ensure_utc(unsubscribe["received_at"])
    unsubscribe["received_at"] = at
    deadline = at + grace
    if store.has_event_keyed(connection, _undo_key(unsubscribe["id"])):
        return UndoResult("already", at, deadline), None
    if now > deadline:
        return UndoResult("expired", at, deadline), None
    if store.has_event_after(connection, lead["id"], [v.BOUNCE, v.COMPLAINT], unsubscribe["id"]):
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
    resumed = []
    for row in store.exited_enrollments(connection, lead_id, EXITED_BY_UNSUBSCRIBE):
        if row.ended_at is None or ensure_utc(row.ended_at) != at:
            continue  # exited by another unsubscribe, not this click
        was = before.get(row.id)
        was_due = None
        if was and was.get("next_due_at") and _same_step(was, row):
            was_due = datetime.fromisoformat(was["next_due_at"])
        store.reactivate_enrollment(connection, row.id, returned_due(was_due, now), now)
        resumed.append(row.id)
    return resumed


def _same_step(was: dict[str, Any], row: Any) -> bool:
    return bool(was.get("round") == row.round and was.get("current_step") == row.current_step)


def _undo_key(unsubscribe_event_id: int) -> str:
    """One undo per unsubscribe event: the event table's unique dedupe key enforces it."""
    text = f"drip\x1f{v.RESUBSCRIBE}\x1f{unsubscribe_event_id}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
