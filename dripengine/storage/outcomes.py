"""Send outcomes a crash hid: the query that fails ``unknown`` messages their provider never had.

The policy (which provider, after how long, with what reason) is the provider's
(:meth:`dripengine.providers.base.Provider.settle_unknown`); the SQL is here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, exists, select, update
from sqlalchemy.engine import Engine

from dripengine.storage.models import Event, Message

MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
EVENT: Table = Event.__table__  # type: ignore[attr-defined]


def fail_unheard_unknown(
    engine: Engine, provider: str, created_before: datetime, error: str
) -> int:
    """Fail ``provider``'s ``unknown`` messages created before ``created_before`` that have no event
    of their own while some event of ``provider`` was received after each was created (its webhook
    works); ``error`` says why. How many. One transaction: the ids, then the update."""
    own_event = exists().where(EVENT.c.message_id == MESSAGE.c.id)
    webhook_alive = exists().where(
        EVENT.c.provider == provider, EVENT.c.received_at > MESSAGE.c.created_at
    )
    with engine.begin() as connection:
        ids = list(
            connection.scalars(
                select(MESSAGE.c.id).where(
                    MESSAGE.c.status == "unknown",
                    MESSAGE.c.provider == provider,
                    MESSAGE.c.created_at < created_before,
                    ~own_event,
                    webhook_alive,
                )
            )
        )
        if ids:
            connection.execute(
                update(MESSAGE)
                .where(MESSAGE.c.id.in_(ids), MESSAGE.c.status == "unknown")
                .values(status="failed", error=error)
            )
    return len(ids)


__all__ = ["fail_unheard_unknown"]
