"""Opting a person out by hand: suppress, unsuppress, and erase (``drip leads forget``).

Each is one transaction. Suppressing exits every active enrollment of the lead at once, as an
unsubscribe does. Erasure (GDPR Art. 17) anonymises the lead and keeps only a hashed suppression
(:func:`dripengine.suppression.hashed`), so the address is recognised and refused if it comes back
(an import, a recycle, a CRM push) without being stored anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, delete, select, update
from sqlalchemy.engine import Connection, Engine

from dripengine import suppression
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import DripError
from dripengine.models import Enrollment, Event, Handoff, Lead, Message, RecycleRecord

LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
ENROLLMENT: Table = Enrollment.__table__  # type: ignore[attr-defined]
EVENT: Table = Event.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
HANDOFF: Table = Handoff.__table__  # type: ignore[attr-defined]
RECYCLE: Table = RecycleRecord.__table__  # type: ignore[attr-defined]

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: .invalid never resolves, so it is never mailed
ERASED_FIELDS = ("first_name", "last_name", "company", "title", "phone")


class SuppressionError(DripError):
    """That suppression cannot be changed."""


def address(raw: str) -> str:
    try:
        return normalise_email(raw)
    except InvalidEmail as exc:
        raise SuppressionError(f"{raw!r} is not a valid email address: {exc}") from None


def exit_enrollments(connection: Connection, lead_id: int, reason: str, now: datetime) -> int:
    """Exit every active enrollment of the lead; how many."""
    result = connection.execute(
        update(ENROLLMENT)
        .where(ENROLLMENT.c.lead_id == lead_id, ENROLLMENT.c.status == "active")
        .values(
            status="exited",
            exit_reason=reason[:64],
            ended_at=now,
            next_due_at=None,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)


def _lead_id(connection: Connection, email: str) -> int | None:
    return connection.execute(select(LEAD.c.id).where(LEAD.c.email == email)).scalar()


@dataclass(frozen=True)
class Suppressed:
    email: str
    added: bool  # False: it was suppressed already (the first reason is kept)
    exited: int  # active enrollments ended


def suppress(
    engine: Engine, raw: str, reason: str, now: datetime, *, note: str | None = None
) -> Suppressed:
    """Suppress an address (lead or not) and exit its lead's active enrollments."""
    email = address(raw)
    with engine.begin() as connection:
        added = suppression.add(connection, email, reason, now, source="drip suppress", note=note)
        lead_id = _lead_id(connection, email)
        exited = (
            exit_enrollments(connection, lead_id, f"suppressed: {reason}", now)
            if lead_id is not None
            else 0
        )
    return Suppressed(email, added, exited)


def unsuppress(engine: Engine, raw: str, *, force: bool = False) -> suppression.Entry:
    """Remove an address's suppression; refused for complaints, hard bounces and erasures unless
    ``force``. The entry removed. Enrollments that ended stay ended: recycle the lead again."""
    email = address(raw)
    with engine.begin() as connection:
        entry = suppression.suppressed(connection, [email]).get(email)
        if entry is None:
            raise SuppressionError(f"{email} is not suppressed (`drip suppress list` shows who is)")
        why = suppression.removal_refusal(entry.reason)
        if why and not force:
            raise SuppressionError(
                f"{email} stays suppressed ({entry.reason}): {why}; "
                "--force removes it if you are sure"
            )
        suppression.remove(connection, email)
    return entry


@dataclass(frozen=True)
class Forgotten:
    email: str
    lead_id: int | None  # None: no lead had that address (the hashed suppression is kept anyway)
    erased_as: str | None
    exited: int
    events: int


def forget(engine: Engine, raw: str, now: datetime) -> Forgotten:
    """Erase a person: anonymise the lead, blank what its events and emails kept, exit its
    enrollments, stop scoring, cancel its pending CRM handoff, and keep only a hashed suppression.

    The stage, the stage history and the counts stay (the statistics need them, and they say
    nothing about who the person was).
    """
    email = address(raw)
    with engine.begin() as connection:
        lead_id = _lead_id(connection, email)
        erased_as = None
        exited = events = 0
        if lead_id is not None:
            erased_as = f"erased-{lead_id}@{ERASED_DOMAIN}"
            connection.execute(
                update(LEAD)
                .where(LEAD.c.id == lead_id)
                .values(
                    email=erased_as,
                    attributes={},
                    scoring_stopped_at=now,
                    updated_at=now,
                    **dict.fromkeys(ERASED_FIELDS),
                )
            )
            exited = exit_enrollments(connection, lead_id, "erased on request", now)
            events = connection.execute(
                update(EVENT).where(EVENT.c.lead_id == lead_id).values(raw={}, detail=None)
            ).rowcount
            # a subject may carry the first name; a recycle note, anything sales typed
            connection.execute(
                update(MESSAGE).where(MESSAGE.c.lead_id == lead_id).values(subject=None)
            )
            connection.execute(
                update(RECYCLE).where(RECYCLE.c.lead_id == lead_id).values(note=None)
            )
            connection.execute(
                update(HANDOFF).where(HANDOFF.c.lead_id == lead_id).values(payload={})
            )
            connection.execute(
                update(HANDOFF)
                .where(HANDOFF.c.lead_id == lead_id, HANDOFF.c.status == "pending")
                .values(status="cancelled", last_error="the lead was erased on request")
            )
        # the plain entry would keep the address: only the hashed one stays
        connection.execute(
            delete(suppression.SUPPRESSION).where(suppression.SUPPRESSION.c.email == email)
        )
        suppression.add(
            connection,
            suppression.hashed(email),
            suppression.ERASED,
            now,
            source="drip leads forget",
        )
    return Forgotten(email, lead_id, erased_as, exited, int(events))


__all__ = [
    "ERASED_DOMAIN",
    "Forgotten",
    "Suppressed",
    "SuppressionError",
    "exit_enrollments",
    "forget",
    "suppress",
    "unsuppress",
]
