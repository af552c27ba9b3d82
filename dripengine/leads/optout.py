"""Opting a person out by hand: suppress, unsuppress, and erase (``drip leads forget``).

Each is one transaction. Suppressing exits every active enrollment of the lead at once, as an
unsubscribe does. Erasure (GDPR Art. 17) anonymises the lead and keeps only a hashed suppression
(:func:`dripengine.leads.suppression.hashed`), so the address is recognised and refused if it comes back
(an import, a recycle, a CRM push) without being stored anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import String, Table, cast, delete, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import DripError
from dripengine.leads import suppression
from dripengine.storage.models import (
    CONTACT_FIELDS,
    Enrollment,
    Event,
    Feedback,
    Handoff,
    Lead,
    Message,
    RecycleRecord,
    ScoreChange,
)
from dripengine.storage.textlimits import text_problem

LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
ENROLLMENT: Table = Enrollment.__table__  # type: ignore[attr-defined]
EVENT: Table = Event.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
HANDOFF: Table = Handoff.__table__  # type: ignore[attr-defined]
RECYCLE: Table = RecycleRecord.__table__  # type: ignore[attr-defined]
SCORE_CHANGE: Table = ScoreChange.__table__  # type: ignore[attr-defined]
FEEDBACK: Table = Feedback.__table__  # type: ignore[attr-defined]

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: .invalid never resolves, so it is never mailed
# every contact field (country, time zone and source next to a stage history can single a person
# out); consent (a code: opt_in, legitimate_interest) says on what basis they were processed and is
# kept. One list with the model's, so a contact field added later is erased too.
ERASED_FIELDS = CONTACT_FIELDS


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
    problem = text_problem("note", note) if note else None
    if problem:
        raise SuppressionError(problem)
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
    scrubbed: int = 0  # other rows whose text named the address (click URLs, errors, reasons)
    files: int = 0  # outbox .eml files of the lead's emails removed
    checkpointed: bool | None = None  # SQLite: the WAL emptied into the file (None: PostgreSQL)


def address_forms(email: str) -> re.Pattern[str]:
    """The address as stored text may carry it: as is, URL-encoded (a merge field in a click URL:
    ``jane%40acme.example``, ``jane%2Btag%40…``), any case."""
    forms = {email, quote(email, safe=""), quote(email, safe="@"), email.replace("@", "%40")}
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)), re.I)


def _like_any(column: ColumnElement[Any], email: str) -> ColumnElement[bool]:
    """A SQL filter for rows whose text may hold the address: its local part as is or URL-encoded
    (``jane+tag`` is ``jane%2Btag`` in a click URL), any case; :func:`address_forms` decides."""
    local = email.partition("@")[0]
    text = func.lower(cast(column, String))
    return or_(
        *(
            text.like(f"%{_like_escaped(form.lower())}%", escape="\\")
            for form in sorted({local, quote(local, safe="")})
        )
    )


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _scrub_rows(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    where: ColumnElement[bool],
    forms: re.Pattern[str],
    replacement: str,
) -> int:
    """Replace the address in ``columns`` of the rows ``where`` selects; the rows changed."""
    changed = 0
    key = table.c.id
    rows = connection.execute(select(key, *(table.c[c] for c in columns)).where(where)).all()
    for row in rows:
        values: dict[str, Any] = {}
        for column, value in zip(columns, row[1:], strict=True):
            if isinstance(value, str) and forms.search(value):
                values[column] = forms.sub(replacement, value)
            elif isinstance(value, dict) and forms.search(repr(value)):
                values[column] = {}  # a raw payload naming the person: nothing of it is kept
        if values:
            connection.execute(update(table).where(key == row[0]).values(**values))
            changed += 1
    return changed


def forget(engine: Engine, raw: str, now: datetime, *, outbox: Path | None = None) -> Forgotten:
    """Erase a person: anonymise the lead, blank what its events and emails kept, exit its
    enrollments, stop scoring, cancel its pending CRM handoff, and keep only a hashed suppression.

    The stage, the stage history and the counts stay (the statistics need them, and they say
    nothing about who the person was).
    """
    email = address(raw)
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # overwrite what is deleted or rewritten with zeros, so the old values do not stay in
            # the file's free space (SQLite's secure_delete; this connection only)
            connection.exec_driver_sql("PRAGMA secure_delete = ON")
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
            connection.execute(
                update(FEEDBACK).where(FEEDBACK.c.lead_id == lead_id).values(note=None)
            )
        forms = address_forms(email)
        replacement = erased_as or f"erased@{ERASED_DOMAIN}"
        scrubbed = 0
        if lead_id is not None:
            for table, columns in (
                (EVENT, ("url", "provider_event_id")),
                (MESSAGE, ("error",)),
                (RECYCLE, ("detail",)),
                (SCORE_CHANGE, ("reason",)),
                (HANDOFF, ("last_error",)),
            ):
                scrubbed += _scrub_rows(
                    connection, table, columns, table.c.lead_id == lead_id, forms, replacement
                )
            uids = list(
                connection.scalars(select(MESSAGE.c.uid).where(MESSAGE.c.lead_id == lead_id))
            )
        else:
            uids = []
        # events stored without a lead (an address no lead had then) name it in their payload
        scrubbed += _scrub_rows(
            connection,
            EVENT,
            ("url", "detail", "raw", "provider_event_id"),
            (EVENT.c.lead_id.is_(None))
            & or_(*(_like_any(EVENT.c[c], email) for c in ("url", "detail", "raw"))),
            forms,
            replacement,
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
    files = _remove_outbox_files(outbox, uids) if outbox is not None else 0
    checkpointed = _checkpoint(engine) if engine.dialect.name == "sqlite" else None
    return Forgotten(email, lead_id, erased_as, exited, int(events), scrubbed, files, checkpointed)


def _remove_outbox_files(outbox: Path, uids: list[str]) -> int:
    """The outbox copies of the lead's emails (``<day>/<uid>.eml``): the whole email, address,
    name and all, is personal data."""
    removed = 0
    if not outbox.is_dir():
        return 0
    wanted = {f"{uid}.eml" for uid in uids}
    for day in outbox.iterdir():
        if not day.is_dir():
            continue
        for name in wanted:
            path = day / name
            if path.is_file():
                path.unlink()
                removed += 1
    return removed


def _checkpoint(engine: Engine) -> bool:
    """Write SQLite's WAL into the file and empty it: until then the old rows sit in ``-wal``.
    False when a reader (a running ``drip serve``) kept it from finishing; run it again later."""
    with engine.connect() as connection:
        busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
    return busy is not None and busy[0] == 0


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
