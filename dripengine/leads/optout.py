"""Opting a person out by hand: suppress, unsuppress, and erase (``drip leads forget``).

Each is one transaction. Suppressing exits every active enrollment of the lead at once, as an
unsubscribe does. Erasure (GDPR Art. 17) anonymises the lead and keeps only a hashed suppression
(:func:`dripengine.storage.suppression.hashed`), so the address is recognised and refused if it
comes back (an import, a recycle, a CRM push) without being stored anywhere. The statements are
:mod:`dripengine.storage.suppression`'s; this module decides what is done, in what order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import DripError
from dripengine.leads.suppression import ERASED, removal_refusal
from dripengine.storage import Engine, suppression
from dripengine.storage.leads import exit_enrollments, lead_id_of
from dripengine.storage.textlimits import text_problem

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: .invalid never resolves, so it is never mailed


class SuppressionError(DripError):
    """That suppression cannot be changed."""


def address(raw: str) -> str:
    try:
        return normalise_email(raw)
    except InvalidEmail as exc:
        raise SuppressionError(f"{raw!r} is not a valid email address: {exc}") from None


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
        lead_id = lead_id_of(connection, email)
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
        why = removal_refusal(entry.reason)
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


def forget(engine: Engine, raw: str, now: datetime, *, outbox: Path | None = None) -> Forgotten:
    """Erase a person: anonymise the lead, blank what its events and emails kept, exit its
    enrollments, stop scoring, cancel its pending CRM handoff, and keep only a hashed suppression.

    The stage, the stage history and the counts stay (the statistics need them, and they say
    nothing about who the person was).
    """
    email = address(raw)
    with engine.begin() as connection:
        suppression.secure_delete(connection)
        lead_id = lead_id_of(connection, email)
        erased_as = None
        exited = events = 0
        if lead_id is not None:
            erased_as = f"erased-{lead_id}@{ERASED_DOMAIN}"
            suppression.anonymise_lead(connection, lead_id, erased_as, now)
            exited = exit_enrollments(connection, lead_id, "erased on request", now)
            events = suppression.blank_lead_rows(connection, lead_id)
        forms = address_forms(email)
        replacement = erased_as or f"erased@{ERASED_DOMAIN}"
        scrubbed = 0
        if lead_id is not None:
            scrubbed += suppression.scrub_lead_rows(connection, lead_id, forms, replacement)
            uids = suppression.message_uids(connection, lead_id)
        else:
            uids = []
        scrubbed += suppression.scrub_unowned_events(connection, email, forms, replacement)
        # the plain entry would keep the address: only the hashed one stays
        suppression.remove_plain(connection, email)
        suppression.add(
            connection, suppression.hashed(email), ERASED, now, source="drip leads forget"
        )
    files = _remove_outbox_files(outbox, uids) if outbox is not None else 0
    checkpointed = suppression.checkpoint(engine)
    return Forgotten(email, lead_id, erased_as, exited, events, scrubbed, files, checkpointed)


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


__all__ = [
    "ERASED_DOMAIN",
    "Forgotten",
    "Suppressed",
    "SuppressionError",
    "forget",
    "suppress",
    "unsuppress",
]
