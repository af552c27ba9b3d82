"""Paused campaigns: the dispatcher sends nothing from a campaign with a pause.

A ``campaign_pause`` row per campaign (its primary key) holds the campaign's breaker state. A row
with a reason is a pause: the complaint breaker writes one (see :mod:`dripengine.engagement.breaker`),
and the dispatcher's claim (:mod:`dripengine.storage.rounds`) leaves the campaign's enrollments
alone while it is there (they stay due, and go out once the campaign is resumed). ``drip campaigns
resume ID`` ends the pause by turning the row into a :data:`RESUMED` marker stamped with the time
of the resume: the breaker then judges the campaign only on what it sent after that moment, so the
sends that tripped it do not trip it again straight away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.engine import Connection

from dripengine.storage import dialect
from dripengine.storage.models import PAUSE

RESUMED = "resumed"  # the reason of a row that is no longer a pause: the time of the resume


@dataclass(frozen=True)
class Pause:
    campaign_id: str
    reason: str
    paused_at: datetime


def paused_ids() -> Select[tuple[str]]:
    """``SELECT campaign_id`` of the paused campaigns: for the dispatcher's claim."""
    return select(PAUSE.c.campaign_id).where(PAUSE.c.reason != RESUMED)


def paused(connection: Connection) -> list[Pause]:
    """Every campaign paused now, oldest pause first."""
    query = (
        select(PAUSE.c.campaign_id, PAUSE.c.reason, PAUSE.c.paused_at)
        .where(PAUSE.c.reason != RESUMED)
        .order_by(PAUSE.c.paused_at, PAUSE.c.campaign_id)
    )
    return [Pause(*row) for row in connection.execute(query)]


def resumed(connection: Connection) -> dict[str, datetime]:
    """When each campaign that was paused and resumed was resumed."""
    query = select(PAUSE.c.campaign_id, PAUSE.c.paused_at).where(PAUSE.c.reason == RESUMED)
    return {campaign_id: at for campaign_id, at in connection.execute(query)}


def pause(connection: Connection, campaign_id: str, reason: str, now: datetime) -> None:
    """Pause ``campaign_id`` (again); a pause already in place keeps its own reason and time."""
    statement = dialect.insert(connection, PAUSE).values(
        campaign_id=campaign_id, reason=reason, paused_at=now
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["campaign_id"],
            set_={"reason": reason, "paused_at": now},
            where=PAUSE.c.reason == RESUMED,
        )
    )


def resume(connection: Connection, campaign_id: str, now: datetime) -> Pause | None:
    """End the pause of ``campaign_id``; the pause that ended, or None when it was not paused."""
    current = connection.execute(
        select(PAUSE.c.campaign_id, PAUSE.c.reason, PAUSE.c.paused_at).where(
            PAUSE.c.campaign_id == campaign_id, PAUSE.c.reason != RESUMED
        )
    ).first()
    if current is None:
        return None
    connection.execute(
        update(PAUSE)
        .where(PAUSE.c.campaign_id == campaign_id)
        .values(reason=RESUMED, paused_at=now)
    )
    return Pause(*current)


__all__ = ["PAUSE", "RESUMED", "Pause", "pause", "paused", "paused_ids", "resume", "resumed"]
