"""A/B variants in the database: what each variant of a step got (the figures a winner is picked
on), the winners recorded (``variant_winner``), and recording one.

The figures count **leads**, never events: a lead who clicks five times is one clicker, and only
events a person made count (``event.machine`` false: privacy-proxy opens and link-scanner clicks
never help a variant win). Every count is bounded by ``now`` (the emails sent and the events that
happened up to then), so ``drip --now`` replays see the database as of that time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, exists, false, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from dripengine import vocabulary as v
from dripengine.storage import dialect
from dripengine.storage.models import EVENT, MESSAGE, VARIANT_WINNER

__all__ = [
    "VariantCounts",
    "WinnerRow",
    "record_winner",
    "variant_counts",
    "winner_rows",
    "winners",
]

# the event type each metric counts (machine events left out for all of them)
METRIC_EVENTS = {
    "human_click_rate": v.CLICK,
    "human_open_rate": v.OPEN,
    "reply_rate": v.REPLY,  # auto-replies are their own type and never count
}


@dataclass(frozen=True)
class VariantCounts:
    """One variant of a step: emails sent, and the leads who clicked, opened or replied to them
    (a person, each lead once)."""

    sent: int
    clickers: int
    openers: int
    repliers: int

    def successes(self, metric: str) -> int:
        return {
            "human_click_rate": self.clickers,
            "human_open_rate": self.openers,
            "reply_rate": self.repliers,
        }[metric]


@dataclass(frozen=True)
class WinnerRow:
    campaign_id: str
    step_id: str
    variant: str
    metric: str
    decided_at: datetime
    detail: dict[str, Any]


def _leads_with(event_type: str, now: datetime) -> ColumnElement[Any]:
    """The lead of the message when a person made an event of this type on it by ``now``."""
    e, m = EVENT.c, MESSAGE.c
    did = exists().where(
        e.message_id == m.id,
        e.type == event_type,
        e.machine == false(),
        e.occurred_at <= now,
    )
    return func.count(func.distinct(case((did, m.lead_id), else_=None)))


def variant_counts(
    connection: Connection, campaign_id: str, step_id: str, now: datetime
) -> dict[str, VariantCounts]:
    """{variant id: its counts} over the step's emails sent by ``now`` (one query)."""
    m = MESSAGE.c
    query = (
        select(
            m.variant,
            func.count().label("sent"),
            _leads_with(METRIC_EVENTS["human_click_rate"], now).label("clickers"),
            _leads_with(METRIC_EVENTS["human_open_rate"], now).label("openers"),
            _leads_with(METRIC_EVENTS["reply_rate"], now).label("repliers"),
        )
        .where(
            m.campaign_id == campaign_id,
            m.step_id == step_id,
            m.variant.is_not(None),
            m.status == "sent",
            m.sent_at <= now,
        )
        .group_by(m.variant)
    )
    return {
        r.variant: VariantCounts(int(r.sent), int(r.clickers), int(r.openers), int(r.repliers))
        for r in connection.execute(query)
    }


def winners(connection: Connection) -> dict[tuple[str, str], str]:
    """{(campaign id, step id): the winning variant} for every step that has one."""
    w = VARIANT_WINNER.c
    rows = connection.execute(select(w.campaign_id, w.step_id, w.variant))
    return {(r.campaign_id, r.step_id): r.variant for r in rows}


def winner_rows(
    connection: Connection, campaigns: Collection[str] | None = None
) -> list[WinnerRow]:
    """The recorded winners (of these campaigns), oldest decision first."""
    w = VARIANT_WINNER.c
    query = select(w.campaign_id, w.step_id, w.variant, w.metric, w.decided_at, w.detail)
    if campaigns is not None:
        query = query.where(w.campaign_id.in_(list(campaigns)))
    rows = connection.execute(query.order_by(w.decided_at, w.id))
    return [WinnerRow(*r) for r in rows]


def record_winner(
    connection: Connection,
    campaign_id: str,
    step_id: str,
    variant: str,
    metric: str,
    decided_at: datetime,
    detail: dict[str, Any],
) -> bool:
    """Record the step's winner; False when one is recorded already (another worker was first:
    the first decision stands, ``UNIQUE(campaign_id, step_id)``)."""
    statement = (
        dialect.insert(connection, VARIANT_WINNER)
        .values(
            campaign_id=campaign_id,
            step_id=step_id,
            variant=variant,
            metric=metric,
            decided_at=decided_at,
            detail=detail,
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "step_id"])
        .returning(VARIANT_WINNER.c.id)
    )
    return connection.execute(statement).first() is not None
