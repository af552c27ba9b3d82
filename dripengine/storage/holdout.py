"""The queries of holdout tests (docs/holdout.md): each group's leads, requalifications and SQLs
per campaign, and which addresses are in a campaign's holdout group.

The cohort is the enrolments made in the window (``since <= enrolled_at <= now``), split by
``enrollment.holdout``. An enrolment lasts until the lead's next recycle (like an episode of
``drip stats --by reason``); within it, up to ``now``:

- ``requalified``: a hand-back (``handoff`` row) was made;
- ``sql``: sales said ``accepted`` or ``won`` on that hand-back (``feedback``).

One aggregate query; the counts come back as plain dicts, the maths is
:mod:`dripengine.reports.holdout`'s.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from dripengine.storage.models import ENROLLMENT, FEEDBACK, HANDOFF, LEAD, RECYCLE_RECORD

__all__ = ["SQL_OUTCOMES", "group_counts", "holdout_addresses"]

SQL_OUTCOMES = ("accepted", "won")  # sales took the hand-back on (a later "lost" keeps it so)


class Span(Protocol):
    @property
    def now(self) -> datetime: ...

    @property
    def since(self) -> datetime | None: ...


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def group_counts(
    connection: Connection, span: Span, campaign: str | None = None
) -> dict[str, dict[bool, dict[str, int]]]:
    """{campaign: {holdout?: {leads, requalified, sql}}} over the enrolments made in the window."""
    e, h, f, r = ENROLLMENT.c, HANDOFF.c, FEEDBACK.c, RECYCLE_RECORD.c
    # Correlated by name: an EXISTS nested in another one correlates by itself only to the query
    # just around it, so ``enrollment`` would become a second FROM of its own, every enrolment
    # (an unrelated lead's recycle would then hide this lead's hand-back, and each subquery
    # would read the whole table).
    recycled_since = (
        exists()
        .where(r.lead_id == e.lead_id, r.at > e.enrolled_at, r.at < h.created_at)
        .correlate(ENROLLMENT, HANDOFF)
    )
    handed = and_(
        h.lead_id == e.lead_id,
        h.created_at >= e.enrolled_at,
        h.created_at <= span.now,
        ~recycled_since,
    )
    accepted = (
        exists()
        .where(  # f.lead_id: feedback (lead_id, at) is indexed, handoff_id not
            f.lead_id == e.lead_id,
            f.handoff_id == h.id,
            f.outcome.in_(SQL_OUTCOMES),
            f.at <= span.now,
        )
        .correlate(ENROLLMENT, HANDOFF)
    )
    requalified = exists().where(handed).correlate(ENROLLMENT)
    sql = exists().where(handed, accepted).correlate(ENROLLMENT)
    where = [e.enrolled_at <= span.now]
    if span.since is not None:
        where.append(e.enrolled_at >= span.since)
    if campaign is not None:
        where.append(e.campaign_id == campaign)
    query = (
        select(
            e.campaign_id,
            e.holdout,
            func.count().label("leads"),
            _count_if(requalified).label("requalified"),
            _count_if(sql).label("sql"),
        )
        .where(*where)
        .group_by(e.campaign_id, e.holdout)
    )
    out: dict[str, dict[bool, dict[str, int]]] = {}
    for row in connection.execute(query):
        counts = {"leads": int(row.leads), "requalified": int(row.requalified), "sql": int(row.sql)}
        out.setdefault(row.campaign_id, {})[bool(row.holdout)] = counts
    return out


def holdout_addresses(
    connection: Connection, campaign_id: str, emails: Collection[str]
) -> list[str]:
    """Those of ``emails`` (normalised) whose lead is in ``campaign_id``'s holdout group."""
    if not emails:
        return []
    query = (
        select(LEAD.c.email)
        .join(ENROLLMENT, ENROLLMENT.c.lead_id == LEAD.c.id)
        .where(
            ENROLLMENT.c.campaign_id == campaign_id,
            ENROLLMENT.c.holdout.is_(True),
            LEAD.c.email.in_(sorted(emails)),
        )
    )
    return sorted(row[0] for row in connection.execute(query))
