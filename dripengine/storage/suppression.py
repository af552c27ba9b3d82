"""The suppression table, and the writes that erase a person (``drip leads forget``).

An address is stored as it is (``jane@acme.example``), except for a person who asked to be
forgotten: then only ``sha256:<hex>`` of the normalised address is kept (:func:`hashed`), so the
address itself is gone and is still recognised when it comes back (an import, a recycle, a
webhook). Every check goes through :func:`lookup_keys` / :func:`suppressed`, which look up both
forms in one query. Which reasons may be removed, and the order an erasure runs in, are
:mod:`dripengine.leads.suppression` and :mod:`dripengine.leads.optout`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from sqlalchemy import Select, String, Table, cast, delete, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement

from dripengine.storage import dialect
from dripengine.storage.dialect import in_values
from dripengine.storage.leads import LEAD, like_escaped
from dripengine.storage.models import (
    CONTACT_FIELDS,
    EVENT,
    FEEDBACK,
    HANDOFF,
    MESSAGE,
    RECYCLE_RECORD,
    SCORE_CHANGE,
    SUPPRESSION,
)

HASH_PREFIX = "sha256:"
# every contact field (country, time zone and source next to a stage history can single a person
# out); consent (a code: opt_in, legitimate_interest) says on what basis they were processed and is
# kept. One list with the model's, so a contact field added later is erased too.
ERASED_FIELDS = CONTACT_FIELDS


def hashed(email: str) -> str:
    """The stored form of an erased address: ``sha256:`` + hex digest of the normalised address."""
    return HASH_PREFIX + hashlib.sha256(email.encode("utf-8")).hexdigest()


def lookup_keys(emails: Iterable[str]) -> dict[str, str]:
    """Every stored form of ``emails`` (normalised) mapped to its address: plain and hashed."""
    keys: dict[str, str] = {}
    for email in emails:
        keys[email] = email
        keys[hashed(email)] = email
    return keys


@dataclass(frozen=True)
class Entry:
    email: str  # the address asked about (for a hashed entry, not what is stored)
    reason: str
    created_at: datetime
    hashed: bool


def suppressed(connection: Connection, emails: Iterable[str]) -> dict[str, Entry]:
    """The suppression of each of ``emails`` (normalised) that has one, plain or hashed; one query.

    When both forms are stored, the plain one wins (it says more).
    """
    keys = lookup_keys(emails)
    if not keys:
        return {}
    found: dict[str, Entry] = {}
    query = _suppressed(connection.dialect.name)
    for stored, reason, created_at in connection.execute(query, {"v": list(keys)}):
        email = keys[stored]
        entry = Entry(email, reason, created_at, stored != email)
        if email not in found or found[email].hashed:
            found[email] = entry
    return found


@cache
def _suppressed(dialect_name: str) -> Select[Any]:
    """Built once per database (see :func:`dripengine.storage.dialect.in_values`)."""
    return select(SUPPRESSION.c.email, SUPPRESSION.c.reason, SUPPRESSION.c.created_at).where(
        in_values(dialect_name, SUPPRESSION.c.email, "v")
    )


def erased_hashes(connection: Connection) -> frozenset[str]:
    """Every hashed entry (the people who asked to be forgotten): few, read once per import."""
    query = select(SUPPRESSION.c.email).where(SUPPRESSION.c.email.startswith(HASH_PREFIX))
    return frozenset(connection.execute(query).scalars())


def add(
    connection: Connection,
    stored: str,
    reason: str,
    now: datetime,
    *,
    source: str | None = None,
    note: str | None = None,
) -> bool:
    """Suppress ``stored`` (an address or a hashed form); False when it already was."""
    statement = (
        dialect.insert(connection, SUPPRESSION)
        .values(email=stored, reason=reason, source=source, note=note, created_at=now)
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(SUPPRESSION.c.id)
    )
    return connection.execute(statement).first() is not None


def remove(connection: Connection, email: str) -> int:
    """Delete the suppression of ``email`` (normalised), plain and hashed; rows deleted."""
    keys = list(lookup_keys([email]))
    return connection.execute(delete(SUPPRESSION).where(SUPPRESSION.c.email.in_(keys))).rowcount


def remove_plain(connection: Connection, email: str) -> None:
    """Delete the plain entry of ``email`` only (an erasure keeps the hashed one)."""
    connection.execute(delete(SUPPRESSION).where(SUPPRESSION.c.email == email))


# ---- erasure: each step of `drip leads forget`, in the transaction the caller opened ----------


def secure_delete(connection: Connection) -> None:
    """SQLite: overwrite what is deleted or rewritten with zeros, so the old values do not stay in
    the file's free space (``secure_delete``; this connection only). Nothing on PostgreSQL."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA secure_delete = ON")


def anonymise_lead(connection: Connection, lead_id: int, erased_as: str, now: datetime) -> None:
    """The lead gets the address ``erased_as``, no attributes and no contact fields; scoring stops."""
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


def blank_lead_rows(connection: Connection, lead_id: int) -> int:
    """Blank what the lead's other rows kept (event payloads, subjects, notes, the handoff
    payload) and cancel its pending handoff; the events blanked."""
    events = connection.execute(
        update(EVENT).where(EVENT.c.lead_id == lead_id).values(raw={}, detail=None)
    ).rowcount
    # a subject may carry the first name; a recycle note, anything sales typed
    connection.execute(update(MESSAGE).where(MESSAGE.c.lead_id == lead_id).values(subject=None))
    connection.execute(
        update(RECYCLE_RECORD).where(RECYCLE_RECORD.c.lead_id == lead_id).values(note=None)
    )
    connection.execute(update(HANDOFF).where(HANDOFF.c.lead_id == lead_id).values(payload={}))
    connection.execute(
        update(HANDOFF)
        .where(HANDOFF.c.lead_id == lead_id, HANDOFF.c.status == "pending")
        .values(status="cancelled", last_error="the lead was erased on request")
    )
    connection.execute(update(FEEDBACK).where(FEEDBACK.c.lead_id == lead_id).values(note=None))
    return int(events)


def scrub_lead_rows(
    connection: Connection, lead_id: int, forms: re.Pattern[str], replacement: str
) -> int:
    """Replace the address (``forms``) in the text the lead's rows hold (click URLs, errors,
    reasons) with ``replacement``; the rows changed."""
    scrubbed = 0
    for table, columns in (
        (EVENT, ("url", "provider_event_id")),
        (MESSAGE, ("error",)),
        (RECYCLE_RECORD, ("detail",)),
        (SCORE_CHANGE, ("reason",)),
        (HANDOFF, ("last_error",)),
    ):
        scrubbed += _scrub_rows(
            connection, table, columns, table.c.lead_id == lead_id, forms, replacement
        )
    return scrubbed


def message_uids(connection: Connection, lead_id: int) -> list[str]:
    """The uids of the lead's emails."""
    return list(connection.scalars(select(MESSAGE.c.uid).where(MESSAGE.c.lead_id == lead_id)))


def scrub_unowned_events(
    connection: Connection, email: str, forms: re.Pattern[str], replacement: str
) -> int:
    """Events stored without a lead (an address no lead had then) name it in their payload:
    replace it there too; the rows changed."""
    return _scrub_rows(
        connection,
        EVENT,
        ("url", "detail", "raw", "provider_event_id"),
        (EVENT.c.lead_id.is_(None))
        & or_(*(_like_any(EVENT.c[c], email) for c in ("url", "detail", "raw"))),
        forms,
        replacement,
    )


def checkpoint(engine: Engine) -> bool | None:
    """SQLite: write the WAL into the file and empty it (until then the old rows sit in ``-wal``);
    False when a reader (a running ``drip serve``) kept it from finishing. None on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as connection:
        busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
    return busy is not None and busy[0] == 0


def _like_any(column: ColumnElement[Any], email: str) -> ColumnElement[bool]:
    """A SQL filter for rows whose text may hold the address: its local part as is or URL-encoded
    (``jane+tag`` is ``jane%2Btag`` in a click URL), any case; the caller's ``forms`` decide."""
    local = email.partition("@")[0]
    text = func.lower(cast(column, String))
    return or_(
        *(
            text.like(f"%{like_escaped(form.lower())}%", escape="\\")
            for form in sorted({local, quote(local, safe="")})
        )
    )


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


__all__ = [
    "HASH_PREFIX",
    "SUPPRESSION",
    "Entry",
    "add",
    "anonymise_lead",
    "blank_lead_rows",
    "checkpoint",
    "erased_hashes",
    "hashed",
    "lookup_keys",
    "message_uids",
    "remove",
    "remove_plain",
    "scrub_lead_rows",
    "scrub_unowned_events",
    "secure_delete",
    "suppressed",
]
