"""The first stage of a round: claim due enrollments with a lease and load what deciding them reads;
before any round, resolve the messages a dead worker left as ``sending``.

The statements are :mod:`dripengine.storage.rounds`'s; the suppression list is asked once a round
(plain and hashed addresses alike, :func:`dripengine.storage.suppression.suppressed`).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dripengine.campaigns.sequence import CONDITION_FOR_EVENT
from dripengine.providers.base import Provider
from dripengine.sending.policy import CAP_PERIOD
from dripengine.storage import Connection, Engine, suppression
from dripengine.storage.messages import MessageRow, stale_sending, update_messages
from dripengine.storage.rounds import (
    EnrollmentRow,
    LeadRow,
    RecycleRow,
    claim,
    count_due,
    load_claimed,
    load_history,
    write_transaction,
)
from dripengine.storage.touches import TouchRow, recent_touches


def worker_id() -> str:
    """This process's name as a lease owner: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Round:
    """Everything the decisions of one claimed batch read, loaded with one query a table."""

    enrollments: list[EnrollmentRow]
    leads: dict[int, LeadRow]
    suppressed: dict[str, str]  # address -> why
    messages: dict[int, list[MessageRow]]  # by enrollment, this round only
    engaged: dict[int, set[tuple[str, str]]]  # by enrollment: (step id, opened/clicked/replied)
    recent: dict[int, list[datetime]]  # by lead: emails in the cap's 7 days
    recycles: dict[int, RecycleRow]  # by lead: the latest
    touches: dict[int, list[TouchRow]] = field(default_factory=dict)  # by lead: sales touches

    def last_touch(self, lead_id: int) -> tuple[str, datetime] | None:
        """The lead's latest sales touch up to now (kind, at): what holds its marketing email."""
        touches = self.touches.get(lead_id)
        return (touches[-1].kind, touches[-1].at) if touches else None

    def sales_emails(self, lead_id: int) -> list[datetime]:
        """When reps emailed the lead (loaded since the cap's 7 days at least)."""
        return [t.at for t in self.touches.get(lead_id, ()) if t.kind == "email"]


def due_count(engine: Engine, now: datetime, only: Collection[str] | None) -> int:
    """Enrollments due at ``now`` and not leased: what a run would claim (a bar's total)."""
    with engine.connect() as connection:
        return count_due(connection, now, only)


def claim_round(
    engine: Engine,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    only: Collection[str] | None,
) -> list[int]:
    """Lease up to ``limit`` due enrollments to ``worker``, in a transaction of its own; their ids."""
    with write_transaction(engine) as connection:
        return claim(connection, worker, now, lease, limit, only)


def load_round(
    connection: Connection, ids: Sequence[int], now: datetime, quiet: timedelta = timedelta(0)
) -> Round:
    """What deciding the claimed enrollments ``ids`` at ``now`` reads; the leads' sales touches
    of the cap's 7 days or ``quiet`` (``sending.quiet_after_sales_touch``), whichever is longer."""
    enrollments, leads = load_claimed(connection, ids)
    emails = [lead.email for lead in leads.values()]
    suppressed = {  # plain and hashed (erased) entries alike
        email: f"{e.reason} on {e.created_at:%d %b %Y}"
        for email, e in suppression.suppressed(connection, emails).items()
    }
    lead_ids = sorted({e.lead_id for e in enrollments})
    history = load_history(
        connection,
        enrollments,
        lead_ids,
        sends_since=now - CAP_PERIOD,
        conditions=CONDITION_FOR_EVENT,
    )
    touches = recent_touches(connection, lead_ids, now - max(quiet, CAP_PERIOD), now)
    return Round(
        enrollments,
        leads,
        suppressed,
        history.messages,
        history.engaged,
        history.recent,
        history.recycles,
        touches,
    )


def recover(engine: Engine, provider: Provider, now: datetime) -> int:
    """Resolve messages a dead worker left as 'sending', by the provider's evidence; how many.

    ``sent``: recorded as sent; ``not_sent``: retried; otherwise ``unknown``, never resent blindly.
    """
    with write_transaction(engine) as connection:
        rows = stale_sending(connection, now)
        updates = []
        for row in rows:
            verdict = provider.evidence(row.uid, row.created_at)
            if verdict == "sent":
                updates.append({"id": row.id, "status": "sent", "sent_at": now})
            elif verdict == "not_sent":
                updates.append(
                    {
                        "id": row.id,
                        "status": "retry",
                        "error": "interrupted before delivery; will be sent again",
                    }
                )
            else:
                updates.append(
                    {
                        "id": row.id,
                        "status": "unknown",
                        "error": f"interrupted while {provider.name} was sending; not resent, to avoid a duplicate",
                    }
                )
        update_messages(connection, updates, where_status="sending")
    return len(rows)


__all__ = ["Round", "claim_round", "due_count", "load_round", "recover", "worker_id"]
