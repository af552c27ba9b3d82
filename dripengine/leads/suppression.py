"""The suppression list: addresses that are never mailed again, plain or hashed.

An address is stored as it is (``jane@acme.example``), except for a person who asked to be
forgotten (``drip leads forget``): then only ``sha256:<hex>`` of the normalised address is kept,
so the address itself is gone and is still recognised when it comes back (an import, a recycle, a
webhook). Every check goes through :func:`lookup_keys` / :func:`suppressed`, which look up both
forms in one query.

Removing a suppression is refused for the reasons that protect the sender's reputation (a spam
complaint, a hard bounce) and for an erasure, unless forced: see :func:`removal_refusal`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, delete, select
from sqlalchemy.engine import Connection

from dripengine.storage import upsert
from dripengine.storage.arrays import any_of
from dripengine.storage.models import Suppression

SUPPRESSION: Table = Suppression.__table__  # type: ignore[attr-defined]

HASH_PREFIX = "sha256:"
REASONS = ("manual", "unsubscribe", "hard_bounce", "spam_report", "erased")
ERASED = "erased"  # the reason of the hashed entry `drip leads forget` leaves
# reasons a plain `drip suppress remove` refuses, and why
PROTECTED: dict[str, str] = {
    "spam_report": "the person reported an email as spam: mailing a complainer again hurts the "
    "sender's reputation with every mailbox provider",
    "hard_bounce": "the address does not exist: mailing it again raises the bounce rate mailbox "
    "providers judge the sender by",
    ERASED: "the person asked to be forgotten (GDPR erasure): the hashed entry is what keeps "
    "them from being mailed again",
}


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
    query = select(SUPPRESSION.c.email, SUPPRESSION.c.reason, SUPPRESSION.c.created_at).where(
        any_of(connection, SUPPRESSION.c.email, keys)
    )
    for stored, reason, created_at in connection.execute(query):
        email = keys[stored]
        entry = Entry(email, reason, created_at, stored != email)
        if email not in found or found[email].hashed:
            found[email] = entry
    return found


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
        upsert.insert(connection, SUPPRESSION)
        .values(email=stored, reason=reason, source=source, note=note, created_at=now)
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(SUPPRESSION.c.id)
    )
    return connection.execute(statement).first() is not None


def removal_refusal(reason: str) -> str | None:
    """Why removing a suppression with ``reason`` needs ``--force``; None when it does not."""
    return PROTECTED.get(reason)


def remove(connection: Connection, email: str) -> int:
    """Delete the suppression of ``email`` (normalised), plain and hashed; rows deleted."""
    keys = list(lookup_keys([email]))
    return connection.execute(delete(SUPPRESSION).where(SUPPRESSION.c.email.in_(keys))).rowcount


__all__ = [
    "ERASED",
    "HASH_PREFIX",
    "PROTECTED",
    "REASONS",
    "SUPPRESSION",
    "Entry",
    "add",
    "erased_hashes",
    "hashed",
    "lookup_keys",
    "removal_refusal",
    "remove",
    "suppressed",
]
